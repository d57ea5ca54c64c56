"""A model taking integer pixels (uint8/int8 images it normalises itself, as many exported vision models do) through
the real CLI: the page feeds each input in the dtype the converted graph expects (tf.js runs every integer type as
int32), so the web target PASSes on the sample set. Before: metadata said float32, the page fed float32 and every
backend refused it ("must be int32, but was float32": a false FAIL)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def save_integer_image_model(path, dtype: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(1)

    class M(tf.Module):
        def __init__(self):
            self.w = tf.Variable(rng.normal(size=(3, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], getattr(tf, dtype), name="image")])
        def serve(self, image):
            x = tf.cast(image, tf.float32) / 127.0  # normalised inside the model
            x = tf.reduce_mean(x, axis=[1, 2])
            return {"probs": tf.nn.softmax(tf.matmul(x, self.w) * 8.0)}

    m = M()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_an_integer_image_input_is_fed_as_integers_and_passes(tmp_path, dtype):
    save_integer_image_model(tmp_path / "sm", dtype)
    info = np.iinfo(dtype)
    x = np.random.default_rng(2).integers(info.min, info.max + 1, (6, 16, 16, 3)).astype(dtype)
    x[0] = info.max  # extremes: a float32 that tf.js truncated or wrapped would show here
    x[1] = info.min
    np.save(tmp_path / "samples.npy", x)
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\n")
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "sm", "--samples", tmp_path / "samples.npy", "--labels", tmp_path / "labels.txt",
                "--targets", "web", "--quantize", "web=fp32", "--out", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    web = json.loads((out / "report.json").read_text())["targets"]["web"]
    assert web["status"] == "PASS", web
    assert web["metrics"]["top1_agreement"] == 1.0 and web["metrics"]["max_abs_error"] <= 1e-5, web["metrics"]
    meta = json.loads((out / "web" / "metadata.json").read_text())
    assert [i["dtype"] for i in meta["inputs"]] == ["int32"]
