"""report.html: self-contained (no CDN, no external file), rendered by the one render module."""

from __future__ import annotations

from pathlib import Path

from packager.render import render_string

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def render_report_html(report, labels: tuple[str, ...] = (), thumbnails: dict[int, str] | None = None) -> str:
    data = report.to_json()
    return render_string(TEMPLATE.read_text(encoding="utf-8"),
                         {"r": data, "labels": list(labels), "thumbs": thumbnails or {}})


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
