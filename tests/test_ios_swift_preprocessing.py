"""The Swift preprocessing, where no Swift runs: (1) the rendered ``<Name>Preprocessing.swift`` transcribed into
Python from its own constants equals packager.preprocessing on camera-like photos (EXIF, alpha, 16-bit, large) within
one level, and a mutated constant breaks that; (2) the XCTest's golden expectations bite: the golden computation
re-run in Python on mutated preprocessing (BGR swap, wrong mean, no alpha composite) fails the XCTest's assertions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from photos import make_photos

from packager import preprocessing as pp
from packager.render import render_string, template_dir
from packager.targets.ios import swift_preprocessing as sp

HERE = Path(__file__).parent
TEMPLATE = template_dir("ios") / "Sources" / "__name__" / "__name__Preprocessing.swift.j2"


def _swift(width: int, height: int, channels: int, crop: str, background=(255, 255, 255)) -> str:
    return render_string(TEMPLATE.read_text(encoding="utf-8"), {
        "name": "Tiny", "packager_version": "test", "display_name": "Tiny", "is_image": True,
        "image_size": [width, height], "channels": channels, "crop_policy": crop, "background": list(background)})


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    make_photos(folder, big=(640, 480), huge=(2016, 1512))
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _worst(photos, c: dict, crop: str, background) -> tuple[float, str]:
    worst, where = 0.0, ""
    for path in photos:
        ours = pp.model_pixels(pp.decode_rgba(path), c["width"], c["height"], c["channels"], color="rgb", crop=crop,
                               background=background)
        d = pp.max_abs_diff(sp.file_pixels(path, c), ours)
        if d > worst:
            worst, where = d, path.name
    return worst, where


@pytest.mark.parametrize("crop,channels", [("stretch", 3), ("center-crop", 3), ("letterbox", 1)])
def test_swift_transcription_equals_packager_preprocessing(photos, crop, channels):
    from packager.targets.ios import swift_syntax

    background = (20, 200, 90)
    swift = _swift(40, 28, channels, crop, background)
    assert swift_syntax.parse_errors(swift) == []
    c = sp.constants(swift)
    assert (c["width"], c["height"], c["channels"], c["cropPolicy"]) == (40, 28, channels, crop)
    assert c["background"] == list(background) and c["compositesAlpha"] and c["bufferChannelOffsets"] == [2, 1, 0]
    kinds = {p.name for p in photos}
    assert {"orient6.jpg", "rgba.png", "rgb16.png", "grey16.png"} <= kinds and any("huge" in k for k in kinds)
    worst, where = _worst(photos, c, crop, background)
    assert worst <= 0.5 + 1e-6, (worst, where)  # the 8-bit pixel buffer's rounding, nothing else
    # the comparison bites: each of these Swift constants, mutated, moves some photo by more than a level
    for old, new in (("compositesAlpha: Bool = true", "compositesAlpha: Bool = false"),
                     ("antialiased: Bool = true", "antialiased: Bool = false"),
                     ("luma: [Double] = [0.299, 0.587, 0.114]", "luma: [Double] = [0.333, 0.333, 0.334]")
                     if channels == 1 else ("bufferChannelOffsets: [Int] = [2, 1, 0]",
                                            "bufferChannelOffsets: [Int] = [0, 1, 2]")):
        assert old in swift
        bad, _ = _worst(photos, sp.constants(swift.replace(old, new)), crop, background)
        assert bad > 1.0, (new, bad)


# ---------------------------------------------------------------------- the golden expectations bite


keras = pytest.importorskip("keras")
pytest.importorskip("coremltools")


@pytest.fixture(scope="module")
def demo_package(tmp_path_factory):
    """The demo's trained shapes classifier and its sample files, rendered as the iOS package (8-bit weights)."""
    from test_ios_target import _build

    from packager.spec import Preprocessing
    from packager.targets.ios.target import IOSTarget

    demo = HERE.parent / "packager" / "demo"
    tmp = tmp_path_factory.mktemp("demo")
    labels = tuple((demo / "labels.txt").read_text().split())
    spec, source, samples, ref, work = _build(tmp, keras.models.load_model(demo / "model.keras"),
                                              samples=demo / "samples", labels=labels,
                                              preprocessing=Preprocessing(mean=(127.5,), std=(127.5,)))
    target = IOSTarget()
    art = target.convert(source, spec, "8bit", work)
    target.predict(art, source, spec, samples)
    target.reference_extras(spec, source, samples, ref)
    out = tmp / "ios"
    target.render(spec, source, art, samples, ref, out)
    checks = {c.name: c for c in target.checks(spec, source, art, samples, ref, out)}
    return spec, source, out, checks


def _xctest_failures(spec, source, out: Path, mutate: tuple[str, str] | None = None, mean_shift: float = 0.0):
    """The XCTest's assertions (values within the .cpuOnly tolerance; top-1 where `top1`) against the golden
    computation re-run here: the golden files through the (possibly mutated) Swift preprocessing, the model's own
    scale/bias ((v - mean) / std, mean shifted by `mean_shift`), the original model."""
    swift = sp.source_file(out, spec.identifier).read_text(encoding="utf-8")
    if mutate:
        assert mutate[0] in swift
        swift = swift.replace(*mutate)
    c = sp.constants(swift)
    res = out / "Tests" / f"{spec.identifier}Tests" / "Resources"
    golden = json.loads((res / "golden.json").read_text(encoding="utf-8"))
    tol = golden["tolerance"]["cpuOnly"]
    mean, std = spec.preprocessing.per_channel(3)
    failures = []
    for s in golden["samples"]:
        stored = _stored(res / s["image"])
        for case in ("upright", "rotated"):
            px = sp.core_ml_pixels(sp.model_pixels(stored, s[case]["orientation"], c), c)
            x = pp.normalise(px, np.asarray(mean) + mean_shift, std)[None]
            got = np.asarray(source.predict({source.inputs[0].name: x})["output_0"]).reshape(-1)
            want = np.asarray(s[case]["expected"]["output_0"]["values"])
            if np.abs(got - want).max() > tol:
                failures.append(f"{s['image']} {case}: max error {np.abs(got - want).max():.3g} > {tol:.3g}")
            if s[case]["top"]["top1"] and golden["labels"][int(got.argmax())] != s[case]["top"]["labels"][0]:
                failures.append(f"{s['image']} {case}: top-1 {golden['labels'][int(got.argmax())]}")
    return failures


def _stored(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return pp.to_rgba8(im)


def test_golden_expectations_bite_on_mutated_swift_preprocessing(demo_package):
    spec, source, out, checks = demo_package
    data = checks["golden-samples"].data
    assert data["top1_asserted_fraction"] >= 0.75, checks["golden-samples"].detail
    assert _xctest_failures(spec, source, out) == []  # the package as rendered passes its own XCTest's assertions
    mutations = {
        "BGR swap": dict(mutate=("bufferChannelOffsets: [Int] = [2, 1, 0]", "bufferChannelOffsets: [Int] = [0, 1, 2]")),
        "no alpha composite": dict(mutate=("compositesAlpha: Bool = true", "compositesAlpha: Bool = false")),
        "wrong mean": dict(mean_shift=-30.0),
    }
    for what, kw in mutations.items():
        failures = _xctest_failures(spec, source, out, **kw)
        assert failures, f"{what}: the XCTest's expectations would still pass"
    assert any("alpha.png" in f for f in _xctest_failures(spec, source, out, **mutations["no alpha composite"]))
    pre = checks["preprocessing"]
    assert pre.data["max_abs_diff"] <= 0.5 and "transcribed into Python" in pre.detail
