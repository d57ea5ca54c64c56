"""Recurrent models through the real CLI, beside what the converters can do with them.

Measured on this machine: Keras 3 exports an LSTM over a sequence as a while loop. TFLite converts it only with
Select TF ops (``TensorListReserve``; LiteRT 2.x on Android has no Flex delegate), and even traced at batch 1 and a
static length it keeps a ``WHILE`` builtin (no fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``: that fusion is keyed to
tf_keras' ``api_implements`` functions); coremltools 9 fails on the loop (IndexError in the loop condition) and
tf.js 4.22 cannot execute it on any backend ("Cannot compute the outputs"). packager exports a Keras model's
recurrent layers unrolled at the length ``--input-shape`` fixes (``packager/recurrent.py``): builtins on TFLite,
kernels on every tf.js backend. A SavedModel's loop cannot be re-traced: there the reason names the op and the fix.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rnns(tmp_path_factory):
    """Looped (unroll=False) recurrent models with a dynamic time axis, as users save them."""
    import keras

    d = tmp_path_factory.mktemp("rnn")
    keras.utils.set_random_seed(0)
    i = keras.Input((None, 5), name="seq")
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True))(i)
    x = keras.layers.LSTM(6)(x)
    keras.Model(i, keras.layers.Dense(3, activation="softmax")(x)).save(d / "lstm.keras")
    i = keras.Input((None, 5), name="seq")
    x = keras.layers.GRU(6, return_sequences=True, dropout=0.2)(i)  # Keras 3 draws its mask even at inference
    x = keras.layers.GRU(4, go_backwards=True)(x)
    keras.Model(i, keras.layers.Dense(3, activation="softmax")(x)).save(d / "gru.keras")
    i = keras.Input((7, 5), name="seq")
    looped = keras.Model(i, keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(6)(i)))
    looped.export(str(d / "lstm_saved_model"), verbose=False)  # the loop is in the graph: nothing to re-trace
    np.savez(d / "s.npz", seq=np.random.default_rng(0).normal(size=(8, 7, 5)).astype("float32"))
    return d


def _build(d, model, targets, out, *extra):
    r = run_cli("build", d / model, "--samples", d / "s.npz", *extra, "--targets", targets, "--out", out,
                "--no-cache")
    return r, json.loads((out / "report.json").read_text())


def _tflite_ops(out) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    (path,) = (out / "android").rglob("model.tflite")
    return {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}


@pytest.mark.parametrize("model", ["lstm.keras", "gru.keras"])
def test_keras_recurrent_model_passes_on_android_and_web(rnns, tmp_path, model):
    out = tmp_path / "out"
    r, report = _build(rnns, model, "android,web", out, "--input-shape", "seq=1,7,5")
    android, web = report["targets"]["android"], report["targets"]["web"]
    assert android["status"] == "PASS", android.get("reason")
    assert web["status"] == "PASS", web.get("reason")
    assert r.returncode == 0, r.stdout + r.stderr
    ops = _tflite_ops(out)
    assert "WHILE" not in ops and not any(op.startswith(("FLEX", "CUSTOM")) for op in ops), ops
    backends = next(c for c in web["checks"] if c["name"] == "backends")["detail"]
    assert all(f"{b}: PASS" in backends for b in ("wasm", "webgl", "cpu")), backends


def test_unrolled_lstm_runs_in_the_page_on_every_backend(rnns, tmp_path):
    import keras

    i = keras.Input((7, 5), name="seq")
    keras.utils.set_random_seed(1)
    keras.Model(i, keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(6, unroll=True)(i))).save(
        rnns / "lstm_unrolled.keras")
    r, report = _build(rnns, "lstm_unrolled.keras", "web", tmp_path / "out")
    web = report["targets"]["web"]
    assert r.returncode == 0 and web["status"] == "PASS", r.stdout + r.stderr
    assert "wasm backend" in web["runtime"], web["runtime"]


def test_saved_model_loop_fails_with_the_op_and_fix_named(rnns, tmp_path):
    r, report = _build(rnns, "lstm_saved_model", "android,ios,web", tmp_path / "out")
    assert r.returncode != 0
    targets = report["targets"]
    for name in ("android", "ios", "web"):
        assert targets[name]["status"] == "FAIL", (name, targets[name])
    assert "TensorList" in targets["android"]["reason"] or "While" in targets["android"]["reason"], \
        targets["android"]["reason"]
    assert "likely cause (op preflight)" in targets["ios"]["reason"] and "While" in targets["ios"]["reason"]
    assert "no tf.js backend could run the model" in targets["web"]["reason"]
    for name in ("android", "ios", "web"):  # the fix: the Keras file with the length fixed, or unroll=True
        assert "--input-shape" in targets[name]["reason"] and "unroll=True" in targets[name]["reason"], \
            targets[name]["reason"]
