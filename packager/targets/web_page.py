"""The web target's page driving and browser checks: a served bundle in headless Chromium.

- ``PageSession``: one page of the bundle, its ``window.packager`` hooks (predict, predict an image), console errors.
- ``_served_page``: ``OUT/web/`` served under CHECK_PREFIX in a fresh Chromium profile, service workers allowed.
- ``_predict_samples``: every sample through the page's own ``window.packager.predict``.
- ``_file_checks`` / ``_browser_checks``: bundle size, manifest fields; service worker active and controlling,
  reload with the network cut still predicts, manifest accepted by the browser, the page's image path equals
  the spec's preprocessing, no console errors.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from ..errors import PackagerError
from .base import Prediction
from .web_bundle import (
    TFJS_VERSION,
    _from_b64,
    _png_bytes,
    _sample_images,
    b64_sample,
    bundle_sizes,
    image_geometry,
    preprocess_pixels,
)

if TYPE_CHECKING:
    from ..samples import SampleSet
    from ..source import Source

PAGE_TIMEOUT_MS = 120_000
# The build's browser checks serve the bundle under a sub-path, as GitHub Pages (/repo/) or an app (/demo/) would:
# a URL resolved against the origin's root instead of the page fails them.
CHECK_PREFIX = "/deployed/under/a-sub-path/"


# ---------------------------------------------------------------------------------------------
# driving the page


class PageSession:
    """One page of a served bundle in a Chromium context, recording console errors."""

    def __init__(self, context, url: str):
        self.context = context
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.url = url
        self.response = None

    def open(self, url: str | None = None) -> str:
        """Load the page and wait for the model; returns the backend. Raises PackagerError on failure."""
        self.response = self.page.goto(url or self.url, wait_until="load")
        return self.wait_ready()

    def reload(self) -> str:
        self.response = self.page.reload(wait_until="load")
        return self.wait_ready()

    def wait_ready(self) -> str:
        try:
            return self.page.evaluate("() => window.packager.ready")
        except Exception as e:  # playwright.Error: the page reported why
            shown = self.page.evaluate("() => (window.packager && window.packager.error) || ''") if not self.page.is_closed() else ""
            raise PackagerError(f"the web demo did not load its model: {shown or e}{_load_failure_fix(shown)}") from e

    def predict(self, sample: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        r = self.page.evaluate("(x) => window.packager.predictB64(x)", b64_sample(sample))
        return {k: _from_b64(v["b64"], v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])

    def predict_image(self, url: str) -> tuple[dict[str, np.ndarray], float]:
        r = self.page.evaluate(
            """async (url) => {
                const img = new Image();
                img.src = url;
                await img.decode();
                const r = await window.packager.predictImage(img);
                window.packager.showResult(r);
                const out = {};
                for (const [k, v] of Object.entries(r.outputs)) out[k] = {shape: v.shape, data: Array.from(v.data)};
                return {outputs: out, ms: r.ms};
            }""",
            url,
        )
        return {k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])

    def browser_version(self) -> str:
        cdp = self.context.new_cdp_session(self.page)
        try:
            return cdp.send("Browser.getVersion")["product"].split("/", 1)[-1]
        finally:
            cdp.detach()

    def close(self) -> None:
        from ..runtimes.browser import close

        close(self.page)


# tf.js' words when it cannot run a graph's control flow, on every backend: seen with the while loop of a Keras 3
# LSTM export (the official tensorflowjs_converter's output fails the same way; an unrolled LSTM runs).
_CONTROL_FLOW = "Cannot compute the outputs"


def _load_failure_fix(shown: str) -> str:
    if _CONTROL_FLOW in shown and "no tf.js backend could run" in shown:
        return (" — fix: tf.js cannot execute this graph's loop (as exported for Keras 3 recurrent layers); unroll the"
                " recurrent layers (e.g. keras.layers.LSTM(..., unroll=True) with a fixed sequence length), or use"
                " a different target")
    return ""


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([r[k] for r in rows], axis=0) for k in rows[0]} if rows else {}


def _max_abs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0 for k in a)


def _runtime_name(browser_version: str, backend: str) -> str:
    return f"Chromium {browser_version} (headless, Playwright) + tf.js {TFJS_VERSION} {backend} backend"


@contextlib.contextmanager
def _served_page(outdir: Path):
    """(page session, server): ``outdir`` served on 127.0.0.1 and a page for it (not opened yet) in a fresh
    Chromium profile, service workers allowed; all closed on exit. ToolMissing when there is no browser."""
    from ..runtimes.browser import StaticServer, chromium_profile

    server = StaticServer(outdir, prefix=CHECK_PREFIX, compress=True).start()  # gzip, as static hosts serve it
    try:
        with chromium_profile() as context:
            session = PageSession(context, server.url)
            try:
                yield session, server
            finally:
                session.close()
    finally:
        server.stop()


def _predict_samples(session: PageSession, source: Source, samples: SampleSet, runtime: str,
                     budget_s: float | None = None, min_samples: int = 2) -> Prediction:
    """Every sample through the page's own ``window.packager.predict``; a page_console check of the run. With
    ``budget_s``: the samples that fit in that many seconds (at least ``min_samples``)."""
    rows, times, t0 = [], [], time.perf_counter()
    for sample in samples:
        if budget_s is not None and len(rows) >= min_samples and time.perf_counter() - t0 > budget_s:
            break
        out, ms = session.predict(sample)
        rows.append(out)
        times.append(ms)
    return _prediction(rows, times, list(session.errors), source, runtime)


def _prediction(rows: list[dict[str, np.ndarray]], times: list[float], errors: list[str], source: Source,
                runtime: str) -> Prediction:
    stacked = _stack(rows)
    return Prediction(
        outputs={t.name: stacked[t.name] for t in source.outputs},
        runtime=runtime,
        latency_ms=float(np.mean(times)) if times else None,
        checks=[Check("page_console", PASS if not errors else FAIL,
                      "no console errors while predicting" if not errors else "; ".join(errors[:5]))],
    )


BROWSER_CHECKS = ("service_worker", "offline_reload", "manifest_installable", "image_path", "console_errors")


def _skipped_browser_checks(why: str) -> list[Check]:
    return [Check(name, SKIPPED, why) for name in BROWSER_CHECKS]


def _file_checks(outdir: Path) -> list[Check]:
    sizes = bundle_sizes(outdir)
    return [Check("bundle_size", PASS, f"model {sizes['model']} B, tf.js runtime {sizes['runtime']} B, "
                                       f"page+icons+samples {sizes['other']} B, total {sizes['total']} B"),
            _manifest_file_check(outdir)]


# ---------------------------------------------------------------------------------------------
# checks


REQUIRED_MANIFEST = ("name", "short_name", "start_url", "display", "icons", "theme_color", "background_color")


def _manifest_file_check(outdir: Path) -> Check:
    from PIL import Image

    path = outdir / "manifest.webmanifest"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return Check("manifest_fields", FAIL, f"manifest.webmanifest unreadable: {e}")
    problems = [f"missing {k}" for k in REQUIRED_MANIFEST if not data.get(k)]
    if data.get("display") not in ("standalone", "fullscreen", "minimal-ui"):
        problems.append(f"display is {data.get('display')!r}")
    sizes = set()
    for icon in data.get("icons", []):
        p = outdir / icon.get("src", "")
        try:
            with Image.open(p) as im:
                actual = f"{im.width}x{im.height}"
        except OSError:
            problems.append(f"icon {icon.get('src')} missing or not an image")
            continue
        if actual != icon.get("sizes"):
            problems.append(f"icon {icon.get('src')} is {actual}, manifest says {icon.get('sizes')}")
        sizes.add((actual, icon.get("purpose", "any")))
    for need in (("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")):
        if need not in sizes:
            problems.append(f"no {need[0]} {need[1]} icon")
    return Check("manifest_fields", FAIL if problems else PASS,
                 "; ".join(problems) or f"{', '.join(REQUIRED_MANIFEST)} present; icons 192, 512, maskable 512 match their files")


def _browser_checks(session: PageSession, server, spec, source, samples, outdir: Path, backend: str,
                    t0: float) -> list[Check]:
    """The checks of the bundle served by ``server``, on the page ``session`` opened (at ``t0``) from it."""
    checks: list[Check] = []
    first = next(iter(samples))
    online, _ = session.predict(first)

    # Service worker: active, controlling the page, cache holding every precached file.
    sw = _service_worker_state(session.page)
    config_precache = _precache_list(outdir)
    ok = (sw["state"] == "activated" and sw["controlled"] and sw["cache"] is not None
          and sw["cache"].endswith(":" + _content_hash(outdir)) and sw["entries"] == len(config_precache))
    checks.append(Check(
        "service_worker", PASS if ok else FAIL,
        f"state {sw['state']}, controlling: {sw['controlled']}, cache "
        f"{(sw['cache'] or '').replace(server.url, '<origin>/')!r} holds "
        f"{sw['entries']}/{len(config_precache)} files", time.perf_counter() - t0))

    # Manifest as the browser sees it.
    checks.append(_installability_check(session))

    # The page's own image path on the bundled sample images vs the spec's preprocessing.
    checks.append(_image_path_check(session, spec, source, outdir, samples))

    # preprocess.js on the original sample files vs packager.preprocessing (the preprocessing check, #16).
    from ..preprocessing_checks import web_check

    geom = image_geometry(source)
    if geom is not None:
        pre = web_check(session.page, spec, samples, f"Chromium {session.browser_version()}",
                        (geom["width"], geom["height"], geom["channels"]))
        if pre is not None:
            checks.append(pre)

    # Network cut: stop the server and take the context offline, reload, predict again.
    t0 = time.perf_counter()
    online_errors = list(session.errors)
    server.stop()
    session.context.set_offline(True)
    try:
        session.reload()
        from_sw = bool(session.response is not None and session.response.from_service_worker)
        offline, _ = session.predict(first)
        diff = _max_abs(online, offline)
        ok = from_sw and diff <= 1e-6
        checks.append(Check("offline_reload", PASS if ok else FAIL,
                            f"reloaded with the server stopped and the network offline; page from service "
                            f"worker: {from_sw}; prediction max |diff| vs online {diff:.3g}", time.perf_counter() - t0))
    except Exception as e:
        checks.append(Check("offline_reload", FAIL, f"reload with the network cut failed: {e}",
                            time.perf_counter() - t0))
    offline_errors = session.errors[len(online_errors):]
    errors = online_errors + offline_errors
    checks.append(Check("console_errors", PASS if not errors else FAIL,
                        f"no console errors ({backend} backend, online and offline)" if not errors
                        else "; ".join(errors[:5])))
    return checks


def _precache_list(outdir: Path) -> list[str]:
    text = (outdir / "sw.js").read_text(encoding="utf-8")
    line = next(li for li in text.splitlines() if li.startswith("const PRECACHE = "))
    return json.loads(line.removeprefix("const PRECACHE = ").rstrip(";"))


def _content_hash(outdir: Path) -> str:
    text = (outdir / "sw.js").read_text(encoding="utf-8")
    line = next(li for li in text.splitlines() if li.startswith("const CACHE = CACHE_PREFIX + "))
    return json.loads(line.removeprefix("const CACHE = CACHE_PREFIX + ").rstrip(";"))


def _service_worker_state(page) -> dict:
    page.evaluate("() => window.packager.serviceWorker")
    try:
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    except Exception:
        pass
    return page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.getRegistration();
            const state = reg && reg.active ? reg.active.state : "none";
            const keys = (await caches.keys()).filter((k) => k.startsWith("packager-web:"));
            let entries = 0;
            if (keys.length === 1) entries = (await (await caches.open(keys[0])).keys()).length;
            return {state, controlled: navigator.serviceWorker.controller !== null,
                    cache: keys.length === 1 ? keys[0] : (keys.length ? keys.join(",") : null), entries};
        }"""
    )


