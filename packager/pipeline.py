"""The build flow, nothing else:

spec -> source (loaded once) -> samples -> reference outputs
     -> for each target: convert (chosen mode; its fp32 model comes from the same conversion)
                         -> predict -> compare -> render -> checks (in a background thread)
     -> report, written with the folders into a staging dir that replaces --out at the end.

A target's optional ``prepare`` (android: its compile checks) starts in the background as soon as the model's
signature is known, during a Keras model's export; with one mode asked for, a target with ``predict_and_check``
(web: one browser session) renders first and runs its predictions with its checks, in the background.

With two or more targets and CPUs, the first target is built in a second process (``worker``), started before
the model is loaded, while this one builds the others.
Memory: the peak is estimated from the weights before anything is loaded (``memory.check_fits``); a large model or
``--low-memory`` builds in one process, one target at a time, each target's checks done and its memory freed first.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import __version__, cache, memory
from .errors import InputError
from .frameworks import import_tensorflow
from .kinds import apply_kinds
from .labels import check_labels_fit, check_output_labels
from .modes import AUTO_ORDER  # noqa: F401  (part of this module's API)
from .outdir import staged_output
from .preflight import TARGETS as PREFLIGHT_TARGETS
from .preflight import count_ops, explain_failure, format_findings, preflight, preflight_warnings, settle
from .progress import SILENT, Progress
from .report import Report, TargetResult
from .report_html import thumbnails
from .runtimes import kotlinc_server
from .samples import SampleSet, load_samples
from .source import Source, check_reference_finite, keras_export_drift, load_source
from .spec import PackageSpec
from .target_build import MIN_CALIBRATION_SAMPLES, Retry, build_target, finish  # noqa: F401  (this module's API)
from .targets import load_target, target_available
from .worker import TargetWorker, WorkerFailed, worker_targets


def build(spec: PackageSpec, progress: Progress = SILENT, *, use_cache: bool = True, low_memory: bool = False) -> Report:
    """``low_memory``: one process, one target at a time, whatever the model's size (``--low-memory``)."""
    key = cache.build_key(spec) if use_cache and cache.cache_root() else None
    hit = cache.lookup(key) if key else None
    if hit:
        with staged_output(spec.out, force=spec.force) as staging:
            shutil.copytree(hit, staging, dirs_exist_ok=True)
            report = Report.from_json(json.loads((staging / "report.json").read_text(encoding="utf-8")))
        progress.info(f"==> inputs, settings and packager unchanged: reused the cached build {key[:12]}")
        return report
    report = _build(spec, progress, memory.choose_plan(spec.model, memory.low_memory_requested(low_memory)))
    if key:
        cache.store(key, spec.out, report)
    return report


def _build(spec: PackageSpec, progress: Progress, plan: str = memory.PARALLEL) -> Report:
    order = sorted(spec.targets, key=_processing_rank)
    built = [n for n in order if target_available(n)]
    memory.check_fits(spec.model, len(built), plan, progress)  # before TensorFlow is even imported
    remote = worker_targets(built) if plan == memory.PARALLEL else []
    if "android" in built and "android" not in remote and plan == memory.PARALLEL:
        kotlinc_server.start_ahead(spec)  # warms up on the idle core while TensorFlow is imported
    try:
        return _build_after_start(spec, progress, plan, order, remote)
    finally:
        kotlinc_server.close_ahead()


def _build_after_start(spec: PackageSpec, progress: Progress, plan: str, order: list[str], remote: list[str]) -> Report:
    if remote:  # imported before the worker starts, which then is a fork of this process with TensorFlow loaded
        with progress.stage("importing TensorFlow"):
            import_tensorflow()
    with staged_output(spec.out, force=spec.force) as staging, tempfile.TemporaryDirectory(prefix="packager-work-") as work:
        worker = None
        try:
            # started first: the worker imports its converters while this process loads and exports the model
            worker = TargetWorker(remote, progress) if remote else None
            return _build_in(spec, progress, staging, Path(work), order, remote, worker, plan)
        except BaseException:
            if worker:
                worker.close(kill=True)
                worker = None
            raise
        finally:
            if worker:
                worker.close()


