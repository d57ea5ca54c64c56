"""Validation of one converted mode: run the artifact on every sample, compare with the reference (by each
output's kind), record the outcome in the TargetResult; and the shared helpers for recording a failure."""

from __future__ import annotations

import traceback

from packager.checks import FAIL, PASS, UNVERIFIED, Check
from packager.compare import compare
from packager.errors import PackagerError, disk_full
from packager.progress import Progress
from packager.report import TargetResult
from packager.targets.base import StoppedEarly, Unverified


def _record_crash(result: TargetResult, what: str, e: Exception, progress: Progress) -> None:
    if disk_full(e):  # not this target's fault: the whole build stops, saying which disk is full
        raise disk_full(e) from e
    result.status = FAIL
    if isinstance(e, PackagerError):
        result.reason = _join(result.reason, e.message)
    else:
        result.reason = _join(result.reason, f"{what} crashed: {type(e).__name__}: {str(e)[:400]}")
        progress.debug(traceback.format_exc())


def _validate(result: TargetResult, name: str, predict, reference: dict, count: int, progress: Progress,
              kinds: dict | None = None) -> str | None:
    """Run ``predict()`` (the converted model on every sample) and compare it with the reference into
    ``result``. Never raises. Returns why the outcome does not depend on the quantization mode (an UNVERIFIED
    result, outputs missing or misnamed or misshapen), or None."""
    try:
        progress.info(f"    {name}: running the converted model on {count} samples")
        prediction = predict()
        cmp = compare(reference, prediction.outputs, result.gates, kinds)
        result.status = PASS if cmp.ok else FAIL
        result.reason = cmp.reason
        result.runtime = prediction.runtime
        result.latency_ms = prediction.latency_ms
        result.metrics, result.per_output, result.disagreements = cmp.metrics, cmp.per_output, cmp.disagreements
        result.error_histogram, result.confusion = cmp.error_histogram, cmp.confusion
        result.output_maps = _worst_maps(cmp.per_output, prediction.outputs, reference)
        result.checks.append(_prediction_check(cmp, prediction.runtime))
        result.checks.extend(prediction.checks)
        if cmp.structural:
            return "the converted model's outputs differ in names or shapes, whatever the mode"
    except StoppedEarly as e:  # auto: a later mode is tried; what ran is recorded
        cmp = compare({k: v[:e.done] for k, v in reference.items()}, e.outputs, result.gates, kinds)
        result.status = FAIL
        result.reason = (f"{e.reason} on the first {e.done} of {e.of} samples (the other samples not run: no "
                         "result of theirs can undo it)")
        result.metrics, result.per_output = cmp.metrics, cmp.per_output
        result.checks.append(Check("predictions", FAIL, result.reason))
    except Unverified as e:
        result.status, result.reason = UNVERIFIED, str(e)
        result.checks.extend(e.checks)
        return "the result is UNVERIFIED (the model cannot be run here), whatever the mode"
    except Exception as e:
        _record_crash(result, f"running the {name} artifact", e, progress)
    return None


def _worst_maps(per_output: dict, outputs: dict, reference: dict) -> dict:
    """{image output: {sample index: the target's map}} of each image output's worst samples (report.html)."""
    import numpy as np

    maps = {}
    for name, m in per_output.items():
        if m.get("worst_samples") and name in outputs:
            got = np.asarray(outputs[name]).reshape(np.shape(reference[name]))
            maps[name] = {i: np.array(got[i], np.float32) for i in m["worst_samples"]}
    return maps


def _prediction_check(cmp, runtime: str) -> Check:
    m = cmp.metrics
    parts = [f"runtime {runtime}"]
    if m.get("top1_agreement") is not None:
        parts.append(f"top-1 {m['top1_agreement']:.3f}")
    if m.get("decision_agreement") is not None:
        parts.append(f"decisions at 0.5 {m['decision_agreement']:.3f}")
    if m.get("max_abs_error") is not None:
        parts.append(f"max abs err {m['max_abs_error']:.3g}, cosine {m['cosine']:.6f}")
    if m.get("psnr") is not None:
        parts.append(f"PSNR {m['psnr']:.1f} dB (worst sample)")
    if cmp.problems:
        parts.append("; ".join(cmp.problems))
    return Check("predictions", PASS if cmp.ok else FAIL, ", ".join(parts))


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