def _installability_check(session: PageSession) -> Check:
    try:
        cdp = session.context.new_cdp_session(session.page)
        manifest = cdp.send("Page.getAppManifest")
        installability = cdp.send("Page.getInstallabilityErrors")
        cdp.detach()
    except Exception as e:
        return Check("manifest_installable", UNVERIFIED, f"Chromium did not report its manifest parse: {e}")
    errors = [m.get("message", str(m)) for m in manifest.get("errors", [])]
    install_errors = [e.get("errorId", str(e)) for e in installability.get("installabilityErrors", [])]
    ok = not errors and not install_errors and bool(manifest.get("url"))
    detail = (f"Chromium parsed {manifest.get('url', '?').rsplit('/', 1)[-1]} without errors and reports no "
              "installability errors" if ok else
              "; ".join([f"manifest: {m}" for m in errors] + [f"installability: {m}" for m in install_errors])
              or "Chromium found no manifest")
    return Check("manifest_installable", PASS if ok else FAIL, detail)


def _check_images(config: dict, spec, source, outdir: Path, samples) -> tuple[list[tuple[str, np.ndarray]], str]:
    """(url the page loads, its RGB pixels) of the sample images, and how they reached the page: the bundled PNGs,
    or with --no-bundled-samples the same PNGs made here and handed to the page as data: URLs (never written)."""
    from PIL import Image

    rels = [s["image"] for s in config["samples"] if s.get("image")]
    if rels:
        pairs = []
        for rel in rels:
            with Image.open(outdir / rel) as im:
                pairs.append((rel, np.asarray(im.convert("RGB"), dtype=np.uint8)))
        return pairs, "bundled sample images"
    if getattr(spec, "bundle_samples", True) or samples is None:
        return [], ""
    rgbs = _sample_images(source, spec, samples, image_geometry(source))
    pairs = [("data:image/png;base64," + base64.b64encode(_png_bytes(rgb)).decode("ascii"), rgb) for rgb in rgbs]
    return pairs, "sample images (not bundled: --no-bundled-samples; given to the page as data: URLs)"


