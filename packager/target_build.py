"""One target's build: convert (every mode ``--quantize auto`` tries, by its ladder), validate, render, then its
checks in the background (``build_target``); ``finish`` waits for it, going on with auto's ladder when the mode it
took ahead missed the gates, or when the mode it kept failed a check that runs the shipped model on the device's
own runtime (the target's ``device_checks``: Android's native host run) (``Retry``)."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from functools import partial
from pathlib import Path

from packager import memory
from packager.checks import FAIL, NOT_BUILT, PASS
from packager.compare import certain_failure
from packager.modes import (
    agreement,
    auto_gates,
    convert_mode,
    describe_try,
    first_pass_reason,
    fp32_fails_too,
    ladder,
    prefer_rival,
    rival_cannot_win,
    rivals,
)
from packager.progress import Progress
from packager.report import TargetResult
from packager.samples import SampleSet
from packager.source import Source
from packager.spec import PackageSpec
from packager.targets import load_target, target_available
from packager.validation import _join, _record_crash, _validate

MIN_CALIBRATION_SAMPLES = 16


@dataclasses.dataclass
class Retry:
    """What a ``--quantize auto`` build of a target resolves to when its first mode, validated with the checks in
    the background, missed the gates, or when the mode it kept failed a device check: the build goes on from the next
    mode (``finish``; ``kwargs`` may set where: ``start``, the modes to ``skip``)."""

    tries: list
    args: tuple
    kwargs: dict


def finish(future: Future) -> TargetResult:
    """The TargetResult of ``build_target``'s Future; a Retry goes on with the next modes, here."""
    return finish_all({"": future})[""]


def finish_all(pending: dict[str, Future]) -> dict[str, TargetResult]:
    """Every target's TargetResult ({name: Future} -> {name: result}), each Retry gone on with as soon as its Future
    says so, whichever target it is: its next mode is converted here while the other targets' checks (compilers, a
    browser: other processes) still run, instead of after them in the report's order (mtcnn_pnet: web's uint8
    missed the gates in the browser while android's checks ran). ``finish`` is this for one Future."""
    live, results = dict(pending), {}
    while live:
        wait(list(live.values()), return_when=FIRST_COMPLETED)
        for name, future in list(live.items()):
            if not future.done():
                continue
            result = future.result()
            if isinstance(result, Retry):
                live[name] = _go_on(result)
            else:
                results[name] = result
                del live[name]
    return results


def _go_on(retry: Retry) -> Future:
    return build_target(*retry.args, **{"start": len(retry.tries), "earlier": retry.tries, **retry.kwargs})


