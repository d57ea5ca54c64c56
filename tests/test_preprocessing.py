"""Image preprocessing (#16): the one definition (packager.preprocessing) on camera-like photos made here, and the
same model input from the page's preprocess.js in Chromium and the Android module's Kotlin on the JVM, on the
ORIGINAL files (EXIF orientations 1-8, RGBA, palette, 16-bit, CMYK, grey, tiny and huge)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from packager.errors import UsageError
from packager.preprocessing import (
    axis_weights,
    crop_geometry,
    decode_rgba,
    file_pixels,
    model_pixels,
    orient,
    parse_background,
)
from packager.spec import Preprocessing

sys.path.insert(0, str(Path(__file__).parent))
from photos import STORE, make_photos, scene  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    kinds = make_photos(folder)
    return folder, kinds


def _opaque(rgb: np.ndarray) -> np.ndarray:
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


# ---- the definition ---------------------------------------------------------------------------------------------


def test_each_exif_orientation_gives_the_upright_picture(tmp_path):
    """A photo stored rotated/mirrored with its orientation tag decodes to the upright photo: exactly for PNG
    (lossless), and as Pillow's own exif_transpose; for JPEG the model input matches the upright one's."""
    from PIL import Image, ImageOps

    up = scene(64, 48, 1)
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        Image.fromarray(np.ascontiguousarray(STORE[o](up))).save(tmp_path / f"o{o}.png", exif=exif.tobytes())
        got = decode_rgba(tmp_path / f"o{o}.png")
        assert np.array_equal(got[..., :3], up), f"orientation {o}"
        with Image.open(tmp_path / f"o{o}.png") as im:
            assert np.array_equal(np.asarray(ImageOps.exif_transpose(im).convert("RGB")), up)
        assert np.array_equal(orient(np.ascontiguousarray(STORE[o](_opaque(up))), o), _opaque(up))


def test_webp_orientation_is_not_applied_like_in_browsers(tmp_path):
    from PIL import Image

    up = scene(30, 20, 2)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.ascontiguousarray(STORE[6](up))
    Image.fromarray(stored).save(tmp_path / "o6.webp", exif=exif.tobytes(), lossless=True)
    assert np.array_equal(decode_rgba(tmp_path / "o6.webp")[..., :3], stored)


def test_rotated_jpegs_give_the_upright_model_input(photos):
    folder, _ = photos
    pre = Preprocessing()
    upright = file_pixels(folder / "orient1.jpg", 64, 48, 3, pre)
    for o in range(2, 9):
        x = file_pixels(folder / f"orient{o}.jpg", 64, 48, 3, pre)
        assert np.abs(x - upright).mean() < 0.5 and np.abs(x - upright).max() < 4, o  # JPEG re-encoding only
        # and not what the stored (unrotated) pixels would give
        stored = model_pixels(_opaque(np.asarray(__import__("PIL.Image").Image.open(folder / f"orient{o}.jpg")
                                                  .convert("RGB"))), 64, 48, 3)
        assert np.abs(stored - upright).mean() > 5, o


def test_the_resampler_is_pillows_bilinear_with_antialiasing():
    """Pillow's BILINEAR rounds to 8 bits after each pass; the definition keeps floats: within one level."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for (sw, sh), (w, h) in [((640, 480), (32, 32)), ((37, 23), (32, 32)), ((5, 7), (64, 50)), ((1000, 30), (10, 30))]:
        a = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        ref = np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR), np.float32)
        assert np.abs(model_pixels(_opaque(a), w, h, 3) - ref).max() <= 1.0
        g = crop_geometry(sw, sh, w, h, "center-crop")
        ref = np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR, box=(g.x0, g.y0, g.x1, g.y1)), np.float32)
        assert np.abs(model_pixels(_opaque(a), w, h, 3, crop="center-crop") - ref).max() <= 1.0
    # antialiasing: a 1-pixel checkerboard downscaled 8x is flat grey, not aliased stripes
    board = ((np.indices((256, 256)).sum(0) % 2) * 255).astype(np.uint8)
    out = model_pixels(_opaque(np.dstack([board] * 3)), 32, 32, 3)
    assert np.abs(out - 127.5).max() < 1.0
    first, weights = axis_weights(100, 0.0, 100.0, 10)
    assert weights.shape[1] == 2 * 10 + 1 and np.allclose(weights.sum(1), 1.0) and first[0] == 0


