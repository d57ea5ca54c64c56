"""Reliability round 3 (issue 31), through the real CLI or the real server: a cache folder shared with the user's
own folders, per-output labels inside --out, model graphs that open paths through ops of any name, `packager serve`
on other loopback addresses or a folder that is not a bundle, and clear messages for odd flag values."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_bad_input_2 import assert_refused, no_leftovers, run_py, tree

from conftest import PACKAGER, run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT = 2, 3


# ---------------------------------------------------------------------------------------------------------------
# Data loss: PACKAGER_CACHE_DIR pointing at a folder that holds other things


def test_cache_dir_holding_user_folders_loses_none_of_them(tmp_path, models):
    """More user folders than the cache keeps entries, some old, one named like a cache key, one like a store in
    progress: a build that stores into that folder prunes none of them."""
    cache = tmp_path / "projects"
    names = [f"project{i}" for i in range(10)] + ["0123456789abcdef0123456789abcdef", ".store-mine"]
    long_ago = time.time() - 30 * 86400
    for name in names:
        (cache / name).mkdir(parents=True)
        (cache / name / "main.c").write_text(f"int main() {{ return {len(name)}; }}\n")
        os.utime(cache / name, (long_ago, long_ago))
    before = tree(cache)
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "a",
                env={"PACKAGER_CACHE_DIR": str(cache), "PACKAGER_NO_CACHE": None})
    assert r.returncode == 0, r.stderr
    after = tree(cache)
    assert {k: v for k, v in after.items() if k in before} == before, "a user file was deleted or changed"
    stored = [p for p in cache.iterdir() if (p / ".packager-cache-entry").is_file()]
    assert len(stored) == 1, "the build itself was stored, with its marker"


def test_per_output_labels_inside_out_are_refused_with_force(tmp_path, models):
    out = tmp_path / "dist"
    out.mkdir()
    (out / ".packager-output").write_text("x")  # an earlier packager output: --force may replace it
    labels = out / "cls.txt"
    labels.write_text("a\nb\nc\nd\n")
    r = run_cli("build", models["two_outputs"], "--samples", models["features_npy"], "--labels", f"cls={labels}",
                "--targets", "android", "--out", out, "--force")
    assert_refused(r, INPUT, "--out", str(labels))
    assert labels.read_text() == "a\nb\nc\nd\n"
    no_leftovers(out)


def test_config_per_output_labels_inside_out_are_refused(tmp_path, models):
    out = tmp_path / "dist"
    out.mkdir()
    (out / ".packager-output").write_text("x")
    (out / "cls.txt").write_text("a\nb\nc\nd\n")
    cfg = tmp_path / "packager.toml"
    cfg.write_text(f'model = "{models["two_outputs"]}"\nsamples = "{models["features_npy"]}"\nout = "dist"\n'
                   'targets = ["android"]\n[labels]\ncls = "dist/cls.txt"\n')
    r = run_cli("build", "--config", cfg, "--force")
    assert_refused(r, INPUT, "--out", "cls.txt")
    assert (out / "cls.txt").read_text() == "a\nb\nc\nd\n"


# ---------------------------------------------------------------------------------------------------------------
# Security: graphs that open paths through ops of any name are refused by capability; the model's assets are not

PATH_OP_MODELS = """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    folder, marker = sys.argv[1:3]
    KINDS = ["cache", "table", "list_files", "text_line", "reader", "summary", "asset"]

    def save(kind):
        class M(tf.Module):
            def __init__(self):
                self.w = tf.Variable(tf.ones([6, 3]))
                if kind == "asset":
                    vocab = os.path.join(folder, "vocab.txt")
                    with open(vocab, "w") as f:
                        f.write("a\\nb\\nc\\n")
                    self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                        vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                        tf.lookup.TextFileIndex.LINE_NUMBER), -1)

            @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="features")])
            def serve(self, x):
                if kind == "cache":  # .cache(path): CacheDatasetV2 writes cache files at that path
                    x = tf.data.Dataset.from_tensor_slices(x).cache(marker).batch(1 << 20).get_single_element()
                elif kind == "table":  # a table read from an absolute path: its bytes become outputs
                    t = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)
                    tf.raw_ops.InitializeTableFromTextFileV2(table_handle=t, filename=marker, key_index=-2,
                                                             value_index=-1)
                    x = x + tf.cast(tf.raw_ops.LookupTableSizeV2(table_handle=t), tf.float32)
                elif kind == "list_files":  # MatchingFilesDataset
                    n = tf.data.Dataset.list_files(marker + "*", shuffle=False).cardinality()
                    x = x + tf.cast(n, tf.float32)
                elif kind == "text_line":
                    n = tf.data.TextLineDataset(marker).reduce(tf.constant(0, tf.int64), lambda a, _: a + 1)
                    x = x + tf.cast(n, tf.float32)
                elif kind == "reader":
                    tf.raw_ops.WholeFileReaderV2()
                elif kind == "summary":
                    w = tf.raw_ops.SummaryWriter()
                    tf.raw_ops.CreateSummaryFileWriter(writer=w, logdir=marker, max_queue=1, flush_millis=1,
                                                       filename_suffix="x")
                elif kind == "asset":  # a vocabulary shipped inside the SavedModel (assets/vocab.txt)
                    x = x + tf.cast(self.table.lookup(tf.constant("b")), tf.float32)
                return {"y": tf.matmul(x, self.w)}

        m = M()
        tf.saved_model.save(m, os.path.join(folder, kind), signatures={"serving_default": m.serve})

    for kind in KINDS:
        save(kind)
