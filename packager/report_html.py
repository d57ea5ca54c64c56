"""report.html: self-contained (no CDN, no external file), rendered by the one render module."""

from __future__ import annotations

from pathlib import Path

from packager.render import render_string

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def render_report_html(report, labels: tuple[str, ...] = (), thumbnails: dict[int, str] | None = None,
                       pictures: dict | None = None) -> str:
    data = report.to_json()
    return render_string(TEMPLATE.read_text(encoding="utf-8"),
                         {"r": data, "labels": list(labels), "thumbs": thumbnails or {}, "pictures": pictures or {}})


MAX_THUMBNAILS = 24


def thumbnails(samples, results: dict) -> dict[int, str]:
    """PNG data URIs of the image samples some target disagrees on (upright: EXIF orientation applied, as the
    preprocessing does), for report.html."""
    if samples.image_paths is None:
        return {}
    import base64
    import io

    from PIL import Image, ImageOps

    wanted = sorted({i for r in results.values() for i in r.disagreements})[:MAX_THUMBNAILS]
    out = {}
    for i in wanted:
        with Image.open(samples.image_paths[i]) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((64, 64))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
        out[i] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return out


PICTURE_SIDE = 96  # px: each picture of report.html's image-output rows


def _png_uri(a) -> str:
    """HxWx(1|3) uint8 -> a PNG data URI, scaled (nearest: a tiny map stays sharp) to at most PICTURE_SIDE."""
    import base64
    import io

    from PIL import Image

    im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a, "L" if a.shape[-1] == 1 else "RGB")
    scale = PICTURE_SIDE / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                   Image.NEAREST if scale >= 1 else Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _levels(a, lo: float, hi: float):
    import numpy as np

    a = np.asarray(a, np.float64)[..., :3]  # RGBA maps shown without their alpha (it could hide everything)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo if hi > lo else 1.0))), 0, 255).astype(np.uint8)


def output_pictures(spec, source, samples, reference: dict, results: dict) -> dict:
    """report.html's pictures of image outputs (kinds.py "image"): per target, per output, its worst samples as
    [input, the original model's map, the target's map, |difference| x10], PNG data URIs on one scale per sample
    (0..1 maps as they are; others from the original map's min..max)."""
    import numpy as np

    from packager.preprocessing import display_pixels

    out: dict = {}
    image_in = next((t for t in source.inputs if len(t.shape) == 4 and t.shape[-1] in (1, 3)), None)
    for target, result in results.items():
        for name, maps in (getattr(result, "output_maps", None) or {}).items():
            rows = []
            for i, got in maps.items():  # worst first
                ref = np.asarray(reference[name][i], np.float64)
                lo, hi = (0.0, 1.0) if ref.min() >= 0 and ref.max() <= 1 else (float(ref.min()), float(ref.max()))
                diff = np.abs(np.asarray(got, np.float64) - ref)
                row = {"index": int(i), "original": _png_uri(_levels(ref, lo, hi)),
                       "target": _png_uri(_levels(got, lo, hi)),
                       "diff": _png_uri(_levels(diff * 10, 0.0, hi - lo if hi > lo else 1.0)),
                       "mae": float(diff.mean()), "max": float(diff.max())}
                if image_in is not None:
                    px = display_pixels(np.asarray(samples[i][image_in.name])[0], spec.preprocessing)
                    if px.shape[-1] == 3 and spec.preprocessing.color == "bgr":
                        px = px[..., ::-1]
                    row["input"] = _png_uri(np.clip(np.rint(px), 0, 255).astype(np.uint8))
                rows.append(row)
            out.setdefault(target, {})[name] = rows
    return out
