"""The build flow, nothing else (``_build`` reads top to bottom; ``build_session`` holds its resources):

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

import json
import shutil

import numpy as np

from packager import cache, memory
from packager.build_session import BuildSession
from packager.errors import InputError
from packager.kinds import apply_kinds
from packager.labels import check_labels_fit, check_output_labels
from packager.modes import AUTO_ORDER  # noqa: F401  (part of this module's API)
from packager.outdir import staged_output
from packager.preflight import TARGETS as PREFLIGHT_TARGETS
from packager.preflight import count_ops, explain_failure, format_findings, preflight, preflight_warnings, settle
from packager.progress import SILENT, Progress
from packager.report import Report, TargetResult
from packager.report_html import output_pictures, thumbnails
from packager.samples import SampleSet, load_samples
from packager.source import Source, keras_export_drift, load_source, reference_outputs  # noqa: F401  (API)
from packager.spec import PackageSpec
from packager.target_build import build_target, finish, finish_all  # noqa: F401  (build_target, finish: API)
from packager.version import __version__


def build(spec: PackageSpec, progress: Progress = SILENT, *, use_cache: bool = True, low_memory: bool = False) -> Report:
    """``low_memory``: one process, one target at a time, whatever the model's size (``--low-memory``)."""
    try:
        key = cache.build_key(spec) if use_cache and cache.cache_root() else None
    except OSError as e:  # an input that cannot be read: loading it says so, with its own message
        progress.debug(f"cache: no key ({e}); building without the cache")
        key = None
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
    """The build, top to bottom. ``BuildSession`` holds what it opens (staging, work dir, worker, background
    checks, what targets started ahead) and closes it whether this returns or raises."""
    with BuildSession(spec, progress, plan) as session:
        with progress.stage(f"loading model {spec.model}"):
            source = load_source(spec, session.workdir, on_preview=session.prepare)
            check_labels_fit(spec.labels, source.outputs, str(spec.labels_file or spec.model))
            check_output_labels(spec.output_labels, source.outputs, str(spec.model))
            session.prepare(source)
            if source.stripped_debug_ops:
                progress.info("    stripped debug ops for every target (as tensorflowjs_converter does): "
                              + ", ".join(f"{op} x{n}" for op, n in source.stripped_debug_ops.items()))
        with progress.stage("op preflight"):  # advice: every target is converted, the findings explain the outcome
            ops = count_ops(source.concrete_function().graph.as_graph_def())
            late = session.late_preflight(source.saved_model_dir, ops)  # ios: once the worker read Core ML's ops
            findings = preflight(source.saved_model_dir, tuple(t for t in spec.targets if t in PREFLIGHT_TARGETS
                                                               and t not in late), ops=ops)
            if any(findings.values()):
                progress.info(format_findings(findings))
        with progress.stage(f"reading samples {spec.samples}"):
            samples = load_samples(spec, source.inputs)
            source.samples = samples
            progress.debug(f"{len(samples)} samples")
        with progress.stage(f"reference outputs on {len(samples)} samples"):
            reference = reference_outputs(source, samples)
            check_export_reproduces(source, samples, reference)
            spec = apply_kinds(spec, source, reference)  # each output's kind, the primary output and its labels
            session.reference_extras(spec, source, samples, reference)
            source.keras_model = None  # a copy of the weights, done with: every target converts the SavedModel
            if session.one_at_a_time:
                memory.release()
            progress.debug("output kinds: " + ", ".join(f"{n}={k}" for n, k in spec.output_kinds.items())
                           + f"; primary output {spec.primary_output}")
        pending = session.build_targets(spec, source, samples, reference)
        with progress.stage("finishing target checks"):
            finished, results = finish_all(pending), {}
            for name in spec.targets:  # the report keeps the order the user asked for
                results[name] = finished[name]
                if name in late:
                    findings[name] = late[name].result()
                    if findings[name]:
                        progress.info(format_findings({name: findings[name]}))
                _settle_preflight(results[name], findings.get(name, []))
                progress.info(f"    {name}: {results[name].status}"
                              + (f" ({results[name].reason})" if results[name].reason else ""))
        report = Report(model=describe_model(source, spec), samples=describe_samples(spec, samples),
                        targets=results, packager_version=__version__, timings=dict(progress.timings))
        report.write(session.staging, labels=spec.labels, thumbnails=thumbnails(samples, results),
                     pictures=output_pictures(spec, source, samples, reference, results))
        return report


def check_export_reproduces(source: Source, samples: SampleSet, reference: dict[str, np.ndarray]) -> None:
    drift = keras_export_drift(source, samples, reference)
    if drift:
        raise InputError(
            f"the Keras model's SavedModel export does not reproduce the model: {drift}",
            where=str(source.spec.model),
            hint="a known Keras 3 export issue (e.g. a Resizing layer before BatchNormalization traces BN "
                 "in training mode); export a SavedModel yourself with model.export() after fixing the "
                 "layer order, check it, and pass that folder",
        )


def describe_samples(spec: PackageSpec, samples: SampleSet) -> dict:
    return {"count": len(samples), "source": spec.samples.name,
            "files": [p.relative_to(spec.samples).as_posix() for p in samples.image_paths]
            if samples.image_paths is not None else [],
            "kind": "images" if samples.image_paths is not None else "arrays"}


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
                          "background": list(spec.preprocessing.background),
                          "normalize": spec.preprocessing.normalize},
    }


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
