"""The shipped model's runs for the XCTest's golden cases, which measure its error (the tolerance) and its top-1
agreement. Each run of a large model on the NumPy executor costs about a second; so

- a golden case whose Core ML input is exactly one the build's validation already ran (a sample given as-is: the
  same tensor, byte for byte), or one an earlier golden case ran (an EXIF-rotated copy shown upright is the
  sample's own picture), takes that run's outputs instead of running again: the executor is deterministic (one
  BLAS thread), so the outputs are the ones a new run would give;
- the others run while they fit ``BUDGET_S`` by the executor's measured cost per run (at least ``MIN_RUNS``); a
  case not run is not measured, the tolerance basis says how many were and why, and its top-1 is not asserted."""

from __future__ import annotations

import hashlib
import time

import numpy as np

BUDGET_S = 5.0
MIN_RUNS = 2


def input_digest(fed: dict, pixels: bool = False) -> str:
    """The identity of one set of Core ML inputs: names, shapes and float32 values. ``pixels``: image inputs whose
    values are all within 1e-3 of whole levels count as those levels (validation feeds the samples' pixels back from
    the normalised tensor, 200.00002 for the file's 200; the same rule as the render's reuse of array samples)."""
    h = hashlib.sha256()
    for name in sorted(fed):
        x = np.asarray(fed[name]).astype(np.float32)
        if pixels and x.size and float(np.max(np.abs(x - np.rint(x)))) < 1e-3:
            x = np.rint(x)
        x = np.ascontiguousarray(x)
        h.update(name.encode() + b"\0" + repr(x.shape).encode() + b"\0" + x.tobytes())
    return h.hexdigest()


class GoldenRuns:
    """Runs golden cases on ``executor`` (``(runner, runtime)`` or None) through ``run(fed)`` (the render's
    ``_run_shipped`` on one set of inputs); ``known``: input digest -> outputs of the build's validation runs;
    ``seconds_per_run``: the executor's measured cost (validation's), None when unknown."""

    def __init__(self, run, known: dict | None = None, seconds_per_run: float | None = None, *,
                 pixels: bool = False, budget_s: float = BUDGET_S, min_runs: int = MIN_RUNS):
        self._run, self.known, self.pixels = run, dict(known or {}), pixels
        self.seconds_per_run = seconds_per_run
        self.budget_s, self.min_runs = budget_s, min_runs
        self.reused = self.ran = self.skipped = 0
        self._spent = 0.0

    def __call__(self, fed: dict) -> dict | None:
        digest = input_digest(fed, self.pixels)
        if digest in self.known:
            self.reused += 1
            return self.known[digest]
        cost = self.seconds_per_run if self.seconds_per_run is not None else (
            self._spent / self.ran if self.ran else 0.0)
        spent = max(self._spent, self.ran * cost)  # the measured cost, or this machine's walls if they are longer
        if self.ran >= self.min_runs and spent + cost > self.budget_s:
            self.skipped += 1
            return None
        t0 = time.perf_counter()
        out = self._run(fed)
        self._spent += time.perf_counter() - t0
        self.ran += 1
        if out is not None:
            self.known[digest] = out
        return out

    def basis(self) -> str:
        """What the measured error rests on, for the tolerance basis (empty when every case ran or was reused)."""
        if not self.reused and not self.skipped:
            return ""
        parts = []
        if self.reused:
            parts.append(f"{self.reused} case(s) are inputs run already (by the build's validation or an earlier "
                         "golden case: their outputs reused)")
        if self.skipped:
            cost = self.seconds_per_run if self.seconds_per_run is not None else (self._spent / max(self.ran, 1))
            parts.append(f"{self.skipped} case(s) not executed here (each one more run of the shipped model, "
                         f"{1000 * cost:.0f} ms a run here; {self.ran} run within the {self.budget_s:g} s budget): "
                         "their error is not measured and their top-1 not asserted")
        return "; " + "; ".join(parts)


def validation_outputs(artifact, source) -> dict:
    """Input digest -> the shipped model's outputs on that input, from the build's validation (``predict``)."""
    predicted = artifact.extra.get("predicted") or {}
    digests = artifact.extra.get("predicted_inputs") or []
    known = {}
    for j, digest in enumerate(digests):
        if all(t.name in predicted and j < len(predicted[t.name]) for t in source.outputs):
            known[digest] = {t.name: np.asarray(predicted[t.name][j], np.float32) for t in source.outputs}
    return known
