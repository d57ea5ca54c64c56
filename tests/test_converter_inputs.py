"""Models the official converters take and packager used to refuse (issue 12, classes 1-4), through the real CLI.

Each model is tiny and built in the test (in a subprocess, as a user's own TensorFlow would write it). What the
official converters did with the same models here (tensorflowjs_converter 4.22.0, coremltools 9.0 on the serving
function, TFLite of TF 2.19 with default options):

- debug ops: without the ``tf.print``, ``tensorflowjs_converter --input_format=tf_saved_model`` converts the model
  (it strips ``Assert``, ``CheckNumerics``, ``Print`` by default); with it, it refuses ``PrintV2, StringFormat``
  (not on its strip list; packager strips them too). coremltools converts both; TFLite refuses ``tf.Print``,
  ``tf.PrintV2`` and ``tf.StringFormat`` ("neither a custom op nor a flex op").
- a dead ``Roll``: tensorflowjs_converter, coremltools and TFLite all convert the model; op preflight used to
  reject ios and web on it. ``EnsureShape``: coremltools refuses it ("Conversion for TF op 'EnsureShape' not
  implemented"), the one rejection preflight keeps, now as the explanation of the failed conversion.
- a tf_keras ``Embedding`` SavedModel (ResourceGather): all three official converters convert it.
- two int inputs of the same shape: tensorflowjs_converter converts the model and keys its signature inputs
  ``char_ids:0`` / ``type_ids:0``; coremltools and TFLite convert it too.
- a frozen graph with a TF1 while loop: ``tensorflowjs_converter --input_format=tf_frozen_model`` converts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

FP32 = ("--quantize", "android=fp32", "--quantize", "ios=fp32", "--quantize", "web=fp32")


def _build(code: str, *args) -> None:
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-3000:]


def _report(out) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _x(path, rows=8, width=6) -> None:
    np.save(path, np.random.default_rng(0).normal(size=(rows, width)).astype(np.float32))


def _tree_hash(folder) -> str:
    digest = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# 1. debug ops


DEBUG_MODEL = """
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 4], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(self, x):
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(x)), [x])    # Assert (in an If)
        x = tf.debugging.check_numerics(x, "x is not finite")              # CheckNumerics
        x = tf.raw_ops.Print(input=x, data=[x], message="x=")              # Print
        tf.print("batch", tf.shape(x)[0])                                  # PrintV2 (+ StringFormat)
        return {"output_0": tf.nn.softmax(tf.matmul(x, self.w))}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


def test_debug_ops_are_stripped_for_every_target(tmp_path):
    """Before: ios and web FAILed at op preflight (Assert, CheckNumerics), android on Print; exit 4."""
    model = tmp_path / "debug_model"
    _build(DEBUG_MODEL, model)
    _x(tmp_path / "x.npy")
    before = _tree_hash(model)
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", tmp_path / "x.npy", "--out", out, "--no-cache", *FP32)
    assert r.returncode == 0, r.stderr + r.stdout
    report = _report(out)
    assert report["model"]["stripped_debug_ops"] == {"Assert": 1, "CheckNumerics": 1, "Print": 1, "PrintV2": 1}
    for t in ("android", "ios", "web"):
        result = report["targets"][t]
        assert result["status"] == "PASS", (t, result.get("reason"))
        assert result["metrics"]["max_abs_error"] < 1e-5
        assert not result.get("preflight"), (t, result["preflight"])  # debug ops are not counted
    assert "stripped debug ops" in r.stderr + r.stdout
    assert _tree_hash(model) == before  # the user's SavedModel is only read


# ---------------------------------------------------------------------------------------------------------------
# 2. preflight is advice until a converter confirms it


DEAD_ROLL_MODEL = """
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 4], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(self, x):
        unused = tf.roll(x, 1, axis=1)  # in the graph, not in any output: every converter prunes it
        return {"output_0": tf.nn.softmax(tf.matmul(x, self.w))}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""

ENSURE_SHAPE_MODEL = DEAD_ROLL_MODEL.replace("unused = tf.roll(x, 1, axis=1)", "x = tf.ensure_shape(x, [None, 6])")


def test_a_preflight_finding_the_converters_disprove_is_a_warning(tmp_path):
    """Before: ios and web FAILed at preflight ("no translator for Roll", "no kernel for Roll") without
    converting, though coremltools and tensorflowjs_converter both convert the model."""
    _build(DEAD_ROLL_MODEL, tmp_path / "roll")
    _x(tmp_path / "x.npy")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "roll", "--samples", tmp_path / "x.npy", "--out", out, "--no-cache",
                "--targets", "ios,web", *FP32[2:])
    assert r.returncode == 0, r.stderr + r.stdout
    for t in ("ios", "web"):
        result = _report(out)["targets"][t]
        assert result["status"] == "PASS", (t, result.get("reason"))
        roll = [f for f in result["preflight"] if f["op"] == "Roll"]
        assert roll and roll[0]["severity"] == "warning" and roll[0]["conversion"] == "succeeded", result["preflight"]
        assert any("op preflight: Roll" in w for w in result["warnings"])


def test_a_confirmed_preflight_finding_explains_the_failed_conversion(tmp_path):
    """coremltools has no translator for EnsureShape: the conversion runs, fails, and the reason names the op
    and the fix from preflight, confirmed by the converter's own message."""
    _build(ENSURE_SHAPE_MODEL, tmp_path / "ensure")
    _x(tmp_path / "x.npy")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "ensure", "--samples", tmp_path / "x.npy", "--out", out, "--no-cache",
                "--targets", "ios", "--quantize", "ios=fp32")
    assert r.returncode == 4, r.stderr + r.stdout
    ios = _report(out)["targets"]["ios"]
    assert ios["status"] == "FAIL"
    assert ios["reason"].startswith("op preflight: EnsureShape (x1)"), ios["reason"]
    assert "fix: " in ios["reason"] and "confirmed by the conversion: coremltools could not convert" in ios["reason"]
    assert ios["preflight"][0]["conversion"] == "failed" and ios["preflight"][0]["severity"] == "error"


