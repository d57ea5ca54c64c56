"""What every target provides. Adding a target = one module here, one template folder, one registry line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..checks import Check

if TYPE_CHECKING:
    from ..samples import SampleSet
    from ..source import Source
    from ..spec import PackageSpec


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
    """Raised by ``predict`` when the artifact cannot be executed here (reason in the message)."""


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
