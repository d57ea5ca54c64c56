"""Core ML weight palettization (look-up-table quantization): iOS modes ``palette4`` and ``palette6``.

Each weight tensor becomes 2^nbits float values (a k-means palette) and an nbits index per weight: about 1/8
(4-bit) or 3/16 (6-bit) of the fp32 bytes, against 1/4 for ``8bit`` (linear). ``--quantize auto`` tries them
first (smallest first); the executor verifies them like every other mode (the NeuralNetwork NumPy executor
dequantizes ``lookupTableQuantization`` weights as Core ML does; an ``.mlpackage`` holds ``constexpr_lut_to_dense``
ops for the MIL executor).

- ``.mlmodel`` (NeuralNetwork): ``quantization_utils.quantize_weights(mode="custom_lut")``. The format has one
  palette per weight tensor (per-tensor).
- ``.mlpackage`` (ML Program): ``coremltools.optimize.coreml.palettize_weights`` with mode ``custom``, one palette
  per tensor: per-channel palettes (``granularity="per_grouped_channel"``) need an iOS 18 deployment target,
  and packager's ``.mlpackage`` targets iOS 15.

The palette is computed here (``kmeans_palette``: exact 1-D k-means, Lloyd's iterations on the sorted weights)
instead of coremltools' ``kmeans`` modes, which need scikit-learn (not a packager dependency) and are slower.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

PALETTE_BITS = {"palette4": 4, "palette6": 6}
MAX_ITERATIONS = 1000  # Lloyd's steps converge slowly on heavy-tailed weights (60 steps: 6-bit error 1.7x higher)


def kmeans_palette(weights: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """(palette: 2^nbits float32 values, ascending; indices: uint8, the shape of ``weights``) minimising the
    squared error of ``palette[indices]`` (1-D k-means, quantile start, Lloyd's iterations on the sorted values)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    k = 1 << nbits
    unique = np.unique(w)
    if unique.size <= k:  # every value fits in the palette exactly
        palette = np.concatenate([unique, np.full(k - unique.size, unique[-1] if unique.size else 0.0)])
        return palette.astype(np.float32), _assign(w, palette[: max(unique.size, 1)]).reshape(np.shape(weights))
    x = np.sort(w)
    cumsum = np.concatenate([[0.0], np.cumsum(x)])
    centres = np.quantile(x, (np.arange(k) + 0.5) / k)
    tolerance = 1e-12 * max(1.0, float(-x[0]), float(x[-1]))
    for _ in range(MAX_ITERATIONS):  # each step costs O(k log n): the sums come from the cumulative sum
        cuts = np.searchsorted(x, (centres[1:] + centres[:-1]) / 2)
        starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [x.size]])
        counts = ends - starts
        new = np.where(counts > 0, (cumsum[ends] - cumsum[starts]) / np.maximum(counts, 1), centres)
        new = np.sort(new)
        if np.allclose(new, centres, rtol=0, atol=tolerance):
            centres = new
            break
        centres = new
    return centres.astype(np.float32), _assign(w, centres).reshape(np.shape(weights))


def _assign(w: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (``centres`` ascending)."""
    return np.searchsorted((centres[1:] + centres[:-1]) / 2, w).astype(np.uint8)


def palettize(model, mode: str, mlprogram: bool):
    """``model`` (a coremltools MLModel, fp32 NeuralNetwork or fp16 ML Program) with every weight palettized."""
    nbits = PALETTE_BITS[mode]
    if mlprogram:
        import coremltools.optimize.coreml as cto

        def lut_function(weight):
            palette, indices = kmeans_palette(weight, nbits)
            return palette.astype(weight.dtype), indices  # fp16 weights need an fp16 palette

        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="custom", lut_function=lut_function))
        return cto.palettize_weights(model, config=config)
    from coremltools.models.neural_network import quantization_utils

    with _packed_by_numpy(quantization_utils), linear_layer_maps():
        return quantization_utils.quantize_weights(model, nbits=nbits, quantization_mode="custom_lut",
                                                   lut_function=lambda bits, w: kmeans_palette(w, bits))


@contextmanager
def _packed_by_numpy(quantization_utils):
    """coremltools packs each weight's n-bit indices into bytes bit by bit in Python: on MobileNetV2, palette4
    took ~5 of the worker's CPU seconds in that loop. ``pack_nbit`` gives the same bytes (tests compare them with
    coremltools' own function) while ``quantize_weights`` runs."""
    original = quantization_utils._convert_array_to_nbit_quantized_bytes
    quantization_utils._convert_array_to_nbit_quantized_bytes = pack_nbit
    try:
        yield
    finally:
        quantization_utils._convert_array_to_nbit_quantized_bytes = original


def pack_nbit(values, nbits: int) -> np.ndarray:
    """Each value's ``nbits`` low bits, most significant first, one value after another, packed into uint8 bytes
    (most significant bit first), zero-padded to a whole byte (at least one): Core ML's n-bit weight layout."""
    v = np.asarray(values).reshape(-1).astype(np.uint8)
    bits = (v[:, None] >> np.arange(nbits - 1, -1, -1, dtype=np.uint8)) & np.uint8(1)
    packed = np.packbits(bits.reshape(-1))
    return packed if packed.size else np.zeros(1, np.uint8)


@contextmanager
def linear_layer_maps():
    """While it is active, coremltools' NeuralNetwork quantizer (``quantize_weights`` at fewer than 16 bits: 8bit and
    the palettes) maps which layer feeds which with ``nn_mappings`` (one pass over the layers) instead of its own
    ``_get_nn_mappings``, which compares every layer's outputs with every other layer's inputs: O(layers^2) Python,
    run again after each fusion. An unrolled 200-step GRU converts to ~5,000 layers: there it was 64 % of the whole
    build's CPU (palette4, palette6 and 8bit each). The maps are the same (tests compare them)."""
    from coremltools.models.neural_network import optimization_utils

    original = optimization_utils._get_nn_mappings
    optimization_utils._get_nn_mappings = nn_mappings
    try:
        yield
    finally:
        optimization_utils._get_nn_mappings = original


def nn_mappings(layers) -> tuple[dict, dict, dict]:
    """(layer type -> layer indices, layer index -> the layers reading its outputs, layer index -> the layers
    writing its inputs), indices as strings, each list in layer order: what coremltools' ``_get_nn_mappings``
    returns, from one pass over the layers."""
    type_map: dict[str, list[str]] = {}
    readers: dict[str, set[int]] = {}
    writers: dict[str, set[int]] = {}
    for idx, layer in enumerate(layers):
        type_map.setdefault(layer.WhichOneof("layer"), []).append(str(idx))
        for blob in layer.input:
            readers.setdefault(blob, set()).add(idx)
        for blob in layer.output:
            writers.setdefault(blob, set()).add(idx)
    output_map, input_map = {}, {}
    for idx, layer in enumerate(layers):
        output_map[str(idx)] = [str(i) for i in sorted(set().union(*(readers.get(b, ()) for b in layer.output)))]
        input_map[str(idx)] = [str(i) for i in sorted(set().union(*(writers.get(b, ()) for b in layer.input)))]
    return type_map, output_map, input_map
