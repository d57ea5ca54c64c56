"""Reliability round 3 (issue 31), rest: crashes become clear errors (odd model signatures, an op failing while the
original model runs, sample sets beyond memory, /proc, a deleted working folder, --out a mount point, a FIFO in a
served folder), rank-5/uint8 inputs on iOS, and no leftovers: a fresh HOME stays empty, a private TMPDIR is empty
after a build, after SIGTERM/SIGINT to the process group, and after the build following a SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_bad_input_2 import assert_refused, no_leftovers, run_py
from test_bad_input_3 import _start_serve, _stop

from conftest import PACKAGER, REPO, run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT, MEMORY = 2, 3, 8

SIGNATURES = """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    d = sys.argv[1]
    def save(name, spec, body):
        class M(tf.Module):
            pass
        m = M()
        m.f = tf.function(body, input_signature=[spec])
        tf.saved_model.save(m, f"{d}/{name}", signatures={"serving_default": m.f})
    save("scalar_out", tf.TensorSpec([None, 6], tf.float32, name="x"), lambda x: {"s": tf.reduce_sum(x)})
    save("scalar_in", tf.TensorSpec([], tf.float32, name="x"), lambda x: {"y": tf.reshape(x * 2.0, [1, 1])})
    save("batch8", tf.TensorSpec([8, 6], tf.float32, name="x"), lambda x: {"y": x * 2.0})
    save("fails", tf.TensorSpec([None, 6], tf.float32, name="x"),
         lambda x: {"y": tf.gather(x, tf.cast(tf.reduce_max(tf.abs(x)) * 1000.0, tf.int32) + 100, axis=1)})
    save("dynamic", tf.TensorSpec([None, None, None, 3], tf.float32, name="image"),
         lambda x: {"y": tf.reduce_mean(x, axis=[1, 2])})
    save("uint8", tf.TensorSpec([None, 8, 8, 3], tf.uint8, name="image"),
         lambda x: {"y": tf.reduce_mean(tf.cast(x, tf.float32) / 255.0, axis=[1, 2])})
    save("rank5", tf.TensorSpec([None, 2, 4, 4, 3], tf.float32, name="clip"),
         lambda x: {"y": tf.reduce_mean(x, axis=[1, 2, 3]) * 2.0})
