"""report.html opens offline in headless Chromium, shows every target, and is saved as a screenshot
(tests/artifacts/report.png) for a person to look at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow


def test_report_html_renders_in_chromium(tmp_path):
    from packager.targets.web.browser.chromium import StaticServer, chromium

    out = tmp_path / "demo"
    r = run_cli("demo", "--out", out, "--quantize", "android=auto")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch
    shot = REPO / "tests" / "artifacts" / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with StaticServer(out) as server, chromium() as browser:
        url = server.url + "report.html"
        page = browser.new_page()
        page.on("request", lambda req: requests.append(req.url))
        page.goto(url)
        text = page.inner_text("body")
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of report.html: {shot}")
    assert requests == [url]  # no other file, no CDN
    for name, t in report["targets"].items():
        assert name in text and t["status"] in text
    assert "Absolute errors" in text and "original (rows) vs converted (columns)" in text
    assert "Quantization modes tried" in text  # --quantize android=auto lists its tries
    assert Path(shot).stat().st_size > 10_000
