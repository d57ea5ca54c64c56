"""Step 7 of the one preprocessing definition: ``--normalize per-image`` / ``per-channel`` (each image standardised
by its own statistics, tf.image.per_image_standardization's formula) in Python, the page's preprocess.js, the
Android module's Kotlin and the Core ML graph, each compared with Python by its target's preprocessing check."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from packager.errors import UsageError
from packager.preprocessing import standardise
from packager.spec import Preprocessing

sys.path.insert(0, str(Path(__file__).parent))
from photos import STORE, _exif, scene  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def small_photos(folder: Path) -> list[Path]:
    """A few original files of different kinds: EXIF-rotated JPEG, RGBA PNG, grey PNG, a nearly uniform image."""
    folder.mkdir(parents=True, exist_ok=True)
    up = scene(160, 120, 3)
    Image.fromarray(np.ascontiguousarray(STORE[6](up))).save(folder / "a_orient6.jpg", quality=92, exif=_exif(6))
    rgba = np.dstack([scene(90, 70, 1), np.tile(np.linspace(0, 255, 90).astype(np.uint8), (70, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "b_rgba.png")
    Image.fromarray(scene(50, 64, 6)).convert("L").save(folder / "c_grey.png")
    flat = np.full((40, 40, 3), 200, np.uint8)
    flat[10, 10] = (201, 199, 200)  # almost uniform: the 1/sqrt(N) floor matters
    Image.fromarray(flat).save(folder / "d_flat.png")
    return sorted(folder.iterdir())


def test_standardise_is_tf_per_image_standardization():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    px = rng.uniform(0, 255, (9, 7, 3)).astype(np.float32)
    assert np.abs(standardise(px) - tf.image.per_image_standardization(px).numpy()).max() < 1e-5
    per = np.stack([tf.image.per_image_standardization(px[..., k:k + 1]).numpy()[..., 0] for k in range(3)], -1)
    assert np.abs(standardise(px, per_channel=True) - per).max() < 1e-5
    flat = np.full((4, 4, 1), 9.0, np.float32)
    flat[0, 0] = 9.001  # std below 1/sqrt(16): the floor divides
    assert np.abs(standardise(flat) - tf.image.per_image_standardization(flat).numpy()).max() < 1e-5
    assert np.all(standardise(np.full((3, 3, 3), 5.0, np.float32)) == 0)


def test_normalize_flag_and_config(tmp_path):
    from packager.config import build_spec

    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    (tmp_path / "s").mkdir()

    def spec(**flags):
        ns = argparse.Namespace(model=str(model), samples=str(tmp_path / "s"), out=str(tmp_path / "out"), **flags)
        return build_spec(ns)

    assert spec().preprocessing.normalize == "mean-std"
    assert spec(normalize="per-image").preprocessing.normalize == "per-image"
    cfg = tmp_path / "packager.toml"
    cfg.write_text('[preprocessing]\nnormalize = "per-channel"\n')
    assert spec(config=str(cfg)).preprocessing.normalize == "per-channel"
    with pytest.raises(UsageError, match="--mean cannot apply"):
        spec(normalize="per-image", mean="127.5")
    cfg.write_text('[preprocessing]\nnormalize = "per-image"\nstd = 127.5\n')
    with pytest.raises(UsageError, match="--std cannot apply"):
        spec(config=str(cfg))
    cfg.write_text('[preprocessing]\nnormalize = "per_image"\n')
    with pytest.raises(UsageError, match="unknown normalisation") as e:
        spec(config=str(cfg))
    assert "per-image" in e.value.render()


class _Samples:
    def __init__(self, files, w, h, c):
        self.image_paths = files

        class _Input:
            sample_shape = (1, h, w, c)

        self.inputs = [_Input()]


class _Spec:
    def __init__(self, pre):
        self.preprocessing = pre


def kotlin_classes(tmp: Path, w: int, h: int, c: int, normalize: str) -> Path:
    """The Android template's Preprocessing.kt rendered for this geometry and normalisation, compiled (kotlinc)."""
    from packager.render import render_string
    from packager.targets.android.host import kotlinc_server

    tpl = REPO / "android_template/src/main/java/__package_path__/__class_name__Preprocessing.kt.j2"
    ctx = dict(display_name="t", package="t.pre", is_image=True, class_name="T", width=w, height=h, channels=c,
               color="rgb", mean=["0.0"] * c, std=["255.0"] * c, crop="stretch", background=[255, 255, 255],
               normalize=normalize)
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "TPreprocessing.kt"
    src.write_text(render_string(tpl.read_text(encoding="utf-8"), ctx), encoding="utf-8")
    res = kotlinc_server.compile_kotlin([src], tmp / "classes")
    assert res.returncode == 0, res.output
    return tmp / "classes"


