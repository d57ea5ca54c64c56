"""Reliability round 3 (issue 31), hidden variants: other spellings of the loopback address on `packager serve`,
inputs inside --out that are not model/samples/labels/config (--custom-objects modules), and settings that would
be silently ignored (--quantize for a target not built, or given twice). Through the real CLI or the real server."""

from __future__ import annotations

import pytest
from test_bad_input_2 import assert_refused, no_leftovers, tree
from test_bad_input_3 import _get, _start_serve, _stop, bundle  # noqa: F401  (bundle: a fixture)

from conftest import run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT, OUTPUT = 2, 3, 3


# ---------------------------------------------------------------------------------------------------------------
# Security: whether `packager serve` is on loopback is judged by the address it listens on, not by its spelling


@pytest.mark.parametrize("host", ["127.1", "0177.0.0.1", "2130706433", "::ffff:127.0.0.1"])
def test_serve_on_a_loopback_address_spelled_otherwise_keeps_the_host_check(host, bundle):  # noqa: F811
    """127.1, 0177.0.0.1 (octal), 2130706433 and ::ffff:127.0.0.1 all listen on 127.0.0.1: before, packager read
    them as "not loopback", warned "every device" and answered any Host header (DNS rebinding reads the bundle)."""
    proc, lines, port = _start_serve(bundle, "--host", host)
    try:
        assert port, "".join(lines) + _stop(proc)
        assert not any("every device" in x or x.startswith("warning") for x in lines), lines
        assert _get("127.0.0.1", port, f"127.0.0.1:{port}").startswith(b"HTTP/1.0 200")
        assert _get("127.0.0.1", port, f"evil.example:{port}").startswith(b"HTTP/1.0 403")
    finally:
        _stop(proc)


# ---------------------------------------------------------------------------------------------------------------
# Data loss: a --custom-objects module inside --out


def test_custom_objects_module_inside_out_is_refused_with_force(tmp_path, models):
    """The module found on PYTHONPATH inside an earlier packager output: --force replaced the folder and deleted it."""
    import os

    out = tmp_path / "dist"
    (out / "py").mkdir(parents=True)
    (out / ".packager-output").write_text("x")
    (out / "py" / "my_layers.py").write_text("X = 1\n")
    before = tree(out)
    path = os.pathsep.join(p for p in (str(out / "py"), os.environ.get("PYTHONPATH")) if p)
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--custom-objects", "my_layers", "--out", out, "--force", "--no-cache",
                env={"PYTHONPATH": path})
    assert_refused(r, OUTPUT, "--out", "my_layers.py", "--custom-objects")
    assert tree(out) == before
    no_leftovers(out)


# ---------------------------------------------------------------------------------------------------------------
# Messages: a --quantize flag that would be ignored


@pytest.mark.parametrize("flags, fragments", [
    (["--quantize", "android=int8", "--quantize", "android=fp16"], ["given twice for android", "int8", "fp16"]),
    (["--quantize", "ios=fp16"], ["ios=fp16", "not among the targets", "ignored"]),
    (["--quantize", "palette4"], ["palette4", "ios only", "ignored"]),
])
def test_quantize_flag_that_would_be_ignored_is_refused(flags, fragments, tmp_path, models):
    out = tmp_path / "dist"
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android", *flags,
                "--out", out)
    assert_refused(r, USAGE, *fragments)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# Wrong results: image models that take integer pixels wider than uint8 on Android

