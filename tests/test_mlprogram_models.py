"""``--ios-format mlprogram`` end to end through the real CLI: the bundled demo in each iOS weight mode, and
every real-model corpus model that coremltools converts to an ML Program, executed on Linux by the NumPy
MIL executor (ios PASS, never UNVERIFIED). The corpus part is marked real_models like test_real_models.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_models import packager_flags, prepare

from conftest import run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "packager" / "demo" / "packager.toml"


def _ios(out: Path) -> tuple[dict, dict]:
    report = json.loads((out / "report.json").read_text())
    return report, report["targets"]["ios"]


@pytest.mark.parametrize("mode", ["fp16", "8bit"])
def test_demo_mlprogram_passes_on_the_mil_executor(tmp_path, mode):
    out = tmp_path / "out"
    proc = run_cli("build", "--config", DEMO, "--targets", "ios", "--ios-format", "mlprogram",
                   "--quantize", f"ios={mode}", "--out", out, "-q")
    report, ios = _ios(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ios["status"] == "PASS", ios["reason"]
    assert ios["quantization"] == mode and ios["artifact"].endswith(".mlpackage")
    assert ios["runtime"].startswith("numpy-mil-executor")
    assert ios["metrics"]["top1_agreement"] == 1.0
    assert ios["metrics"]["max_abs_error"] < {"fp16": 5e-3, "8bit": 3e-2}[mode]
    assert ios["metrics"]["max_abs_error"] > 0  # fp16 / quantized weights really ran, not the reference


# corpus models coremltools 9.0 converts to an ML Program (chars2vec and textgenrnn do not: its TF frontend
# fails on the while loops of Keras 3 LSTM exports, an ios FAIL at conversion that no executor can change)
# Every corpus model coremltools converts to an ML Program. The suite (CI) runs a representative subset — an image
# classifier, a detector with several outputs, an embedding + comparisons text model; PACKAGER_FULL_CORPUS=1 runs
# all of them (about 15 min more).
ALL_CORPUS = ("fer", "deepcut", "mtcnn_onet", "mtcnn_rnet", "mtcnn_pnet", "basic_pitch", "musicnn")
CORPUS = ALL_CORPUS if os.environ.get("PACKAGER_FULL_CORPUS") == "1" else ("fer", "deepcut", "mtcnn_onet")


@pytest.mark.real_models
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_model_mlprogram_passes(tmp_path, name):
    m = prepare(name)
    help_text = run_cli("build", "--help").stdout
    flags, _ = packager_flags(m, {w for w in help_text.split() if w.startswith("--")})
    env = dict(os.environ)
    extra = m.get("env", {}).get("PYTHONPATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "packager", "build", m["model"], "--samples", m["samples"], *flags,
                           "--targets", "ios", "--ios-format", "mlprogram", "--out", str(out), "--no-cache", "-q"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    assert (out / "report.json").exists(), proc.stderr[-2000:]
    report, ios = _ios(out)
    assert ios["status"] == "PASS", f"{name}: {ios['status']}: {ios['reason']}"
    assert ios["runtime"].startswith("numpy-mil-executor")
    assert proc.returncode == 0
