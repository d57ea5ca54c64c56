"""The web target's browser checks on a served bundle (page.py drives the page): bundle size and manifest fields;
service worker active and controlling, reload with the network cut still predicts, manifest accepted by the browser,
the page's image path equals the spec's preprocessing, the preprocessing of the original files (preprocessing_checks),
no console errors."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np

from packager.checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from packager.targets.web.bundle import _png_bytes, _sample_images, bundle_sizes, image_geometry, preprocess_pixels
from packager.targets.web.page import (
    PageSession,
    _max_abs,
    _stack,
    known_outputs_of,
    output_bytes,
    sample_chunks,
    sample_key,
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
    checks, online = online_checks(session, server, spec, source, samples, outdir, t0)
    return checks + offline_checks(session, server, samples, online, backend)


def online_checks(session: PageSession, server, spec, source, samples, outdir: Path, t0: float,
                  known: dict | None = None, per_image_ms: float | None = None) -> tuple[list[Check], dict[str, np.ndarray]]:
    """The checks with the server up: service worker, manifest, image path, preprocessing. Returns them and the
    page's outputs on the first sample (``offline_checks`` compares with them). ``known``: the page's and the
    original model's outputs on the samples already run on this page (``known_outputs``)."""
    checks: list[Check] = []
    first = next(iter(samples))
    online = known_outputs_of(known, first) if known else None
    if online is None:
        online, _ = session.predict(first)

    # Service worker: active, controlling the page, cache holding every precached file.
    sw = _service_worker_state(session.page)
    config_precache = _precache_list(outdir)
    ok = (sw["state"] == "activated" and sw["controlled"] and sw["cache"] is not None
          and sw["cache"].endswith(":files") and sw["entries"] == len(config_precache))
    checks.append(Check(
        "service_worker", PASS if ok else FAIL,
        f"state {sw['state']}, controlling: {sw['controlled']}, cache "
        f"{(sw['cache'] or '').replace(server.url, '<origin>/')!r} holds "
        f"{sw['entries']}/{len(config_precache)} files", time.perf_counter() - t0))

    # Manifest as the browser sees it.
    checks.append(_installability_check(session))

    # The page's own image path on the bundled sample images vs the spec's preprocessing.
    checks.append(_image_path_check(session, spec, source, outdir, samples, known, per_image_ms))

    # preprocess.js on the original sample files vs packager.preprocessing (the preprocessing check, #16).
    from packager.targets.web.preprocessing_check import web_check

    geom = image_geometry(source)
    if geom is not None:
        pre = web_check(session.page, spec, samples, f"Chromium {session.browser_version()}",
                        (geom["width"], geom["height"], geom["channels"]), bool(geom.get("pixels")))
        if pre is not None:
            checks.append(pre)

    return checks, online


