"""Reliability round 2 (issue 17), through the real CLI: hostile or unlucky inputs give a clear error (what, where,
how to fix) with their exit code and no traceback, run no code they carry, delete nothing of the user's, and leave
nothing half-written. Also --custom-objects (custom layers) and the tflite-metadata check on integer-id models."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PACKAGER, run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT = 2, 3


def tree(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` with its bytes (None when it does not exist)."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_refused(r, code: int, *fragments: str) -> None:
    text = r.stderr + r.stdout
    assert r.returncode == code, f"exit {r.returncode}\n{r.stderr}\n{r.stdout}"
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in r.stderr, f"{fragment!r} not in:\n{r.stderr}"
    assert "fix:" in r.stderr, r.stderr


def no_leftovers(out: Path) -> None:
    assert not list(out.parent.glob(f".{out.name}.building-*")), "staging folder left behind"
    assert not list(out.parent.glob(f".{out.name}.old-*")), "old output left behind"
    assert not (out.parent / f".{out.name}.lock").exists(), "lock file left behind"


def run_py(code: str, *args) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], check=True, capture_output=True,
                   timeout=300)


# ---------------------------------------------------------------------------------------------------------------
# S1: no fallback runs what Keras safe mode refused


LAMBDA_H5 = """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tf_keras as k
    path, marker = sys.argv[1:3]
    def f(x, marker=marker):
        open(marker, "w").write("code from the model file ran")
        return x * 2
    m = k.Sequential([k.layers.InputLayer((6,)), k.layers.Lambda(f, name="sneaky"), k.layers.Dense(3)])
    m.save(path)
    os.remove(marker)  # building the model called f once
"""


def test_h5_lambda_is_refused_and_its_code_never_runs(tmp_path, models):
    marker = tmp_path / "MARKER"
    run_py(LAMBDA_H5, tmp_path / "lambda.h5", marker)
    assert not marker.exists()
    out = tmp_path / "dist"
    r = run_cli("build", tmp_path / "lambda.h5", "--samples", models["features_npy"], "--targets", "android",
                "--out", out)
    assert_refused(r, INPUT, "Lambda layer 'sneaky'", "lambda.h5", "--unsafe-deserialization")
    assert not marker.exists(), "the Lambda's code ran"
    assert not out.exists()
    no_leftovers(out)
    # the explicit opt-in is the only way: then (and only then) the code runs
    r = run_cli("build", tmp_path / "lambda.h5", "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", out, "--unsafe-deserialization")
    assert marker.exists(), r.stderr
    assert "Traceback" not in r.stderr


def test_keras_lambda_refused_names_the_flag(tmp_path, models):
    run_py("""
        import sys, keras
        i = keras.Input((6,), name="features")
        keras.Model(i, keras.layers.Dense(2)(keras.layers.Lambda(lambda x: x * 2)(i))).save(sys.argv[1])
    """, tmp_path / "lam.keras")
    r = run_cli("build", tmp_path / "lam.keras", "--samples", models["features_npy"], "--targets", "android",
                "--out", tmp_path / "dist")
    assert_refused(r, INPUT, "safe mode", "--unsafe-deserialization")
    assert not (tmp_path / "dist").exists()


# ---------------------------------------------------------------------------------------------------------------
# S3: SavedModel graphs that touch files or run Python are refused before anything runs

FILE_OP_MODEL = """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    kind, out, marker = sys.argv[1:4]
    class M(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([6, 3]))
        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="features")])
        def serve(self, x):
            if kind == "WriteFile":
                tf.io.write_file(marker, tf.strings.as_string(tf.reduce_sum(x)))
            elif kind == "ReadFile":
                tf.print(tf.io.read_file(marker))
            elif kind == "MatchingFiles":
                tf.print(tf.io.matching_files(marker + "*"))
            elif kind == "EagerPyFunc":
                x = tf.py_function(lambda v: v * 2, [x], tf.float32)
            elif kind == "PrintV2":
                tf.print(x, output_stream="file://" + marker)
            elif kind == "SaveV2":
                tf.raw_ops.SaveV2(prefix=marker, tensor_names=["w"], shape_and_slices=[""], tensors=[x])
            return {"y": tf.matmul(x, self.w)}
    m = M()
    tf.saved_model.save(m, out, signatures={"serving_default": m.serve})
