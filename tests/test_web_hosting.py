"""The web bundle where it is deployed: under a sub-path (GitHub Pages /repo/, an app's /demo/), on a
cross-origin-isolated host (COOP/COEP headers), and served from the origin's root. Real build through the CLI,
real page in headless Chromium; the page must load its model and predict like the build's own check did."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow

HOSTS = {
    "root": {"prefix": "/", "isolated": False},
    "sub-path": {"prefix": "/my-app/demo/", "isolated": False},
    "isolated sub-path": {"prefix": "/x/", "isolated": True},
}


@pytest.fixture(scope="module")
def bundle(models, image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("hosting") / "out"
    r = run_cli("build", models["keras"], "--samples", image_folder, "--targets", "web", "--out", out, "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.mark.parametrize("host", list(HOSTS))
def test_page_loads_and_predicts_wherever_it_is_served(bundle, host):
    from packager.targets.web.browser.chromium import ISOLATION_HEADERS, StaticServer, chromium_profile
    from packager.targets.web.target import PageSession

    prefix, isolated = HOSTS[host]["prefix"], HOSTS[host]["isolated"]
    failed: list[str] = []
    with StaticServer(bundle / "web", prefix=prefix, headers=ISOLATION_HEADERS if isolated else None) as server, \
            chromium_profile() as context:
        session = PageSession(context, server.url)
        session.page.set_default_timeout(90_000)
        session.page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        backend = session.open()
        assert backend == "wasm"
        assert session.page.evaluate("() => self.crossOriginIsolated") is isolated
        sample = np.linspace(0, 1, 8 * 8 * 3, dtype=np.float32).reshape(1, 8, 8, 3)
        outputs, _ = session.predict({"image": sample})
        assert failed == [] and session.errors == []
        # every request stayed under the prefix (nothing fetched from the origin's root)
        urls = session.page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
        assert urls and all(u.startswith(server.url) for u in urls), urls
    (probs,) = outputs.values()
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1) < 1e-4
    # the page's answer is the original model's (within the uint8 gate the build applied)
    report = json.loads((bundle / "report.json").read_text())
    assert report["targets"]["web"]["status"] == "PASS"


def test_no_threaded_wasm_binary_is_shipped(bundle):
    """Threads are off (see app.js), so the threaded-SIMD binary (~750 KB) would never be fetched."""
    shipped = {p.name for p in (bundle / "web").rglob("*.wasm")}
    assert shipped and not any("threaded" in n for n in shipped), shipped


def test_outside_the_prefix_is_not_served(bundle):
    import urllib.error
    import urllib.request

    from packager.targets.web.browser.chromium import StaticServer

    with StaticServer(bundle / "web", prefix="/demo/") as server:
        base = f"http://127.0.0.1:{server.port}"
        assert urllib.request.urlopen(base + "/demo/model.json").status == 200
        for path in ("/model.json", "/demo/../model.json", "/demox/model.json"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + path)
            assert e.value.code == 404, path
        # "/demo" without its slash redirects, so the page's relative URLs resolve under it
        assert urllib.request.urlopen(base + "/demo").url.endswith("/demo/")


def test_two_demos_on_one_origin_are_two_apps(bundle, tmp_path):
    """Installed, a PWA is known by its manifest id, which Chromium resolves against the origin: two demos under
    /a/ and /b/ of one host must get two ids (Chromium's own, from CDP Page.getAppId), each its own start URL."""
    import shutil

    from packager.targets.web.browser.chromium import StaticServer, chromium

    site = tmp_path / "site"
    for sub in ("a", "b"):
        shutil.copytree(bundle / "web", site / sub)
    ids = {}
    with StaticServer(site) as server, chromium() as browser:
        base = server.url
        for sub in ("a", "b"):
            page = browser.new_page()
            page.goto(base + sub + "/")
            page.wait_for_function("() => window.packager && window.packager.backend !== null", timeout=60_000)
            cdp = page.context.new_cdp_session(page)
            ids[sub] = cdp.send("Page.getAppId")["appId"]
            page.close()
    assert ids == {"a": base + "a/", "b": base + "b/"}
