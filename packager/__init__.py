"""packager: one trained TensorFlow/Keras model -> validated Android, iOS and web folders."""

from __future__ import annotations

from packager.version import __version__

__all__ = ["__version__", "build"]


def build(spec, progress=None):
    """Build every target of ``spec`` and return the Report (see packager.pipeline)."""
    from packager.pipeline import build as _build
    from packager.progress import SILENT

    return _build(spec, progress or SILENT)
