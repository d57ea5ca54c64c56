"""Issue 17, privacy: the web bundle and the iOS package ship some of the user's samples; the console says so, and
--no-bundled-samples (or bundle_samples = false) ships none while the build still checks with them."""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

BUILD = ("--targets", "web,ios", "--quantize", "web=fp32", "--quantize", "ios=fp32", "--no-cache")


def _private_samples(image_folder: Path, dest: Path) -> Path:
    """The fixture's PNGs under names no packager file could contain by chance."""
    dest.mkdir()
    for i, p in enumerate(sorted(image_folder.glob("*.png"))):
        shutil.copyfile(p, dest / f"zq-private-holiday-{i}.png")
    return dest


def _needles(samples: Path) -> tuple[dict[str, bytes], list[np.ndarray]]:
    """Byte strings that would give a sample away (file bytes, name, raw and re-encoded pixels, base64 of its
    pixels and of its float32 tensor) and the samples' RGB pixels."""
    from PIL import Image

    needles, pixels = {}, []
    for p in sorted(samples.glob("*.png")):
        needles[f"{p.name} bytes"] = p.read_bytes()
        needles[f"{p.name} name"] = p.name.encode()
        needles[f"{p.name} stem"] = p.stem.encode()
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"), np.uint8)
        pixels.append(rgb)
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="PNG", optimize=False)
        needles[f"{p.name} re-encoded PNG"] = buf.getvalue()
        needles[f"{p.name} raw pixels"] = rgb.tobytes()
        needles[f"{p.name} base64 pixels"] = base64.b64encode(rgb.tobytes())
        x = (rgb.astype(np.float32) / 255.0)[None]
        needles[f"{p.name} base64 tensor"] = base64.b64encode(np.ascontiguousarray(x).tobytes())
        needles[f"{p.name} base64 tensor start"] = base64.b64encode(np.ascontiguousarray(x).tobytes())[:64]
    return needles, pixels


def _leaks(tree: Path, needles: dict[str, bytes], pixels: list[np.ndarray], values: list[str] = ()) -> list[str]:
    """Every file under ``tree`` that holds a needle, an image with a sample's pixels, or one of ``values``."""
    from PIL import Image

    found = []
    for f in sorted(p for p in tree.rglob("*") if p.is_file()):
        data = f.read_bytes()
        found += [f"{f.relative_to(tree)}: {what}" for what, needle in needles.items() if needle in data]
        found += [f"{f.relative_to(tree)}: golden value {v}" for v in values if v.encode() in data]
        try:
            with Image.open(io.BytesIO(data)) as im:
                rgb = np.asarray(im.convert("RGB"), np.uint8)
        except Exception:
            continue
        found += [f"{f.relative_to(tree)}: pixels of sample {i}" for i, s in enumerate(pixels)
                  if s.shape == rgb.shape and np.array_equal(s, rgb)]
    return found


def _checks(out: Path) -> tuple[dict, dict]:
    report = json.loads((out / "report.json").read_text())
    return report, {(t, c["name"]): c for t, r in report["targets"].items() for c in r["checks"]}


@pytest.mark.slow
def test_no_bundled_samples_ships_no_sample_data_and_still_checks(models, image_folder, tmp_path):
    samples = _private_samples(image_folder, tmp_path / "private")
    needles, pixels = _needles(samples)

    # Default: the samples ship, and the console says how many and how not to.
    default = tmp_path / "default"
    r = run_cli("build", models["keras"], "--samples", samples, "--out", default, *BUILD)
    assert r.returncode == 0, r.stderr + r.stdout
    n = len(list(samples.iterdir()))
    assert f"web: bundles {min(n, 12)} of your sample images in web/samples/" in r.stderr, r.stderr
    assert f"images made from {min(n, 4)} of your samples" in r.stderr and "ios: bundles " in r.stderr, r.stderr
    assert r.stderr.count("(--no-bundled-samples leaves them out)") == 2, r.stderr
    leaked = _leaks(default, needles, pixels)
    assert any(s.startswith("web/") for s in leaked) and any(s.startswith("ios/") for s in leaked), leaked
    golden = next((default / "ios").rglob("golden.json"))
    values = [json.dumps(v) for s in json.loads(golden.read_text())["samples"]
              for case in ("upright", "rotated") if case in s for e in s[case]["expected"].values() for v in e["values"]]
    assert values

    # --no-bundled-samples: nothing from the samples under OUT/web or OUT/ios; both targets still PASS.
    out = tmp_path / "private-out"
    # CI=true: a deliberate opt-out is not a missing tool, it does not fail a CI-mode build
    r = run_cli("build", models["keras"], "--samples", samples, "--out", out, "--no-bundled-samples", *BUILD,
                env={"CI": "true"})
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    assert "web: no sample data bundled in web/ (--no-bundled-samples)" in r.stderr, r.stderr
    assert "ios: no sample data bundled in ios/ (--no-bundled-samples)" in r.stderr, r.stderr
    assert _leaks(out / "web", needles, pixels, values) == []
    assert _leaks(out / "ios", needles, pixels, values) == []
    assert not (out / "web" / "samples").exists()
    assert not list((out / "ios").rglob("golden.json")) and not list((out / "ios").rglob("Resources"))

    report, checks = _checks(out)
    assert report["targets"]["web"]["status"] == "PASS" and report["targets"]["ios"]["status"] == "PASS", report
    image_path = checks[("web", "image_path")]
    assert image_path["status"] == "PASS" and "data: URLs" in image_path["detail"], image_path
    assert checks[("web", "console_errors")]["status"] == "PASS"
    golden_check = checks[("ios", "golden-samples")]
    assert golden_check["status"] == "UNVERIFIED", golden_check
    assert "no bundled samples (--no-bundled-samples)" in golden_check["detail"]
    assert checks[("ios", "swift-syntax")]["status"] in ("PASS", "SKIPPED")

    page = (out / "web" / "index.html").read_text()
    assert 'id="sample-strip"' not in page and 'id="sample-strip"' in (default / "web" / "index.html").read_text()
    config = json.loads(page.split('id="packager-page">', 1)[1].split("</script>", 1)[0])  # the page's own data
    assert config["samples"] == [] and config["samples_url"] is None
    swift_dir = out / "ios" / "Tests"
    test_swift = next(swift_dir.rglob("*Tests.swift")).read_text()
    assert "--no-bundled-samples" in test_swift and "golden.json" not in test_swift
    assert "Resources" not in (out / "ios" / "Package.swift").read_text()
    assert sorted(p.name for p in samples.iterdir()) == sorted(f"zq-private-holiday-{i}.png" for i in range(n))


