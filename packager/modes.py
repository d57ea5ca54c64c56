"""One quantization mode of one target: converted once per build (``convert_mode``), and ``--quantize auto``'s
ladder (``AUTO_ORDER``) with the rival modes it also tries when a mode passes (``AUTO_RIVALS``)."""

from __future__ import annotations

import functools
import platform
import traceback
from pathlib import Path

from packager.checks import FAIL
from packager.compare import gates_for
from packager.errors import ConversionError, disk_full
from packager.report import TargetResult

AUTO_ORDER = {  # smallest first; --quantize auto keeps the first mode that passes the gates (or a smaller rival)
    "android": ("int8", "mixed", "dynamic", "fp16", "fp32"),
    "ios": ("palette4", "palette6", "8bit", "fp16", "fp32"),
    # fp16 before uint16: the same 2 bytes a weight, and uint16's model.json adds each tensor's scale and min
    # (every corpus model: fp16 0.2-1.4 % smaller)
    "web": ("uint8", "mixed", "fp16", "uint16", "fp32"),
}
# A mode whose bytes are not known to exceed the passing one's: auto converts it too and keeps the smaller that
# passes. Full int8 stores a scale and zero point per output channel, dynamic-range a float per channel of the
# weights only: on models with many small layers dynamic is the smaller (corpus: fer 95,004 vs 102,452 B,
# mltk_vww 274,544 vs 303,224 B), on others int8 (deepcut). Each rival costs one conversion and one validation.
AUTO_RIVALS = {"android": {"int8": ("dynamic",)}}

# --optimize: what auto weighs when more than one mode passes. The kernel family a mode runs on a device's CPU:
# full-integer int8 is the fastest path on phones (LiteRT: ~3x+ over float), float runs on XNNPACK, dynamic-range
# runs hybrid kernels (int8 weights, float activations; slower than XNNPACK's float on many CPUs). Core ML's and
# TF.js's weight modes decompress weights to float: their compute is float whatever the mode.
OBJECTIVES = ("balanced", "size", "speed")
DEFAULT_OBJECTIVE = "balanced"
FIDELITY_RIVAL_BYTES = 1_000_000  # a rival is converted for fidelity alone only for models this small (sub-second)
BALANCED_SHARE = 0.25  # balanced ships a hybrid (dynamic-range) model over a passing int8 only if it saves more
KERNEL_FAMILY = {"android": {"int8": "full-integer", "mixed": "mixed", "dynamic": "hybrid", "fp16": "float",
                             "fp32": "float"}}
SPEED_ORDER = {"android": ("int8", "mixed", "fp16", "fp32")}  # full-integer > mixed > float (XNNPACK); no hybrid


def kernel_family(target: str, mode: str) -> str:
    return KERNEL_FAMILY.get(target, {}).get(mode, "float")


def ladder(target: str, objective: str) -> tuple[str, ...]:
    """The modes ``--quantize auto`` tries for ``target`` under ``objective``, in order."""
    return SPEED_ORDER.get(target, AUTO_ORDER[target]) if objective == "speed" else AUTO_ORDER[target]


def rivals(target: str, mode: str, objective: str) -> tuple[str, ...]:
    """The modes also converted when ``mode`` passes: none under speed (the ladder is by kernel speed already)."""
    return () if objective == "speed" else AUTO_RIVALS.get(target, {}).get(mode, ())


def agreement(metrics: dict | None) -> float | None:
    """Agreement with the original on the samples: top-1 where the outputs are class-shaped, else decisions."""
    metrics = metrics or {}
    found = metrics.get("top1_agreement")
    return found if found is not None else metrics.get("decision_agreement")


def rival_cannot_win(objective: str, target, artifact, rival: str, agree: float | None = None) -> str | None:
    """Why ``rival`` need not be converted at all (None: it must be): under balanced, when the target knows a floor
    of the rival's bytes (``target.rival_floor``: android, the int8 model's buffers) that already rules out saving
    more than BALANCED_SHARE (a large model's dynamic-range conversion costs seconds) and, on a model of at most
    FIDELITY_RIVAL_BYTES, the kept mode agrees with the original on every sample (``agree``: else the rival may win
    by agreeing on more, ``prefer_rival``)."""
    floor = getattr(target, "rival_floor", None)
    if objective != "balanced" or floor is None or not artifact.bytes:
        return None
    if agree is not None and agree < 1.0 and artifact.bytes <= FIDELITY_RIVAL_BYTES:
        return None
    least = floor(artifact, rival)
    if least is None or 1 - least / artifact.bytes > BALANCED_SHARE:
        return None
    return (f"{rival} not converted: it stores at least {least:,} B (the weights and metadata of {artifact.mode}'s "
            f"{artifact.bytes:,} B), so it cannot save more than {BALANCED_SHARE:.0%} of the bytes")