def _build_in(spec: PackageSpec, progress: Progress, staging: Path, workdir: Path, order: list[str],
              remote: list[str], worker, plan: str = memory.PARALLEL) -> Report:
    # Background threads: each target's checks (compilers, linkers, a browser: mostly other processes) and
    # its ``prepare`` (started before the conversion), while the main thread converts and validates the next
    # target and the worker process (if any) builds its targets.
    background = ThreadPoolExecutor(max_workers=3, thread_name_prefix="packager-checks")
    prepared: dict[str, Future] = {}
    try:
        return _build_with(spec, progress, staging, workdir, order, remote, worker, background, prepared,
                           one_at_a_time=plan == memory.LOW_MEMORY)
    finally:
        background.shutdown(wait=True, cancel_futures=True)  # the checks first: they may use what was prepared
        _close_prepared(prepared)


def _close_prepared(prepared: dict[str, Future]) -> None:
    """What a target's ``prepare`` holds open (a browser launched ahead) is closed once the targets are done."""
    for future in prepared.values():
        try:
            held = future.result()
        except BaseException:  # its failure was the target's to report
            continue
        if hasattr(held, "close"):
            held.close()


def _build_with(spec: PackageSpec, progress: Progress, staging: Path, workdir: Path, order: list[str],
                remote: list[str], worker, background: ThreadPoolExecutor, prepared: dict[str, Future],
                one_at_a_time: bool = False) -> Report:

    def prepare(preview: Source) -> None:
        """Start each local target's ``prepare`` once, from the first signature known (a Keras model's
        preview, during its export; else the loaded model's)."""
        check_labels_fit(spec.labels, preview.outputs, str(spec.labels_file or spec.model))  # fail before any work
        if preview.keras_model is not None:  # the checks need the signature, not a copy of the weights
            preview = dataclasses.replace(preview, keras_model=None)
        for name in order:
            if name not in remote and name not in prepared and target_available(name):
                target = load_target(name)
                if hasattr(target, "prepare"):
                    prepared[name] = background.submit(target.prepare, spec, preview, workdir / name)

    with progress.stage(f"loading model {spec.model}"):
        source = load_source(spec, workdir, on_preview=prepare)
        check_labels_fit(spec.labels, source.outputs, str(spec.labels_file or spec.model))
        check_output_labels(spec.output_labels, source.outputs, str(spec.model))
        prepare(source)
        if source.stripped_debug_ops:
            progress.info("    stripped debug ops for every target (as tensorflowjs_converter does): "
                          + ", ".join(f"{op} x{n}" for op, n in source.stripped_debug_ops.items()))
    with progress.stage("op preflight"):  # advice: every target is converted, the findings explain the outcome
        findings = preflight(source.saved_model_dir, tuple(t for t in spec.targets if t in PREFLIGHT_TARGETS),
                             ops=count_ops(source.concrete_function().graph.as_graph_def()),
                             coreml_ops=worker.warm_facts().get("coreml_ops") if worker else None)
        if any(findings.values()):
            progress.info(format_findings(findings))
    with progress.stage(f"reading samples {spec.samples}"):
        samples = load_samples(spec, source.inputs)
        source.samples = samples
        progress.debug(f"{len(samples)} samples")
    with progress.stage(f"reference outputs on {len(samples)} samples"):
        reference = reference_outputs(source, samples)
        drift = keras_export_drift(source, samples, reference)
        if drift:
            raise InputError(
                f"the Keras model's SavedModel export does not reproduce the model: {drift}",
                where=str(spec.model),
                hint="a known Keras 3 export issue (e.g. a Resizing layer before BatchNormalization traces BN "
                     "in training mode); export a SavedModel yourself with model.export() after fixing the "
                     "layer order, check it, and pass that folder",
            )
        spec = apply_kinds(spec, source, reference)  # each output's kind, the primary output and its labels
        for name in order:  # what targets need of the model beside the reference, while it is loaded here
            target = load_target(name) if target_available(name) else None
            if hasattr(target, "reference_extras"):
                target.reference_extras(spec, source, samples, reference)
        source.keras_model = None  # a copy of the weights, done with: every target converts the SavedModel export
        if one_at_a_time:
            memory.release()
        progress.debug("output kinds: " + ", ".join(f"{n}={k}" for n, k in spec.output_kinds.items())
                       + f"; primary output {spec.primary_output}")
    pending: dict[str, Future] = {}
    for name in order:
        if name in remote:
            try:
                pending[name] = worker.build(name, spec, source, samples, reference, workdir, staging)
                progress.info(f"==> target {name}: building in a second process")
            except WorkerFailed as e:  # built below, in this process
                progress.info(f"    {name}: the worker process is not usable ({e}); building it here")
    if worker:
        worker.no_more_jobs()
    for name in order:
        if name in pending:
            continue
        with progress.stage(f"target {name}"):
            pending[name] = build_target(name, spec, source, samples, reference, workdir, staging,
                                         progress, background, prepared.get(name), low_memory=one_at_a_time)
            if one_at_a_time:  # its checks (a browser, compilers) end, and what it held is freed, before the next
                finish(pending[name])
                memory.release()
    with progress.stage("finishing target checks"):
        results = {}
        for name in spec.targets:  # the report keeps the order the user asked for
            results[name] = finish(pending[name])
            _settle_preflight(results[name], findings.get(name, []))
            progress.info(f"    {name}: {results[name].status}"
                          + (f" ({results[name].reason})" if results[name].reason else ""))
    report = Report(
        model=describe_model(source, spec),
        samples={"count": len(samples), "source": spec.samples.name,
                 "files": [p.relative_to(spec.samples).as_posix() for p in samples.image_paths]
                 if samples.image_paths is not None else [],
                 "kind": "images" if samples.image_paths is not None else "arrays"},
        targets=results,
        packager_version=__version__,
        timings=dict(progress.timings),
    )
    report.write(staging, labels=spec.labels, thumbnails=thumbnails(samples, results))
    return report


