"""Every bad input gives one clear message (what, where, how to fix), its documented exit code,
no traceback, and no output folder (nor a leftover staging folder beside it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT = 2, 3


def make_case(name: str, tmp: Path, models: dict, image_folder: Path) -> tuple[list, int, list[str]]:
    """Returns (CLI args after 'build', expected exit code, fragments the message must contain)."""
    keras_model = models["keras"]
    imgs = image_folder
    if name == "missing model":
        return [tmp / "nope.keras", "--samples", imgs], INPUT, ["model not found", "nope.keras"]
    if name == "empty model file":
        (tmp / "e.keras").write_bytes(b"")
        return [tmp / "e.keras", "--samples", imgs], INPUT, ["model file is empty"]
    if name == "corrupt .keras":
        (tmp / "c.keras").write_bytes(b"definitely not a zip" * 10)
        return [tmp / "c.keras", "--samples", imgs], INPUT, ["not a valid .keras file", "re-save"]
    if name == "truncated .keras":
        data = keras_model.read_bytes()
        (tmp / "t.keras").write_bytes(data[: len(data) // 2])
        return [tmp / "t.keras", "--samples", imgs], INPUT, ["t.keras"]
    if name == "corrupt .h5":
        (tmp / "c.h5").write_bytes(b"garbage" * 50)
        return [tmp / "c.h5", "--samples", imgs], INPUT, ["not a valid HDF5 file"]
    if name == "folder that is not a SavedModel":
        (tmp / "folder").mkdir()
        return [tmp / "folder", "--samples", imgs], INPUT, ["not a SavedModel", "saved_model.pb"]
    if name == "SavedModel without serving_default":
        code = ("import tensorflow as tf, sys\nm = tf.Module()\nm.f = tf.function(lambda x: x * 2, "
                "input_signature=[tf.TensorSpec([None, 3])])\ntf.saved_model.save(m, sys.argv[1], signatures={'other': m.f})")
        subprocess.run([sys.executable, "-c", code, str(tmp / "nosig")], check=True, capture_output=True)
        return [tmp / "nosig", "--samples", imgs], INPUT, ["no 'serving_default' signature", "other"]
    if name == "unknown model extension":
        (tmp / "m.onnx").write_bytes(b"x")
        return [tmp / "m.onnx", "--samples", imgs], INPUT, ["unknown model format '.onnx'", "supported"]
    if name == "dynamic dimensions without --input-shape":
        code = ("import keras, sys\ni = keras.Input((None, None, 3), name='img')\n"
                "keras.Model(i, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(i))).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(tmp / "dyn.keras")], check=True, capture_output=True)
        return [tmp / "dyn.keras", "--samples", imgs], INPUT, ["dynamic dimensions", "--input-shape img=1,"]
    if name == "Keras export that drifts from the model":
        code = ("import keras, sys\nkeras.utils.set_random_seed(0)\ni = keras.Input((8, 8, 3), name='img')\n"
                "x = keras.layers.BatchNormalization()(keras.layers.Resizing(4, 4)(i))\n"
                "keras.Model(i, keras.layers.Dense(3, activation='softmax')(keras.layers.Flatten()(x))).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(tmp / "drift.keras")], check=True, capture_output=True)
        return [tmp / "drift.keras", "--samples", imgs], INPUT, ["export does not reproduce the model", "training=False"]
    if name == "missing sample set":
        return [keras_model, "--samples", tmp / "nosamples"], INPUT, ["sample set not found"]
    if name == "empty sample folder":
        (tmp / "empty").mkdir()
        return [keras_model, "--samples", tmp / "empty"], INPUT, ["holds no images"]
    if name == "undecodable image":
        d = tmp / "badimgs"
        shutil.copytree(imgs, d)
        (d / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
        return [keras_model, "--samples", d], INPUT, ["cannot decode image", "zz_broken.png"]
    if name == "array of the wrong shape":
        np.save(tmp / "w.npy", np.zeros((4, 9, 9, 3), np.float32))
        return [keras_model, "--samples", tmp / "w.npy"], INPUT, ["shape (4, 9, 9, 3)", "(N, 8, 8, 3)"]
    if name == "array of the wrong dtype":
        np.save(tmp / "s.npy", np.full((2, 8, 8, 3), "x"))
        return [keras_model, "--samples", tmp / "s.npy"], INPUT, ["dtype <U1", "expected numbers"]
    if name == "NaN in samples":
        a = np.zeros((3, 8, 8, 3), np.float32)
        a[1, 2, 2, 0] = np.nan
        np.save(tmp / "n.npy", a)
        return [keras_model, "--samples", tmp / "n.npy"], INPUT, ["NaN or infinity"]
    if name == "npz without the input's array":
        np.savez(tmp / "x.npz", other=np.zeros((2, 6)), more=np.zeros((2, 6)))
        return [models["two_outputs"], "--samples", tmp / "x.npz"], INPUT, ["missing: ['features']"]
    if name == "corrupt npz":
        (tmp / "c.npz").write_bytes(b"nope")
        return [models["two_outputs"], "--samples", tmp / "c.npz"], INPUT, ["cannot read .npz"]
    if name == "image folder for a non-image model":
        return [models["regressor"], "--samples", imgs], INPUT, ["needs a model with one NHWC image input"]
    if name == "label count not matching the output":
        (tmp / "l.txt").write_text("a\nb\n")
        return [keras_model, "--samples", imgs, "--labels", tmp / "l.txt"], INPUT, ["2 labels", "3 classes"]
    if name == "duplicate labels":
        (tmp / "l.txt").write_text("a\nb\na\n")
        return [keras_model, "--samples", imgs, "--labels", tmp / "l.txt"], INPUT, ["duplicate label 'a'"]
    if name == "empty line in labels":
        (tmp / "l.txt").write_text("a\n\nb\n")
        return [keras_model, "--samples", imgs, "--labels", tmp / "l.txt"], INPUT, ["empty label on line 2"]
    if name == "labels file missing":
        return [keras_model, "--samples", imgs, "--labels", tmp / "nol.txt"], INPUT, ["labels file not found"]
    if name == "toml syntax error":
        (tmp / "p.toml").write_text("model = \n")
        return [keras_model, "--samples", imgs, "--config", tmp / "p.toml"], USAGE, ["syntax error", "p.toml"]
    if name == "toml unknown key":
        (tmp / "p.toml").write_text("[preprocessing]\nmeen = 1\n")
        return [keras_model, "--samples", imgs, "--config", tmp / "p.toml"], USAGE, ["unknown key 'meen'", "did you mean 'mean'"]
    if name == "toml wrong type":
        (tmp / "p.toml").write_text("targets = 'android'\n")
        return [keras_model, "--samples", imgs, "--config", tmp / "p.toml"], USAGE, ["targets must be array"]
    if name == "unknown target":
        return [keras_model, "--samples", imgs, "--targets", "andriod"], USAGE, ["unknown target 'andriod'", "did you mean 'android'"]
    if name == "unknown quantization mode":
        return [keras_model, "--samples", imgs, "--quantize", "web=unit8"], USAGE, ["unknown quantization mode", "did you mean 'uint8'"]
    if name == "out is a file":
        (tmp / "outfile").write_text("x")
        return [keras_model, "--samples", imgs, "--out", tmp / "outfile"], INPUT, ["is a file"]
    if name == "out is non-empty without --force":
        (tmp / "full").mkdir()
        (tmp / "full" / "keep.txt").write_text("mine")
        return [keras_model, "--samples", imgs, "--out", tmp / "full"], INPUT, ["is not empty", "--force"]
    if name == "invalid android package":
        return [keras_model, "--samples", imgs, "--android-package", "com.Bad-name"], USAGE, ["not a valid Android package name"]
    if name == "frozen .pb without shapes":
        (tmp / "g.pb").write_bytes(b"\x00")
        return [tmp / "g.pb", "--samples", imgs], USAGE, ["needs its input shapes and output names", "--input-shape"]
    if name == "wrong number of --mean values":
        return [keras_model, "--samples", imgs, "--mean", "1,2"], USAGE, ["--mean has 2 values", "3 channels"]
    raise AssertionError(name)


CASES = [
    "missing model", "empty model file", "corrupt .keras", "truncated .keras", "corrupt .h5",
    "folder that is not a SavedModel", "SavedModel without serving_default", "unknown model extension",
    "dynamic dimensions without --input-shape", "Keras export that drifts from the model", "missing sample set", "empty sample folder", "undecodable image",
    "array of the wrong shape", "array of the wrong dtype", "NaN in samples", "npz without the input's array",
    "corrupt npz", "image folder for a non-image model", "label count not matching the output", "duplicate labels",
    "empty line in labels", "labels file missing", "toml syntax error", "toml unknown key", "toml wrong type",
    "unknown target", "unknown quantization mode", "out is a file", "out is non-empty without --force",
    "invalid android package", "frozen .pb without shapes", "wrong number of --mean values",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, tmp_path, models, image_folder):
    args, code, fragments = make_case(case, tmp_path, models, image_folder)
    if "--out" not in args:
        args += ["--out", tmp_path / "dist"]
    out = Path(args[args.index("--out") + 1])
    before = out.read_bytes() if out.is_file() else sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    if "--targets" not in args:
        args += ["--targets", "android"]
    r = run_cli("build", *args)
    assert r.returncode == code, f"exit {r.returncode}\n{r.stderr}\n{r.stdout}"
    assert "Traceback" not in r.stderr + r.stdout
    for fragment in fragments:
        assert fragment in r.stderr, f"{fragment!r} not in:\n{r.stderr}"
    assert "fix:" in r.stderr or "where:" in r.stderr
    after = out.read_bytes() if out.is_file() else sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    assert after == before, "the output folder was touched"
    assert not list(out.parent.glob(f".{out.name}.building-*")), "staging folder left behind"