"""


@pytest.fixture(scope="module")
def sig_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("signatures")
    run_py(SIGNATURES, d)
    return d


@pytest.mark.parametrize("name, fragments", [
    ("scalar_out", ["output 's' is a scalar (rank 0)", "batch dimension"]),
    ("scalar_in", ["input 'x' is a scalar (rank 0)", "batch dimension"]),
    ("batch8", ["input 'x' has its batch dimension fixed to 8", "None or 1"]),
    ("fails", ["the original model fails when it runs on sample 0", "indices = "]),
])
def test_model_that_cannot_run_one_sample_is_refused(name, fragments, sig_models, models, tmp_path):
    r = run_cli("build", sig_models / name, "--samples", models["features_npy"], "--targets", "android",
                "--out", tmp_path / "dist", timeout=600)
    assert_refused(r, INPUT, *fragments)
    assert not (tmp_path / "dist").exists()
    no_leftovers(tmp_path / "dist")


def test_input_shape_beyond_any_memory_is_refused_before_allocating(sig_models, image_folder, tmp_path):
    r = run_cli("build", sig_models / "dynamic", "--input-shape", "image=1,100000,100000,3", "--samples",
                image_folder, "--targets", "android", "--out", tmp_path / "dist", timeout=600)
    assert_refused(r, INPUT, "one sample of input 'image'", "over packager's limit", "--input-shape")


def test_memory_mapped_samples_beyond_free_memory(models, tmp_path):
    big = tmp_path / "big.npy"
    np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(100_000_000, 6)).flush()  # sparse, 2.4 GB
    r = run_cli("build", models["regressor"], "--samples", big, "--targets", "android", "--out", tmp_path / "dist",
                env={"PACKAGER_MEMORY_LIMIT": "4G", "PACKAGER_MEMORY_CHECK": None}, timeout=600)
    assert_refused(r, MEMORY, "100000000 samples", "pass fewer samples")


def test_samples_proc_is_an_input_error(models, tmp_path):
    r = run_cli("build", models["keras"], "--samples", "/proc", "--targets", "android", "--out", tmp_path / "dist",
                timeout=600)
    assert r.returncode == INPUT, r.stderr
    assert "Traceback" not in r.stderr and "fix:" in r.stderr, r.stderr


def test_deleted_working_folder_is_a_usage_error(models, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
            f"r = subprocess.run({PACKAGER!r} + sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(r.stderr); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", code, "build", str(models["regressor"]), "--samples",
                        str(models["features_npy"]), "--out", str(tmp_path / "dist")],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO),
                                                                                       os.environ.get("PYTHONPATH"))))})
    assert_refused(r, USAGE, "the current folder no longer exists")


@pytest.mark.skipif(os.geteuid() != 0, reason="mount --bind needs root")
def test_out_mount_point_gets_the_output(models, tmp_path):
    out = tmp_path / "mnt"
    out.mkdir()
    if subprocess.run(["mount", "--bind", str(out), str(out)], capture_output=True).returncode:
        pytest.skip("mount --bind is not allowed here")
    try:
        r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                    "--quantize", "android=fp32", "--out", out, "--no-cache", timeout=600)
        assert r.returncode == 0, r.stderr
        assert (out / "report.json").is_file() and (out / ".packager-output").is_file()
        assert not list(out.glob(".packager-old-*"))
        no_leftovers(out)
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_ios_rank5_and_uint8_inputs(sig_models, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "clips.npy", rng.uniform(0, 1, size=(6, 2, 4, 4, 3)).astype(np.float32))
    np.save(tmp_path / "pixels.npy", rng.integers(0, 256, size=(6, 8, 8, 3)).astype(np.uint8))
    for model, samples in (("rank5", "clips.npy"), ("uint8", "pixels.npy")):
        r = run_cli("build", sig_models / model, "--samples", tmp_path / samples, "--targets", "ios",
                    "--quantize", "ios=fp32", "--out", tmp_path / model, timeout=600)
        assert r.returncode in (0, 6), r.stderr  # PASS (or UNVERIFIED where Core ML cannot run), never FAIL
        assert "crashed" not in r.stderr and "FAIL" not in r.stderr, r.stderr


def test_fifo_in_a_served_folder_does_not_hold_the_server(tmp_path):
    from packager.targets.web.serve import BUNDLE_FILES

    bundle = tmp_path / "web"
    bundle.mkdir()
    for name in BUNDLE_FILES:
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_text("x")
    os.mkfifo(bundle / "pipe.js")
    proc, _, port = _start_serve(bundle)
    try:
        for path in ("/pipe.js", "/pipe.js?x=1", "/index.html"):  # open() of a FIFO waits for a writer forever
            answer = _get(port, path)
            assert answer.startswith(b"HTTP/1.0 404" if "pipe" in path else b"HTTP/1.0 200"), answer[:80]
    finally:
        _stop(proc)


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while b := s.recv(65536):
            chunks.append(b)
        return b"".join(chunks)


# ---------------------------------------------------------------------------------------------------------------
# Leftovers: a private TMPDIR and HOME, empty after the build, after signals to the group, after SIGKILL


@pytest.fixture
def short_tmp(tmp_path):
    """A private TMPDIR with a short path (Chromium's sockets under TMPDIR are limited to 107 bytes)."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="pk-", dir="/tmp"))
    (tmp_path / "tmp").symlink_to(tmp)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _env(tmp_path: Path) -> dict:
    home, tmp = tmp_path / "home", (tmp_path / "tmp").resolve()
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    for name in ("KERAS_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    return env


def _listing(path: Path) -> list[str]:
    path = path.resolve()
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_fresh_home_and_tmpdir_stay_empty(models, tmp_path, short_tmp):
    """All three targets (the iOS worker's autograph files, Chromium's crash reports and dconf, keras.json)."""
    env = _env(tmp_path)
    r = subprocess.run([*PACKAGER, "build", str(models["regressor"]), "--samples", str(models["features_npy"]),
                        "--out", str(tmp_path / "dist"), "--no-cache"], env=env, capture_output=True, text=True,
                       timeout=900, stdin=subprocess.DEVNULL)
    assert r.returncode in (0, 6), r.stderr
    assert _listing(tmp_path / "home") == [], "the build wrote into HOME"
    assert _listing(tmp_path / "tmp") == [], "the build left files in TMPDIR"


def _start_group(models, tmp_path, env):
    return subprocess.Popen([*PACKAGER, "build", str(models["keras"]), "--samples", str(models["images_npy"]),
                             "--out", str(tmp_path / "dist"), "--no-cache"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def _wait_for_staging(proc, out: Path, tmp: Path, timeout=300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if list(out.parent.glob(f".{out.name}.building-*")) and len(list(tmp.rglob("*"))) > 20:
            time.sleep(2)
            return
        time.sleep(0.3)
    pytest.fail("the build did not get going")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_process_group_leaves_nothing(sig, models, tmp_path, short_tmp):
    env = _env(tmp_path)
    proc = _start_group(models, tmp_path, env)
    try:
        _wait_for_staging(proc, tmp_path / "dist", short_tmp)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(1)  # the group's other processes end
    assert proc.returncode == 130, proc.stderr.read()
    assert _listing(tmp_path / "tmp") == [], "leftovers in TMPDIR"
    assert not (tmp_path / "dist").exists()
    no_leftovers(tmp_path / "dist")


def test_build_after_sigkill_removes_what_the_killed_build_left(models, tmp_path, short_tmp):
    env = _env(tmp_path)
    proc = _start_group(models, tmp_path, env)
    try:
        _wait_for_staging(proc, tmp_path / "dist", short_tmp)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    time.sleep(1)
    assert list(tmp_path.glob(".dist.building-*")), "the killed build left no staging folder: nothing tested"
    r = subprocess.run([*PACKAGER, "build", str(models["regressor"]), "--samples", str(models["features_npy"]),
                        "--targets", "android", "--quantize", "android=fp32", "--out", str(tmp_path / "dist"),
                        "--no-cache"], env=env, capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)
    assert r.returncode in (0, 6), r.stderr
    no_leftovers(tmp_path / "dist")
    assert _listing(tmp_path / "tmp") == [], "the killed build's temp folders are still there"