WIDE_PIXELS = """
import sys, tensorflow as tf
dtype = getattr(tf, sys.argv[2])
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]))
        self.d = tf.Variable(tf.random.stateless_normal([4, 3], seed=[3, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], dtype, name="pixels")])
    def serve(self, pixels):
        x = tf.cast(pixels, tf.float32) / 127.5 - 1.0
        y = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, self.w, 1, "SAME")), axis=[1, 2])
        return {"probs": tf.nn.softmax(tf.matmul(y, self.d) * 3.0)}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


@pytest.mark.parametrize("dtype", ["int16", "int32"])
def test_wider_integer_pixel_input_runs_in_the_android_module(dtype, tmp_path):
    """int16 pixels: the .tflite passed, yet the JNI core refused the tensor type ("unsupported (code 7)": a false
    FAIL, and a module that cannot run). int32 pixels: the module had no classify(bitmap) (no Kotlin preprocessing)
    although the samples were images. Both now go through the Kotlin preprocessing into the JNI core."""
    import json
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    model = tmp_path / dtype
    subprocess.run([sys.executable, "-c", WIDE_PIXELS, str(model), dtype], check=True, capture_output=True)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate([(16, 16), (16, 16), (20, 24)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", imgs, "--targets", "android", "--quantize", "android=fp32", "--out", out)
    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    checks = {c["name"]: c for c in android["checks"]}
    detail = checks["jni-runs-shipped-model"]["detail"]
    assert checks["jni-runs-shipped-model"]["status"] == "PASS", detail
    assert "pixels through the Kotlin preprocessing" in detail, detail
    assert r.returncode == 0 and android["status"] == "PASS", r.stdout[-3000:] + r.stderr[-3000:]
    assert list(out.glob("android/src/main/java/**/*Preprocessing.kt")), "no Kotlin image preprocessing shipped"


# ---------------------------------------------------------------------------------------------------------------
# Messages: an empty path (as `--out ""` was) is an error, never the config's own folder or a silently dropped flag


@pytest.mark.parametrize("key, line", [
    ("model", 'model = ""\nsamples = "{samples}"\n'),
    ("samples", 'model = "{model}"\nsamples = ""\n'),
    ("labels", 'model = "{model}"\nsamples = "{samples}"\nlabels = ""\n'),
    ("[labels] cls", 'model = "{model}"\nsamples = "{samples}"\n[labels]\ncls = ""\n'),
])
def test_empty_path_in_config_is_an_error_not_its_folder(key, line, tmp_path, models):
    """samples = "" read the config's own folder as the image folder; model = "" said it is not a SavedModel."""
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "holiday.png")  # what the config's folder holds
    cfg = tmp_path / "packager.toml"
    cfg.write_text('targets = ["android"]\n' + line.format(model=models["two_outputs"], samples=models["features_npy"]))
    r = run_cli("build", "--config", cfg, "--out", tmp_path / "dist")
    assert_refused(r, USAGE, f"{key} in packager.toml is empty")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("value, fragment", [("", "names no file"), ("cls=", "names no file"),
                                             ("=labels.txt", "names no output")])
def test_labels_flag_naming_no_file_or_no_output(value, fragment, tmp_path, models):
    """--labels "" was dropped silently; --labels cls= said "labels file not found: cls=" """
    r = run_cli("build", models["two_outputs"], "--samples", models["features_npy"], "--labels", value,
                "--targets", "android", "--out", tmp_path / "dist")
    assert_refused(r, USAGE, fragment, "--labels OUTPUT=FILE")


@pytest.mark.parametrize("flags, cfg, fragment", [
    (["--name", ""], "", "--name is empty"),
    (["--name", "  "], "", "--name is empty"),
    (["--android-package", ""], "", "--android-package is empty"),
    ([], 'name = ""\n', "name in packager.toml is empty"),
    ([], '[android]\npackage = ""\n', "package in packager.toml's [android] is empty"),
])
def test_empty_name_or_package_is_an_error_not_the_default(flags, cfg, fragment, tmp_path, models):
    """--name "" and --android-package "" silently fell back to the defaults made from the file name."""
    config = tmp_path / "packager.toml"
    config.write_text(cfg)
    r = run_cli("build", models["two_outputs"], "--samples", models["features_npy"], "--config", config, *flags,
                "--targets", "android", "--out", tmp_path / "dist")
    assert_refused(r, USAGE, fragment)
    assert not (tmp_path / "dist").exists()


# ---------------------------------------------------------------------------------------------------------------
# Security (message): a Keras lookup layer whose vocabulary is a path outside the model file

