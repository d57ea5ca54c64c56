"""Loading the model over bad links, in real Chromium: a link throttled by Chromium itself (DevTools network
emulation) that keeps delivering loads however long it takes; a link that stops delivering fails after the stall
limit with a message saying so; the demo page recovers from a failed load with its Retry button."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from contextlib import contextmanager

import pytest
from test_web_module import CONSUMER
from test_web_target import LABELS, image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow

STALL_MS = 1500
TRICKLE = (400, 0.25)  # bytes, seconds: a link that keeps delivering, slowly


class _TricklingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the model's files (model.json, weight shards) TRICKLE[0] bytes at a time, TRICKLE[1] s apart."""

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        if not self.path.split("?")[0].endswith((".json", ".bin")):
            return super().copyfile(source, outputfile)
        while chunk := source.read(TRICKLE[0]):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(TRICKLE[1])


@contextmanager
def trickling_server(root):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_TricklingHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_slow_link_loads_and_a_stalled_one_fails_with_a_clear_message(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium

    site = tmp_path / "site"
    _, _, web = rendered(image_case, "fp32", tmp_path, site / "web")
    (site / "app").mkdir()
    (site / "app" / "index.html").write_text(CONSUMER.replace("window.loaded = model.load();", ""))
    model_bytes = (web / "model.json").stat().st_size + sum(p.stat().st_size for p in web.glob("group1-*.bin"))
    with StaticServer(site) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "app/index.html")
        page.wait_for_function("() => window.model !== undefined")
        page.evaluate("() => import('../web/tfjs/tf-runtime.js')")  # the runtime in the module map, unthrottled

        held = []
        page.route("**/web/model.json", lambda route: held.append(route))  # never answered: the link stalls
        t0 = time.monotonic()
        failed = page.evaluate(f"""() => window.model.load({{timeoutMs: {STALL_MS}, backends: ['cpu']}})
                                   .then(() => 'loaded', (e) => e.message)""")
        assert failed.startswith(f"loading the model stalled: no progress for {STALL_MS / 1000} s")
        assert time.monotonic() - t0 < 10 * STALL_MS / 1000
        assert len(held) == 1

    # The same files over a link that trickles them (~4 s in all, a chunk every 0.25 s): loads, although the
    # whole download takes longer than the stall limit (a total-time limit would fail it).
    model_json = (web / "model.json").stat().st_size
    with trickling_server(site) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url + "app/index.html")
        page.wait_for_function("() => window.model !== undefined")
        page.evaluate("() => import('../web/tfjs/tf-runtime.js')")
        t0 = time.monotonic()
        loaded = page.evaluate(f"""async () => {{
            window.progress = [];
            return window.model.load({{timeoutMs: {STALL_MS}, backends: ['cpu'],
                                       onProgress: (p) => window.progress.push(p)}});
        }}""")
        elapsed = time.monotonic() - t0
        progress = page.evaluate("() => window.progress")
        assert loaded["backend"] == "cpu"
        assert elapsed > 2 * STALL_MS / 1000, (elapsed, model_bytes)
        downloads = [p["loaded"] for p in progress if p["step"] == "model.json"]
        assert len(downloads) >= model_json // TRICKLE[0] // 2 and downloads == sorted(downloads)
        assert downloads[-1] == model_json
        assert progress[-1]["step"] == "warmed up on cpu"
        assert page.evaluate("() => window.model.labels") == list(LABELS)


def test_the_demo_page_recovers_with_retry_after_a_failed_load(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, _, web = rendered(image_case, "uint8", tmp_path)
    with StaticServer(web) as server, chromium() as browser:
        page = browser.new_page()
        # model.json missing on the server (not page.route: the model's requests come from the page's Worker, which
        # Playwright's interception may attach to only after its first request)
        (web / "model.json").rename(web / "model.json.away")
        page.goto(server.url)
        page.wait_for_function("() => window.packager && window.packager.error !== null", timeout=60_000)
        assert page.locator("#status").text_content().startswith("The model failed to load")
        retry = page.locator("#retry")
        assert retry.is_visible()
        (web / "model.json.away").rename(web / "model.json")
        retry.click()
        assert page.evaluate("() => window.packager.ready") == "wasm"
        assert page.evaluate("() => window.packager.error") is None
        assert not retry.is_visible() and not page.locator("#load-progress").is_visible()
        assert "Model loaded" in page.locator("#status").text_content()
        page.locator("#sample-strip button").first.click()
        page.wait_for_function("() => document.querySelectorAll('#results li').length > 0")


class _MinuteLinkHandler(http.server.SimpleHTTPRequestHandler):
    """Serves model.json over MINUTE_LINK["model.json"] seconds and each weight shard over MINUTE_LINK["shard"]
    seconds, in ~200 chunks evenly spaced (bytes keep arriving, a fraction of a second apart); the rest at once."""

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        path = self.path.split("?")[0]
        seconds = MINUTE_LINK["model.json"] if path.endswith("model.json") else \
            MINUTE_LINK["shard"] if path.endswith(".bin") else 0
        if not seconds:
            return super().copyfile(source, outputfile)
        data = source.read()
        step = max(1, len(data) // 200)
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        for chunk in chunks:
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(seconds / len(chunks))


# model.json, then its shards (fetched once model.json is read): over a minute in all, each file longer than the
# page's real stall limit (STALL_TIMEOUT_MS, 30 s), and no gap near it
MINUTE_LINK = {"model.json": 34.0, "shard": 31.0}


def test_the_demo_page_loads_over_a_link_slower_than_a_minute(image_case, tmp_path):  # noqa: F811
    """The page as shipped (its own load(), the real 30 s stall limit, no option changed): the model's files take
    over a minute to arrive and it loads, its progress bar moving meanwhile. Before the stall timeout the 60 s
    limit counted the whole download and such a model could never load."""
    from packager.targets.web.browser.chromium import chromium

    _, _, web = rendered(image_case, "fp32", tmp_path)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_MinuteLinkHandler, directory=str(web)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            # no service worker: its precache would fetch the shards alongside model.json and shorten the wait
            page = browser.new_context(service_workers="block").new_page()
            t0 = time.monotonic()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
            assert page.evaluate("() => import('./model.js').then((m) => m.STALL_TIMEOUT_MS)") == 30000
            page.wait_for_function("() => document.getElementById('load-progress').value > 0", timeout=60_000)
            assert page.locator("#load-progress").is_visible()
            assert page.evaluate("() => window.packager.error") is None
            backend = page.evaluate("() => window.packager.ready")
            elapsed = time.monotonic() - t0
            assert backend == "wasm" and page.evaluate("() => window.packager.error") is None
            assert elapsed > 60, elapsed
            assert "Model loaded" in page.locator("#status").text_content()
            page.locator("#sample-strip button").first.click()
            page.wait_for_function("() => document.querySelectorAll('#results li').length > 0")
    finally:
        httpd.shutdown()
        httpd.server_close()
