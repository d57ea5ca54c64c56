"""End to end through the real CLI: every model format, multi-output and non-image models, every
TFLite quantization mode, executed by the real ai-edge-litert runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def build(tmp_path, model, samples, *extra, name="out"):
    out = tmp_path / name
    r = run_cli("build", model, "--samples", samples, "--targets", "android", "--out", out, *extra)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return r, out, report


@pytest.mark.parametrize("fmt", ["keras", "saved_model"])
def test_keras_and_saved_model_fp32(tmp_path, models, image_folder, fmt):
    r, out, report = build(tmp_path, models[fmt], image_folder, "--quantize", "android=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert a["status"] == "PASS" and a["quantization"] == "fp32"
    assert a["runtime"].startswith("ai-edge-litert ")
    assert a["metrics"]["top1_agreement"] == 1.0 and a["metrics"]["max_abs_error"] < 1e-5
    assert a["bytes"] == a["float_bytes"] > 0
    assert report["samples"]["count"] == 16
    assert {"ios", "web"}.isdisjoint(report["targets"])


def test_legacy_h5(tmp_path, h5_model, image_folder):
    r, out, report = build(tmp_path, h5_model, image_folder, "--quantize", "android=fp16")
    assert r.returncode == 0, r.stderr + r.stdout
    assert report["model"]["format"] == "h5"
    assert report["targets"]["android"]["status"] == "PASS"


@pytest.mark.parametrize("mode", ["fp32", "fp16", "dynamic", "int8"])
def test_every_tflite_mode_on_the_demo_model(tmp_path, mode):
    from packager.demo import HERE

    r, out, report = build(tmp_path, HERE / "model.keras", HERE / "samples", "--labels", HERE / "labels.txt",
                           "--mean", "127.5", "--std", "127.5", "--quantize", f"android={mode}")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert a["status"] == "PASS" and a["quantization"] == mode
    assert a["metrics"]["top1_agreement"] >= 0.95
    if mode == "fp32":
        assert a["bytes"] == a["float_bytes"]
    else:
        assert a["bytes"] < a["float_bytes"]
    if mode == "int8":
        assert a["bytes"] / a["float_bytes"] < 0.5


def test_int8_with_integer_io(tmp_path):
    from packager.demo import HERE

    r, out, report = build(tmp_path, HERE / "model.keras", HERE / "samples", "--mean", "127.5", "--std", "127.5",
                           "--int8-io")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert a["status"] == "PASS" and a["metrics"]["top1_agreement"] >= 0.95
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(out / a["artifact"]))
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8


def test_two_output_non_image_model(tmp_path, models):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "s.npz", features=rng.normal(size=(20, 6)).astype(np.float32))
    r, out, report = build(tmp_path, models["two_outputs"], tmp_path / "s.npz", "--quantize", "android=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert sorted(a["per_output"]) == ["output_0", "output_1"]
    assert a["per_output"]["output_1"]["top1_agreement"] == 1.0
    assert [o["shape"] for o in report["model"]["outputs"]] == [[None, 2], [None, 4]]


def test_regressor_int8_from_npy(tmp_path, models):
    r, out, report = build(tmp_path, models["regressor"], models["features_npy"], "--quantize", "android=int8")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert a["status"] == "PASS" and a["quantization"] == "int8"  # calibrated on the .npy rows
    assert a["metrics"]["top1_agreement"] is None  # not class-shaped
    assert a["metrics"]["cosine"] > 0.98


def test_drift_past_the_gate_fails_with_exit_5(tmp_path):
    """Gates that int8 cannot meet make the build fail (non-zero exit), with the folder written."""
    from packager.demo import HERE

    cfg = tmp_path / "strict.toml"
    cfg.write_text("[tolerances.int8]\nmax_abs_error = 1e-7\n")
    r, out, report = build(tmp_path, HERE / "model.keras", HERE / "samples", "--mean", "127.5", "--std", "127.5",
                           "--config", cfg, "--quantize", "android=int8")
    assert r.returncode == 5, r.stderr + r.stdout
    a = report["targets"]["android"]
    assert a["status"] == "FAIL" and "max abs error" in a["reason"]
    assert (out / "android").is_dir()
    # the default (auto) does not stop at int8: it keeps the smallest mode that passes, listing the failed try
    r, out, report = build(tmp_path, HERE / "model.keras", HERE / "samples", "--mean", "127.5", "--std", "127.5",
                           "--config", cfg, name="auto")
    a = report["targets"]["android"]
    assert r.returncode == 0 and a["status"] == "PASS" and a["quantization"] != "int8", r.stderr + r.stdout
    assert [t["mode"] for t in a["tries"]][0] == "int8" and a["tries"][0]["status"] == "FAIL"


def test_demo_command(tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo", "--out", out, "--targets", "android")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["targets"]["android"]["status"] == "PASS"
    assert "android" in r.stdout and "PASS" in r.stdout
    # re-running the demo replaces its own earlier output, reusing the cached build
    again = run_cli("demo", "--out", out, "--targets", "android")
    assert again.returncode == 0, again.stderr
    assert "reused the cached build" in again.stderr
    assert json.loads((out / "report.json").read_text()) == report
    fresh = run_cli("demo", "--out", out, "--targets", "android", "--no-cache")
    assert fresh.returncode == 0 and "reused the cached build" not in fresh.stderr


def test_dynamic_dimensions_fixed_with_input_shape(tmp_path):
    """A model with dynamic height/width is re-exported with the --input-shape values and validates."""
    code = ("import keras, sys\ni = keras.Input((None, None, 3), name='img')\n"
            "keras.Model(i, keras.layers.Dense(3, activation='softmax')("
            "keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(i)))).save(sys.argv[1])")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code, str(tmp_path / "dyn.keras")], check=True, capture_output=True)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32))
    r, out, report = build(tmp_path, tmp_path / "dyn.keras", tmp_path / "x.npy", "--input-shape", "img=1,16,16,3",
                           "--quantize", "android=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    assert report["model"]["inputs"] == [{"name": "img", "shape": [None, 16, 16, 3], "dtype": "float32"}]
    assert report["targets"]["android"]["status"] == "PASS"


def test_auto_keeps_dynamic_when_it_passes_smaller_than_int8(tmp_path, models):
    """int8 stores a scale and zero point per output channel; on this small regressor dynamic-range is the smaller
    file. Under auto with --optimize size, a passing int8 has dynamic converted beside it and the smaller that
    passes is kept (balanced, the default, weighs kernel speed too: tests/test_optimize.py)."""
    r, out, report = build(tmp_path, models["regressor"], models["features_npy"], "--optimize", "size")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    tries = {t["mode"]: t for t in a["tries"]}
    assert list(tries) == ["int8", "dynamic"] and tries["int8"]["status"] == tries["dynamic"]["status"] == "PASS"
    assert tries["dynamic"]["bytes"] < tries["int8"]["bytes"], tries
    assert a["quantization"] == "dynamic" and a["bytes"] == tries["dynamic"]["bytes"]
    assert (out / "android").is_dir() and "auto quantization tried int8=PASS, dynamic=PASS" in r.stderr