def offline_checks(session: PageSession, server, samples, online: dict[str, np.ndarray], backend: str,
                   away: bool = False) -> list[Check]:
    """Network cut: stop the server and take the context offline, reload (``away``: the page has left for another
    one, about:blank: open it again, as a user returns), predict the first sample again; then no console errors on
    the page, online and offline."""
    checks: list[Check] = []
    first = next(iter(samples))
    t0 = time.perf_counter()
    online_errors = list(session.errors)
    server.stop()
    session.context.set_offline(True)
    try:
        session.open() if away else session.reload()
        from_sw = bool(session.response is not None and session.response.from_service_worker)
        offline, _ = session.predict(first)
        diff = _max_abs(online, offline)
        ok = from_sw and diff <= 1e-6
        checks.append(Check("offline_reload", PASS if ok else FAIL,
                            f"{'opened again' if away else 'reloaded'} with the server stopped and the network "
                            f"offline; page from service "
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
    line = next(li for li in text.splitlines() if li.startswith("const BUNDLE = "))
    return json.loads(line.removeprefix("const BUNDLE = ").split(";")[0])


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


# The image path runs the model once more per bundled image (the same images whose tensors the page ran already):
# on a model whose one run costs seconds here, it takes the first images whose runs fit IMAGE_PATH_BUDGET_S by the
# page's measured cost per sample (at least IMAGE_PATH_MIN), and says so; the preprocessing check has every sample
# file's model input through the same preprocess.js. hed (VGG16 at 256x256): 12 images x 0.9-1.7 s a run.
IMAGE_PATH_BUDGET_S = 5.0
IMAGE_PATH_MIN = 2


def image_path_count(images: int, per_image_ms: float | None) -> int:
    """How many of ``images`` bundled images the image path runs, by the model's measured cost per run."""
    if not per_image_ms or per_image_ms <= 0:
        return images
    return min(images, max(IMAGE_PATH_MIN, int(IMAGE_PATH_BUDGET_S * 1000 // per_image_ms)))


def _image_path_check(session: PageSession, spec, source, outdir: Path, samples=None, known: dict | None = None,
                      per_image_ms: float | None = None) -> Check:
    """The page's image -> preprocess.js path equals the spec's preprocessing (same PNGs): the page's outputs from
    the image vs from the tensor Python's preprocessing makes of it (taken from ``known`` when this page has run
    that very tensor already)."""
    config = json.loads(session.page.evaluate("() => JSON.stringify(window.packager.config)"))
    image = config.get("image")
    if not image:
        return Check("image_path", SKIPPED, "the model does not take an image")
    pairs, how = _check_images(config, spec, source, outdir, samples)
    if not pairs:
        return Check("image_path", SKIPPED, "no bundled sample images")
    bundled = len(pairs)
    pairs = pairs[:image_path_count(bundled, per_image_ms)]
    if len(pairs) < bundled:
        how += (f" (the first {len(pairs)} of {bundled}: each is one more run of the model, {per_image_ms:.0f} ms a "
                f"sample on this page, within {IMAGE_PATH_BUDGET_S:.0f} s; every sample file's model input through "
                "preprocess.js: the preprocessing check)")
    images = [url for url, _ in pairs]
    worst = 0.0
    scale = 1.0
    page_rows, inputs = [], []
    originals = []
    from_page = session.predict_images(images, output_bytes(source))  # several a page call, in order
    xs = [preprocess_pixels(rgb, spec, image["channels"], bool(image.get("pixels"))) for _, rgb in pairs]
    hits = [known.get(sample_key({image["input"]: x})) if known else None for x in xs]  # samples this page has run
    missed = [{image["input"]: x} for x, hit in zip(xs, hits) if not hit]
    hooked = iter([out for run in sample_chunks(missed, output_bytes(source)) for out, _ in session.predict_many(run)])
    for (page_out, _), x, hit in zip(from_page, xs, hits):
        hook_out, original = hit if hit else (next(hooked), None)
        worst = max(worst, _max_abs(page_out, hook_out))
        page_rows.append(page_out)
        inputs.append(x)
        originals.append(original)
        scale = max(scale, max(float(np.max(np.abs(v))) for v in hook_out.values()))
    ok = worst <= 1e-5 * scale
    # For the record: the page's image path against the original model on the same images.
    versus = ""
    try:
        original = (_stack(originals) if all(o is not None for o in originals)
                    else source.predict({image["input"]: np.concatenate(inputs)}))
        page = _stack(page_rows)
        name = config.get("primary_output") or config["outputs"][0]["name"]
        top1 = float(np.mean(original[name].reshape(len(images), -1).argmax(-1) == page[name].reshape(len(images), -1).argmax(-1)))
        versus = f"; vs the original model on the same images: top-1 {top1:.3f}, max |diff| {_max_abs(page, original):.3g}"
    except Exception as e:  # the reference is informative here; the gate is the equality above
        versus = f"; original model not run on them: {type(e).__name__}"
    return Check("image_path", PASS if ok else FAIL,
                 f"{len(images)} {how} through the page's preprocess.js vs the spec's "
                 f"preprocessing in Python, same TF.js model: max |diff| {worst:.3g}{versus}")
