"""The demo page by keyboard, on a phone-sized screen, and with a camera: real key presses, a fake camera device
(Chromium's --use-fake-device-for-media-stream), the real page in headless Chromium."""

from __future__ import annotations

import pytest
from test_web_target import LABELS, image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow

FAKE_CAMERA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def _tab_to(page, element_id: str, limit: int = 20) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_keyboard_only_choose_a_file_and_hear_the_result(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, spec, source, samples, reference = image_case
    _, _, out = rendered(image_case, "fp32", tmp_path)
    with StaticServer(out, prefix="/demo/") as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 700}, is_mobile=True, has_touch=True)
        page.goto(server.url)
        page.evaluate("() => window.packager.ready")
        zone = page.get_by_role("button", name="Choose an image, or drop one here")
        assert zone.count() == 1
        # sample buttons say which sample they are (they were only "Sample N")
        for i, p in enumerate(samples.image_paths):
            assert page.get_by_role("button", name=f"Sample {i + 1}: {p.name}", exact=True).count() == 1
        status = page.locator("#status")
        assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
        choosers = []
        page.on("filechooser", lambda chooser: choosers.append(chooser))  # intercepts choosers from now on (expect_file_chooser races)
        page.wait_for_timeout(200)
        for key in ("Enter", " "):
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            _tab_to(page, "drop-zone")
            before = len(choosers)
            page.keyboard.press(key)
            for _ in range(50):
                if len(choosers) > before:
                    break
                page.wait_for_timeout(100)
            assert len(choosers) == before + 1, f"{key!r} on the drop zone opened no file chooser"
            choosers[-1].set_files(str(samples.image_paths[0]))
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Result: ')")
            top_label = page.locator("#results .label").first.text_content()
            announced = status.text_content()
            assert announced.startswith(f"Result: {top_label}, ") and announced.endswith(" %"), announced
            assert top_label in LABELS
            # the answer is on screen (the phone-sized viewport puts the result below the inputs)
            page.wait_for_timeout(300)
            box = page.locator("#results").bounding_box()
            assert box is not None and box["y"] < 700 and box["y"] + min(box["height"], 50) > 0, box
            page.evaluate("() => window.scrollTo(0, 0)")
        # files dropped outside the zone do not navigate away
        url = page.url
        page.evaluate("""() => { const dt = new DataTransfer(); dt.items.add(new File(["x"], "x.png"));
                                 document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true,
                                                                                     cancelable: true})); }""")
        assert page.url == url


def test_camera_starts_stops_releases_on_page_hide_and_runs_live(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, _, out = rendered(image_case, "fp32", tmp_path)
    with StaticServer(out) as server, chromium(extra_args=FAKE_CAMERA) as browser:
        context = browser.new_context()
        context.grant_permissions(["camera"])
        page = context.new_page()
        page.goto(server.url)
        page.evaluate("() => window.packager.ready")
        button = page.locator("#camera-button")
        button.click()
        page.wait_for_function("() => document.getElementById('camera').srcObject !== null")
        # its name says what it does; not also a toggle (aria-pressed + a new name were announced twice)
        assert button.get_attribute("aria-pressed") is None and button.text_content() == "Stop the camera"
        page.evaluate("() => { window.__track = document.getElementById('camera').srcObject.getVideoTracks()[0]; }")
        assert page.evaluate("() => window.__track.readyState") == "live"
        # single capture
        page.locator("#capture-button").click()
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Result: ')")
        # stop: the track ends, the video is released
        button.click()
        assert page.evaluate("() => window.__track.readyState") == "ended"
        assert page.evaluate("() => document.getElementById('camera').srcObject") is None
        assert page.locator("#capture-button").is_hidden() and page.locator("#live-button").is_hidden()
        # start again, then the page is hidden: released as well
        button.click()
        page.wait_for_function("() => document.getElementById('camera').srcObject !== null")
        page.evaluate("() => { window.__track = document.getElementById('camera').srcObject.getVideoTracks()[0]; }")
        # live mode: results keep coming while it is on
        page.locator("#live-button").click()
        assert page.locator("#live-button").get_attribute("aria-pressed") == "true"
        first = page.evaluate("() => window.packager.lastResult")
        page.wait_for_function("(r) => window.packager.lastResult !== null && "
                               "JSON.stringify(window.packager.lastResult.ms) !== JSON.stringify(r && r.ms)", arg=first)
        assert page.locator("#status").text_content().startswith("Live: ")
        page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))")
        assert page.evaluate("() => window.__track.readyState") == "ended"
        assert page.locator("#live-button").get_attribute("aria-pressed") == "false"
        assert button.get_attribute("aria-pressed") is None and button.text_content() == "Start the camera"
        # after Stop the status no longer says "Live: ...", even when a frame in flight finishes afterwards
        page.wait_for_timeout(600)
        assert page.locator("#status").text_content() == "Camera stopped.", page.locator("#status").text_content()
        context.close()


def test_nothing_shifts_while_the_page_loads_on_a_phone(image_case, tmp_path):  # noqa: F811
    """Layout shifts (Chromium's layout-shift entries, Lighthouse's CLS) from the first paint until the model is
    loaded, on a narrow phone screen: the sample buttons are in the HTML and the status line keeps its height when
    "Loading the model..." becomes the longer "Model loaded (...)". Before: both moved the result section (CLS
    0.092 on the demo)."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, _, out = rendered(image_case, "fp32", tmp_path)
    with StaticServer(out) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
        page.add_init_script("""window.__shifts = [];
            new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__shifts.push(
              {value: e.value, input: e.hadRecentInput,
               nodes: e.sources.map((s) => s.node && (s.node.id || s.node.nodeName))}); })
              .observe({type: "layout-shift", buffered: true});""")
        page.goto(server.url)
        assert page.evaluate("() => window.packager.ready") == "wasm"
        page.wait_for_timeout(500)
        shifts = page.evaluate("() => window.__shifts")
        # measured: 0.002 (the header's backend name filled in); 0.044 with the buttons added by app.js and a
        # one-line status box
        assert sum(s["value"] for s in shifts) < 0.01, shifts
