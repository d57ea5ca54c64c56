"""A new deployment fetches only what changed: the service worker precaches each file under its own content hash,
so when one file of a deployed bundle changes, the new service worker's install downloads that file alone (before:
every precached file again). Real bundle, real Chromium, a plain http.server that records what it is asked for."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import pytest
from test_web_target import image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow


class Recorded(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):
        Recorded.requested.append(self.path)


def test_a_new_deployment_downloads_only_the_changed_file(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import chromium
    from packager.targets.web.bundle import write_service_worker

    _, _, web = rendered(image_case, "fp32", tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Recorded, directory=str(web)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(url)
            page.evaluate("() => window.packager.ready")
            page.evaluate("() => window.packager.serviceWorker")
            page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
            first = Recorded.requested[:]
            Recorded.requested.clear()
            # the next deployment: one file changed, sw.js rebuilt as the build does
            (web / "results.js").write_text((web / "results.js").read_text() + "\n// v2\n")
            write_service_worker(web, "sw.js.j2", "tfjs", {})
            page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => r.update())")
            page.wait_for_function("""async () => {
                const r = await navigator.serviceWorker.getRegistration();
                return r.active && !r.installing && !r.waiting && r.active.scriptURL.endsWith("sw.js") &&
                    (await (await fetch("results.js")).text()).endsWith("// v2\\n");
            }""", timeout=30_000)
            # the server thread may log the install's request a moment after the page sees the new file
            deadline = time.monotonic() + 5
            while "/results.js" not in Recorded.requested and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            second = Recorded.requested[:]
    finally:
        server.shutdown()
    assert len([p for p in first if p.split("?")[0] not in ("/sw.js", "/favicon.ico")]) > 5, first
    fetched = sorted({p.split("?")[0] for p in second} - {"/sw.js"})
    assert fetched == ["/results.js"], (first, second)