"""


@pytest.mark.parametrize("op", ["WriteFile", "ReadFile", "MatchingFiles", "EagerPyFunc", "SaveV2", "PrintV2"])
def test_saved_model_with_file_or_python_ops_is_refused(op, tmp_path, models):
    marker = tmp_path / "MARKER"
    run_py(FILE_OP_MODEL, op, tmp_path / "sm", marker)
    out = tmp_path / "dist"
    r = run_cli("build", tmp_path / "sm", "--samples", models["features_npy"], "--targets", "android", "--out", out)
    assert_refused(r, INPUT, op, "touch the file system or run Python", "sm")
    assert not list(tmp_path.glob("MARKER*")), "the graph wrote a file"
    assert not out.exists()
    no_leftovers(out)


# ---------------------------------------------------------------------------------------------------------------
# S2: [android] abi_filters validated (and escaped in build.gradle.kts, see test_integer_id_model_...)


@pytest.mark.parametrize("abis, fragments", [
    ('["arm64-v8a\\")) }\\nRuntime.getRuntime().exec(\\"touch /tmp/pwned\\")\\n//"]', ["unknown Android ABI"]),
    ('["arm65"]', ["unknown Android ABI 'arm65'", "did you mean 'arm64-v8a'"]),
    ("[]", ["abi_filters is empty"]),
    ('["x86_64", 7]', ["unknown Android ABI 7"]),
])
def test_bad_abi_filters(abis, fragments, tmp_path, models):
    cfg = tmp_path / "packager.toml"
    cfg.write_text(f"[android]\nabi_filters = {abis}\n", encoding="utf-8")
    out = tmp_path / "dist"
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--config", cfg, "--out", out)
    assert_refused(r, USAGE, *fragments, "known ABIs")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# D1: --out may not be, contain, or lie inside an input (even with --force)


def _inputs(tmp_path: Path, models, image_folder) -> tuple[Path, Path, Path]:
    """A project folder: model, sample images folder, labels, packager.toml."""
    import shutil

    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copytree(image_folder, proj / "samples")
    shutil.copy(models["keras"], proj / "model.keras")
    (proj / "labels.txt").write_text("a\nb\nc\n")
    (proj / "packager.toml").write_text('model = "model.keras"\nsamples = "samples"\nlabels = "labels.txt"\n')
    return proj, proj / "samples", proj / "packager.toml"


@pytest.mark.parametrize("where", ["model's folder", "samples folder", "inside samples", "cwd holding config",
                                   "model file itself", "parent of everything"])
def test_out_never_holds_an_input(where, tmp_path, models, image_folder):
    proj, samples, cfg = _inputs(tmp_path, models, image_folder)
    out = {"model's folder": proj, "samples folder": samples, "inside samples": samples / "dist",
           "cwd holding config": Path("."), "model file itself": proj / "model.keras",
           "parent of everything": tmp_path}[where]
    before = tree(tmp_path)
    r = run_cli("build", "--config", cfg, "--out", out, "--force", "--targets", "android", cwd=proj)
    assert_refused(r, INPUT, "--out")
    assert "input" in r.stderr
    assert tree(tmp_path) == before, "an input or an unrelated file was touched"


# ---------------------------------------------------------------------------------------------------------------
# D2: only a folder packager provably wrote is replaced


def test_demo_does_not_wipe_a_folder_that_merely_holds_a_report(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / "thesis.tex").write_text("three years of work")
    before = tree(out)
    r = run_cli("demo", "--out", out, "--targets", "android")
    assert_refused(r, INPUT, "is not empty")
    assert tree(out) == before
    no_leftovers(out)


def test_force_replaces_only_packager_output(tmp_path, models):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--out", out, "--force")
    assert_refused(r, INPUT, "not written by packager", "--force only replaces")
    assert tree(out) == {"notes.txt": b"mine"}


# ---------------------------------------------------------------------------------------------------------------
# D3: --out is locked during the build and checked again before the swap


def test_second_build_into_a_locked_out_is_refused(tmp_path, models):
    out = tmp_path / "dist"
    lock = tmp_path / ".dist.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                    "--out", out)
    finally:
        os.close(fd)
    assert_refused(r, INPUT, "another packager build is writing --out")
    assert not out.exists()


def test_file_created_in_out_during_the_build_is_kept(tmp_path, models):
    out = tmp_path / "dist"
    env = dict(os.environ)
    proc = subprocess.Popen([*PACKAGER, "build", str(models["regressor"]), "--samples", str(models["features_npy"]),
                             "--targets", "android", "--quantize", "android=fp32", "--out", str(out), "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".dist.building-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    out.mkdir()
    (out / "meanwhile.txt").write_text("written by someone else during the build")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == INPUT, stderr
    assert "changed while packager was building" in stderr and "Traceback" not in stderr
    assert tree(out) == {"meanwhile.txt": b"written by someone else during the build"}
    no_leftovers(out)


def test_out_symlink_is_refused_up_front(tmp_path, models):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("x")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--out", tmp_path / "link", "--force")
    assert_refused(r, INPUT, "symbolic link", str(real))
    assert tree(real) == {"keep.txt": b"x"} and (tmp_path / "link").is_symlink()


# ---------------------------------------------------------------------------------------------------------------
# Crashes: non-finite preprocessing and samples, tracebacks on odd values


@pytest.mark.parametrize("flags, fragments", [
    (["--mean", "inf"], ["--mean values must be finite"]),
    (["--std", "nan"], ["--std values must be finite"]),
    (["--std", "1e-50"], ["not 0 in float32"]),
    (["--std", "-3"], ["greater than 0"]),
    (["--std", "1e-38", "--mean=-1e38"], ["beyond float32's range"]),
    (["--quantize", "andriod=int8"], ["unknown target 'andriod'", "did you mean 'android'"]),
    (["--quantize", "=int8"], ["--quantize takes TARGET=MODE"]),
    (["--quantize", "android="], ["--quantize takes TARGET=MODE"]),
    (["--name", "x" * 300], ["300 characters long"]),
    (["--custom-objects", "../evil"], ["not a Python module name"]),
])
def test_bad_flag_values(flags, fragments, tmp_path, models, image_folder):
    out = tmp_path / "dist"
    r = run_cli("build", models["keras"], "--samples", image_folder, "--targets", "android", "--out", out, *flags)
    assert_refused(r, USAGE, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("toml, fragments", [
    ("[preprocessing]\nstd = [1e-50]\n", ["not 0 in float32"]),
    ('[model_input]\ninput_shapes = { image = "abc" }\n', ["input_shapes.image must be a list of positive integers"]),
    ("[model_input]\ninput_shapes = { image = [1, 16.7, 8, 3] }\n", ["must be a list of positive integers"]),
    ("[web]\nshard_bytes = -5\n", ["shard_bytes must be an integer >= 1024"]),
    ("[tolerances.android]\nmin_top1 = -1\n", ["min_top1 = -1 is out of range"]),
    ("[tolerances.web]\nmin_cosine = -1\n", ["min_cosine = -1 is out of range"]),
    ("[tolerances.int8]\nmax_abs_error = nan\n", ["max_abs_error = nan is out of range"]),
    ("[tolerances.fp16]\nmax_abs_error = inf\n", ["max_abs_error = inf is out of range"]),
    ("[quantization]\nandriod = \"int8\"\n", ["unknown key 'andriod'", "did you mean 'android'"]),
    ('name = "' + "n" * 200 + '"\n', ["200 characters long"]),
    ('custom_objects = ["a b"]\n', ["not a Python module name"]),
])
def test_bad_config_values(toml, fragments, tmp_path, models, image_folder):
    cfg = tmp_path / "packager.toml"
    cfg.write_text(toml, encoding="utf-8")
    out = tmp_path / "dist"
    r = run_cli("build", models["keras"], "--samples", image_folder, "--targets", "android", "--out", out,
                "--config", cfg)
    assert_refused(r, USAGE, *fragments)
    assert not out.exists()


def test_vacuous_gate_is_warned_about(tmp_path, models):
    cfg = tmp_path / "packager.toml"
    cfg.write_text("[tolerances.android]\nmax_abs_error = 1e308\n", encoding="utf-8")
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "dist", "--config", cfg)
    assert "max_abs_error = 1e+308 can never fail" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_float64_samples_overflowing_float32_are_refused(tmp_path, models):
    a = np.zeros((3, 6), np.float64)
    a[1, 2] = 1e39
    np.save(tmp_path / "big.npy", a)
    out = tmp_path / "dist"
    r = run_cli("build", models["regressor"], "--samples", tmp_path / "big.npy", "--targets", "android",
                "--out", out)
    assert_refused(r, INPUT, "NaN or infinity", "big.npy")
    assert not out.exists()


def test_decompression_bomb_image(tmp_path, models):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("1", (20000, 20000)).save(d / "bomb.png")
    out = tmp_path / "dist"
    r = run_cli("build", models["keras"], "--samples", d, "--targets", "android", "--out", out)
    assert_refused(r, INPUT, "image too large", "bomb.png")
    assert not out.exists()


@pytest.mark.parametrize("which", ["model", "samples"])
def test_fifo_is_refused_not_waited_on(which, tmp_path, models):
    fifo = tmp_path / ("m.keras" if which == "model" else "s.npy")
    os.mkfifo(fifo)
    args = [fifo, "--samples", models["images_npy"]] if which == "model" else [models["keras"], "--samples", fifo]
    r = run_cli("build", *args, "--targets", "android", "--out", tmp_path / "dist", timeout=120)
    assert_refused(r, INPUT, "not a regular file or folder", fifo.name)


def test_string_input_model_gets_a_fitting_hint(tmp_path, models):
    run_py("""
        import sys, tensorflow as tf
        class M(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
            def serve(self, t):
                return {"n": tf.cast(tf.strings.length(t), tf.float32)}
        m = M()
        tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
    """, tmp_path / "sm")
    np.save(tmp_path / "x.npy", np.zeros((2,), np.float32))
    r = run_cli("build", tmp_path / "sm", "--samples", tmp_path / "x.npy", "--targets", "android",
                "--out", tmp_path / "dist")
    assert_refused(r, INPUT, "takes string tensors", "numeric inputs only")
    assert "save float32 arrays" not in r.stderr


# ---------------------------------------------------------------------------------------------------------------
# Cache integrity


def test_cache_key_covers_the_vendored_tfjs_runtime_and_custom_modules(tmp_path, monkeypatch):
    """Not through the CLI (a changed tf-runtime.js cannot be observed there without a browser run): the key itself."""
    from packager import cache
    from packager.spec import PackageSpec
    from packager.targets.web.target import VENDOR_FILES

    tools = tmp_path / "tools"
    for rel in VENDOR_FILES.values():
        (tools / "npm-web" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tools / "npm-web" / rel).write_text("// tf.js")
    monkeypatch.setenv("PACKAGER_TOOLS", str(tools))
    (tmp_path / "m.keras").write_bytes(b"model")
    (tmp_path / "my_layers.py").write_text("X = 1\n")
    spec = PackageSpec(model=tmp_path / "m.keras", samples=tmp_path / "m.keras", custom_objects=("my_layers",),
                       custom_objects_dirs=(tmp_path,))
    first = cache.build_key(spec)
    (tools / "npm-web" / VENDOR_FILES["tf-runtime.js"]).write_text("// tf.js, patched")
    second = cache.build_key(spec)
    (tmp_path / "my_layers.py").write_text("X = 2\n")
    third = cache.build_key(spec)
    assert len({first, second, third}) == 3
    assert cache.build_key(spec.with_(targets=("android",))) == cache.build_key(spec.with_(targets=("android",)))


def test_damaged_cache_entry_is_rebuilt(tmp_path, models):
    cache = tmp_path / "cache"
    env = {"PACKAGER_CACHE_DIR": str(cache), "PACKAGER_NO_CACHE": None}
    args = ["build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
            "--quantize", "android=fp32"]
    r = run_cli(*args, "--out", tmp_path / "a", env=env)
    assert r.returncode == 0, r.stderr
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    tflite = next((entry / "out").rglob("*.tflite"))
    tflite.write_bytes(b"")  # damaged after it was stored
    r = run_cli(*args, "--out", tmp_path / "b", env=env)
    assert r.returncode == 0, r.stderr
    assert "reused the cached build" not in r.stdout + r.stderr
    rebuilt = next((tmp_path / "b").rglob("*.tflite"))
    assert rebuilt.stat().st_size > 0
    (next(p for p in cache.iterdir() if not p.name.startswith(".")) / "out" / "report.json").write_text('{"mod')
    r = run_cli(*args, "--out", tmp_path / "c", env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    json.loads((tmp_path / "c" / "report.json").read_text())
    assert not list(cache.glob(".store-*"))


# ---------------------------------------------------------------------------------------------------------------
# Issue 12, class 7: --custom-objects; class 6: the tflite-metadata check runs the real samples

CUSTOM_LAYER = """
import keras


@keras.saving.register_keras_serializable(package="mine")
class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kw):
        super().__init__(**kw)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
