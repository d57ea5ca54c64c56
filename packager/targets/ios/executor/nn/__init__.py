"""A NumPy executor for Core ML NeuralNetwork models (``.mlmodel``), for machines without Core ML.

Core ML's runtime exists only on Apple platforms. This package reads the saved spec (the protobuf,
through ``coremltools.proto``) and executes its layers in order with NumPy, so the converted file
itself — not the converter's intermediate graph — is what gets checked on Linux.

Scope: the layer types ``coremltools`` emits for real models (see ``SUPPORTED_LAYERS``): convolutional
and dense stacks, embeddings, comparisons and ``where``, gathers and scatters, shape arithmetic, the
legacy recurrent layers, and the ``loop`` / ``branch`` control flow TensorFlow's ``while_loop`` /
``cond`` become. A model with other layer types raises :class:`UnsupportedLayer` naming *all* of
them, so a caller can report the model as UNVERIFIED instead of guessing.

Semantics follow Apple's ``NeuralNetwork.proto`` for models with ``EXACT_ARRAY_MAPPING`` /
``RANK4_IMAGE_MAPPING`` (what coremltools 4+ produces): tensors keep their real rank; the image
input becomes ``(1, C, H, W)``; spatial layers act on the last three axes ``(C, H, W)``. Weights
stored as float16 or linearly / look-up-table quantized are dequantized exactly as Core ML does.
Everything is computed in float32, as a NeuralNetwork does (integer ids and shapes included).

Entry point: ``run(spec_or_path, inputs) -> {output_name: array}``. Image inputs may be given as an
``(H, W, C)`` / ``(1, H, W, C)`` array of RGB (or gray) pixel values 0..255 — what a ``CGImage`` or
PIL image holds — and are converted the way Core ML does: colour layout (RGB/BGR), then
``channelScale * pixel + channelBias``. Array inputs are used as given.

Modules: ``network`` (the spec walker), ``common`` (errors, weights), ``spatial``, ``dense``,
``activations``, ``elementwise``, ``reductions``, ``shapes``, ``indexing``, ``resample``, ``recurrent``,
``control``.
"""

from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer, weights
from packager.targets.ios.executor.nn.network import (
    BUILDERS,
    SUPPORTED_LAYERS,
    Program,
    compile_model,
    layer_types,
    load_spec,
    network_of,
    run,
    unsupported_layers,
)

__all__ = [
    "BUILDERS", "SUPPORTED_LAYERS", "ExecutorError", "Program", "UnsupportedLayer", "compile_model", "layer_types",
    "load_spec", "network_of", "run", "unsupported_layers", "weights",
]
