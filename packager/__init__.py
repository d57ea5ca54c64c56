"""packager: one trained TensorFlow/Keras model -> validated Android, iOS and web folders."""

from __future__ import annotations

__version__ = "0.1.0"


def build(spec, progress=None):
    """Build every target of ``spec`` and return the Report (see packager.pipeline)."""
    from .pipeline import build as _build
    from .progress import SILENT

    return _build(spec, progress or SILENT)