"""


def test_custom_layer_module_named_by_flag_or_config(tmp_path, models):
    mdir = tmp_path / "model"
    mdir.mkdir()
    (mdir / "my_layers.py").write_text(CUSTOM_LAYER)
    run_py("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import keras, my_layers
        i = keras.Input((6,), name="features")
        keras.Model(i, keras.layers.Dense(2)(my_layers.Scale(3.0)(i))).save(sys.argv[1] + "/custom.keras")
    """, mdir)
    base = ["build", mdir / "custom.keras", "--samples", models["features_npy"], "--targets", "android",
            "--quantize", "android=fp32"]
    r = run_cli(*base, "--out", tmp_path / "a")
    assert_refused(r, INPUT, "--custom-objects")
    assert not (tmp_path / "a").exists()
    r = run_cli(*base, "--out", tmp_path / "b", "--custom-objects", "nope_layers")
    assert_refused(r, INPUT, "no module named 'nope_layers'", str(mdir))
    r = run_cli(*base, "--out", tmp_path / "c", "--custom-objects", "my_layers")
    assert r.returncode == 0, r.stderr
    # the config key, with the module beside the config instead of the model
    cdir = tmp_path / "conf"
    cdir.mkdir()
    (mdir / "my_layers.py").rename(cdir / "cfg_layers.py")
    (cdir / "packager.toml").write_text('custom_objects = ["cfg_layers"]\n')
    r = run_cli(*base, "--out", tmp_path / "d", "--config", cdir / "packager.toml")
    assert r.returncode == 0, r.stderr


