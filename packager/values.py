"""Checks of single settings (flags and packager.toml values), before anything is loaded or written.

Each raises UsageError naming the flag or key, the bad value, and a fix. Values that reach generated code
(ABIs, names, numbers) are validated here and escaped at render time (render.py).
"""

from __future__ import annotations

import math
import sys

from packager.errors import UsageError
from packager.targets import did_you_mean

ANDROID_ABIS = ("arm64-v8a", "armeabi-v7a", "x86", "x86_64")
MAX_NAME = 100  # class names, file names and titles are derived from it


def check_abi_filters(values, where: str) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)) or not values:
        raise UsageError("[android] abi_filters is empty: the module would hold no native library", where=where,
                         hint=f"list at least one ABI, e.g. abi_filters = [\"arm64-v8a\"]; known ABIs: {', '.join(ANDROID_ABIS)}")
    out = []
    for v in values:
        if not isinstance(v, str) or v not in ANDROID_ABIS:
            raise UsageError(f"[android] abi_filters: unknown Android ABI {v!r}", where=where,
                             hint=f"{did_you_mean(str(v), ANDROID_ABIS)}known ABIs: {', '.join(ANDROID_ABIS)}")
        out.append(v)
    return tuple(dict.fromkeys(out))


def check_preprocessing(mean: tuple[float, ...], std: tuple[float, ...], where: str | None = None) -> None:
    """mean and std must be finite in float32, std > 0 (x = (pixel - mean) / std runs in float32)."""
    import numpy as np

    for flag, values in (("--mean", mean), ("--std", std)):
        with np.errstate(over="ignore", invalid="ignore"):
            f32 = np.asarray(values, dtype=np.float64).astype(np.float32)
        if not all(math.isfinite(v) for v in values) or not np.all(np.isfinite(f32)):
            raise UsageError(f"{flag} values must be finite numbers (in float32), got {values}", where=where,
                             hint="e.g. --mean 127.5 --std 127.5")
    if any(v <= 0 for v in std) or np.any(np.asarray(std, np.float64).astype(np.float32) == 0):
        raise UsageError(f"--std values must be greater than 0 (and not 0 in float32), got {std}", where=where,
                         hint="e.g. --std 255 for pixels scaled to 0..1")
    if len(mean) and len(std):
        ends = [(p - m) / s for p in (0.0, 255.0) for m in mean for s in std]
        if max(abs(v) for v in ends) > float(np.finfo(np.float32).max):
            raise UsageError(f"--mean {mean} and --std {std} turn pixels 0..255 into values beyond float32's range",
                             where=where, hint="e.g. --mean 127.5 --std 127.5 (pixels to -1..1)")


GATE_RANGES = {"min_top1": (0.0, 1.0), "min_decision": (0.0, 1.0), "min_cosine": (0.0, 1.0), "max_abs_error": (0.0, math.inf),
               "min_psnr": (0.0, 200.0)}  # dB: compare.PSNR_CAP


def check_gate(key: str, value, where: str) -> float:
    """A tolerance: a finite number in its range. A gate that cannot fail is warned about."""
    lo, hi = GATE_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        rng = f"between {lo:g} and {hi:g}" if math.isfinite(hi) else f"a finite number >= {lo:g}"
        raise UsageError(f"tolerance {key} = {value!r} is out of range: it must be {rng}", where=where,
                         hint="a gate cannot be switched off; remove the key to keep the default")
    vacuous = (key.startswith("min_") and value == 0) or (key == "max_abs_error" and value >= 1e6)
    if vacuous:
        print(f"warning: tolerance {key} = {value!r} can never fail: that gate checks nothing ({where})",
              file=sys.stderr)
    return float(value)


def check_input_shape(name: str, dims, where: str) -> tuple[int, ...]:
    if not isinstance(dims, (list, tuple)) or not dims or any(
            isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise UsageError(f"input_shapes.{name} must be a list of positive integers, got {dims!r}", where=where,
                         hint=f"e.g. input_shapes = {{ {name} = [1, 224, 224, 3] }}")
    return tuple(dims)


def check_shard_bytes(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise UsageError(f"[web] shard_bytes must be an integer >= 1024, got {value!r}", where=where,
                         hint="e.g. shard_bytes = 4194304 (4 MiB, the default)")
    return value


def check_name(name: str, where: str, *, from_file: bool = False) -> str:
    """The model name becomes class names, file names and titles: bounded length, some letter or digit."""
    if len(name) > MAX_NAME:
        what = f"the model file name {name[:40]!r}... " if from_file else f"--name {name[:40]!r}... "
        raise UsageError(f"{what}is {len(name)} characters long (at most {MAX_NAME}: it names generated "
                         "classes and files)", where=where, hint="pass a shorter --name (or name = ... in packager.toml)")
    if "\0" in name:
        raise UsageError("--name holds a NUL character", where=where, hint="use letters, digits, spaces, - and _")
    return name
