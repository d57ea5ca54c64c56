"""Resampling of the last two axes ``(H, W)``: ``upsample`` (nearest / bilinear, integer or fractional
factors), ``resizeBilinear`` (to a fixed size, by ``SamplingMode``) and ``reorganizeData``
(space-to-depth, depth-to-space, pixel shuffle). Grid points follow ``NeuralNetwork.proto``'s
``SamplingMode`` definitions, written with ``numpy.linspace``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import F32, Op, UnsupportedLayer


def _grid(n_out: int, n_in: int, method: str) -> np.ndarray:
    """Source coordinates of ``n_out`` samples over ``[0, n_in - 1]``."""
    if method == "align_corners":  # STRICT_ALIGN_ENDPOINTS / upsample ALIGN_CORNERS_TRUE
        src = np.linspace(0, n_in - 1, n_out) if n_out > 1 else np.zeros(1)
    elif method == "align_endpoints":
        src = np.linspace(0, n_in - 1, n_out) if n_out > 1 else np.full(1, (n_in - 1) / 2)
    elif method == "upsample":  # start 0, end X - X/N (TF's legacy resize, no half pixel)
        src = np.arange(n_out) * (n_in / n_out)
    elif method == "half_pixel":  # upsample ALIGN_CORNERS_FALSE (TF2's resize)
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    elif method == "roi_align":
        spacing = max(1, n_in - 1) / n_out
        src = 0.5 * spacing + np.arange(n_out) * spacing
    else:  # pragma: no cover - callers pass the names above
        raise ValueError(method)
    return np.clip(src, 0, n_in - 1)


def _lerp_axis(x: np.ndarray, src: np.ndarray, axis: int) -> np.ndarray:
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    shape = [1] * x.ndim
    shape[axis] = -1
    w = (src - lo).astype(F32).reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def bilinear(x: np.ndarray, out_h: int, out_w: int, method: str) -> np.ndarray:
    h, w = x.shape[-2:]
    y = _lerp_axis(x, _grid(out_h, h, method), x.ndim - 2)
    return _lerp_axis(y, _grid(out_w, w, method), x.ndim - 1).astype(F32, copy=False)


def _upsample(layer) -> Op:
    p = layer.upsample
    fh, fw = [float(v) for v in p.fractionalScalingFactor] or [float(v) for v in p.scalingFactor] or [1.0, 1.0]
    if p.mode == 0:
        if list(p.fractionalScalingFactor):
            raise UnsupportedLayer("upsample.NN with fractional factors", layer.name)
        ih, iw = int(fh), int(fw)
        return lambda xs: [np.repeat(np.repeat(xs[0], ih, axis=-2), iw, axis=-1)]
    method = {0: "upsample", 1: "align_corners", 2: "half_pixel"}[p.linearUpsampleMode]

    def op(xs):
        x = xs[0]
        h, w = x.shape[-2:]
        return [bilinear(x, int(np.floor(h * fh + 1e-5)), int(np.floor(w * fw + 1e-5)), method)]

    return op


def _resize_bilinear(layer) -> Op:
    p = layer.resizeBilinear
    th, tw = [int(v) for v in p.targetSize] or [1, 1]
    method = ["align_corners", "align_endpoints", "upsample", "roi_align"][p.mode.samplingMethod]
    return lambda xs: [bilinear(xs[0], th, tw, method)]


def _reorganize(layer) -> Op:
    p = layer.reorganizeData
    bs, mode = int(p.blockSize), int(p.mode)  # SPACE_TO_DEPTH=0, DEPTH_TO_SPACE=1, PIXEL_SHUFFLE=2

    def op(xs):
        x = xs[0]
        lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
        x = x.reshape((-1, c, h, w))
        n = x.shape[0]
        if mode == 0:  # block (i, j) of every channel -> channel (i*bs + j)*C + c
            y = x.reshape(n, c, h // bs, bs, w // bs, bs).transpose(0, 3, 5, 1, 2, 4)
            y = y.reshape(n, c * bs * bs, h // bs, w // bs)
        elif mode == 1:  # channel (i*bs + j)*C_out + c -> block (i, j) of channel c (TensorFlow's order)
            y = x.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
            y = y.reshape(n, c // (bs * bs), h * bs, w * bs)
        else:  # pixel shuffle: channel c*bs*bs + i*bs + j -> block (i, j) of channel c
            y = x.reshape(n, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
            y = y.reshape(n, c // (bs * bs), h * bs, w * bs)
        return [np.ascontiguousarray(y).reshape(lead + y.shape[1:])]

    return op


BUILDERS: dict[str, Callable] = {
    "upsample": _upsample,
    "resizeBilinear": _resize_bilinear,
    "reorganizeData": _reorganize,
}