def _resample_pixel_by_pixel(img, g):
    """The resampler as first written (one pixel gathered per tap): the arithmetic the shipped Kotlin, JS and
    Swift ports were checked against."""
    from packager.preprocessing import _identity

    h_in, w_in = img.shape[:2]
    if _identity(w_in, g.x0, g.x1, g.cw):
        tmp = img.astype(np.float64)
    else:
        fx, wx = axis_weights(w_in, g.x0, g.x1, g.cw)
        tmp = np.zeros((h_in, g.cw, img.shape[2]), np.float64)
        for k in range(wx.shape[1]):
            tmp += img[:, np.minimum(fx + k, w_in - 1), :] * wx[:, k][None, :, None]
    if _identity(h_in, g.y0, g.y1, g.ch):
        return tmp.astype(np.float32)
    fy, wy = axis_weights(h_in, g.y0, g.y1, g.ch)
    out = np.zeros((g.ch, g.cw, img.shape[2]), np.float64)
    for k in range(wy.shape[1]):
        out += tmp[np.minimum(fy + k, h_in - 1), :, :] * wy[:, k][:, None, None]
    return out.astype(np.float32)


def test_the_resampler_gives_the_same_bits_as_the_pixel_by_pixel_definition():
    """``resample`` gathers whole rows per tap (a photo's golden images and samples: half the time); every model
    input must stay bit for bit what the pixel-by-pixel loop gives: up, down, 1-pixel and odd sizes, every crop."""
    from packager.preprocessing import resample

    rng = np.random.default_rng(3)
    for trial in range(40):
        h, w = (int(v) for v in rng.integers(1, 600, 2))
        tw, th = (int(v) for v in rng.integers(1, 260, 2))
        img = rng.uniform(0, 255, (h, w, int(rng.choice([1, 3, 4])))).astype(np.float32)
        if trial % 2:
            img = np.rint(img)
        for crop in ("stretch", "center-crop", "letterbox"):
            g = crop_geometry(w, h, tw, th, crop)
            got, want = resample(img, g), _resample_pixel_by_pixel(img, g)
            assert got.dtype == want.dtype and got.shape == want.shape, (h, w, tw, th, crop)
            assert got.tobytes() == want.tobytes(), (h, w, tw, th, crop)


def test_crop_policies():
    assert crop_geometry(640, 480, 32, 32, "stretch") == crop_geometry(640, 480, 32, 32, "stretch")
    g = crop_geometry(640, 480, 32, 32, "center-crop")
    assert (g.x0, g.x1, g.y0, g.y1, g.cw, g.ch) == (80.0, 560.0, 0.0, 480.0, 32, 32)
    g = crop_geometry(480, 640, 30, 20, "center-crop")
    assert (g.x0, g.x1) == (0.0, 480.0) and g.y0 == pytest.approx(160.0) and g.y1 == pytest.approx(480.0)
    g = crop_geometry(640, 480, 32, 32, "letterbox")
    assert (g.cw, g.ch, g.ox, g.oy) == (32, 24, 0, 4)
    g = crop_geometry(3, 2000, 32, 32, "letterbox")  # never 0 pixels wide
    assert (g.cw, g.ch, g.ox) == (1, 32, 15)
    a = np.zeros((480, 640, 3), np.uint8)
    x = model_pixels(_opaque(a), 32, 32, 3, crop="letterbox", background=(10, 20, 30))
    assert np.array_equal(x[:4].reshape(-1, 3), np.tile([10, 20, 30], (4 * 32, 1)))  # the bars
    assert np.all(x[4:28] == 0)
    grey = model_pixels(_opaque(a), 32, 32, 1, crop="letterbox", background=(255, 255, 255))
    assert np.allclose(grey[0], 255.0, atol=1e-3) and grey.shape == (32, 32, 1)


