"""The web checks hand the page several samples (and several sample files) per call instead of one call each:
the same outputs, in the same order, whatever the split (real tf.js page / real preprocess.js in headless Chromium)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from test_web_target import ExportedModel, Samples, image_case  # noqa: E402,F401  (image_case: a fixture)

from packager.spec import PackageSpec, Preprocessing, TensorSpec  # noqa: E402
from packager.targets.web import page as web_page  # noqa: E402
from packager.targets.web import preprocessing_check  # noqa: E402
from packager.targets.web import target as web  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in (web.npm_web_dir() / rel for rel in web.VENDOR_FILES.values())),
    reason="vendored tf.js missing: run .ci/setup-web.sh",
)


def test_sample_chunks_keep_every_sample_in_order_within_the_byte_bound():
    samples = [{"x": np.full((1, 10), i, np.float32)} for i in range(7)]  # 40 B each
    for limit, out_bytes, sizes in ((100, 0, [2, 2, 2, 1]), (100, 10, [2, 2, 2, 1]), (120, 0, [3, 3, 1]),
                                    (10, 0, [1] * 7), (10_000, 0, [7]), (10_000, 10_000, [1] * 7)):
        chunks = list(web_page.sample_chunks(samples, out_bytes, limit))
        assert [len(c) for c in chunks] == sizes, (limit, out_bytes)
        assert [float(s["x"][0, 0]) for c in chunks for s in c] == list(range(7))


def test_output_bytes_is_one_call_a_sample_when_an_output_shape_is_open():
    class _Source:
        outputs = [TensorSpec("a", (None, 7)), TensorSpec("b", (None, 2, 3))]

    assert web_page.output_bytes(_Source()) == 4 * (7 + 6)
    _Source.outputs = [TensorSpec("a", (None, None, 7))]
    assert web_page.output_bytes(_Source()) == web_page.CALL_BYTES


@pytest.mark.slow
def test_page_outputs_in_calls_of_several_samples_equal_one_call_each(tmp_path, monkeypatch):
    """Every sample's outputs and page-measured time from ``_predict_samples`` (several samples a call, split in
    uneven runs) equal what one ``predict`` call per sample gives on the same page."""
    import keras

    from packager.targets.web.page import _predict_samples, _served_page

    keras.utils.set_random_seed(4)
    a = keras.Input((6,))
    h = keras.layers.Dense(8, activation="tanh")(a)
    keras.Model(a, [keras.layers.Dense(2)(h), keras.layers.Dense(3, activation="softmax")(h)]).export(
        str(tmp_path / "sm"), verbose=False)
    source = ExportedModel(tmp_path / "sm")
    rng = np.random.default_rng(5)
    samples = [{source.inputs[0].name: rng.normal(size=(1, 6)).astype(np.float32)} for _ in range(7)]
    spec = PackageSpec(model=tmp_path / "m.keras", samples=tmp_path / "x.npy", name="calls")
    target = web.WebTarget()
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    target.render(spec, source, art, Samples(samples), source.predict(Samples(samples).stacked()), tmp_path / "web")
    # 3 samples a call: runs of 3, 3, 1
    monkeypatch.setattr(web_page, "CALL_BYTES", 3 * (4 * 6 + web_page.output_bytes(source)))
    assert [len(c) for c in web_page.sample_chunks(samples, web_page.output_bytes(source))] == [3, 3, 1]
    calls = []
    many = web_page.PageSession.predict_many
    monkeypatch.setattr(web_page.PageSession, "predict_many", lambda self, xs: calls.append(len(xs)) or many(self, xs))
    with _served_page(tmp_path / "web") as (session, _):
        session.open()
        one = [session.predict(x) for x in samples]
        got = _predict_samples(session, source, Samples(samples), "r")
    assert calls == [3, 3, 1]
    for name in ("output_0", "output_1"):
        assert np.array_equal(got.outputs[name], np.concatenate([o[name] for o, _ in one])), name
    assert got.outputs["output_0"].shape == (7, 2) and got.checks[0].status == "PASS"


@pytest.mark.slow
def test_preprocessing_check_gives_the_same_result_in_calls_of_several_files(tmp_path, monkeypatch):
    """``web_check`` on 5 files: all in one page call, in runs of 2, one a call — the same per-file figures, the
    same verdict and detail."""
    from PIL import Image

    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.preprocessing_check import web_check

    rng = np.random.default_rng(6)
    files = []
    for i, (w, h) in enumerate(((12, 10), (9, 15), (20, 20), (7, 7), (16, 11))):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(files[-1])
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "web_template/preprocess.js", site / "preprocess.js")
    (site / "index.html").write_text("<!doctype html><title>preprocess</title>", encoding="utf-8")

    class _Samples:
        image_paths = files

        class _Input:
            sample_shape = (1, 8, 8, 3)

        inputs = [_Input()]

    class _Spec:
        preprocessing = Preprocessing(color="rgb", mean=(127.5,), std=(127.5,))

    results = {}
    evaluate_calls = []
    with StaticServer(site) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "index.html")
        evaluate = page.evaluate
        page.evaluate = lambda *a, **k: evaluate_calls.append(1) or evaluate(*a, **k)
        back = 8 * 8 * 8 * 3
        sizes = [len(__import__("base64").b64encode(f.read_bytes())) + back for f in files]
        for label, limit in (("all", 1 << 30), ("runs", sizes[0] + sizes[1]), ("one", 1)):
            monkeypatch.setattr(preprocessing_check, "CALL_BYTES", limit)
            evaluate_calls.clear()
            check = web_check(page, _Spec(), _Samples())
            results[label] = (check, len(evaluate_calls))
    assert results["all"][1] == 1 and results["one"][1] == 5 and 2 <= results["runs"][1] <= 4
    for label, (check, _) in results.items():
        assert check.status == "PASS" and check.data["files"] == 5, (label, check.detail)
        assert check.data["per_file"] == results["one"][0].data["per_file"], label
        assert check.detail == results["one"][0].detail, label


@pytest.mark.slow
def test_page_image_outputs_in_calls_of_several_images_equal_one_call_each(image_case, tmp_path, monkeypatch):  # noqa: F811
    """``predict_images`` (the image_path check's page calls) split in runs of 2 images: each image's outputs equal
    one ``predictImage`` call per image (a run of one); the check passes on them."""
    import json

    from packager.targets.web.page import _served_page
    from packager.targets.web.page_checks import _image_path_check

    _, spec, source, samples, reference = image_case
    target = web.WebTarget()
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    target.render(spec, source, art, samples, reference, tmp_path / "web")
    with _served_page(tmp_path / "web") as (session, _):
        session.open()
        config = json.loads(session.page.evaluate("() => JSON.stringify(window.packager.config)"))
        urls = [s["image"] for s in config["samples"] if s.get("image")]
        assert len(urls) == 4
        one = [session.predict_images([u])[0][0] for u in urls]
        per = len(urls[0]) + web_page.JSON_PER_BYTE * web_page.output_bytes(source)
        monkeypatch.setattr(web_page, "CALL_BYTES", 2 * per)
        calls = []
        evaluate = session.page.evaluate
        monkeypatch.setattr(session.page, "evaluate", lambda *a: calls.append(a[0][:20]) or evaluate(*a))
        got = session.predict_images(urls, web_page.output_bytes(source))
        assert len(calls) == 2 and len(got) == 4
        for a, (b, ms) in zip(one, got):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) and ms >= 0
        monkeypatch.setattr(web_page, "CALL_BYTES", 1)  # one image a call, the hooks' samples one a call
        check = _image_path_check(session, spec, source, tmp_path / "web", samples)
    assert check.status == "PASS" and "4 bundled sample images" in check.detail, check.detail
