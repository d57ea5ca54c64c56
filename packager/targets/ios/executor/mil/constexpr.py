"""The ``constexpr_*`` ops, which hold compressed weights and are decoded once when the program loads:
fp16 casts, linear (affine) quantization, palettization (look-up tables) and sparsity, in their iOS16
form (parameters as attributes, packed indices) and their iOS18 form (typed sub-byte tensors, per-block
scales and look-up tables). Dequantized as Core ML does: ``(q - zero_point) * scale``, ``lut[index]``."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.mil.values import CAST_NAMES, unpack_bits
from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer

F32 = np.float32


def _along(v, axis: int, rank: int) -> np.ndarray:
    """A scalar or per-channel vector shaped to broadcast along ``axis``."""
    v = np.asarray(v)
    if v.size <= 1:
        return v.reshape(())
    shape = [1] * rank
    shape[axis] = -1
    return v.reshape(shape)


def _affine_dequantize(a):
    q = np.asarray(a["quantized_data"])
    axis = a.scalar("axis", 0) % q.ndim
    zp = _along(a["zero_point"], axis, q.ndim).astype(F32)
    scale = _along(a["scale"], axis, q.ndim).astype(F32)
    return (q.astype(F32) - zp) * scale


def _cast(a):
    dtype = str(a.scalar("output_dtype"))
    if dtype not in CAST_NAMES:
        raise UnsupportedLayer(f"constexpr_cast to {dtype}")
    return np.asarray(a["source_val"]).astype(CAST_NAMES[dtype])


def _blocks(small: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A per-block parameter repeated to the full ``shape``: each of its dimensions divides the data's."""
    small = np.asarray(small)
    if small.ndim != len(shape):
        raise ExecutorError(f"{what}: parameter rank {small.ndim} differs from the data's {len(shape)}")
    for axis, (n, m) in enumerate(zip(shape, small.shape)):
        if n % m:
            raise ExecutorError(f"{what}: dimension {axis} ({n}) is not a multiple of {m}")
        if m != n:
            small = np.repeat(small, n // m, axis=axis)
    return small


def _blockwise_shift_scale(a):
    data = np.asarray(a["data"])
    out = data.astype(F32)
    if a.get("offset") is not None:
        out = out - _blocks(a["offset"], data.shape, "constexpr_blockwise_shift_scale").astype(F32)
    return out * _blocks(a["scale"], data.shape, "constexpr_blockwise_shift_scale").astype(F32)


def _lut_to_dense(a):
    lut = np.asarray(a["lut"])
    indices = np.asarray(a["indices"])
    if "shape" in a:  # iOS16: a 1-D table of 2**nbits entries, indices packed into uint8 bytes
        shape = tuple(a.ints("shape"))
        nbits = int(np.log2(lut.size))
        count = int(np.prod(shape))
        if nbits == 8:
            codes = indices.reshape(-1)[:count].astype(np.int64)
        else:
            codes = unpack_bits(indices.astype(np.uint8).tobytes(), nbits, count, False)
        return lut.reshape(-1)[codes].reshape(shape)
    # iOS18: indices shaped like the output; lut (*blocks, palettes, vector_size), blocks dividing the shape
    if lut.ndim != indices.ndim + 2:
        raise ExecutorError("constexpr_lut_to_dense: lut rank must be the indices' rank + 2")
    if lut.shape[-1] != 1:
        raise UnsupportedLayer("constexpr_lut_to_dense with vector palettes", detail="vector_size > 1")
    table = lut[..., 0]  # (*blocks, palettes)
    block_index = tuple(
        (np.arange(n) // (n // m)).reshape([-1 if i == axis else 1 for i in range(indices.ndim)])
        for axis, (n, m) in enumerate(zip(indices.shape, table.shape[:-1]))
    )
    return table[block_index + (indices.astype(np.int64),)]


def _sparse_to_dense(a):
    shape = tuple(a.ints("shape"))
    mask = np.asarray(a["mask"])
    data = np.asarray(a["nonzero_data"]).reshape(-1)
    if mask.dtype == np.uint8 and mask.size * 8 >= int(np.prod(shape)) and mask.shape != shape:  # iOS16: bitmask
        mask = unpack_bits(mask.tobytes(), 1, int(np.prod(shape)), False).astype(bool)
    mask = mask.reshape(-1).astype(bool)
    out = np.zeros(mask.size, data.dtype)
    out[mask] = data
    return out.reshape(shape)


OPS = {
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_cast": _cast,
    "constexpr_blockwise_shift_scale": _blockwise_shift_scale,
    "constexpr_lut_to_dense": _lut_to_dense,
    "constexpr_sparse_to_dense": _sparse_to_dense,
}
