"""What every target's ``preprocessing`` check shares: its own image code is run on the ORIGINAL sample files
(not resized), and its model input compared with packager.preprocessing's: the pixels (0..255, before step 7) and,
where the target's code exposes it, the normalised input (step 7: mean/std, or per-image / per-channel
standardisation), its difference expressed in pixel levels too (times std, or the image's own standard deviation).
Each target runs its code in its own package (``targets/<name>/preprocessing_check.py``): web's page in Chromium,
android's Kotlin core on a JVM, iOS (no Swift toolchain here) UNVERIFIED.

The check carries ``data = {"files": N, "max_abs_diff": D, "path": "<what ran>"}`` (report.json's
``targets.<t>.preprocessing``); D above the spec's ``preprocessing.max_abs_diff`` (default 1.0) fails the target.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from packager.checks import FAIL, PASS, UNVERIFIED, Check

NAME = "preprocessing"


def image_files(samples) -> list[Path]:
    return list(getattr(samples, "image_paths", None) or [])


def _geometry(samples, geometry: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """(width, height, channels) of the model's image input."""
    if geometry is not None:
        return geometry
    _, h, w, c = samples.inputs[0].sample_shape
    return w, h, c


def not_run_data(spec, path: str) -> dict:
    """The report's preprocessing block when the target's image code did not run (same keys as a run)."""
    return {"files": 0, "max_abs_diff": None, "path": path, "gate": float(spec.preprocessing.max_abs_diff)}


def _verdict(spec, files: list[Path], diffs: list[float], path: str, t0: float,
             skipped: list[str] | None = None) -> Check:
    gate = float(spec.preprocessing.max_abs_diff)
    worst = max(diffs) if diffs else None
    data = {"files": len(diffs), "max_abs_diff": None if worst is None else round(worst, 6), "path": path,
            "gate": gate, "per_file": {f.name: round(d, 6) for f, d in zip(files, diffs)}}
    detail = f"{len(diffs)} original sample files through {path}"
    if worst is not None:
        worst_file = files[int(np.argmax(diffs))].name
        detail += (f": model input max |diff| vs packager.preprocessing (Python) {worst:.4g} pixel levels "
                   f"(0..255, normalisation {getattr(spec.preprocessing, 'normalize', 'mean-std')} included; "
                   f"gate {gate:g}; worst {worst_file})")
    if skipped:
        data["not_run"] = skipped
        detail += f"; not run on {len(skipped)}: " + "; ".join(skipped[:3])
    if worst is not None and worst > gate:
        return Check(NAME, FAIL, detail, time.perf_counter() - t0, data=data)
    if skipped or worst is None:
        return Check(NAME, UNVERIFIED, detail, time.perf_counter() - t0, data=data)
    return Check(NAME, PASS, detail, time.perf_counter() - t0, data=data)


def input_diff(got_pixels: np.ndarray, got_input: np.ndarray | None, want_pixels: np.ndarray, pre) -> float:
    """The larger of the pixels' difference and of the normalised inputs' (step 7: mean/std or the image's own
    statistics) difference, both in pixel levels (an input difference times the level scale ``std``)."""
    from packager.preprocessing import level_scale, normalised

    if got_pixels.size != want_pixels.size:
        return float("inf")
    d = _diff(got_pixels.reshape(want_pixels.shape), want_pixels)
    if got_input is None:
        return d
    if got_input.size != want_pixels.size:
        return float("inf")
    want = normalised(want_pixels, pre).astype(np.float64)
    levels = np.abs(got_input.reshape(want.shape).astype(np.float64) - want) * level_scale(want_pixels, pre)
    return max(d, float(np.nan_to_num(levels, nan=np.inf).max()) if levels.size else 0.0)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
