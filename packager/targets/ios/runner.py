"""What executes a Core ML model here: Core ML itself on macOS, else the NumPy executors of the saved spec
(``executor/nn`` for a NeuralNetwork ``.mlmodel``, ``executor/mil`` for an ML Program ``.mlpackage``)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from packager.targets.base import Unverified
from packager.version import __version__


def coreml_runtime_available() -> bool:
    if platform.system() != "Darwin":
        return False
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False
    return True


def local_runner(path: Path, *, coreml: bool):
    """What executes the Core ML model at ``path`` here, and its name for the report: Core ML on macOS, else the
    NumPy executor of the saved model: ``executor.nn`` for a NeuralNetwork ``.mlmodel``, ``executor.mil`` for an
    ML Program ``.mlpackage``. An unknown layer or op -> ``Unverified`` naming it."""
    from packager.targets.ios.executor import nn as coreml_numpy

    if coreml:
        import coremltools as ct

        return _CoreMLRunner(ct.models.MLModel(str(path))), f"coreml (coremltools {ct.__version__})"
    if path.suffix == ".mlpackage":
        from packager.targets.ios.executor import mil as mil_numpy

        return mil_numpy.runner_or_unverified(path, Unverified)
    try:
        runner = coreml_numpy.Program(path)
    except coreml_numpy.UnsupportedLayer as e:
        raise Unverified(unsupported_reason(e)) from e
    return runner, f"numpy-nn-executor (packager {__version__})"


class _CoreMLRunner:
    def __init__(self, model):
        self.model = model

    def __call__(self, feed: dict) -> dict:
        from PIL import Image

        inputs = {}
        for k, v in feed.items():
            if v.ndim == 3 and v.dtype == np.uint8:
                inputs[k] = Image.fromarray(v[:, :, 0] if v.shape[2] == 1 else v)
            else:
                inputs[k] = v
        return self.model.predict(inputs)


def unsupported_reason(e) -> str:
    """The UNVERIFIED reason for a model with layer types the executor lacks: every one of them."""
    pairs = [f"{t!r} (layer {n!r})" if n else repr(t) for t, n in zip(e.layer_types, e.layer_names)]
    many = len(pairs) > 1
    return (f"Core ML layer type{'s' if many else ''} {', '.join(pairs)} {'are' if many else 'is'} not implemented "
            "by the NumPy executor, so the .mlmodel could not be run here")


def one_blas_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")