@pytest.mark.slow
@pytest.mark.parametrize("normalize", ["per-image", "per-channel"])
def test_page_and_kotlin_standardise_like_python(normalize, tmp_path):
    """preprocess.js in Chromium and the Kotlin on the JVM: their normalised model input equals Python's (the
    difference counted in pixel levels, times the image's own standard deviation); a wrong normalisation (the
    fixed mean/std instead) is far off, so the check can fail."""
    from packager.targets.android.preprocessing_check import android_check
    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.preprocessing_check import web_check

    files = small_photos(tmp_path / "photos")
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "web_template/preprocess.js", site / "preprocess.js")
    (site / "index.html").write_text("<!doctype html><title>preprocess</title>", encoding="utf-8")
    w, h, c = 24, 20, 3
    samples, spec = _Samples(files, w, h, c), _Spec(Preprocessing(normalize=normalize))
    with StaticServer(site) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "index.html")
        web = web_check(page, spec, samples)
    kt = android_check(spec, samples, kotlin_classes(tmp_path / "kt", w, h, c, normalize), "t.pre.TPreprocessing")
    for check in (web, kt):
        assert check.status == "PASS", check.detail
        assert check.data["files"] == len(files) and check.data["max_abs_diff"] <= 1.0, check.detail
        opaque = {k: v for k, v in check.data["per_file"].items() if k != "b_rgba.png"}  # alpha: 8-bit premultiplied
        assert max(opaque.values()) <= 0.01, check.detail
        assert normalize in check.detail
    # the same code judged against another normalisation: the check fails (it compares the normalised input)
    other = _Spec(Preprocessing(normalize="per-channel" if normalize == "per-image" else "per-image"))
    assert android_check(other, samples, tmp_path / "kt" / "classes", "t.pre.TPreprocessing").status == "FAIL"


# ---- through the CLI: an image-to-image model with per-image normalisation on every target ------------------------


@pytest.fixture(scope="module")
def edge_build(tmp_path_factory):
    """`packager build` (default flags: auto quantization, all targets) of a tiny image-to-image Keras model (conv ->
    sigmoid, one channel, the input's H x W: an edge/mask model) with `--normalize per-image` on original photos."""
    import keras

    from conftest import run_cli

    d = tmp_path_factory.mktemp("edges")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="edges")(x)
    keras.Model(inp, x).save(d / "edges.keras")
    small_photos(d / "photos")
    out = d / "dist"
    r = run_cli("build", d / "edges.keras", "--samples", d / "photos", "--out", out, "--normalize", "per-image")
    return r, out


