"""The LiteRT.js bundle checked in headless Chromium, in one browser session (as web.session does for tf.js):
every sample through the page's own ``window.packager`` on the accelerator it picks (wasm), compared with the
original model (the target's figures) and with the host run of the very same file (ai-edge-litert: what the android
target's predictions run), WebGPU stated, then the page checks (service worker, manifest, image path,
preprocessing, offline reload, console)."""

from __future__ import annotations

import time
from pathlib import Path

from packager.checks import FAIL, PASS, UNVERIFIED, Check
from packager.compare import compare, gates_for
from packager.errors import PackagerError
from packager.targets.base import Prediction
from packager.targets.web.backends import judge
from packager.targets.web.litert.bundle import first_visit_bytes
from packager.targets.web.litert.convert import host_run
from packager.targets.web.litert.runtime import LITERTJS_VERSION
from packager.targets.web.page import _predict_samples, _served_page, known_outputs, where
from packager.targets.web.page_checks import _manifest_file_check, offline_checks, online_checks

WEBGPU_PROBE = "async () => { try { return !!(navigator.gpu && await navigator.gpu.requestAdapter()); } " \
               "catch (e) { return false; } }"


def runtime_name(browser_version: str, backend: str, thread: str | None = None) -> str:
    return f"Chromium {browser_version} (headless, Playwright) + LiteRT.js {LITERTJS_VERSION} {backend}{where(thread)}"


def validate_and_check(spec, source, artifact, samples, reference: dict, outdir: Path, gates: dict) -> Prediction:
    """The page's predictions (PackagerError when it loads the model on no accelerator) with every check in
    ``checks``. ToolMissing when there is no browser."""
    outdir = Path(outdir)
    with _served_page(outdir) as (session, server):
        t0 = time.perf_counter()
        backend = session.open()
        version = session.browser_version()
        prediction = _predict_samples(session, source, samples, runtime_name(version, backend, session.thread))
        run = judge(backend, prediction, reference, gates, spec, len(samples))
        webgpu = bool(session.page.evaluate(WEBGPU_PROBE))
        same_file = same_file_check(artifact, source, samples, prediction, spec)
        online, first = online_checks(session, server, spec, source, samples, outdir, t0,
                                      known_outputs(samples, prediction.outputs, reference))
        offline = offline_checks(session, server, samples, first, backend)
    ms = f", {prediction.latency_ms:.2f} ms/sample" if prediction.latency_ms is not None else ""
    figures = ", ".join(f"{k} {run.metrics[k]:.3g}" for k in ("top1_agreement", "max_abs_error", "cosine")
                        if run.metrics.get(k) is not None)
    accelerators = Check("backends", PASS if run.passed else FAIL,
                         f"LiteRT.js {LITERTJS_VERSION} {backend}: {'PASS' if run.passed else run.reason} ({figures}{ms}) "
                         f"on every sample vs the original model. The page tries {backend}")
    prediction.checks = [*prediction.checks, accelerators, webgpu_check(webgpu), same_file,
                         size_check(outdir, artifact), _manifest_file_check(outdir), *online, *offline]
    return prediction


def webgpu_check(adapter: bool) -> Check:
    if adapter:
        return Check("webgpu", UNVERIFIED, "Chromium offers a WebGPU adapter here, but this build validates wasm "
                     "only: the bundle lists wasm (metadata.json backends), so the page never picks WebGPU")
    return Check("webgpu", UNVERIFIED, "not run: headless Chromium has no WebGPU adapter on this machine "
                 "(navigator.gpu.requestAdapter() gave none); the page runs on wasm (metadata.json backends)")


def same_file_check(artifact, source, samples, page: Prediction, spec) -> Check:
    """The page's outputs vs the host run of the same bytes (ai-edge-litert), under the int8 gate."""
    try:
        host, runtime = host_run(Path(artifact.extra["tflite"]), source, samples)
    except Exception as e:  # the host runtime is what android's check runs: its failure is worth a FAIL
        return Check("same_file_as_android", FAIL, f"the host run of model.tflite failed: {type(e).__name__}: {e}")
    gates = gates_for("android", "int8", spec.tolerances)
    cmp = compare(host, page.outputs, gates, getattr(spec, "output_kinds", None) or None)
    m = cmp.metrics
    detail = (f"model.tflite sha256 {artifact.extra['sha256'][:16]}… = android's {artifact.extra['android_file']} "
              f"({artifact.extra['android_mode']}); page (LiteRT.js wasm) vs {runtime} on the host, same file, "
              f"{len(samples)} samples: top-1 {m.get('top1_agreement')}, max |diff| {m.get('max_abs_error'):.3g}, "
              f"int8 gate max |diff| {gates['max_abs_error']}")
    return Check("same_file_as_android", PASS if cmp.ok else FAIL, detail if cmp.ok else f"{detail}: {cmp.reason}",
                 data={"sha256": artifact.extra["sha256"], "max_abs_error": m.get("max_abs_error"),
                       "top1_agreement": m.get("top1_agreement")})


def size_check(outdir: Path, artifact) -> Check:
    s = first_visit_bytes(outdir)
    return Check("bundle_size", PASS, f"model.tflite {s['model']} B (android's {artifact.extra['android_mode']} "
                 f"file), LiteRT.js runtime {s['runtime']} B (first visit; the compat wasm is fetched only without "
                 f"relaxed SIMD), page+icons+samples {s['other']} B, total on disk {s['total']} B", data=s)


def no_accelerator(e: PackagerError) -> str:
    return f"the web demo did not load its model on LiteRT.js: {e.message}"