TF_KERAS_EMBEDDING = """
import sys, numpy as np, tf_keras as k, tensorflow as tf
k.utils.set_random_seed(0)
m = k.Sequential([k.layers.InputLayer((8,), dtype="int32"), k.layers.Embedding(16, 4), k.layers.Flatten(),
                  k.layers.Dense(3, activation="softmax")])
tf.saved_model.save(m, sys.argv[1])
np.save(sys.argv[2], np.random.default_rng(0).integers(0, 16, (8, 8)).astype(np.int32))
"""


def test_resource_gather_of_a_tf_keras_embedding_is_not_rejected(tmp_path):
    """Before: ios and web FAILed at preflight on ResourceGather, which freezing turns into GatherV2."""
    _build(TF_KERAS_EMBEDDING, tmp_path / "emb", tmp_path / "ids.npy")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "emb", "--samples", tmp_path / "ids.npy", "--out", out, "--no-cache",
                "--targets", "ios,web", *FP32[2:])
    report = _report(out)
    assert report["targets"]["web"]["status"] == "PASS", report["targets"]["web"].get("reason")
    ios = report["targets"]["ios"]
    assert not ios.get("conversion_failed") and (out / "ios").is_dir(), (ios["status"], ios.get("reason"))
    for t in ("ios", "web"):
        assert not [f for f in report["targets"][t].get("preflight", []) if f["severity"] == "error"]
    assert "ResourceGather" not in r.stderr + r.stdout


# ---------------------------------------------------------------------------------------------------------------
# 3. two inputs of the same shape and dtype


TWO_ID_INPUTS = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
chars = keras.Input((8,), dtype="int32", name="char_ids")
types = keras.Input((8,), dtype="int32", name="type_ids")
e1 = keras.layers.Embedding(16, 4, embeddings_initializer=keras.initializers.RandomNormal(0, 1, seed=1))(chars)
e2 = keras.layers.Embedding(16, 4, embeddings_initializer=keras.initializers.RandomNormal(0, 1, seed=2))(types)
x = keras.layers.Flatten()(keras.layers.Concatenate()([e1, e2 * 3.0]))
m = keras.Model([chars, types], keras.layers.Dense(5, activation="softmax")(x))
m.save(sys.argv[1])
rng = np.random.default_rng(0)
c = rng.integers(0, 16, (10, 8)).astype(np.int32)
t = rng.integers(0, 3, (10, 8)).astype(np.int32)
np.savez(sys.argv[2], char_ids=c, type_ids=t)
swapped = np.abs(m([c, t]).numpy() - m([t, c]).numpy()).max()
assert swapped > 0.05, swapped  # feeding one input where the other goes gives other outputs
"""


def test_two_inputs_of_the_same_shape_feed_the_right_nodes_on_the_web(tmp_path):
    """Before: web FAILed with "the TF.js model's signature lacks ['char_ids', 'type_ids']" (tensorflowjs keys
    them char_ids:0 / type_ids:0). A swapped mapping would fail the comparison (the model tells them apart)."""
    _build(TWO_ID_INPUTS, tmp_path / "two.keras", tmp_path / "ids.npz")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "two.keras", "--samples", tmp_path / "ids.npz", "--out", out, "--no-cache",
                "--targets", "web", "--quantize", "web=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    web = _report(out)["targets"]["web"]
    assert web["status"] == "PASS", web.get("reason")
    assert web["metrics"]["max_abs_error"] < 1e-5
    model_json = json.loads((out / "web" / "model.json").read_text())
    assert sorted(model_json["signature"]["inputs"]) == ["char_ids:0", "type_ids:0"]  # what tensorflowjs wrote


# ---------------------------------------------------------------------------------------------------------------
# 4. frozen graph -> web


FROZEN_WHILE = """
import sys, numpy as np, tensorflow as tf
tf1 = tf.compat.v1
tf1.disable_control_flow_v2()
g = tf.Graph()
with g.as_default():
    x = tf1.placeholder(tf.float32, [1, 6], name="x")
    w = tf.constant(np.random.default_rng(1).normal(size=(6, 6)).astype(np.float32) * 0.3)
    _, h = tf1.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, tf.tanh(tf.matmul(h, w))), [tf.constant(0), x])
    tf.reshape(tf.nn.softmax(h), [1, 6], name="probs")
tf.io.write_graph(g.as_graph_def(), sys.argv[1], "frozen.pb", as_text=False)
"""


def test_frozen_graph_with_tf1_control_flow_converts_for_the_web(tmp_path):
    """Before: web FAILed with "Unsupported Ops in the model before optimization: PartitionedCall" (the
    SavedModel wrapping keeps a call TF.js cannot inline); tensorflowjs_converter --input_format=tf_frozen_model
    converts the same file, and so does packager now."""
    _build(FROZEN_WHILE, tmp_path)
    _x(tmp_path / "x.npy")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "frozen.pb", "--input-shape", "x=1,6", "--output-names", "probs",
                "--samples", tmp_path / "x.npy", "--out", out, "--no-cache", "--targets", "web",
                "--quantize", "web=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    web = _report(out)["targets"]["web"]
    assert web["status"] == "PASS", web.get("reason")
    assert web["metrics"]["max_abs_error"] < 1e-5
    ops = {n["op"] for n in json.loads((out / "web" / "model.json").read_text())["modelTopology"]["node"]}
    assert "PartitionedCall" not in ops and "Enter" in ops