def build_target(name: str, spec: PackageSpec, source: Source, samples: SampleSet, reference: dict,
                 workdir: Path, staging: Path, progress: Progress, background: Executor,
                 prepared: Future | None = None, low_memory: bool = False, start: int = 0,
                 earlier: list | None = None, skip: tuple = (), validated: dict | None = None) -> Future:
    """Convert, validate and render ``name`` here; its checks are submitted to ``background``. ``prepared`` is
    the Future of the target's ``prepare``, handed to its checks. Returns a Future of the finished TargetResult,
    or of a Retry (``finish`` resolves both). ``low_memory``: what the converter held is handed back to the system
    before the target's checks start. ``start``, ``earlier``: where ``--quantize auto``'s ladder goes on, and the
    modes it tried before; ``skip``: modes whose shipped model failed a device check (never kept again);
    ``validated``: {mode: (result, artifact, stop)} of the modes validated before, not converted or validated again."""
    call = ((name, spec, source, samples, reference, workdir, staging, progress, background),
            {"prepared": prepared, "low_memory": low_memory})
    requested = spec.quantization.get(name, "")
    if not target_available(name):
        return _done(TargetResult(name, NOT_BUILT, quantization=requested,
                                  reason=f"the {name} target is not part of this packager version yet"))
    t0 = time.perf_counter()
    target = load_target(name)
    requested = requested or target.default_mode
    objective = getattr(spec, "optimize", "balanced")
    auto_order = getattr(target, "auto_order", None)  # a target may order its ladder per build (web: --web-runtime)
    if requested == "auto":
        modes = auto_order(spec, ladder(name, objective)) if auto_order else ladder(name, objective)
    else:
        modes = (requested,)
    tdir = workdir / name
    tdir.mkdir(parents=True, exist_ok=True)
    artifacts: dict = {}
    validated = {} if validated is None else validated
    result = artifact = None
    tries = list(earlier or [])
    # One mode asked for, and a target that can: its predictions run in the background with its checks,
    # on the rendered output (the web target: one browser session for both). With --quantize auto, the first mode
    # of the ladder is taken that way too (speculation: it usually passes); if it misses the gates, the Future
    # resolves to a Retry and ``finish`` goes on with the next modes as usual. In the low-memory plan too: its
    # checks are finished (and a Retry resolved) before the next target converts, and the samples then run in one
    # browser instead of two one after another (hed, 117 MB: 12 samples of ~1 s and a browser launch, twice).
    can_combine = hasattr(target, "predict_and_check")
    speculative = can_combine and len(modes) > 1 and start == 0
    combined = can_combine and (len(modes) == 1 or speculative)

    def attempt(mode: str):
        if mode in validated:  # validated before a device check failed another mode: as it was
            result, artifact, stop = validated[mode]
            return copy.deepcopy(result), artifact, stop
        result, artifact = convert_mode(name, target, mode, spec, source, tdir, artifacts, progress)
        if len(modes) > 1:  # auto: every mode by the gates of its smallest
            result.gates = auto_gates(name, modes[0], mode, spec.tolerances)
        if artifact is not None:  # the checks that run it again judge it the same way (modes.judged_gates)
            artifact.extra["gates"] = dict(result.gates)
        if low_memory:  # what the converter held goes back to the system before the model runs
            memory.release()
        stop = None
        if artifact is not None and not combined:
            if len(modes) > 1 and mode != modes[-1]:  # a later mode remains: a certain failure stops the samples
                artifact.extra["stop_early"] = partial(certain_failure, reference, gates=result.gates)
            stop = _validate(result, name, partial(target.predict, artifact, source, spec, samples), reference,
                             len(samples), progress, spec.output_kinds)
            artifact.extra.pop("stop_early", None)
        elif artifact is None and mode != "fp32" and len(modes) > 1:
            stop = fp32_fails_too(target, spec, source, tdir, artifacts)
        tries.append({"mode": mode, "status": result.status, "bytes": result.bytes, "reason": result.reason,
                      "metrics": result.metrics, **describe_try(name, target, mode, result, artifact),
                      **({"note": artifact.extra["try_note"]} if artifact is not None and "try_note" in artifact.extra
                         else {})})
        if not combined:
            validated[mode] = (copy.deepcopy(result), artifact, stop)
        return result, artifact, stop

    def stopped(result, mode: str, stop: str) -> None:
        tries[-1]["stopped"] = stop
        result.reason = _join(result.reason, f"auto quantization stopped at {mode}: {stop}")
        progress.info(f"    {name}: auto quantization stops at {mode}: {stop}")

    for mode in modes[start:]:
        if mode in skip:
            continue
        result, artifact, stop = attempt(mode)
        if speculative and artifact is not None:  # validated with its checks, in the background
            break
        if speculative:  # its conversion failed: the next modes are validated here, one by one
            speculative = combined = False
        if result.status == PASS:
            why = first_pass_reason(objective, name, modes, mode)
            for rival in rivals(name, mode, objective) if len(modes) > 1 else ():
                if rival in skip:
                    continue
                pointless = rival_cannot_win(objective, target, artifact, rival, agreement(result.metrics))
                if pointless:
                    why = f"{why}; {pointless}"
                    continue
                r2, a2, _ = attempt(rival)
                if r2.status != PASS:
                    why += f"; {rival} was tried too and missed the gates"
                    continue
                take, why = prefer_rival(objective, name, (mode, result.bytes or 0, agreement(result.metrics)),
                                         (rival, r2.bytes or 0, agreement(r2.metrics)))
                if take:
                    result, artifact = r2, a2
            if len(modes) > 1:
                result.optimize = {"objective": objective, "why": why}
            break
        if stop and mode != modes[-1]:  # no other mode can fix it: do not escalate...
            rest = target.after_stop(mode, modes) if hasattr(target, "after_stop") else ()
            if not rest:
                stopped(result, mode, stop)
                break
            # ...except to the modes of another runtime the target names (web: TF.js failed, LiteRT.js remains)
            tries[-1]["stopped"] = f"{stop}; going on with {', '.join(rest)}"
            skip = (*skip, *(m for m in modes if m not in rest))
    if requested == "auto":
        result.tries = tries

    def tried() -> None:
        if requested == "auto":
            progress.info(f"    {name}: auto quantization tried "
                          + ", ".join(t["mode"] + "=" + t["status"] for t in tries) + f" (--optimize {objective})"
                          + (f"; kept {result.quantization}: {result.optimize['why']}" if result.optimize else ""))

    if not speculative or artifact is None:
        tried()
    if artifact is None:  # conversion failed: nothing to package
        result.seconds = time.perf_counter() - t0
        return _done(result)
    if result.quantization == "int8" and len(samples) < MIN_CALIBRATION_SAMPLES:
        result.warnings.append(f"int8 calibrated on only {len(samples)} samples (fewer than "
                               f"{MIN_CALIBRATION_SAMPLES}); quantization ranges may not represent real inputs")
        progress.info(f"    warning: {result.warnings[-1]}")
    outdir = staging / name
    try:
        progress.info(f"    {name}: rendering {outdir.name}/")
        bundled = target.render(spec, source, artifact, samples, reference, outdir)
        result.artifact = (Path(name) / bundled).as_posix() if bundled else None
        if artifact.extra.get("bundled_samples"):  # the user's data that ships in the package, and the opt-out
            progress.info(f"    {name}: {artifact.extra['bundled_samples']}")
        for note in artifact.extra.get("notes", ()):  # what the target chose for the user (android: its package)
            result.notes.append(note)
            progress.info(f"    {name}: {note}")
    except Exception as e:
        _record_crash(result, f"rendering {name}", e, progress)
        result.seconds = time.perf_counter() - t0
        return _done(result)

    if prepared is not None:
        artifact.extra["prepared"] = prepared

    def run_checks() -> TargetResult | Retry:
        if combined:
            stop = _validate(result, name, partial(target.predict_and_check, spec, source, artifact, samples,
                                                   reference, outdir), reference, len(samples), progress,
                             spec.output_kinds)
            if speculative:
                tries[-1].update(status=result.status, reason=result.reason, metrics=result.metrics,
                                 **describe_try(name, target, tries[-1]["mode"], result, artifact))
                if result.status == PASS:
                    result.optimize = {"objective": objective,
                                       "why": first_pass_reason(objective, name, modes, tries[-1]["mode"])}
                if stop and result.status != PASS:
                    stopped(result, tries[-1]["mode"], stop)
                tried()
                if result.status == FAIL and stop is None and len(tries) < len(modes):
                    shutil.rmtree(outdir, ignore_errors=True)  # rendered again from the next mode that passes
                    return Retry(tries, *call)
        else:
            try:
                result.checks.extend(target.checks(spec, source, artifact, samples, reference, outdir))
            except Exception as e:
                _record_crash(result, f"checking {name}", e, progress)
        retry = _device_retry(result, target, modes, tries, skip, validated, outdir, progress) \
            if requested == "auto" else None
        if retry is not None:
            return Retry(tries, call[0], {**call[1], **retry})
        failed = [c.name for c in result.checks if c.status == FAIL and c.name != "predictions"]
        if failed and result.status != FAIL:
            result.status = FAIL
            result.reason = _join(result.reason, f"check(s) failed: {', '.join(failed)}")
        result.seconds = time.perf_counter() - t0
        return result

    progress.info(f"    {name}: {'validation and checks' if combined else 'checks'} queued (they run in the background)")
    return background.submit(run_checks)


