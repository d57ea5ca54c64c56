"""Shared pieces of the executor: its two errors, the ``Op`` type and weight decoding (float32, float16,
n-bit linear / look-up-table quantized), exactly as Core ML dequantizes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class UnsupportedLayer(Exception):
    """The model uses layer types (or variants of one) this executor does not implement.

    ``layer_types`` lists every unknown type of the model, ``layer_names`` one layer of each;
    ``layer_type`` / ``layer_name`` are the first of them."""

    def __init__(self, layer_type: str | list[str], layer_name: str | list[str] = "", detail: str = ""):
        self.layer_types = [layer_type] if isinstance(layer_type, str) else list(layer_type)
        names = [layer_name] if isinstance(layer_name, str) else list(layer_name)
        self.layer_names = (names + [""] * len(self.layer_types))[: len(self.layer_types)]  # aligned with the types
        self.layer_type, self.layer_name = self.layer_types[0], self.layer_names[0]
        kinds = ", ".join(repr(t) for t in self.layer_types)
        plural = "s" if len(self.layer_types) > 1 else ""
        msg = f"Core ML layer type{plural} {kinds} {'are' if plural else 'is'} not supported by the NumPy executor"
        if detail:
            msg += f" ({detail})"
        shown = [repr(n) for n in self.layer_names if n]
        if shown:
            msg += f" [layer{'s' if len(shown) > 1 else ''} {', '.join(shown)}]"
        super().__init__(msg)


class ExecutorError(Exception):
    """The model or the inputs are malformed (missing input, unknown blob, bad shape)."""


Op = Callable[[list[np.ndarray]], list[np.ndarray]]
F32 = np.float32


class ControlOp:
    """A layer that acts on the whole blob table (loops, branches): called with it, returns nothing."""

    def __call__(self, blobs: dict[str, np.ndarray]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def weights(wp, shape: Sequence[int] | None = None, axis: int = 0) -> np.ndarray:
    """Decode a ``WeightParams``: float32, float16, or n-bit linear / look-up-table quantized.

    ``shape`` is the stored layout; ``axis`` the channel axis of per-channel linear quantization
    (0 for every layer except deconvolution, where it is 1).
    """
    if len(wp.floatValue):
        a = np.asarray(wp.floatValue, dtype=F32)
    elif len(wp.float16Value):
        a = np.frombuffer(wp.float16Value, dtype="<f2").astype(F32, copy=False)
    elif len(wp.rawValue) or len(wp.int8RawValue):
        a = _dequantize(wp, shape, axis)
    else:
        a = np.zeros(0, dtype=F32)
    if shape is not None:
        a = a.reshape(tuple(int(s) for s in shape))
    return a


def _dequantize(wp, shape, axis: int) -> np.ndarray:
    q = wp.quantization
    kind = q.WhichOneof("QuantizationType")
    if len(wp.int8RawValue):
        codes = np.frombuffer(wp.int8RawValue, dtype=np.int8).astype(F32, copy=False)
    elif kind is None:  # raw little-endian float32 bytes
        return np.frombuffer(wp.rawValue, dtype="<f4").astype(F32, copy=False)
    else:
        nbits = q.numberOfBits or 8
        raw = np.frombuffer(wp.rawValue, dtype=np.uint8)
        if nbits == 8:
            codes = raw.astype(F32, copy=False)
        else:  # bit stream, most significant bit first
            count = int(np.prod(shape)) if shape is not None else (raw.size * 8) // nbits
            bits = np.unpackbits(raw)[: count * nbits].reshape(count, nbits)
            codes = (bits.astype(np.int64) @ (1 << np.arange(nbits - 1, -1, -1))).astype(F32, copy=False)
    if kind == "lookupTableQuantization":
        lut = np.asarray(q.lookupTableQuantization.floatValue, dtype=F32)
        return lut[codes.astype(np.int64)]
    if kind == "linearQuantization":
        scale = np.asarray(q.linearQuantization.scale, dtype=F32)
        bias = np.asarray(q.linearQuantization.bias, dtype=F32)
        if scale.size <= 1 and bias.size <= 1:
            return codes * (scale[0] if scale.size else 1) + (bias[0] if bias.size else 0)
        if shape is None:
            raise ExecutorError("per-channel quantized weights need a shape")
        shp = tuple(int(s) for s in shape)
        w = codes.reshape(shp)
        bshape = [1] * len(shp)
        bshape[axis] = -1
        w = w * scale.reshape(bshape) + bias.reshape(bshape)
        return w.reshape(-1)
    return codes


def has_weights(wp) -> bool:
    return bool(len(wp.floatValue) or len(wp.float16Value) or len(wp.rawValue) or len(wp.int8RawValue))
