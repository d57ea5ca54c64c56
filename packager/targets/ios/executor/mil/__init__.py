"""A NumPy executor for Core ML ML Program models (``.mlpackage``), for machines without Core ML.

An ML Program is a MIL program: typed ops in SSA form, in the ``main`` function of the package's
``Data/com.apple.CoreML/model.mlmodel`` (read through ``coremltools.proto``), its weights in
``weights/weight.bin`` (``BlobFileValue`` offsets, read with coremltools' blob reader). This package
decodes the constants once (``const``, ``constexpr_*`` for fp16, linearly quantized and palettized
weights) and runs the ops in order with NumPy. Every op's result is cast to the dtype its output
declares, so an fp16 program is rounded to fp16 after every op, as Core ML keeps fp16 activations.

A model with ops this executor lacks raises ``UnsupportedLayer`` naming every one of them, so a caller
reports it UNVERIFIED. Numerics shared with the NeuralNetwork executor (convolution kernels, strided slices,
bilinear sampling, erf) are imported from ``coreml_numpy``.

Modules: ``program`` (loader, walker, inputs), ``values`` (Value messages, blob weights), ``registry``,
and one per op family: ``elementwise``, ``activations``, ``conv``, ``linear``, ``norm``, ``reductions``,
``shapes``, ``indexing``, ``constexpr``.
"""

from packager.targets.ios.executor.mil.program import Program, op_types, run
from packager.targets.ios.executor.mil.registry import SUPPORTED_OPS
from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer


def unsupported_ops(path) -> list[str]:
    """The op types of a model this executor cannot run, in first-use order."""
    return [t for t in op_types(path) if t not in SUPPORTED_OPS]


__all__ = ["ExecutorError", "Program", "SUPPORTED_OPS", "UnsupportedLayer", "op_types", "run", "unsupported_ops"]


def unsupported_reason(e: UnsupportedLayer) -> str:
    """The UNVERIFIED reason for an ``.mlpackage`` with ops (or types) the executor lacks: every one of them."""
    pairs = [f"{t!r} (output {n!r})" if n else repr(t) for t, n in zip(e.layer_types, e.layer_names)]
    many = len(pairs) > 1
    return (f"ML Program op{'s' if many else ''} {', '.join(pairs)} {'are' if many else 'is'} not implemented by "
            "the NumPy MIL executor, so the .mlpackage could not be run here")


def runner_or_unverified(path, unverified: type[Exception]):
    """(a runner: inputs -> outputs, the runtime label) for the iOS target; ``unverified(reason)`` is raised
    when the model uses an op (or an op variant, found when it runs) this executor lacks."""
    from packager.version import __version__

    try:
        program = Program(path)
    except UnsupportedLayer as e:
        raise unverified(unsupported_reason(e)) from e

    def run_or_unverified(inputs: dict) -> dict:
        try:
            return program(inputs)
        except UnsupportedLayer as e:  # a variant found only with real shapes (a 3-D conv, a pad mode, ...)
            raise unverified(unsupported_reason(e)) from e

    return run_or_unverified, f"numpy-mil-executor (packager {__version__})"
