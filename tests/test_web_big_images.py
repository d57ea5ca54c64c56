"""A huge image must not freeze the page: a 20000x20000 PNG (1.2 MB file) given to the demo page's predictImage is
refused from its header, with a message saying why, and no main-thread task over 200 ms (Chromium's own Long Tasks
API). Real Chromium, real bundle."""

from __future__ import annotations

import struct
import zlib

import pytest
from test_web_target import image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow


def black_png(path, width: int, height: int) -> None:
    """An RGB PNG of black pixels, written row by row (never the whole image in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)  # filter byte 0, then the row
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_20000_square_png_is_refused_without_a_long_task(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, _, web = rendered(image_case, "uint8", tmp_path)
    black_png(web / "huge.png", 20000, 20000)
    assert (web / "huge.png").stat().st_size < 2_000_000
    with StaticServer(web) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url)
        page.evaluate("() => window.packager.ready")
        result = page.evaluate("""async () => {
            const blob = await (await fetch("huge.png")).blob();
            const long = [];
            const observer = new PerformanceObserver((list) => long.push(...list.getEntries().map((e) => e.duration)));
            observer.observe({ type: "longtask" });
            let message = null;
            try { await window.packager.predictImage(blob); } catch (e) { message = e.message; }
            await new Promise((r) => setTimeout(r, 300));  // let the observer report
            observer.disconnect();
            return { message, long };
        }""")
    assert result["message"] is not None and result["message"].startswith("the image is 20000\u00d720000 pixels")
    assert "over the 50 MP" in result["message"]
    assert all(d <= 200 for d in result["long"]), result["long"]
