"""What every target provides. Adding a target = one module here, one template folder, one registry line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from packager.checks import Check

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec


@dataclass
class Artifact:
    """A converted model: ``path`` is the model file (or folder, for TF.js) in the work dir."""

    target: str
    mode: str
    path: Path
    bytes: int
    extra: dict = field(default_factory=dict)


@dataclass
class Prediction:
    """Outputs of an artifact on the whole sample set, keyed by the *reference* output names,
    each stacked along axis 0 (one row per sample). ``runtime`` names what executed it."""

    outputs: dict[str, np.ndarray]
    runtime: str
    latency_ms: float | None = None  # mean per-sample inference time
    checks: list[Check] = field(default_factory=list)


class Unverified(Exception):
    """Raised by ``predict`` when the artifact cannot be executed here (reason in the message); ``checks``
    are the target's checks that could run all the same (``predict_and_check``)."""

    def __init__(self, reason: str, *, checks: list[Check] | None = None):
        super().__init__(reason)
        self.checks = list(checks or [])


class StoppedEarly(Exception):
    """Raised by ``predict`` when the samples run so far already fail a gate no later sample can undo
    (``compare.certain_failure``, watched when auto has modes after this one: ``watch``): the rest are not run."""

    def __init__(self, reason: str, outputs: dict, done: int, of: int):
        super().__init__(reason)
        self.reason, self.outputs, self.done, self.of = reason, outputs, done, of


def watch(artifact: Artifact, outputs: dict, of: int) -> None:
    """Called by a target's ``predict`` after each sample with the outputs so far: StoppedEarly when the artifact's
    ``stop_early`` (set by auto on a try with modes after it) says they already fail."""
    check = artifact.extra.get("stop_early")
    why = check(outputs) if check is not None else None
    if why:
        raise StoppedEarly(why, outputs, len(next(iter(outputs.values()))), of)


class Target(Protocol):
    name: str
    modes: tuple[str, ...]
    default_mode: str

    def convert(self, source: Source, spec: PackageSpec, mode: str, workdir: Path) -> Artifact: ...

    def predict(self, artifact: Artifact, source: Source, spec: PackageSpec, samples: SampleSet) -> Prediction: ...

    def render(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> None: ...

    def checks(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> list[Check]: ...

    # Optional: work that needs only the spec and the model's signature (``preview``: a Source that may be a
    # guess made before the export, with no SavedModel yet), run in the background from before the conversion;
    # its Future reaches ``checks`` as ``artifact.extra["prepared"]``. A target uses it only after checking it
    # matches what it renders. A result with ``close()`` (a browser launched ahead) is closed after the build.
    # def prepare(self, spec, preview, workdir) -> object: ...

    # Optional: ``predict`` on the bundle ``render`` wrote and ``checks`` in one go, with the checks in
    # ``Prediction.checks`` (a target whose runtime is costly to start: one browser session instead of two).
    # The pipeline calls it, after ``render``, in place of the other two when one mode is asked for.
    # def predict_and_check(self, spec, source, artifact, samples, reference, outdir) -> Prediction: ...