def reference_outputs(source: Source, samples: SampleSet) -> dict[str, np.ndarray]:
    rows: dict[str, list[np.ndarray]] = {o: [] for o in source.output_names}
    for sample in samples:
        out = source.predict(sample)
        for name in rows:
            rows[name].append(np.asarray(out[name], np.float32))
    reference = {name: np.concatenate(v) for name, v in rows.items()}
    check_reference_finite(reference, source.spec.model)
    return reference


def describe_model(source: Source, spec: PackageSpec) -> dict:
    return {
        "name": spec.display_name,
        "file": spec.model.name,
        "format": source.format,
        "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in source.inputs],
        "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype,
                     "kind": spec.output_kinds.get(o.name, ""), "labels": len(spec.output_labels.get(o.name, ()))}
                    for o in source.outputs],
        "primary_output": spec.primary_output,
        "labels": len(spec.labels),
        **({"stripped_debug_ops": dict(source.stripped_debug_ops)} if source.stripped_debug_ops else {}),
        "preprocessing": {"color": spec.preprocessing.color, "mean": list(spec.preprocessing.mean),
                          "std": list(spec.preprocessing.std), "crop": spec.preprocessing.crop,
                          "background": list(spec.preprocessing.background)},
    }


# ios first: the worker process takes it, or, without one, its validation on NumPy (Core ML executor) runs here
# before any target's checks load the CPU in the background and distort the measured latency. Then web, whose
# browser session (predictions and checks, in the background) is the longest work left after its conversion,
# then android, whose compile checks started during the model's export (MobileNetV2 224: 22.4 s vs 23.3 s
# with android before web, three builds each).
PROCESSING_ORDER = ("ios", "web", "android")


def _processing_rank(name: str) -> int:
    return PROCESSING_ORDER.index(name) if name in PROCESSING_ORDER else len(PROCESSING_ORDER)


def _settle_preflight(result: TargetResult, findings: list[dict]) -> None:
    """Preflight is advice until the conversion confirms it: a failed conversion gets the findings as its
    explanation (op + fix); after a successful one they are warnings."""
    if result.conversion_failed:
        result.preflight = settle(findings, "failed")
        result.reason = explain_failure(result.reason, findings)
    elif result.bytes:  # a converted model exists
        result.preflight = settle(findings, "succeeded")
        result.warnings.extend(preflight_warnings(result.preflight))
    else:  # not built, or its process died before converting: nothing confirmed either way
        result.preflight = settle(findings, "not run")