def prefer_rival(objective: str, target: str, kept: tuple, rival: tuple) -> tuple[bool, str]:
    """(ship the rival?, why) for two passing modes, each (mode, bytes[, agreement with the original on the samples:
    top-1 or decisions]): ``size`` ships the smaller; ``balanced`` ships a rival of a slower kernel family when it
    saves more than BALANCED_SHARE of the bytes, or when it agrees with the original on more samples at no more
    bytes (fer: dynamic-range with float weights where int8 flips faces, 64/64 against int8's 61/64)."""
    (mode, size, agree), (other, other_size, other_agree) = (*kept, None)[:3], (*rival, None)[:3]
    fam, other_fam = kernel_family(target, mode), kernel_family(target, other)
    saved = 1 - other_size / size if size else 0.0
    pct = f"{other} ({other_fam}) is {other_size:,} B against {mode} ({fam}) {size:,} B: {saved:+.1%} saved"
    if objective == "size":
        return other_size < size, f"size keeps the smaller that passes; {pct}"
    if other_size < size and saved > BALANCED_SHARE:
        return True, f"balanced: {pct}, more than the {BALANCED_SHARE:.0%} that outweighs {fam} kernels' speed"
    if agree is not None and other_agree is not None and other_agree > agree and other_size <= size:
        return True, (f"balanced: {other} agrees with the original on more samples ({other_agree:.3f} against "
                      f"{agree:.3f}) at no more bytes; {pct}")
    return False, (f"balanced prefers {fam} kernels (faster on phones) unless {other} saves more than "
                   f"{BALANCED_SHARE:.0%} of the bytes or agrees on more samples at no more bytes; {pct}")


_ISA = (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512f", "AVX-512"), ("avx2", "AVX2"),
        ("i8mm", "I8MM"), ("asimddp", "dot product"), ("asimd", "NEON"))


