"""Web target: a TF.js graph model inside an offline PWA demo, verified in headless Chromium.

Order the pipeline calls it in: ``convert`` -> ``predict`` -> ``render`` -> ``checks`` (each mode that
``--quantize auto`` tries is predicted); with one mode asked for, ``convert`` -> ``render`` ->
``predict_and_check``: the predictions and the checks in one browser session on the rendered ``OUT/web/``.

- ``convert`` runs ``tensorflowjs`` in-process on the SavedModel export -> ``WORKDIR/tfjs_<mode>/``
  (model.json + weight shards). Weight modes: fp32, fp16, uint16, uint8 (default, see DEFAULT_MODE).
- ``predict`` renders the bundle into ``WORKDIR/web_bundle_<mode>/`` (the same bytes ``render``
  writes), serves it on 127.0.0.1 and runs every sample through the page's own
  ``window.packager.predict`` in headless Chromium.
- ``render`` writes ``OUT/web/``: page, manifest, icons, bundled samples, vendored tf.js, model,
  and ``sw.js`` whose cache name is the hash of every other file. Deterministic (no timestamps).
- every backend the page may pick (wasm, webgl on SwiftShader, cpu) runs the samples (``web_backends``); the bundle
  lists only those within the gates (metadata.json), so the page never picks a backend that computes wrong
  numbers; the ``backends`` check names each backend's figures; the target's figures are the first passing one's.
- ``checks`` serves ``OUT/web/`` and checks in Chromium: service worker active and controlling,
  reload with the network cut still predicts, manifest accepted by the browser, the page's image
  path equals the spec's preprocessing, no console errors.

The bundle is built in ``bundle``, the page driven in ``page`` and checked in ``page_checks`` (both in
one browser: ``web_session``), the model converted in ``web_convert``; their names stay importable from here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from packager.checks import Check
from packager.errors import ConversionError, PackagerError, ToolMissing
from packager.modes import judged_gates
from packager.targets.base import Artifact, Prediction, Unverified
from packager.targets.web.backends import first_prediction
from packager.targets.web.bundle import (  # noqa: F401  (re-exported: part of this module's API)
    BACKENDS,
    BACKGROUND_COLOR,
    MAX_BUNDLED_SAMPLES,
    TFJS_VERSION,
    THEME_COLOR,
    VENDOR_FILES,
    _b64,
    _from_b64,
    _png_bytes,
    _sample_images,
    _short_name,
    build_bundle,
    bundle_sizes,
    bundled_note,
    image_geometry,
    make_icon,
    npm_web_dir,
    preprocess_pixels,
    template_manifest,
    vendored_runtime,
)
from packager.targets.web.convert import (  # noqa: F401  (convert_saved_model, signature_nodes: part of this module's API)
    QUANTIZATION,
    SHARD_GLOB,
    convert_frozen_graph,
    convert_saved_model,
    folder_bytes,
    io_nodes,
    mixed_note,
    signature_nodes,
)
from packager.targets.web.graph import unfuse_tensor_bias
from packager.targets.web.litert.target import LiteRtWeb, is_litert
from packager.targets.web.page import (  # noqa: F401  (re-exported: part of this module's API)
    _CONTROL_FLOW,
    CHECK_PREFIX,
    PAGE_TIMEOUT_MS,
    PageSession,
    _load_failure_fix,
    _max_abs,
    _predict_samples,
    _runtime_name,
    _served_page,
    _stack,
)
from packager.targets.web.page_checks import (  # noqa: F401  (re-exported: part of this module's API)
    BROWSER_CHECKS,
    REQUIRED_MANIFEST,
    _browser_checks,
    _content_hash,
    _file_checks,
    _image_path_check,
    _installability_check,
    _manifest_file_check,
    _precache_list,
    _service_worker_state,
    _skipped_browser_checks,
)
from packager.targets.web.session import validate_and_check

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec

DEFAULT_MODE = "uint8"  # smallest download (1/4 of fp32); affine per-tensor quantization of weights only
DEFAULT_SHARD_BYTES = 4 * 1024 * 1024  # tensorflowjs' own default; spec.web_shard_bytes overrides it


# ---------------------------------------------------------------------------------------------
# the target


class WebTarget:
    name = "web"
    modes = ("fp32", "fp16", "uint16", "mixed", "uint8")  # TF.js weight modes; --web-runtime litert: mode "litert"
    default_mode = DEFAULT_MODE
    litert = LiteRtWeb()  # --web-runtime litert: every method hands the "litert" mode's artifact to it
    unfuse_tensor_bias = True  # web_graph: split fused convolutions whose "bias" is a feature map (wasm refuses them)

    def auto_order(self, spec: PackageSpec, ladder: tuple[str, ...]) -> tuple[str, ...]:
        """--quantize web=auto's ladder: with --web-runtime auto, litert placed by first-visit bytes."""
        from packager.targets.web.litert.auto import auto_order

        return auto_order(spec, ladder)

    @staticmethod
    def after_stop(mode: str, modes: tuple[str, ...]) -> tuple[str, ...]:
        """When a TF.js mode stops the auto ladder (no TF.js mode can help), the LiteRT.js try if it remains."""
        later = modes[modes.index(mode) + 1:]
        return ("litert",) if not is_litert(mode) and "litert" in later else ()

    def convert(self, source: Source, spec: PackageSpec, mode: str, workdir: Path) -> Artifact:
        artifact = self._convert(source, spec, mode, workdir)
        if getattr(spec, "web_runtime", "tfjs") == "auto":  # the report's tries say each one's first visit
            from packager.targets.web.litert.auto import first_visit_note

            artifact.extra["try_note"] = first_visit_note(artifact, spec)
        return artifact

    def _convert(self, source: Source, spec: PackageSpec, mode: str, workdir: Path) -> Artifact:
        if is_litert(mode):
            return self.litert.convert(source, spec, workdir)
        if mode not in QUANTIZATION:
            raise ConversionError(f"unknown web weight mode {mode!r}", hint=f"use one of {', '.join(self.modes)}")
        out = Path(workdir) / f"tfjs_{mode}"
        float_out = Path(workdir) / "tfjs_fp32" if mode != "fp32" else None
        shard = int(getattr(spec, "web_shard_bytes", 0) or DEFAULT_SHARD_BYTES)
        t0 = time.perf_counter()
        mixed_note(out).unlink(missing_ok=True)
        try:
            if getattr(source, "format", "") == "frozen_pb":  # as tensorflowjs_converter --input_format=tf_frozen_model
                convert_frozen_graph(Path(source.frozen_graph or source.spec.model), source.spec.output_names,
                                     out, mode, shard, float_out)
            else:
                convert_saved_model(Path(source.saved_model_dir), out, mode, shard, float_out,
                                    loaded=getattr(source, "_loaded", None))
        except PackagerError:
            raise
        except Exception as e:
            raise ConversionError(f"tensorflowjs could not convert the model ({mode}): {e}",
                                  where=str(source.saved_model_dir)) from e
        unfused = 0
        if self.unfuse_tensor_bias:
            unfused = unfuse_tensor_bias(out / "model.json")
            if float_out is not None:
                unfuse_tensor_bias(float_out / "model.json")
        seconds = round(time.perf_counter() - t0, 3)
        artifact = self._artifact(source, mode, out, shard, seconds)
        artifact.extra["unfused_tensor_bias"] = unfused
        if mixed_note(out).exists():  # the weights a mixed conversion kept float16 (tfjs_mixed.py), for the report
            note = json.loads(mixed_note(out).read_text(encoding="utf-8"))
            artifact.extra["quantization_checks"] = [Check(note["name"], note["status"], note["detail"])]
        if float_out is not None:
            artifact.extra["by_products"] = {"fp32": self._artifact(source, "fp32", float_out, shard, seconds)}
        return artifact

    def _artifact(self, source: Source, mode: str, out: Path, shard: int, seconds: float) -> Artifact:
        model_json = json.loads((out / "model.json").read_text(encoding="utf-8"))
        in_nodes, out_nodes = io_nodes(model_json, source, str(out / "model.json"))
        shards = sorted(p.name for p in out.glob(SHARD_GLOB))
        return Artifact(
            target=self.name, mode=mode, path=out, bytes=folder_bytes(out),
            extra={
                "format": "tfjs_graph_model",
                "shards": shards,
                "shard_bytes": shard,
                "output_nodes": {k: v["node"] for k, v in out_nodes.items()},
                "input_nodes": {k: v["node"] for k, v in in_nodes.items()},
                "inputs": in_nodes,  # the spec's tensor name -> {node, dtype} (io_nodes)
                "outputs": out_nodes,
                "convert_seconds": seconds,
            },
        )

    def predict(self, artifact: Artifact, source: Source, spec: PackageSpec, samples: SampleSet) -> Prediction:
        from packager.targets.web.browser.chromium import StaticServer, chromium

        if is_litert(artifact.mode):
            return self.litert.predict(spec, source, artifact, samples)
        bundle = Path(artifact.path).parent / f"web_bundle_{artifact.mode}"
        try:
            build_bundle(spec, source, artifact, samples, bundle)
        except ToolMissing as e:
            raise Unverified(f"cannot build the web bundle here: {e.message}") from e
        try:
            with StaticServer(bundle) as server, chromium() as browser:
                session = PageSession(browser.new_context(service_workers="block"), server.url + "index.html")
                backend = session.open()
                prediction = _predict_samples(session, source, samples, _runtime_name(browser.version, backend))
                session.context.close()
        except ToolMissing as e:
            raise Unverified(f"no browser to run the web demo: {e.message}") from e
        return prediction

    def render(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> Path:
        if is_litert(artifact.mode):
            return self.litert.render(spec, source, artifact, samples, outdir)
        config = build_bundle(spec, source, artifact, samples, Path(outdir))
        artifact.extra["bundled_samples"] = bundled_note(config)
        return Path(template_manifest()["model_dir"]) / "model.json"

    def prepare(self, spec: PackageSpec, preview: Source, workdir: Path):
        """The browser of the checks, launched now (while the model loads and converts) in a thread that runs them
        later; None for a model of memory.LARGE_WEIGHTS or more (an idle browser beside its conversion)."""
        from packager.memory import LARGE_WEIGHTS, weights_bytes
        from packager.targets.web.browser.host import BrowserHost

        try:
            if weights_bytes(spec.model) >= LARGE_WEIGHTS:
                return None
        except (OSError, TypeError):
            return None
        return BrowserHost()

    @staticmethod
    def _in_browser_thread(artifact: Artifact, fn, *args):
        """``fn(*args)`` in the thread of the browser ``prepare`` launched, if any, else here."""
        prepared = artifact.extra.get("prepared")
        host = None
        if prepared is not None:
            try:
                host = prepared.result()
            except Exception:  # not launched: run here
                host = None
        return host.call(fn, *args) if host is not None else fn(*args)

    def checks(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> list[Check]:
        outdir = Path(outdir)
        if is_litert(artifact.mode):
            return self.litert.checks(self._in_browser_thread, spec, source, artifact, samples, reference, outdir)
        try:
            _, _, checks = self._in_browser_thread(artifact, validate_and_check, spec, source, artifact, samples,
                                                   reference, outdir,
                                                   judged_gates("web", artifact, artifact.mode, spec.tolerances))
        except ToolMissing as e:
            return _file_checks(outdir) + _skipped_browser_checks(e.message)
        return checks

    def predict_and_check(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
                          reference: dict[str, np.ndarray], outdir: Path) -> Prediction:
        """``predict`` and ``checks`` on the bundle ``render`` wrote to ``outdir``, in one browser
        (``web_session``): each backend the page may pick run on the samples (the figures: the first that passed,
        the one the page picks) and the page's checks. The checks come back in ``Prediction.checks``; with no
        browser, Unverified carries the file checks."""
        outdir = Path(outdir)
        if is_litert(artifact.mode):
            return self.litert.predict_and_check(self._in_browser_thread, spec, source, artifact, samples, reference,
                                                 outdir)
        try:
            runs, chosen, checks = self._in_browser_thread(
                artifact, validate_and_check, spec, source, artifact, samples, reference, outdir,
                judged_gates("web", artifact, artifact.mode, spec.tolerances))
        except ToolMissing as e:
            raise Unverified(f"no browser to run the web demo: {e.message}",
                             checks=_file_checks(outdir) + _skipped_browser_checks(e.message)) from e
        prediction = first_prediction(runs, chosen)
        if prediction is None:  # no backend ran the model: nothing to compare
            shown = "no tf.js backend could run the model (" + "; ".join(f"{r.name}: {r.reason}" for r in runs) + ")"
            raise PackagerError(f"the web demo did not load its model: {shown}{_load_failure_fix(shown)}")
        prediction.checks.extend(checks)
        return prediction