def _device_retry(result: TargetResult, target, modes: tuple, tries: list, skip: tuple, validated: dict,
                  outdir: Path, progress: Progress) -> dict | None:
    """Under auto: when the kept mode passed validation but a check that runs its shipped model on the device's
    runtime failed (``target.device_checks``), its try is recorded as failed, with why, and the build goes on with
    the ladder without it: the keyword arguments of that ``build_target`` (None: no device check failed, or no
    mode is left that may pass)."""
    failed = [c for c in result.checks if c.status == FAIL and c.name in getattr(target, "device_checks", ())]
    if not failed:
        return None
    mode = result.quantization
    why = "; ".join(f"{c.name}: " + (c.detail or "").strip().splitlines()[0][:300] if c.detail else c.name
                    for c in failed)
    for entry in reversed(tries):
        if entry["mode"] == mode:
            entry.update(status=FAIL, reason=_join(entry.get("reason"),
                                                   f"passed validation, but the shipped model failed on the device "
                                                   f"runtime ({why})"), device_check=FAIL)
            break
    skip = (*skip, mode)
    left = [m for m in modes if m not in skip and (m not in validated or validated[m][0].status == PASS)]
    if not left:
        return None
    progress.info(f"    {result.target}: auto quantization: {mode} failed {', '.join(c.name for c in failed)}; "
                  f"going on with {', '.join(left)}")
    shutil.rmtree(outdir, ignore_errors=True)  # rendered again from the mode kept next
    return {"start": 0, "skip": skip, "validated": validated}


def _done(result: TargetResult) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future