def test_alpha_16_bit_palette_and_cmyk(photos, tmp_path):
    from PIL import Image

    folder, _ = photos
    # transparent: the background, never the hidden RGB (magenta under alpha ~0)
    rgba = decode_rgba(folder / "rgba.png")
    assert rgba[0, 0, 3] == 0 and tuple(rgba[0, 0, :3]) == (255, 0, 255)
    white = model_pixels(rgba, 90, 70, 3)
    black = model_pixels(rgba, 90, 70, 3, background=(0, 0, 0))
    assert np.all(white[:, 0] > 250) and np.all(black[:, 0] < 5)
    # 16-bit: scaled (high byte), not clipped
    g16 = decode_rgba(folder / "grey16.png")
    assert g16[..., 0].max() == 255 and (g16[..., 0] == 255).mean() < 0.01 and g16[..., 0].min() < 60
    rgb16 = decode_rgba(folder / "rgb16.png")
    assert (rgb16[..., :3] == 255).mean() < 0.05
    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert np.array_equal(decode_rgba(tmp_path / "ramp16.png")[..., 0], (ramp >> 8).astype(np.uint8))
    # palette with a transparent entry -> background there
    pal = decode_rgba(folder / "palette.png")
    assert (pal[..., 3] == 0).any() and (pal[..., 3] == 255).any()
    # CMYK: Pillow's conversion, (255-C)(255-K)/255
    cmyk = decode_rgba(folder / "cmyk.jpg")
    with Image.open(folder / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
        assert np.array_equal(cmyk[..., :3], np.asarray(im.convert("RGB")))
    # tiny and greyscale
    assert model_pixels(decode_rgba(folder / "tiny.png"), 32, 32, 3).shape == (32, 32, 3)
    g = decode_rgba(folder / "grey.jpg")
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 0], g[..., 2])


def test_settings_from_flags_and_packager_toml(tmp_path):
    from packager.config import build_spec

    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    (tmp_path / "s").mkdir()

    def spec(**flags):
        ns = argparse.Namespace(model=str(model), samples=str(tmp_path / "s"), out=str(tmp_path / "out"), **flags)
        return build_spec(ns)

    pre = spec().preprocessing
    assert (pre.crop, pre.background, pre.max_abs_diff) == ("stretch", (255, 255, 255), 1.0)
    pre = spec(crop="letterbox", background="#102030", preprocessing_max_diff=0.5).preprocessing
    assert (pre.crop, pre.background, pre.max_abs_diff) == ("letterbox", (16, 32, 48), 0.5)
    cfg = tmp_path / "packager.toml"
    cfg.write_text('[preprocessing]\ncrop = "center-crop"\nbackground = [0, 0, 0]\nmax_abs_diff = 2\n')
    pre = spec(config=str(cfg)).preprocessing
    assert (pre.crop, pre.background, pre.max_abs_diff) == ("center-crop", (0, 0, 0), 2.0)
    with pytest.raises(UsageError, match="crop policy"):
        spec(crop="centre")
    with pytest.raises(UsageError, match="background"):
        spec(background="#12345")
    with pytest.raises(UsageError, match="max_abs_diff"):
        spec(preprocessing_max_diff=-1.0)
    cfg.write_text('[preprocessing]\nbackground = [0, 0, 300]\n')
    with pytest.raises(UsageError, match="background"):
        spec(config=str(cfg))
    assert parse_background("black") == (0, 0, 0) and parse_background("1, 2, 3") == (1, 2, 3)


# ---- the same model input from the page and the Kotlin ----------------------------------------------------------

CASES = [  # width, height, channels, color, crop
    (224, 224, 3, "rgb", "stretch"),
    (40, 24, 3, "bgr", "center-crop"),
    (32, 32, 1, "grayscale", "letterbox"),
]


class _Samples:
    def __init__(self, files, w, h, c):
        self.image_paths = files

        class _Input:
            sample_shape = (1, h, w, c)

        self.inputs = [_Input()]


