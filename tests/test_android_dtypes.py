"""Every model the Android build passes also runs in the module: through the real CLI, the module's own Kotlin + JNI
core runs the shipped .tflite on LiteRT's C API (libLiteRt.so of the ai-edge-litert wheel) from a JVM, with
integer inputs, integer outputs whose signature keys are not in graph order, and outputs reshaped by the runtime
batch (issue 27)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

TOKENS = """
import sys, numpy as np, keras
from keras import layers
keras.utils.set_random_seed(0)
dtype, path = sys.argv[1], sys.argv[2]
i = keras.Input((8,), dtype=dtype, name="ids")
x = layers.GlobalAveragePooling1D()(layers.Embedding(50, 8)(i))
keras.Model(i, layers.Dense(4, activation="softmax", name="probs")(x)).save(path)
np.save(path + ".npy", np.random.default_rng(0).integers(0, 50, (16, 8)).astype(dtype))
"""

# outputs {"zeta": float32, "alpha": int32}: the signature lists them sorted (alpha, zeta), the graph as computed
INT_OUTPUT = """
import sys, numpy as np, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 5], seed=[3, 4]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="feat")])
    def serve(self, feat):
        p = tf.nn.softmax(tf.matmul(feat, self.w))
        return {"zeta": p, "alpha": tf.argmax(p, axis=-1, output_type=tf.int32)}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
np.save(sys.argv[1] + ".npy", np.random.default_rng(0).normal(0, 1, (16, 6)).astype("float32"))
"""

# the output reshaped with the batch read at run time: a dynamic tensor unless converted at batch 1
RUNTIME_RESHAPE = """
import sys, numpy as np, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([4, 4, 3, 2], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="img")])
    def serve(self, img):
        y = tf.nn.relu(tf.nn.conv2d(img, self.w, 2, "SAME"))
        return {"flat": tf.reshape(y, [tf.shape(y)[0], -1])}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
np.save(sys.argv[1] + ".npy", np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 3)).astype("float32"))
"""


def _model(tmp_path, code, name, *args):
    path = tmp_path / name
    subprocess.run([sys.executable, "-c", code, *args, str(path)], check=True, capture_output=True)
    return path


def _build(tmp_path, model, *extra):
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", f"{model}.npy", "--targets", "android", "--out", out, *extra)
    report = json.loads((out / "report.json").read_text())
    android = report["targets"]["android"]
    checks = {c["name"]: c for c in android["checks"]}
    return r, out, android, checks


def _native_run_passed(r, android, checks):
    run = checks["jni-runs-shipped-model"]
    assert run["status"] == "PASS", run["detail"]
    assert "JVM -> JNI -> LiteRT C API" in run["detail"] and "shipped in the module" in run["detail"]
    assert r.returncode == 0 and android["status"] == "PASS", r.stderr[-3000:]
    return run["detail"]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_token_id_inputs_run_in_the_module(tmp_path, dtype):
    """int32/int64 token ids -> Embedding -> softmax: the module takes them as IntArray/LongArray (runTyped)."""
    model = _model(tmp_path, TOKENS, "tokens.keras", dtype)
    r, out, android, checks = _build(tmp_path, model, "--quantize", "android=fp32")
    detail = _native_run_passed(r, android, checks)
    assert "max abs err 0.00e+00" in detail and "top-1 agreement 100.0%" in detail, detail
    kt = next(out.glob("android/src/main/java/**/*Classifier.kt")).read_text()
    assert "fun run(inputs: Map<String, Any>): Map<String, Any>" in kt


def test_int32_output_matched_by_name(tmp_path):
    """A float and an int32 output whose signature keys are not in graph order: the module's own output names (read
    from the model natively) are the order OUTPUT_NAMES promises, and each output is compared under its name."""
    model = _model(tmp_path, INT_OUTPUT, "intout")
    r, out, android, checks = _build(tmp_path, model, "--quantize", "android=fp32")
    detail = _native_run_passed(r, android, checks)
    assert "top-1 agreement 100.0%" in detail, detail
    kt = next(out.glob("android/src/main/java/**/*Classifier.kt")).read_text()
    assert 'OUTPUT_NAMES: List<String> = Collections.unmodifiableList(listOf("zeta", "alpha"))' in kt


def test_output_reshaped_by_the_runtime_batch_runs_in_the_module(tmp_path):
    """tf.reshape(y, [tf.shape(y)[0], -1]): converted at batch 1 the shape ops fold away and LiteRT's CompiledModel
    allocates the output (with a dynamic batch: "Failed to set custom allocation for output tensor")."""
    model = _model(tmp_path, RUNTIME_RESHAPE, "reshape")
    r, out, android, checks = _build(tmp_path, model, "--quantize", "android=fp32")
    detail = _native_run_passed(r, android, checks)
    assert "max abs err 0.00e+00" in detail, detail