def _image_path_check(session: PageSession, spec, source, outdir: Path, samples=None) -> Check:
    """The page's image -> preprocess.js path equals the spec's preprocessing (same PNGs)."""
    config = json.loads(session.page.evaluate("() => JSON.stringify(window.packager.config)"))
    image = config.get("image")
    if not image:
        return Check("image_path", SKIPPED, "the model does not take an image")
    pairs, how = _check_images(config, spec, source, outdir, samples)
    if not pairs:
        return Check("image_path", SKIPPED, "no bundled sample images")
    images = [url for url, _ in pairs]
    worst = 0.0
    scale = 1.0
    page_rows, inputs = [], []
    for url, rgb in pairs:
        page_out, _ = session.predict_image(url)
        x = preprocess_pixels(rgb, spec, image["channels"])
        hook_out, _ = session.predict({image["input"]: x})
        worst = max(worst, _max_abs(page_out, hook_out))
        page_rows.append(page_out)
        inputs.append(x)
        scale = max(scale, max(float(np.max(np.abs(v))) for v in hook_out.values()))
    ok = worst <= 1e-5 * scale
    # For the record: the page's image path against the original model on the same images.
    versus = ""
    try:
        original = source.predict({image["input"]: np.concatenate(inputs)})
        page = _stack(page_rows)
        name = config.get("primary_output") or config["outputs"][0]["name"]
        top1 = float(np.mean(original[name].reshape(len(images), -1).argmax(-1) == page[name].reshape(len(images), -1).argmax(-1)))
        versus = f"; vs the original model on the same images: top-1 {top1:.3f}, max |diff| {_max_abs(page, original):.3g}"
    except Exception as e:  # the reference is informative here; the gate is the equality above
        versus = f"; original model not run on them: {type(e).__name__}"
    return Check("image_path", PASS if ok else FAIL,
                 f"{len(images)} {how} through the page's preprocess.js vs the spec's "
                 f"preprocessing in Python, same TF.js model: max |diff| {worst:.3g}{versus}")
