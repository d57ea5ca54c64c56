"""Cross-target reliability: the frozen-graph interface through all three targets, hostile labels
everywhere, byte-identical rebuilds, Ctrl-C without leftovers, and the int8 calibration warning."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PACKAGER, run_cli, save_cumprod_model
from packager.demo import HERE as DEMO
from packager.report import VOLATILE_KEYS

pytestmark = pytest.mark.slow

HOSTILE = ['say "hi" \\o/', "it's $cost ${x} `tick`", "*/ </script><script>window.__pwned=1</script>",
           "naïve 猫 🐱 line"]


def demo_build(out: Path, *extra, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("build", DEMO / "model.keras", "--samples", DEMO / "samples", "--mean", "127.5", "--std", "127.5",
                   "--out", out, "--no-cache", *extra, env=env)


@pytest.fixture(scope="module")
def frozen_pb(tmp_path_factory):
    d = tmp_path_factory.mktemp("pb")
    code = """
import sys, numpy as np, tensorflow as tf, keras
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
keras.utils.set_random_seed(3)
inp = keras.Input((8, 8, 3))
x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
x = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
m = keras.Model(inp, x)
f = tf.function(lambda x: m(x)).get_concrete_function(tf.TensorSpec([1, 8, 8, 3], tf.float32, name="input"))
tf.io.write_graph(convert_variables_to_constants_v2(f).graph.as_graph_def(), sys.argv[1], "frozen.pb", as_text=False)
np.save(sys.argv[1] + "/x.npy", np.random.default_rng(0).uniform(0, 1, (12, 8, 8, 3)).astype(np.float32))
"""
    subprocess.run([sys.executable, "-c", code, str(d)], check=True, capture_output=True)
    return d


def test_frozen_pb_through_all_three_targets(tmp_path, frozen_pb):
    out = tmp_path / "out"
    r = run_cli("build", frozen_pb / "frozen.pb", "--input-shape", "input=1,8,8,3", "--output-names", "Identity",
                "--samples", frozen_pb / "x.npy", "--out", out, "--quantize", "android=fp32",
                "--quantize", "ios=fp32", "--quantize", "web=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["format"] == "frozen_pb"
    for t in ("android", "ios", "web"):
        assert report["targets"][t]["status"] == "PASS", (t, report["targets"][t]["reason"])
        assert report["targets"][t]["metrics"]["top1_agreement"] == 1.0


def test_hostile_labels_through_every_target(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(HOSTILE) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    r = demo_build(out, "--labels", labels, "--name", 'Evil "*/ name')
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads((out / "report.json").read_text())
    for t in ("android", "ios", "web"):
        assert report["targets"][t]["status"] == "PASS", (t, report["targets"][t]["reason"])
        failed = [c for c in report["targets"][t]["checks"] if c["status"] == "FAIL"]
        assert not failed, failed
    checks = {c["name"]: c["status"] for c in report["targets"]["android"]["checks"]}
    assert checks["kotlin-compiles"] == checks["jni-compiles"] == "PASS"
    [labels_asset] = (out / "android/src/main/assets").glob("*/labels.txt")  # in the module's namespace folder
    assert labels_asset.read_text(encoding="utf-8").splitlines() == HOSTILE
    # the report itself shows the labels as text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html


def _tree_digest(root: Path) -> dict[str, str]:
    digests = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        data = p.read_bytes()
        if rel == "report.json":
            data = json.dumps(_drop_volatile(json.loads(data)), sort_keys=True).encode()
        elif rel == "report.html":
            data = re.sub(rb'<span class="timing">[^<]*</span>', b"", data)
        if rel in ("report.json", "report.html"):  # each web backend's speed is in the backends check's detail
            data = re.sub(rb"[0-9.]+ ms/sample", b"ms/sample", data)
        digests[rel] = hashlib.sha256(data).hexdigest()
    return digests


def _drop_volatile(value):
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def test_rebuild_is_byte_identical(tmp_path):
    """Also with and without the worker process: building ios in a second process changes nothing."""
    a, b = tmp_path / "a", tmp_path / "b"
    for out, worker in ((a, "1"), (b, "0")):
        r = demo_build(out, "--labels", DEMO / "labels.txt", env={"PACKAGER_WORKER": worker})
        assert r.returncode == 0, r.stderr + r.stdout
        assert ("target ios: building in a second process" in r.stderr) == (worker == "1"), r.stderr
    da, db = _tree_digest(a), _tree_digest(b)
    assert da.keys() == db.keys()
    differing = [k for k in da if da[k] != db[k]]
    assert not differing, f"files differ between two identical builds: {differing}"
    assert len(da) > 30  # all three targets' folders were compared, not an empty tree


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("targets,wait_for,pause", [
    ("web", "web: running the converted model", 1),  # inside the browser session (predictions, checks)
    ("ios,android,web", "ios: converting", 0.5),  # the worker process is converting ios, android converts here
])
def test_ctrl_c_leaves_nothing(tmp_path, targets, wait_for, pause):
    out = tmp_path / "out"
    proc = subprocess.Popen([*PACKAGER, "build", DEMO / "model.keras", "--samples", DEMO / "samples", "--out", out,
                             "--no-cache", "--targets", targets], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    seen = []
    deadline = time.time() + 300
    for line in proc.stderr:
        seen.append(line)
        if wait_for in line or time.time() > deadline:
            break
    time.sleep(pause)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    try:  # a build that hangs after Ctrl-C (Playwright calls after an interrupt can block for ever) fails here
        _, rest = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the build did not exit within 120 s of Ctrl-C; its output before:\n" + "".join(seen))
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert not out.exists()
    assert not list(tmp_path.glob(".out.building-*"))
    time.sleep(1)
    assert _session_pids(proc.pid) == [], "processes (browser/server) survived the interrupt"


def test_int8_calibration_with_few_samples_warns(tmp_path):
    x = np.stack([np.asarray(__import__("PIL.Image").Image.open(p), np.float32) for p in
                  sorted((DEMO / "samples").glob("*.png"))[:4]])
    np.save(tmp_path / "few.npy", (x - 127.5) / 127.5)
    out = tmp_path / "out"
    r = run_cli("build", DEMO / "model.keras", "--samples", tmp_path / "few.npy", "--targets", "android",
                "--out", out, "--no-cache")
    report = json.loads((out / "report.json").read_text())
    assert any("only 4 samples" in w for w in report["targets"]["android"]["warnings"])
    assert "warning: int8 calibrated on only 4 samples" in r.stderr


def test_unsupported_op_fails_only_its_targets(tmp_path):
    """tf.math.cumprod has a TF.js kernel but no TFLite builtin and no coremltools translator: the op
    preflight names the op and the fix per target before converting; web is still built and validated;
    the exit code is 4 (conversion)."""
    save_cumprod_model(tmp_path / "cumprod")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32))
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "cumprod", "--samples", tmp_path / "x.npy", "--out", out,
                "--quantize", "web=fp32")
    assert r.returncode == 4, r.stderr + r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["targets"]["web"]["status"] == "PASS"
    assert report["targets"]["android"]["reason"].count("select-tf-ops") == 1  # names the Android dependency
    for t in ("android", "ios"):
        assert report["targets"][t]["status"] == "FAIL"
        assert "op preflight" in report["targets"][t]["reason"] and "Cumprod" in report["targets"][t]["reason"]
        assert not (out / t).exists()
    assert (out / "web" / "model.json").is_file()
    assert "Cumprod" in r.stdout


def test_missing_tools_make_dependent_checks_skipped_not_a_crash(tmp_path):
    """A user's laptop without Chromium and without the Android check tools: the web target cannot be
    executed (UNVERIFIED, exit 6), the Android checks that need the tools are SKIPPED with the reason, and
    everything that can run here still runs."""
    common = [DEMO / "model.keras", "--samples", DEMO / "samples", "--mean", "127.5", "--std", "127.5", "--no-cache"]
    out = tmp_path / "web"
    r = run_cli("build", *common, "--targets", "web", "--out", out,
                env={"CI": None, "PACKAGER_CHROMIUM": str(tmp_path / "no-chromium")})
    assert r.returncode == 6, r.stderr + r.stdout
    assert "Traceback" not in r.stderr + r.stdout
    web = json.loads((out / "report.json").read_text())["targets"]["web"]
    assert web["status"] == "UNVERIFIED" and "Chromium was not found" in web["reason"]
    assert web["metrics"]["top1_agreement"] is None  # nothing ran, nothing is claimed
    assert (out / "web" / "index.html").is_file()  # the bundle itself is still written
    checks = {c["name"]: c["status"] for c in web["checks"]}
    assert checks["bundle_size"] == "PASS" and checks["manifest_fields"] == "PASS"  # no browser needed
    assert all(checks[n] == "SKIPPED" for n in ("service_worker", "offline_reload", "image_path")), checks

    out = tmp_path / "android"
    r = run_cli("build", *common, "--targets", "android", "--out", out,
                env={"CI": None, "PACKAGER_TOOLS": str(tmp_path / "no-tools")})
    assert r.returncode == 0, r.stderr + r.stdout
    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    assert android["status"] == "PASS"  # the .tflite itself ran on every sample with ai-edge-litert
    checks = {c["name"]: c for c in android["checks"]}
    assert checks["predictions"]["status"] == "PASS"
    for name in ("kotlin-compiles", "jni-compiles", "jni-runs-shipped-model"):
        assert checks[name]["status"] == "SKIPPED" and "setup-android" in checks[name]["detail"], checks[name]
    assert "SKIPPED" in r.stdout  # the console summary says so


def test_unwritable_out_is_a_clear_error(tmp_path):
    r = run_cli("build", DEMO / "model.keras", "--samples", DEMO / "samples", "--targets", "android",
                "--out", "/proc/packager-out")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr and "/proc" in r.stderr and "fix:" in r.stderr
