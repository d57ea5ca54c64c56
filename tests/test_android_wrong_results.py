"""Issue 31, wrong results on Android: through the real CLI, models whose .tflite is right but whose module read it
wrongly. Each build's ``jni-runs-shipped-model`` runs the module's own Kotlin + JNI core on LiteRT's C API
(libLiteRt.so of the ai-edge-litert wheel) from a JVM and compares every output, by its name, with the original
model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

# signature keys not in sorted order, two of them bound to one tensor ("zeta" and "beta": the graph lists that tensor
# twice; LiteRT 2.3's C API names both "zeta"), and "alpha" computed apart
SHARED_OUTPUTS = """
import sys, numpy as np, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 5], seed=[3, 4]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="feat")])
    def serve(self, feat):
        p = tf.nn.softmax(tf.matmul(feat, self.w))
        return {"zeta": p, "alpha": tf.tanh(tf.matmul(feat, self.w)) * 3.0, "beta": p}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
np.save(sys.argv[1] + ".npy", np.random.default_rng(0).normal(0, 1, (12, 6)).astype("float32"))
"""

# outputs that are the input tensor itself (the converter keeps no op for them) beside a computed one
ECHO = """
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([3, 4], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
    def serve(self, image):
        score = tf.nn.softmax(tf.matmul(tf.reduce_mean(image, axis=[1, 2]), self.w))
        return {"same": image, "score": score}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""

# uint8 pixels in, normalised inside the model
UINT8_IMAGE = """
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]))
        self.d = tf.Variable(tf.random.stateless_normal([4, 3], seed=[3, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.uint8, name="pixels")])
    def serve(self, pixels):
        x = tf.cast(pixels, tf.float32) / 127.5 - 1.0
        y = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, self.w, 1, "SAME")), axis=[1, 2])
        return {"probs": tf.nn.softmax(tf.matmul(y, self.d) * 3.0)}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


def _model(tmp_path, code, name):
    path = tmp_path / name
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return path


def _images(folder, sizes, names=None):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate(sizes):
        name = names[i] if names else f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name, format="PNG")
    return folder


def _build(tmp_path, model, samples, *extra):
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", samples, "--targets", "android", "--out", out, *extra)
    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    checks = {c["name"]: c for c in android["checks"]}
    return r, out, android, checks


def _passed(r, android, checks, *names):
    for name in ("jni-runs-shipped-model", *names):
        assert checks[name]["status"] == "PASS", (name, checks[name]["detail"])
    assert r.returncode == 0 and android["status"] == "PASS", r.stdout[-3000:] + r.stderr[-3000:]
    return checks["jni-runs-shipped-model"]["detail"]


def _kotlin(out, suffix):
    return next(out.glob(f"android/src/main/java/**/*{suffix}.kt")).read_text()


def test_outputs_matched_by_name_with_unsorted_keys_bound_to_one_tensor(tmp_path):
    """{"zeta": p, "alpha": q, "beta": p}: before, the module named the outputs by LiteRT's reading of the tensors
    (zeta, zeta, alpha for three outputs) and the host run failed ("cannot reshape"); an app's run(Map) would have
    lost "beta". Now each output arrives under its own name, compared with the original's value of that name."""
    model = _model(tmp_path, SHARED_OUTPUTS, "shared")
    r, out, android, checks = _build(tmp_path, model, f"{model}.npy", "--quantize", "android=fp32")
    detail = _passed(r, android, checks)
    assert "max abs err" in detail and "12 of 12 samples" in detail, detail
    kt = _kotlin(out, "Classifier")
    names = kt.split("val OUTPUT_NAMES: List<String> = Collections.unmodifiableList(listOf(")[1].split("))")[0]
    assert sorted(n.strip().strip('"') for n in names.split(",")) == ["alpha", "beta", "zeta"], names
    assert 'SHARED_OUTPUTS: Set<String> = setOf("zeta", "beta")' in _kotlin(out, "Native") or \
        'SHARED_OUTPUTS: Set<String> = setOf("beta", "zeta")' in _kotlin(out, "Native")


def test_output_that_is_the_input_tensor_and_a_sample_named_with_a_newline(tmp_path):
    """An output bound to the input tensor itself (identity): the module read it from a buffer nothing wrote (all
    zeros or garbage) while the .tflite passed. And a sample file whose name holds a newline: the Kotlin
    preprocessing runner read its file list line by line (false FAIL, NoSuchFileException)."""
    model = _model(tmp_path, ECHO, "echo")
    samples = _images(tmp_path / "imgs", [(8, 8), (8, 8), (12, 9)], ["a.png", "line\nbreak.png", "c.png"])
    r, out, android, checks = _build(tmp_path, model, samples, "--quantize", "android=fp32")
    detail = _passed(r, android, checks, "preprocessing")
    assert "max abs err 0.00e+00" in detail, detail
    assert "3 original sample files" in checks["preprocessing"]["detail"], checks["preprocessing"]["detail"]


def test_uint8_image_input_through_the_kotlin_preprocessing(tmp_path):
    """A model that takes uint8 pixels and normalises inside (int8 quantized, calibrated on those pixels): the image
    folder's samples are the pixels 0..255 (before: floats 0..1 cast to uint8, and the unquantized uint8 tensor fed
    with x / 0), the module's Kotlin preprocessing gives whole levels (no mean/std) and classify(bitmap) exists."""
    model = _model(tmp_path, UINT8_IMAGE, "u8")
    samples = _images(tmp_path / "imgs", [(16, 16), (16, 16), (16, 16), (20, 24)])
    r, out, android, checks = _build(tmp_path, model, samples, "--quantize", "android=int8")
    detail = _passed(r, android, checks, "preprocessing", "predictions")
    assert "pixels through the Kotlin preprocessing" in detail and "on the int8 model" in detail, detail
    assert "top-1 agreement 100.0%" in detail, detail
    pre = _kotlin(out, "Preprocessing")
    assert "levels(modelPixels(argb, width, height, orientation))" in pre
    assert "fun classify(bitmap: Bitmap" in _kotlin(out, "Classifier")