@pytest.mark.slow
def test_cli_per_image_normalisation_on_every_targets_preprocessing_check(edge_build):
    """android's Kotlin (JVM) and web's preprocess.js (Chromium) standardise every original file like Python (their
    preprocessing checks compare the normalised input); ios standardises in the Core ML graph, executed on every
    sample by the NumPy executor (predictions PASS), its Swift pixels checked by the transcription (UNVERIFIED)."""
    r, out = edge_build
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["model"]["preprocessing"]["normalize"] == "per-image"
    for t in ("android", "web"):
        pre = report["targets"][t]["preprocessing"]
        assert pre["status"] == "PASS" and pre["files"] == 4 and pre["max_abs_diff"] <= 1.0, (t, pre)
    ios = report["targets"]["ios"]
    assert ios["preprocessing"]["status"] == "UNVERIFIED" and ios["preprocessing"]["max_abs_diff"] <= 1.0
    assert next(c for c in ios["checks"] if c["name"] == "predictions")["status"] == "PASS"
    kt = next((out / "android").rglob("*Preprocessing.kt")).read_text(encoding="utf-8")
    assert 'NORMALIZE: String = "per-image"' in kt
    swift = next((out / "ios").rglob("*Preprocessing.swift")).read_text(encoding="utf-8")
    assert 'normalization: String = "per-image"' in swift
    meta = json.loads((out / "web" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["image"]["normalize"] == "per-image"
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_cli_image_output_kind_on_every_target(edge_build):
    """kind image in report.json, every target PASS, report.html with the maps, and the wrappers' image API:
    Kotlin (compiled by the kotlin-compiles check), Swift (parsed by swift-syntax), JS (the page draws a canvas)."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    r, out = edge_build
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [o["kind"] for o in report["model"]["outputs"]] == ["image"]
    for name, t in report["targets"].items():
        assert t["status"] == "PASS", (name, t["reason"])
        assert t["metrics"]["psnr"] >= t["gates"]["min_psnr"], name
        assert t["per_output"]["output_0"]["worst_samples"], name
        checks = {c["name"]: c["status"] for c in t["checks"]}
        assert checks.get({"android": "kotlin-compiles", "ios": "swift-syntax", "web": "console_errors"}[name]) \
            == "PASS", (name, checks)
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in report["targets"]:
        assert f"the original's and {name}'s maps" in html
    assert html.count('<img src="data:image/png;base64,') >= 3 * 4 * 4  # 3 targets x 4 samples x 4 pictures
    kt = next((out / "android").rglob("*Classifier.kt")).read_text(encoding="utf-8")
    for api in ("class ImageOutput(val name: String, val values: FloatArray, val shape: IntArray)",
                "fun toBitmap(", "fun predictImage(bitmap: Bitmap", 'IMAGE_OUTPUTS: List<String> = '
                'Collections.unmodifiableList(listOf("output_0"))'):
        assert api in kt, api
    swift = next((out / "ios").rglob("*Classifier.swift")).read_text(encoding="utf-8")
    for api in ("public func cgImage(range: ClosedRange<Float>? = nil) -> CGImage?",
                "public var imageArrays: [String: MLShapedArray<Float>]", "public var images: [String: CGImage]"):
        assert api in swift, api
    with StaticServer(out / "web") as server, chromium() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_function("() => window.packager && window.packager.ready")
        page.locator("#sample-strip button").first.click()
        page.wait_for_selector("canvas[data-output='output_0']", timeout=30_000)
        drawn = page.evaluate("""() => {
            const c = document.querySelector("canvas[data-output='output_0']");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let grey = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] === d[i + 1] && d[i] === d[i + 2] && d[i + 3] === 255) grey++;
            return {w: c.width, h: c.height, grey, levels: new Set(Array.from(d).filter((_, i) => i % 4 === 0)).size};
        }""")
        assert page.locator("#results li").count() == 0  # no bars for an image output
        api = page.evaluate("""async () => {
            const m = await import(new URL("model.js", location.href).href);
            await m.load();
            const r = await m.predict({image: {shape: [1, 16, 16, 3], data: new Float32Array(768).fill(0.5)}});
            const out = m.imageOutputs(r).output_0;
            return {shape: out.tensor.shape, w: out.image.width, h: out.image.height, isImageData: out.image instanceof ImageData};
        }""")
    assert drawn["w"] == 16 and drawn["h"] == 16 and drawn["grey"] == 256 and drawn["levels"] > 4, drawn
    assert api == {"shape": [1, 16, 16, 1], "w": 16, "h": 16, "isImageData": True}, api
    assert not errors, errors