FORGED_VOCAB = """
import json, sys, zipfile, numpy as np, keras
folder = sys.argv[1]
a = keras.Input((6,), name="features", dtype="int64")
m = keras.Model(a, keras.layers.Dense(2)(keras.layers.IntegerLookup(vocabulary=[5, 7, 9], output_mode="multi_hot")(a)))
m.save(folder + "/lookup.keras")
with zipfile.ZipFile(folder + "/lookup.keras") as z, zipfile.ZipFile(folder + "/forged.keras", "w") as o:
    for n in z.namelist():
        data = z.read(n)
        if n == "config.json":
            c = json.loads(data)
            for layer in c["config"]["layers"]:
                if layer["class_name"] == "IntegerLookup":
                    layer["config"]["vocabulary"] = folder + "/secret.txt"
            data = json.dumps(c).encode()
        if not n.startswith("assets/"):
            o.writestr(n, data)
np.save(folder + "/ids.npy", np.random.default_rng(0).integers(0, 10, (8, 6)))
"""


def test_lookup_vocabulary_outside_the_model_file_is_named(tmp_path):
    """The refusal's first line was Keras' outer "Functional could not be deserialized properly" and the hint spoke
    of Lambda layers; the cause (a vocabulary file anywhere on disk, read at load time) is now the message."""
    import subprocess
    import sys

    (tmp_path / "secret.txt").write_text("5\n7\n9\n")
    subprocess.run([sys.executable, "-c", FORGED_VOCAB, str(tmp_path)], check=True, capture_output=True)
    r = run_cli("build", tmp_path / "forged.keras", "--samples", tmp_path / "ids.npy", "--targets", "android",
                "--out", tmp_path / "dist")
    assert_refused(r, INPUT, "vocabulary file", str(tmp_path / "secret.txt"), "re-save the model with the vocabulary")
    assert "could not be deserialized" not in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------------------------
# Wrong results: an output with no batch dimension beside a per-sample one

BATCHLESS = """
import sys, numpy as np, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([6, 3], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(self, x):
        return {"zz": tf.nn.softmax(tf.matmul(x, self.w)), "mean": tf.reduce_mean(x, axis=0)}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
np.save(sys.argv[1] + ".npy", np.random.default_rng(0).normal(0, 1, (9, 6)).astype("float32"))
"""


@pytest.mark.parametrize("target, check", [("android", "jni-runs-shipped-model"), ("ios", None)])
def test_output_without_a_batch_dimension_is_compared_per_sample(target, check, tmp_path):
    """"mean" (shape (6,): a reduction over the batch, 6 values per one-sample run): the Android host run failed
    ("runner wrote 324 bytes, expected 144") and the iOS run crashed ("cannot reshape array of size 6 into shape
    (1,)") while the converted models were right: false FAILs."""
    import json
    import subprocess
    import sys

    model = tmp_path / "batchless"
    subprocess.run([sys.executable, "-c", BATCHLESS, str(model)], check=True, capture_output=True)
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", f"{model}.npy", "--targets", target, "--quantize", f"{target}=fp32",
                "--out", out)
    report = json.loads((out / "report.json").read_text())["targets"][target]
    assert "Traceback" not in r.stderr + r.stdout
    assert r.returncode == 0 and report["status"] == "PASS", r.stdout[-3000:] + r.stderr[-2000:]
    if check:
        detail = {c["name"]: c for c in report["checks"]}[check]
        assert detail["status"] == "PASS" and "9 of 9 samples" in detail["detail"], detail


def test_a_sweep_between_creating_and_locking_leaves_the_private_folder(tmp_path, monkeypatch):
    """Another command's sweep of stale private folders (remove_stale) landing after this command created its
    folder's lock file but before it locked it found the lock free and deleted the live folder. The sweep is
    made to land exactly there: in the command's own flock call."""
    import fcntl
    import tempfile

    from packager import tempdirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_flock, swept = fcntl.flock, []

    def flock(fd, op):
        if not swept:
            swept.append(tempdirs.remove_stale(tmp_path))  # the other command's sweep, at the worst moment
        return real_flock(fd, op)

    monkeypatch.setattr(tempdirs.fcntl, "flock", flock)
    with tempdirs.private_temp() as root:
        assert swept == [[]] and root.is_dir() and (root / tempdirs.LOCK).is_file()
        monkeypatch.setattr(tempdirs.fcntl, "flock", real_flock)
        assert tempdirs.remove_stale(tmp_path) == [] and root.is_dir()  # locked: not stale
    assert not root.exists()
