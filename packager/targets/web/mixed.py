"""TF.js mixed weights (web mode ``mixed``): uint8 for most weights, float16 for the few that uint8 damages.

tensorflowjs quantizes each weight tensor on its own affine grid (256 steps from its min to its max). A tensor
with a few large values (folded batch norms, a first layer scaled for raw pixels) gets a coarse grid and most of
its values lose their precision; everything else survives uint8 well. ``choose_dtype_map`` measures, per weight
tensor, the error uint8 would give it relative to its own signal (RMS of ``dequantize(quantize(w)) - w`` over
RMS of ``w``) and keeps float16 for the tensors well above the model's typical error (``OUTLIER_FACTOR`` times
the median), worst first, within a byte budget that keeps the model under the uint16 mode's size. The result is
a ``quantization_dtype_map`` (``{"float16": [names], "uint8": True}``) for ``tensorflowjs``.

The weights are the converter's own (after its graph optimizations fold batch norms), seen while it writes
them: one conversion, no second pass. ``--quantize auto`` tries ``mixed`` after ``uint8`` misses the gates and
before ``uint16``; the browser validates it like every mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from packager.checks import PASS, Check
from packager.errors import ConversionError

OUTLIER_FACTOR = 3.0  # float16 for a tensor whose uint8 error is this many times the model's median
BUDGET = 0.5  # float16 may add at most this share of the uint8 weight bytes (uint16 adds 1.0)


@dataclass
class MixedWeights:
    dtype_map: dict
    float16: list[tuple[str, float]] = field(default_factory=list)  # (name, relative uint8 error)
    median_error: float = 0.0
    tensors: int = 0
    rule: str = ""

    def check(self) -> Check:
        worst = ", ".join(f"{n} ({e:.2%})" for n, e in self.float16[:8])
        more = f" and {len(self.float16) - 8} more" if len(self.float16) > 8 else ""
        return Check("mixed weights", PASS,
                     f"{len(self.float16)} of {self.tensors} weight tensors kept float16, the rest uint8: their "
                     f"uint8 error relative to their own RMS {self.rule} ({self.median_error:.2%}): {worst}{more}")


def uint8_error(w: np.ndarray) -> float:
    """RMS error of tensorflowjs' uint8 affine quantization of ``w``, relative to the RMS of ``w``."""
    w = np.asarray(w, np.float64).reshape(-1)
    rms = float(np.sqrt(np.mean(w * w))) if w.size else 0.0
    lo, hi = (float(w.min()), float(w.max())) if w.size else (0.0, 0.0)
    if rms == 0.0 or hi == lo:
        return 0.0
    scale = (hi - lo) / 255.0
    q = np.round((w - lo) / scale) * scale + lo
    return float(np.sqrt(np.mean((q - w) ** 2))) / rms


def choose_dtype_map(weights) -> MixedWeights:
    """``weights``: tensorflowjs' weight groups (lists of ``{"name", "data"}``). Float16 goes to the outliers; when
    none stands out, to the worst above-median tensors. Raises ConversionError when all errors are equal."""
    floats = [(e["name"], np.asarray(e["data"])) for group in weights for e in group
              if np.asarray(e["data"]).dtype.kind == "f"]
    errors = sorted(((uint8_error(a), n, a.size) for n, a in floats), reverse=True)
    if not errors:
        raise ConversionError("mixed web weights: the model has no float weights to quantize")
    median = float(np.median([e for e, _, _ in errors]))
    budget = BUDGET * sum(size for _, _, size in errors)  # uint8: a byte per value; float16 adds one more
    rule = f"exceeds {OUTLIER_FACTOR:g}x the model's median"
    chosen = _within_budget(errors, OUTLIER_FACTOR * median, budget)
    if not chosen:  # nothing stands out: the worst of the above-median tensors still gain the most from float16
        rule = "is above the model's median (none stands out by " + f"{OUTLIER_FACTOR:g}x)"
        chosen = _within_budget(errors, median, budget)
    if not chosen:
        raise ConversionError(f"mixed web weights: every weight tensor has the same uint8 error (median "
                              f"{median:.2%}); the mix would be plain uint8",
                              hint="use uint8 or uint16 (auto goes on to uint16)")
    dtype_map = {"float16": [_literal(n) for n, _ in chosen], "uint8": True}
    return MixedWeights(dtype_map, chosen, median, len(errors), rule)


def _within_budget(errors, threshold: float, budget: float) -> list[tuple[str, float]]:
    """Tensors whose error is above ``threshold``, worst first, while their float16 bytes fit ``budget``."""
    chosen, extra = [], 0
    for err, name, size in errors:
        if err <= threshold:
            break
        if extra + size <= budget:
            chosen.append((name, err))
            extra += size
    return chosen


def _literal(name: str) -> str:
    """``name`` as an fnmatch pattern matching only itself (tensorflowjs matches names with wildcards)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