class _Spec:
    def __init__(self, pre):
        self.preprocessing = pre


def _kotlin_classes(tmp: Path, w: int, h: int, c: int, color: str, crop: str) -> Path:
    """The Android template's Preprocessing.kt rendered for this geometry and compiled (kotlinc)."""
    from packager.render import render_string
    from packager.targets.android.host import kotlinc_server

    tpl = REPO / "android_template/src/main/java/__package_path__/__class_name__Preprocessing.kt.j2"
    ctx = dict(display_name="t", package="t.pre", is_image=True, class_name="T", width=w, height=h, channels=c,
               color=color, mean=["0.0"] * c, std=["255.0"] * c, crop=crop, background=[255, 255, 255])
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "TPreprocessing.kt"
    src.write_text(render_string(tpl.read_text(encoding="utf-8"), ctx), encoding="utf-8")
    res = kotlinc_server.compile_kotlin([src], tmp / "classes")
    assert res.returncode == 0, res.output
    return tmp / "classes"


@pytest.mark.slow
def test_page_and_kotlin_give_pythons_model_input_on_original_photos(photos, tmp_path):
    from packager.targets.android.preprocessing_check import android_check
    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.preprocessing_check import web_check

    folder, kinds = photos
    files = sorted(folder.iterdir())
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "web_template/preprocess.js", site / "preprocess.js")
    (site / "index.html").write_text("<!doctype html><title>preprocess</title>", encoding="utf-8")
    measured = {}
    with StaticServer(site) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "index.html")
        for w, h, c, color, crop in CASES:
            pre = Preprocessing(color=color, crop=crop)
            samples, spec = _Samples(files, w, h, c), _Spec(pre)
            web = web_check(page, spec, samples, f"Chromium {browser.version}")
            kt = android_check(spec, samples, _kotlin_classes(tmp_path / f"kt{w}{c}", w, h, c, color, crop),
                                  "t.pre.TPreprocessing")
            for name, check in (("web", web), ("android", kt)):
                assert check.status == "PASS", check.detail
                assert check.data["files"] == len(files) and check.data["max_abs_diff"] <= 1.0, check.detail
                measured[f"{name} {w}x{h}x{c} {crop}"] = check.data["per_file"]
        # the gate can fail: no tolerance at all for the page's 8-bit premultiplied alpha
        strict = _Spec(Preprocessing(max_abs_diff=0.0))
        web = web_check(page, strict, _Samples([folder / "rgba.png"], 224, 224, 3))
        assert web.status == "FAIL" and 0 < web.data["max_abs_diff"] <= 1.0, web.detail
    print(json.dumps(measured, indent=1))  # the figures per image type (pytest -s shows them)


@pytest.mark.slow
def test_demo_build_with_photos_reports_preprocessing(photos, tmp_path):
    """`packager build` of the bundled demo with camera-like photos as its samples: android and web run their own
    image code on every original file and agree with Python within 1.0; ios runs the Python transcription of its
    rendered Swift preprocessing on every file (within 1.0 too) and stays UNVERIFIED: the Swift itself did not run."""
    from conftest import run_cli

    folder, kinds = photos
    out = tmp_path / "dist"
    r = run_cli("build", "--config", REPO / "packager/demo/packager.toml", "--samples", folder, "--out", out,
                "--targets", "android,web,ios", "--quantize", "android=fp32", "--quantize", "web=fp32",
                "--quantize", "ios=fp32", "--no-cache")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for t in ("android", "web"):
        pre = report["targets"][t]["preprocessing"]
        assert pre["files"] == len(kinds) and pre["max_abs_diff"] <= 1.0, (t, pre)
        assert pre["status"] == "PASS", (t, pre)
        print(t, pre["max_abs_diff"], pre["path"])
    ios = report["targets"]["ios"]["preprocessing"]
    assert ios["files"] == len(kinds) and ios["max_abs_diff"] <= 1.0, ios
    assert ios["status"] == "UNVERIFIED" and "Swift" in ios["path"], ios
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Image preprocessing on the original sample files" in html
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(t["status"] == "PASS" for t in report["targets"].values())