def test_bundle_samples_config_key_and_flag_reach_the_spec_and_the_cache_key(models, image_folder, tmp_path):
    from packager.cache import build_key
    from packager.config import build_spec

    def spec(toml: str | None, flag: bool):
        cfg = None
        if toml is not None:
            cfg = tmp_path / "packager.toml"
            cfg.write_text(toml)
        args = argparse.Namespace(model=str(models["keras"]), samples=str(image_folder), out=str(tmp_path / "o"),
                                  config=str(cfg) if cfg else None, no_bundled_samples=flag)
        return build_spec(args)

    assert spec(None, False).bundle_samples is True
    assert spec(None, True).bundle_samples is False
    assert spec("bundle_samples = false\n", False).bundle_samples is False
    assert spec("bundle_samples = true\n", True).bundle_samples is False  # the flag wins
    assert build_key(spec(None, False)) != build_key(spec(None, True))


def test_bundle_samples_must_be_a_boolean(models, image_folder, tmp_path):
    cfg = tmp_path / "packager.toml"
    cfg.write_text(f'model = {str(models["keras"])!r}\nsamples = {str(image_folder)!r}\nbundle_samples = "no"\n')
    out = tmp_path / "out"
    r = run_cli("build", "--config", cfg, "--out", out)
    assert r.returncode == 2, r.stderr + r.stdout
    assert "bundle_samples must be boolean" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def _tensor_needles(rows: np.ndarray) -> dict[str, bytes]:
    """A tensor sample set's giveaways: each row's float32 bytes and their base64 (as samples.json writes them),
    and each value as JSON writes it (as golden.json does)."""
    needles = {}
    for i, row in enumerate(rows):
        raw = np.ascontiguousarray(row[None], np.float32).tobytes()
        needles[f"row {i} bytes"] = raw
        needles[f"row {i} base64"] = base64.b64encode(raw)[:24]
        for j, v in enumerate(row):
            needles[f"row {i} value {j}"] = json.dumps(float(v)).encode()
    return needles


@pytest.mark.slow
def test_no_bundled_samples_with_tensor_samples(models, tmp_path):
    rows = np.load(models["features_npy"])
    needles = _tensor_needles(rows)
    default = tmp_path / "default"
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--out", default, *BUILD)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "web: bundles 12 of your sample inputs (samples.json)" in r.stderr, r.stderr
    ios_line = next(line for line in r.stderr.splitlines() if "ios: bundles " in line)
    assert re.search(r"ios: bundles \d+ of your sample inputs \(as given;", ios_line) and "EXIF" not in ios_line, ios_line
    assert _leaks(default / "web", needles, []) and _leaks(default / "ios", needles, [])  # the scan can find them

    out = tmp_path / "out"
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--out", out,
                "--no-bundled-samples", *BUILD)
    assert r.returncode == 0, r.stderr + r.stdout
    assert _leaks(out / "web", needles, []) == [] and _leaks(out / "ios", needles, []) == []
    report, checks = _checks(out)
    assert report["targets"]["web"]["status"] == "PASS" and report["targets"]["ios"]["status"] == "PASS", report
    assert checks[("ios", "golden-samples")]["status"] == "UNVERIFIED"
    assert checks[("web", "console_errors")]["status"] == "PASS"
    page = (out / "web" / "index.html").read_text()
    assert "no sample inputs were bundled" in page and 'id="sample-strip"' not in page
