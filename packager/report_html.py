"""report.html: self-contained (no CDN, no external file), rendered by the one render module."""

from __future__ import annotations

from pathlib import Path

from .render import render_string

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def render_report_html(report, labels: tuple[str, ...] = (), thumbnails: dict[int, str] | None = None) -> str:
    data = report.to_json()
    return render_string(TEMPLATE.read_text(encoding="utf-8"),
                         {"r": data, "labels": list(labels), "thumbs": thumbnails or {}})
