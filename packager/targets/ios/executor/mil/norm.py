"""MIL normalizations: ``batch_norm`` (channel axis 1), ``instance_norm`` (per sample and channel over the
spatial axes), ``layer_norm`` (over ``axes``), ``l2_norm`` and ``local_response_norm``."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _channel(v, rank: int) -> np.ndarray:
    return np.asarray(v, F32).reshape((1, -1) + (1,) * (rank - 2))


def _batch_norm(a):
    x = np.asarray(a["x"], F32)
    eps = F32(a.scalar("epsilon", 1e-5))
    y = (x - _channel(a["mean"], x.ndim)) / np.sqrt(_channel(a["variance"], x.ndim) + eps)
    return _scale_shift(a, y, lambda v: _channel(v, x.ndim))


def _instance_norm(a):
    x = np.asarray(a["x"], F32)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + F32(a.scalar("epsilon", 1e-5)))
    return _scale_shift(a, y, lambda v: _channel(v, x.ndim))


def _layer_norm(a):
    x = np.asarray(a["x"], F32)
    axes = a.ints("axes")
    axes = tuple(range(x.ndim)) if axes is None else tuple(sorted(i % x.ndim for i in axes))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + F32(a.scalar("epsilon", 1e-5)))
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    return _scale_shift(a, y, lambda v: np.asarray(v, F32).reshape(shape))


def _scale_shift(a, y, place):
    """The optional ``gamma`` / ``beta`` of a normalization, each laid out by ``place`` against ``y``."""
    if a.get("gamma") is not None:
        y = y * place(a["gamma"])
    if a.get("beta") is not None:
        y = y + place(a["beta"])
    return y


def _l2_norm(a):
    x = np.asarray(a["x"], F32)
    axes = a.ints("axes")
    axes = tuple(range(max(x.ndim - 3, 0), x.ndim)) if axes is None else tuple(axes)
    norm = np.sqrt(np.maximum((x * x).sum(axis=axes, keepdims=True), F32(a.scalar("epsilon", 1e-12))))
    return x / norm


def _lrn(a):
    x = np.asarray(a["x"], F32)
    size = a.scalar("size")
    alpha, beta, k = F32(a.scalar("alpha", 1e-4)), F32(a.scalar("beta", 0.75)), F32(a.scalar("k", 1.0))
    sq = np.pad(x * x, [(0, 0), ((size - 1) // 2, size // 2)] + [(0, 0)] * (x.ndim - 2))
    acc = sum(sq[:, i:i + x.shape[1]] for i in range(size))
    return x / (k + alpha / size * acc) ** beta


OPS = {"batch_norm": _batch_norm, "instance_norm": _instance_norm, "layer_norm": _layer_norm, "l2_norm": _l2_norm,
       "local_response_norm": _lrn}
