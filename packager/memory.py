"""Memory: what a build will need, estimated from the model's weights before anything is loaded, against what
the machine has free; and giving memory back between targets.

Two plans (``plan``):

  parallel    the default: the first target is built in a second process (``worker``) while this one builds the
              others, each target's checks in the background.
  low-memory  ``--low-memory`` (or ``PACKAGER_LOW_MEMORY=1``): one process, one target at a time, a target's
              checks finished before the next target converts, what a finished target held freed first.

The estimate is ``fixed + per_weight_byte x weights`` with figures measured on this machine (FIXED, PER_WEIGHT
below, from benchmarks/peak_memory.py and large_models.py: the sum of PSS over the build's whole process tree). Available memory is the
smallest of /proc/meminfo's MemAvailable, the cgroup's limit minus its usage (v2 ``memory.max``, v1
``memory.limit_in_bytes``) and ``PACKAGER_MEMORY_LIMIT`` (bytes, or 512M / 4G: a cap for a machine smaller than
this one, e.g. the CI runner a build must fit; it only lowers what the machine reports).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
from dataclasses import dataclass
from pathlib import Path

from packager.errors import MemoryShortage, UsageError

PARALLEL, LOW_MEMORY = "parallel", "low-memory"
LARGE_WEIGHTS = 64 * 1024 ** 2  # bytes of weights from which a build takes the low-memory plan by itself
ENV_LIMIT = "PACKAGER_MEMORY_LIMIT"
ENV_LOW_MEMORY = "PACKAGER_LOW_MEMORY"
ENV_CHECK = "PACKAGER_MEMORY_CHECK"  # "0": build even when the estimate says it does not fit (it is an estimate)
GIB = 1024 ** 3
MIB = 1024 ** 2

# Peak of the whole process tree (sum of PSS) = FIXED[plan] + PER_WEIGHT[plan] x weight bytes, three targets,
# fitted on two measured builds each (keras.applications, weights=None, 16 samples, android=int8 ios=8bit
# web=uint8; BENCHMARKS.md, issue 19): parallel MobileNetV2 (14.7 MB) 2.15 GiB, ResNet50 (103 MB) 6.02 GiB;
# low-memory MobileNetV2 1.44 GiB, ResNet50 3.44 GiB. Each target fewer takes TARGET_SHARE of the weight part off
# (an assumption, not measured: one target's converter is the peak in the low-memory plan).
FIXED = {PARALLEL: 1.51 * GIB, LOW_MEMORY: 1.11 * GIB}
PER_WEIGHT = {PARALLEL: 46.9, LOW_MEMORY: 24.3}
TARGET_SHARE = 0.25
HEADROOM = 1.1  # the estimate is a measured peak: leave a tenth over it

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str, where: str) -> int:
    m = _SIZE.match(text or "")
    if not m:
        raise UsageError(f"{where}={text!r} is not a size", where=where,
                         hint="bytes, or a number with K, M, G or T (e.g. 6G)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def low_memory_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(ENV_LOW_MEMORY, "") not in ("", "0")


def choose_plan(model: Path, low_memory: bool = False) -> str:
    """LOW_MEMORY when asked for or when the weights reach LARGE_WEIGHTS, else PARALLEL."""
    return LOW_MEMORY if low_memory or weights_bytes(model) >= LARGE_WEIGHTS else PARALLEL


# ---- what the machine has --------------------------------------------------------------------------------


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cgroup_room() -> int | None:
    """The cgroup's memory limit minus its usage, None without a limit (v2, then v1)."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < (1 << 60):  # "max" (v2) or 2^63 rounded (v1): no limit
            return max(0, limit - (usage or 0))
    return None


@dataclass
class Available:
    bytes: int | None
    source: str  # what gave the figure


def available() -> Available:
    found = []
    mem = meminfo_available()
    if mem is not None:
        found.append((mem, "MemAvailable in /proc/meminfo"))
    room = cgroup_room()
    if room is not None:
        found.append((room, "the cgroup's memory limit minus its usage"))
    cap = os.environ.get(ENV_LIMIT)
    if cap:
        found.append((parse_size(cap, ENV_LIMIT), f"${ENV_LIMIT}"))
    if not found:
        return Available(None, "unknown (no /proc/meminfo, no cgroup limit)")
    value, source = min(found)
    return Available(value, source)


# ---- what the build needs --------------------------------------------------------------------------------


def weights_bytes(model: Path) -> int:
    """The model's weight bytes as stored (fp32 for the models packager takes), read from the files only:
    a SavedModel's variables (+ an embedded graph's constants), a .keras/.h5/.pb file's size."""
    model = Path(model)
    if model.is_dir():
        total = sum(p.stat().st_size for p in (model / "variables").glob("*") if p.is_file())
        pb = model / "saved_model.pb"
        return total + (pb.stat().st_size if pb.is_file() else 0)
    try:
        return model.stat().st_size
    except OSError:
        return 0