@functools.lru_cache(maxsize=1)
def host_cpu() -> str:
    """This host's CPU model and its widest int8/SIMD extension (/proc/cpuinfo), which host latencies are
    labelled with: int8's speed against float follows them (no VNNI: int8 may be the slower), not a phone's."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    isa = next((label for flag, label in _ISA if flag in flags), None)
    return f"{model} ({isa})" if isa else model


def describe_try(target_name: str, target, mode: str, result, artifact) -> dict:
    """What a try records beside its status and bytes: the kernel family, the target's own kernel profile
    (android: how many ops XNNPACK delegates of how many) and the host latency, labelled with the host CPU."""
    entry: dict = {"family": kernel_family(target_name, mode)}
    profile = getattr(target, "kernel_profile", None)
    if artifact is not None and profile is not None:
        try:
            entry.update(profile(artifact))
        except Exception as e:  # a profile that cannot run here says so; the try stands
            entry["xnnpack"] = f"UNVERIFIED: {type(e).__name__}: {str(e)[:200]}"
    if result.latency_ms is not None:
        entry.update(latency_ms=round(result.latency_ms, 3), latency_host=f"{host_cpu()}, 1 thread (host, not a phone)")
    return entry


def first_pass_reason(objective: str, target: str, modes: tuple[str, ...], mode: str) -> str:
    fam = kernel_family(target, mode)
    order = " > ".join(modes)
    if target not in KERNEL_FAMILY:
        return (f"{mode} is the first that passes of {order} (smallest first: its modes compress the weights only, "
                f"float compute, the same under every objective)")
    if objective == "speed":
        return f"speed: {mode} ({fam}) is the first that passes of {order} (by kernel speed on phones)"
    return f"{objective}: {mode} ({fam}) is the first that passes of {order} (smallest first)"


def auto_gates(target: str, first: str, mode: str, tolerances: dict | None) -> dict[str, float]:
    """The gates ``--quantize auto`` judges ``mode`` by: its own, relaxed to those of the ladder's ``first``
    (smallest) mode where those are looser, so that a more precise mode is never turned down for an error auto
    would ship from that mode (mltk_cifar10: dynamic-range, top-1 63/63, max error 0.063, was refused by its own
    0.05 while int8 may have 0.1, and fp16 shipped at 1.74x its bytes). Tolerances the user set for this very mode
    (``[tolerances.dynamic]``, ``[tolerances.android.dynamic]``) are taken as they are."""
    tolerances = tolerances or {}
    own = gates_for(target, mode, tolerances)
    if mode in tolerances or f"{target}.{mode}" in tolerances:
        return own
    lax = gates_for(target, first, tolerances)
    return {k: (max if k.startswith("max") else min)(v, lax.get(k, v)) for k, v in own.items()}


def judged_gates(target: str, artifact, mode: str, tolerances: dict | None) -> dict[str, float]:
    """The gates the build judged ``artifact`` by (``auto_gates`` under auto, kept in ``extra["gates"]``) when
    ``mode`` is the artifact's own; else ``mode``'s. The checks that run the shipped model again use these, so a
    mode auto kept is not failed afterwards by a stricter gate than the one it was chosen by."""
    kept = artifact.extra.get("gates") if mode == artifact.mode else None
    return dict(kept) if kept else gates_for(target, mode, tolerances)


def convert_once(target, mode: str, spec, source, tdir: Path, artifacts: dict):
    """Convert ``mode`` once per build. A converter that produced other modes on the way (the fp32 model a
    quantized one was derived from) hands them over as ``extra["by_products"]`` (or, when it then failed, as the
    ConversionError's ``by_products``), so they are not converted again."""
    if mode not in artifacts:
        try:
            artifact = target.convert(source, spec, mode, tdir)
        except ConversionError as e:  # what it converted before failing (android mixed: its bound's modes)
            for other, by_product in (e.by_products or {}).items():
                artifacts.setdefault(other, by_product)
            raise
        artifacts[mode] = artifact
        for other, by_product in artifact.extra.pop("by_products", {}).items():
            artifacts.setdefault(other, by_product)
    return artifacts[mode]


def convert_mode(name, target, mode, spec, source, tdir, artifacts, progress):
    """(result, artifact): ``mode`` converted (and fp32, for float_bytes); artifact None if that failed. Never raises."""
    result = TargetResult(name, FAIL, quantization=mode, gates=gates_for(name, mode, spec.tolerances))
    try:
        progress.info(f"    {name}: converting ({mode}" + (", calibrating on the samples" if mode == "int8" else "") + ")")
        artifact = convert_once(target, mode, spec, source, tdir, artifacts)
        float_artifact = convert_once(target, "fp32", spec, source, tdir, artifacts)
        artifact.extra["float_path"] = float_artifact.path
        result.checks.extend(artifact.extra.get("quantization_checks", ()))  # e.g. the ops a mixed mode kept float
        result.bytes, result.float_bytes = artifact.bytes, float_artifact.bytes
        if artifact.extra.get("gates_mode"):  # a file of another mode's precision (web litert: android's .tflite),
            # judged by the gates that file was judged by where it was made (android's auto gates when auto kept it)
            result.gates = dict(artifact.extra.get("gates") or gates_for(name, artifact.extra["gates_mode"],
                                                                          spec.tolerances))
    except ConversionError as e:
        result.reason = e.message + (f" — {e.hint}" if e.hint else "")
        result.conversion_failed = True
        return result, None
    except Exception as e:  # a converter crashed in a way we do not know: report it, keep other targets going
        if disk_full(e):
            raise disk_full(e) from e
        result.reason = f"{name} conversion crashed: {type(e).__name__}: {str(e).strip()[:400]}"
        result.conversion_failed = True
        progress.debug(traceback.format_exc())
        return result, None
    return result, artifact


def fp32_fails_too(target, spec, source, tdir: Path, artifacts: dict) -> str | None:
    """After a quantized mode failed to convert: why no other mode can help (fp32 fails as well), or None."""
    try:
        convert_once(target, "fp32", spec, source, tdir, artifacts)
    except Exception as e:
        return f"the fp32 conversion fails too ({getattr(e, 'message', None) or type(e).__name__}): not a quantization problem"
    return None