def test_integer_id_model_metadata_check_uses_real_samples(tmp_path):
    """Token ids through an Embedding (vocabulary 10): random or negative ids would be out of bounds."""
    run_py("""
        import sys, keras
        keras.utils.set_random_seed(0)
        i = keras.Input((5,), dtype="int32", name="ids")
        x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(i))
        keras.Model(i, keras.layers.Dense(3, activation="softmax")(x)).save(sys.argv[1])
    """, tmp_path / "ids.keras")
    np.save(tmp_path / "ids.npy", np.random.default_rng(0).integers(0, 10, size=(6, 5)).astype(np.int32))
    (tmp_path / "packager.toml").write_text('[android]\nabi_filters = ["arm64-v8a", "x86_64"]\n')
    out = tmp_path / "dist"
    r = run_cli("build", tmp_path / "ids.keras", "--samples", tmp_path / "ids.npy", "--targets", "android",
                "--quantize", "android=fp32", "--config", tmp_path / "packager.toml", "--out", out)
    assert "Traceback" not in r.stderr, r.stderr
    report = json.loads((out / "report.json").read_text())
    checks = {c["name"]: c for c in report["targets"]["android"]["checks"]}
    assert checks["tflite-metadata"]["status"] == "PASS", checks["tflite-metadata"]
    gradle = (out / "android" / "build.gradle.kts").read_text()
    assert 'abiFilters += listOf("arm64-v8a", "x86_64")' in gradle