def estimate(weights: int, plan: str, targets: int = 3) -> int:
    share = 1.0 - TARGET_SHARE * max(0, 3 - targets)
    return int((FIXED[plan] + PER_WEIGHT[plan] * weights * share) * HEADROOM)


def check_fits(model: Path, targets: int, plan: str, progress=None) -> int:
    """Raise MemoryShortage, before anything is converted, when the estimate for ``plan`` exceeds what the
    machine has free. Returns the estimate (bytes); says the plan on ``progress``."""
    weights = weights_bytes(model)
    need = estimate(weights, plan, targets)
    have = available()
    if progress is not None:
        free = f"{have.bytes / GIB:.1f} GiB free ({have.source})" if have.bytes is not None else have.source
        progress.debug(f"memory: {plan} plan, about {need / GIB:.1f} GiB estimated; {free}")
        if plan == LOW_MEMORY:
            progress.info(f"==> {'large model' if weights >= LARGE_WEIGHTS else '--low-memory'}: one process, one "
                          "target at a time (each target's memory freed before the next)")
    if have.bytes is None or need <= have.bytes or os.environ.get(ENV_CHECK) == "0":
        return need
    fix = []
    if plan == PARALLEL:
        low = estimate(weights, LOW_MEMORY, targets)
        fix.append(f"--low-memory (one process, one target at a time: about {low / GIB:.1f} GiB)")
    if targets > 1:
        one = estimate(weights, LOW_MEMORY, 1)
        fix.append(f"fewer targets at once, e.g. --targets android, then the others (about {one / GIB:.1f} GiB each "
                   "with --low-memory)")
    fix.append(f"close other programs, or run on a machine with more memory ({ENV_CHECK}=0 builds anyway: the "
               "figure is an estimate)")
    raise MemoryShortage(
        f"this build needs about {need / GIB:.1f} GiB of memory ({weights / MIB:.0f} MB of weights, {targets} "
        f"target(s), {plan} plan) but only {have.bytes / GIB:.1f} GiB is free ({have.source})",
        where=str(model), hint="; or ".join(fix))


# ---- giving memory back ----------------------------------------------------------------------------------


def release() -> None:
    """Collect Python garbage and hand freed heap pages back to the system (glibc ``malloc_trim``), so that
    what a finished target held does not stay in this process's footprint."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---- the samples -------------------------------------------------------------------------------------------

MAX_SAMPLE_BYTES = 512 * MIB  # one sample of all inputs, as float32: far beyond any on-device model's input
SAMPLE_COPIES = 3  # the samples as read, as the model's dtype (checks) and their preprocessing/outputs, at once


def check_sample_size(shapes: dict[str, tuple[int, ...]], where: str, hint: str) -> int:
    """Refuse (InputError), before anything is allocated, inputs whose one sample (``shapes``: input name ->
    sample shape) is over ``MAX_SAMPLE_BYTES`` as float32. Returns the bytes of one sample."""
    from packager.errors import InputError

    sizes = {name: 4 * _product(shape) for name, shape in shapes.items()}
    total = sum(sizes.values())
    if total > MAX_SAMPLE_BYTES:
        name = max(sizes, key=sizes.get)
        shape = ", ".join(map(str, shapes[name]))
        raise InputError(f"one sample of input {name!r} (shape ({shape})) takes {_size(sizes[name])} as float32, "
                         f"over packager's limit of {_size(MAX_SAMPLE_BYTES)} per sample (no phone runs such a "
                         "model)", where=where, hint=hint)
    return total


def check_samples_fit(count: int, sample_bytes: int, where: str) -> None:
    """Raise MemoryShortage, before the samples are read, when ``count`` samples of ``sample_bytes`` each (as
    float32) cannot be held ``SAMPLE_COPIES`` times in the memory the machine has free."""
    need = count * sample_bytes * SAMPLE_COPIES
    have = available()
    if have.bytes is None or need <= have.bytes or os.environ.get(ENV_CHECK) == "0":
        return
    fit = max(1, have.bytes // max(1, sample_bytes * SAMPLE_COPIES))
    raise MemoryShortage(
        f"the sample set holds {count} samples of {_size(sample_bytes)} each ({_size(count * sample_bytes)} as "
        f"float32); the build needs about {_size(need)} for them but only {_size(have.bytes)} is free "
        f"({have.source})", where=where,
        hint=f"pass fewer samples: a few hundred representative ones are enough to validate and calibrate "
             f"(at most about {fit} fit here)")


def _product(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"