"""
PATH_OP_FAMILIES = {"cache": "CacheDatasetV2", "table": "InitializeTableFromTextFileV2",
                    "list_files": "MatchingFiles", "text_line": "TextLineDataset",
                    "reader": "WholeFileReaderV2", "summary": "CreateSummaryFileWriter"}


@pytest.fixture(scope="module")
def path_op_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("path_ops")
    marker = folder / "MARKER"
    marker.write_text("secret\n")
    run_py(PATH_OP_MODELS, folder, marker)
    return folder


@pytest.mark.parametrize("kind", sorted(PATH_OP_FAMILIES))
def test_graph_that_opens_a_path_is_refused_by_capability(kind, path_op_models, tmp_path, models):
    out = tmp_path / "dist"
    before = sorted(p.name for p in path_op_models.iterdir())
    r = run_cli("build", path_op_models / kind, "--samples", models["features_npy"], "--targets", "android",
                "--out", out)
    assert_refused(r, INPUT, PATH_OP_FAMILIES[kind], "touch the file system", kind)
    assert sorted(p.name for p in path_op_models.iterdir()) == before, "the graph wrote a file"
    assert not out.exists()
    no_leftovers(out)


def test_asset_vocabulary_inside_the_saved_model_stays_allowed(path_op_models, tmp_path, models):
    r = run_cli("build", path_op_models / "asset", "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "dist", "--no-cache")
    assert "touch the file system" not in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_asset_file_name_pointing_outside_assets_is_refused(path_op_models, tmp_path, models):
    import shutil

    from tensorflow.core.protobuf import saved_model_pb2

    sm_dir = tmp_path / "sm"
    shutil.copytree(path_op_models / "asset", sm_dir)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((sm_dir / "saved_model.pb").read_bytes())
    sm.meta_graphs[0].asset_file_def[0].filename = str(path_op_models / "MARKER")
    (sm_dir / "saved_model.pb").write_bytes(sm.SerializeToString())
    r = run_cli("build", sm_dir, "--samples", models["features_npy"], "--targets", "android", "--out",
                tmp_path / "dist")
    assert_refused(r, INPUT, "asset file outside its assets/ folder", "MARKER")


# ---------------------------------------------------------------------------------------------------------------
# Security and messages: packager serve


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<p>home</p>")
    (root / "manifest.webmanifest").write_text("{}")
    return root


def _start_serve(*args):
    """``packager serve ARGS`` in a subprocess: (process, the lines it printed up to "Press Ctrl-C", port)."""
    proc = subprocess.Popen([*PACKAGER, "serve", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    served = next((x for x in lines if " at http://" in x), "")
    port = int(served.rsplit(":", 1)[1].strip().rstrip("/")) if served else None
    return proc, lines, port


def _stop(proc) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr.closed:
        return ""
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return err


def _get(address: str, port: int, host_header: str, family=socket.AF_INET) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((address, port))
        s.sendall(f"GET /index.html HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while b := s.recv(65536):
            chunks.append(b)
        return b"".join(chunks)


def test_serve_on_another_loopback_address_keeps_the_host_check(bundle):
    proc, lines, port = _start_serve(bundle, "--host", "127.0.0.2")
    try:
        assert port, "".join(lines) + _stop(proc)
        assert not any("every device" in x or x.startswith("warning") for x in lines), lines
        assert _get("127.0.0.2", port, f"127.0.0.2:{port}").startswith(b"HTTP/1.0 200")
        assert _get("127.0.0.2", port, f"localhost:{port}").startswith(b"HTTP/1.0 200")
        refused = _get("127.0.0.2", port, f"evil.example:{port}")  # DNS rebinding onto 127.0.0.2
        assert refused.startswith(b"HTTP/1.0 403") and b"home" not in refused, refused[:80]
    finally:
        _stop(proc)


@pytest.mark.parametrize("folder", ["/", "home"])
def test_serve_refuses_a_folder_that_is_not_a_web_bundle(folder, tmp_path):
    target = Path(folder) if folder == "/" else tmp_path
    (tmp_path / "notes.txt").write_text("private")
    r = run_cli("serve", target, timeout=60)
    assert_refused(r, INPUT, "is not a packager web bundle", "--expose-any-folder")


def test_serve_any_folder_only_with_the_flag_named_for_the_risk(tmp_path):
    (tmp_path / "notes.txt").write_text("private")
    proc, lines, port = _start_serve(tmp_path, "--expose-any-folder")
    try:
        assert port, "".join(lines) + _stop(proc)
    finally:
        _stop(proc)


def test_serve_empty_host_is_refused(bundle):
    r = run_cli("serve", bundle, "--host", "", timeout=60)
    assert_refused(r, USAGE, "--host is empty")


def test_serve_ipv6_loopback_works_or_says_why(bundle):
    proc, lines, port = _start_serve(bundle, "--host", "::1")
    try:
        if port is None:  # no IPv6 here: the reason, not "choose another --port"
            err = _stop(proc)
            assert proc.returncode == USAGE, err
            assert "not an address this machine can listen on" in err and "another --port" not in err, err
            return
        assert any("http://[::1]:" in x for x in lines), lines
        assert not any("every device" in x for x in lines), lines
        assert _get("::1", port, f"[::1]:{port}", socket.AF_INET6).startswith(b"HTTP/1.0 200")
        assert _get("::1", port, "evil.example", socket.AF_INET6).startswith(b"HTTP/1.0 403")
    finally:
        _stop(proc)


# ---------------------------------------------------------------------------------------------------------------
# Messages: odd paths and settings say what is wrong, not "file not found" or a silent default


def _build(models, tmp_path, *extra):
    return run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                   "--out", tmp_path / "dist", *extra, timeout=300)


@pytest.mark.parametrize("which", ["folder", "stdin"])
def test_config_that_is_a_folder_or_stdin_says_so(which, tmp_path, models):
    config = tmp_path if which == "folder" else Path("/dev/stdin")
    r = _build(models, tmp_path, "--config", config)
    assert_refused(r, USAGE, str(config), "is a folder, not a file" if which == "folder" else "is not a regular file")
    assert "not found" not in r.stderr


def test_labels_from_a_device_say_so(tmp_path, models):
    r = _build(models, tmp_path, "--labels", "/dev/zero")
    assert_refused(r, INPUT, "/dev/zero", "is not a regular file (a device")
    assert "not found" not in r.stderr


def test_empty_out_is_an_error_not_dist(tmp_path, models):
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--out", "", cwd=tmp_path, timeout=300)
    assert_refused(r, USAGE, "--out is empty")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("where", ["config", "flag"])
def test_empty_targets_is_an_error_not_all_three(where, tmp_path, models):
    cfg = tmp_path / "packager.toml"
    cfg.write_text("targets = []\n")
    extra = ["--config", cfg] if where == "config" else ["--targets", ""]
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--out", tmp_path / "dist",
                *extra, timeout=300)
    assert_refused(r, USAGE, "is empty: no target to build")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("mode", ["fp16", "dynamic", "fp32"])
def test_int8_io_with_a_float_mode_is_refused(mode, tmp_path, models):
    r = _build(models, tmp_path, "--int8-io", "--quantize", f"android={mode}")
    assert_refused(r, USAGE, "--int8-io", f"android is quantized {mode}", "ignored")
    assert not (tmp_path / "dist").exists()


def test_symlink_loop_names_the_loop(tmp_path, models):
    (tmp_path / "a.keras").symlink_to(tmp_path / "b.keras")
    (tmp_path / "b.keras").symlink_to(tmp_path / "a.keras")
    r = run_cli("build", tmp_path / "a.keras", "--samples", models["features_npy"], "--targets", "android",
                "--out", tmp_path / "dist", timeout=300)
    assert_refused(r, INPUT, "symbolic link loop", "a.keras -> ", "b.keras")
    assert "model not found" not in r.stderr
