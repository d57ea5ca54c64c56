"""Loading the model: the signature preview read off a Keras model before its export, and TensorFlow loaded
without JAX."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from packager.spec import PackageSpec


@pytest.mark.parametrize("kind", ["functional", "sequential", "two_in_two_out", "dict_io"])
def test_keras_preview_is_the_signature_the_export_gives(kind, tmp_path):
    """The preview read off a Keras model before its export (used to start work during the export) names and
    shapes the inputs and outputs as the exported signature does."""
    import keras

    from packager.source import load_source

    a, b = keras.Input((4,), name="alpha"), keras.Input((3,), name="beta")
    cat = keras.layers.Concatenate()([a, b])
    img = keras.Input((8, 8, 3), name="image")
    models = {
        "functional": lambda: keras.Model(img, keras.layers.Dense(5)(keras.layers.Flatten()(img))),
        "sequential": lambda: keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)]),
        "two_in_two_out": lambda: keras.Model([a, b], [keras.layers.Dense(2)(cat), keras.layers.Dense(5)(cat)]),
        "dict_io": lambda: keras.Model({"alpha": a, "beta": b}, {"p": keras.layers.Dense(2)(cat),
                                                                 "q": keras.layers.Dense(3)(cat)}),
    }
    path = tmp_path / "m.keras"
    models[kind]().save(path)
    spec = PackageSpec(model=path, samples=tmp_path)
    previews = []
    source = load_source(spec, tmp_path / "work", on_preview=previews.append)
    assert len(previews) == 1
    assert previews[0].inputs == source.inputs
    assert [o.name for o in previews[0].outputs] == [o.name for o in source.outputs]


def test_tensorflow_and_the_tfjs_converter_load_without_jax():
    """packager never converts JAX models; loading jax + jaxlib cost about a CPU second per process (measured in
    packager/frameworks.py). TFLite and the TF.js converter still load, coremltools too."""
    code = ("import sys; from packager.frameworks import import_tensorflow, tfjs_saved_model_converter; "
            "tf = import_tensorflow(); conv = tfjs_saved_model_converter(); import coremltools; "
            "assert hasattr(conv, 'convert_tf_saved_model') and tf.lite.TFLiteConverter; "
            "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
