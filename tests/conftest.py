"""Shared fixtures: tiny real models built inside the tests (nothing downloaded)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# every CLI run in the tests shares one fresh build cache, never the user's
os.environ["PACKAGER_CACHE_DIR"] = tempfile.mkdtemp(prefix="packager-test-cache-")
REPO = Path(__file__).resolve().parent.parent
PACKAGER = [sys.executable, "-m", "packager"]


def run_cli(*args, cwd=None, timeout=900, env=None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes, messages and all); ``env`` adds/overrides variables
    (a value of None removes one)."""
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    return subprocess.run([*PACKAGER, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=full_env)


CUMPROD_MODEL = """
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 4], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(self, x):
        return {"output_0": tf.nn.softmax(tf.matmul(tf.math.cumprod(x, axis=1), self.w))}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


def save_cumprod_model(path: Path) -> Path:
    """A SavedModel at ``path`` (input x: [None, 6] float32, output_0: softmax over 4) built on tf.math.cumprod, which
    has a TF.js kernel but no TFLite builtin and no coremltools translator. Saved in a subprocess."""
    subprocess.run([sys.executable, "-c", CUMPROD_MODEL, str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Tiny models in every supported format, built once per test session."""
    import keras

    d = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    out = {}

    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, activation="softmax")(x)
    clf = keras.Model(inp, x)
    clf.save(d / "clf.keras")
    out["keras"] = d / "clf.keras"
    clf.export(str(d / "clf_savedmodel"), verbose=False)
    out["saved_model"] = d / "clf_savedmodel"

    a = keras.Input((6,), name="features")
    h = keras.layers.Dense(8, activation="tanh")(a)
    two = keras.Model(a, [keras.layers.Dense(2, name="reg")(h), keras.layers.Dense(4, activation="softmax", name="cls")(h)])
    two.save(d / "two_outputs.keras")
    out["two_outputs"] = d / "two_outputs.keras"

    tab = keras.Model(a, keras.layers.Dense(1)(keras.layers.Dense(5, activation="relu")(a)))
    tab.save(d / "regressor.keras")
    out["regressor"] = d / "regressor.keras"

    rng = np.random.default_rng(0)
    np.save(d / "features.npy", rng.normal(size=(24, 6)).astype(np.float32))
    out["features_npy"] = d / "features.npy"
    np.save(d / "images.npy", rng.uniform(-1, 1, size=(24, 8, 8, 3)).astype(np.float32))
    out["images_npy"] = d / "images.npy"
    return out


@pytest.fixture(scope="session")
def h5_model(tmp_path_factory):
    """A legacy .h5 written by Keras 2 (tf_keras), in a subprocess so Keras 3 state is not shared."""
    d = tmp_path_factory.mktemp("h5")
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
        "import tf_keras as k, numpy as np\n"
        "k.utils.set_random_seed(1)\n"
        "m = k.Sequential([k.layers.InputLayer((8, 8, 3)), k.layers.Conv2D(4, 3, activation='relu'),"
        " k.layers.Flatten(), k.layers.Dense(3, activation='softmax')])\n"
        f"m.save({str(d / 'legacy.h5')!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    return d / "legacy.h5"


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A few real PNG images (drawn shapes) for image-input models."""
    from packager.demo.shapes import dataset

    d = tmp_path_factory.mktemp("imgs")
    images, _ = dataset(4, seed=5)
    for i, im in enumerate(images):
        im.resize((8, 8)).save(d / f"{i:02d}.png")
    return d
