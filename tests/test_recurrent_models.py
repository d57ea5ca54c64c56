"""Recurrent models through the real CLI, beside what the converters can do with them.

Measured on this machine: Keras 3 exports an LSTM over a sequence as a while loop. coremltools 9 fails on it
(IndexError in the loop condition) and tf.js 4.22 cannot execute it on any backend ("Cannot compute the outputs")
— the official tensorflowjs_converter's output fails the same way (benchmarks/real_models.py, chars2vec). The
same LSTM with unroll=True converts for every target; wasm refused the converter's fused MatMul (rank-3 bias) until
packager/targets/web/graph.py split it: now every backend the page may pick runs it, each validated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lstms(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("lstm")
    keras.utils.set_random_seed(0)
    for unroll in (False, True):
        i = keras.Input((None if not unroll else 7, 5), name="seq")
        x = keras.layers.LSTM(6, unroll=unroll)(i)
        keras.Model(i, keras.layers.Dense(3, activation="softmax")(x)).save(d / f"lstm_unroll{int(unroll)}.keras")
    np.savez(d / "s.npz", seq=np.random.default_rng(0).normal(size=(8, 7, 5)).astype("float32"))
    return d


def _build(d, name, targets, out):
    r = run_cli("build", d / name, "--samples", d / "s.npz", "--input-shape", "seq=1,7,5", "--targets", targets,
                "--out", out, "--no-cache")
    return r, json.loads((out / "report.json").read_text())


def test_unrolled_lstm_runs_in_the_page_on_every_backend(lstms, tmp_path):
    r, report = _build(lstms, "lstm_unroll1.keras", "web", tmp_path / "out")
    web = report["targets"]["web"]
    assert r.returncode == 0 and web["status"] == "PASS", r.stdout + r.stderr
    assert "wasm backend" in web["runtime"], web["runtime"]
    backends = next(c for c in web["checks"] if c["name"] == "backends")["detail"]
    assert all(f"{b}: PASS" in backends for b in ("wasm", "webgl", "cpu")), backends


def test_looped_lstm_fails_with_the_fix_named(lstms, tmp_path):
    r, report = _build(lstms, "lstm_unroll0.keras", "ios,web", tmp_path / "out")
    assert r.returncode != 0
    ios, web = report["targets"]["ios"], report["targets"]["web"]
    assert ios["status"] == "FAIL" and "likely cause (op preflight)" in ios["reason"] and "unroll=True" in ios["reason"]
    assert web["status"] == "FAIL" and "no tf.js backend could run the model" in web["reason"]
    assert "unroll=True" in web["reason"]
