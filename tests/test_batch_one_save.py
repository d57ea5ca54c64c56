"""The Android target's batch-1 SavedModel (tflite._save_batch_one) saves the variables its signature reads, not the
whole loaded SavedModel again, when they are all it captures: the same .tflite bytes as saving the whole object;
a signature that reads another resource (a lookup table) still saves the whole object and still runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _batch_one(loaded, tf):
    fn = loaded.signatures["serving_default"]
    name, spec = next(iter(fn.structured_input_signature[1].items()))

    @tf.function(input_signature=[tf.TensorSpec([1, *spec.shape[1:]], spec.dtype, name=name)])
    def serve(x):
        return fn(**{name: x})

    return serve.get_concrete_function()


def _whole(loaded, serve, path: Path, tf) -> None:
    module = tf.Module()
    module.inner = loaded
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def test_batch_one_saves_the_variables_alone_with_the_same_tflite_bytes(tmp_path):
    import keras

    from packager.frameworks import import_tensorflow
    from packager.targets.android.tflite import _save_batch_one

    tf = import_tensorflow()
    keras.utils.set_random_seed(7)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    keras.Model(inp, out).export(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    serve = _batch_one(loaded, tf)

    _save_batch_one(loaded, serve, tmp_path / "lean")
    _whole(loaded, serve, tmp_path / "whole", tf)
    lean = tf.saved_model.load(str(tmp_path / "lean"))
    assert not hasattr(lean, "inner") and len(lean.weights) == len(serve.variables) > 0  # the variables alone
    sizes = {p: sum(f.stat().st_size for f in (tmp_path / p).rglob("*") if f.is_file()) for p in ("lean", "whole")}
    assert sizes["lean"] < sizes["whole"], sizes  # the loaded model's other functions are not saved again

    def tflite(path):
        return tf.lite.TFLiteConverter.from_saved_model(str(path), signature_keys=["serving_default"]).convert()

    assert tflite(tmp_path / "lean") == tflite(tmp_path / "whole")
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype(np.float32)
    got = lean.signatures["serving_default"](tf.constant(x))
    want = serve(tf.constant(x))
    for k in want:
        np.testing.assert_array_equal(got[k].numpy(), want[k].numpy())


def test_batch_one_keeps_the_whole_object_when_the_signature_reads_a_table(tmp_path):
    from packager.frameworks import import_tensorflow
    from packager.targets.android.tflite import _save_batch_one

    tf = import_tensorflow()

    class Tabled(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant([1, 2, 3], tf.int64), tf.constant([10., 20., 30.])),
                default_value=-1.0)
            self.scale = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int64, name="ids")])
        def __call__(self, ids):
            return {"out": self.table.lookup(ids) * self.scale}

    m = Tabled()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.__call__})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    serve = _batch_one(loaded, tf)
    _save_batch_one(loaded, serve, tmp_path / "b1")
    back = tf.saved_model.load(str(tmp_path / "b1"))
    assert hasattr(back, "inner")  # the table is tracked by the loaded object: saved whole
    got = back.signatures["serving_default"](tf.constant([[2, 9]], tf.int64))["out"].numpy()
    np.testing.assert_array_equal(got, [[40.0, -2.0]])