# ---------------------------------------------------------------------------------------------------------------
# Hangs and leaks: SIGTERM is handled like Ctrl-C; nothing is left in TMPDIR


def _processes_with(tag: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if tag.encode() in (d / "environ").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_sigterm_cleans_up_like_ctrl_c(tmp_path, models, image_folder):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "dist"
    tag = f"PACKAGER_TEST_TAG=sigterm-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "TMPDIR": str(tmpdir), tag.split("=")[0]: tag.split("=")[1]}
    proc = subprocess.Popen([*PACKAGER, "build", str(models["keras"]), "--samples", str(image_folder),
                             "--out", str(out), "--no-cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 120
    # the build's work folder is inside its private temp folder (packager/tempdirs.py): TMPDIR/packager-*/
    while not list(tmpdir.glob("packager-*/packager-work-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(3)  # well into the build: model loaded, targets converting
    proc.terminate()
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists()
    no_leftovers(out)
    time.sleep(1)
    assert not _processes_with(tag), "worker/tool processes outlived the build"
    assert not [p.name for p in tmpdir.iterdir() if p.name.startswith("packager-")], list(tmpdir.iterdir())


def test_no_temp_files_left_after_a_build(tmp_path, models):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "dist", "--no-cache", env={"TMPDIR": str(tmpdir)})
    assert r.returncode == 0, r.stderr
    assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())


# ---------------------------------------------------------------------------------------------------------------
# Silent wrong data, unclear errors


def test_nan_in_the_original_model_is_blamed_on_the_model(tmp_path, models):
    run_py("""
        import sys, numpy as np, keras
        i = keras.Input((6,), name="features")
        d = keras.layers.Dense(2)
        m = keras.Model(i, d(i))
        w, b = d.get_weights()
        d.set_weights([w, np.array([np.nan, 0.0], np.float32)])
        m.save(sys.argv[1])
    """, tmp_path / "nan.keras")
    out = tmp_path / "dist"
    r = run_cli("build", tmp_path / "nan.keras", "--samples", models["features_npy"], "--targets", "android",
                "--out", out)
    assert_refused(r, INPUT, "the original model outputs NaN or infinity", "nan.keras", "weights")
    assert not out.exists()


def test_label_with_unicode_line_separator_stays_one_label(tmp_path, models, image_folder):
    labels = tmp_path / "labels.txt"
    labels.write_text("circle\u2028round\nsquare\x0cbox\ntri\x85angle\n", encoding="utf-8")
    out = tmp_path / "dist"
    r = run_cli("build", models["keras"], "--samples", image_folder, "--labels", labels, "--targets", "android",
                "--quantize", "android=fp32", "--out", out)
    assert r.returncode in (0, 6) and "Traceback" not in r.stderr, r.stderr
    assert "3 labels" not in r.stderr
    shipped = next((out / "android").rglob("labels.txt")).read_text(encoding="utf-8")
    assert shipped == "circle\u2028round\nsquare\x0cbox\ntri\x85angle\n"


def test_full_disk_names_the_device(tmp_path, models):
    import shutil

    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -rm (user + mount namespaces) to mount a tiny tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    cmd = (f"mount -t tmpfs -o size=64k tmpfs {full} && exec {' '.join(PACKAGER)} build {models['regressor']} "
           f"--samples {models['features_npy']} --targets android --quantize android=fp32 --out {full / 'dist'} "
           "--no-cache")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=600)
    assert_refused(r, INPUT, f"no space left on the device mounted at {full}")
    assert "crashed" not in r.stderr


def test_label_count_mismatch_fails_fast(tmp_path, models, image_folder):
    """No speculative compile is started (nor waited for) once the labels cannot fit."""
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(100_000)), encoding="utf-8")
    t0 = time.monotonic()
    r = run_cli("build", models["keras"], "--samples", image_folder, "--labels", labels, "--out", tmp_path / "dist",
                "--no-cache")
    elapsed = time.monotonic() - t0
    assert_refused(r, INPUT, "100000 labels", "3 classes")
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_exif_orientation_and_16_bit_png_are_read_as_shown(tmp_path):
    """Not through the CLI: the preprocessed array is what is compared (a CLI run shows no reference values)."""
    from PIL import Image

    from packager.samples import load_image
    from packager.spec import PackageSpec, TensorSpec

    spec = PackageSpec(model=tmp_path / "m.keras", samples=tmp_path)
    up = np.zeros((16, 16, 3), np.uint8)
    up[:4, :, 0] = 255  # a red band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: "rotate 90 degrees clockwise to display"
    Image.fromarray(np.rot90(up).copy()).save(tmp_path / "rotated.png", exif=exif.tobytes())
    Image.fromarray(up).save(tmp_path / "upright.png")
    rgb = TensorSpec("x", (None, 16, 16, 3))
    assert np.array_equal(load_image(tmp_path / "rotated.png", rgb, spec), load_image(tmp_path / "upright.png", rgb, spec))
    grey16 = np.arange(256, dtype=np.uint16).reshape(16, 16) * 257  # 0..65535
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    x = load_image(tmp_path / "g16.png", TensorSpec("x", (None, 16, 16, 1)), spec)
    assert np.allclose(x[0, ..., 0] * 255, np.arange(256).reshape(16, 16))  # not clipped at 255


def test_orphaned_store_folders_are_removed_by_the_next_store(tmp_path, models):
    """A store that died (killed, disk full) leaves a .store-* folder; the next store removes it once it is old,
    and leaves a recent one alone (it may belong to a build storing right now)."""
    cache = tmp_path / "cache"
    old, fresh = cache / ".store-died", cache / ".store-busy"
    for d in (old, fresh):
        (d / "out").mkdir(parents=True)
        (d / "out" / "model.tflite").write_bytes(b"x" * 1024)
        (d / ".packager-cache-entry").write_text("x")  # written first thing by every store
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "a",
                env={"PACKAGER_CACHE_DIR": str(cache), "PACKAGER_NO_CACHE": None})
    assert r.returncode == 0, r.stderr
    assert not old.exists() and fresh.exists()
    assert [p for p in cache.iterdir() if not p.name.startswith(".")], "the build itself was stored"
