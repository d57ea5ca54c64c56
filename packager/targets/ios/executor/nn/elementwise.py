"""Binary elementwise layers (legacy and broadcastable), comparisons, logical ops, ``where``, and the
normalizations: batchnorm, scale, bias, MVN, layer normalization."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import F32, Op, weights


def _legacy_elementwise(reduce_fn, name: str) -> Callable:
    def build(layer) -> Op:
        alpha = getattr(layer, name).alpha

        def op(xs):
            if len(xs) == 1:
                return [reduce_fn(xs[0], np.asarray(alpha, F32)).astype(F32, copy=False)]
            y = xs[0]
            for x in xs[1:]:
                y = reduce_fn(y, x)
            return [y.astype(F32, copy=False)]

        return op

    return build


def _broadcastable(fn) -> Callable:
    def build(layer) -> Op:
        def op(xs):
            y = xs[0]
            for x in xs[1:]:
                y = fn(y, x)
            return [np.asarray(y, dtype=F32)]

        return op

    return build


def _batchnorm(layer) -> Op:
    p = layer.batchnorm
    c = int(p.channels)
    gamma, beta = weights(p.gamma, (c, 1, 1)), weights(p.beta, (c, 1, 1))
    eps = p.epsilon

    def bn(xs):
        x = xs[0]
        if p.computeMeanVar:
            axes = (-2, -1) if p.instanceNormalization else tuple(i for i in range(x.ndim) if i != x.ndim - 3)
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
        else:
            mean, var = weights(p.mean, (c, 1, 1)), weights(p.variance, (c, 1, 1))
        return [((x - mean) / np.sqrt(var + eps) * gamma + beta).astype(F32, copy=False)]

    return bn


def _scale(layer) -> Op:
    p = layer.scale
    s = weights(p.scale, list(p.shapeScale) or None)
    b = weights(p.bias, list(p.shapeBias) or None) if p.hasBias else None

    def fit(a):
        return a.reshape((-1, 1, 1)) if a.ndim == 1 and a.size > 1 else a

    def scale(xs):
        y = xs[0] * fit(s)
        if b is not None:
            y = y + fit(b)
        return [y.astype(F32, copy=False)]

    return scale


def _bias(layer) -> Op:
    b = weights(layer.bias.bias, list(layer.bias.shape) or None)
    b = b.reshape((-1, 1, 1)) if b.ndim == 1 and b.size > 1 else b
    return lambda xs: [(xs[0] + b).astype(F32, copy=False)]


def _mvn(layer) -> Op:
    p = layer.mvn

    def op(xs):
        x = xs[0]
        axes = (-3, -2, -1) if p.acrossChannels else (-2, -1)
        y = x - x.mean(axis=axes, keepdims=True)
        if p.normalizeVariance:
            y = y / np.sqrt((y * y).mean(axis=axes, keepdims=True) + p.epsilon)
        return [y.astype(F32, copy=False)]

    return op


def _layer_norm(layer) -> Op:
    p = layer.layerNormalization
    shape = [int(s) for s in p.normalizedShape]
    gamma = weights(p.gamma, shape) if len(p.gamma.floatValue) or len(p.gamma.float16Value) or len(p.gamma.rawValue) else None
    beta = weights(p.beta, shape) if len(p.beta.floatValue) or len(p.beta.float16Value) or len(p.beta.rawValue) else None

    def op(xs):
        x = xs[0]
        axes = tuple(range(-len(shape), 0))
        y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + p.eps)
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return [y.astype(F32, copy=False)]

    return op


def _compare(fn) -> Callable:
    """``y = x1 OP x2`` (broadcast) or ``x1 OP alpha`` with one input; 1.0 where true, else 0.0."""

    def build(layer) -> Op:
        alpha = F32(getattr(layer, layer.WhichOneof("layer")).alpha)

        def op(xs):
            other = xs[1] if len(xs) > 1 else alpha
            return [fn(xs[0], other).astype(F32)]

        return op

    return build


def _logical(fn) -> Callable:
    """Inputs are true where non-zero; the result is 1.0 / 0.0."""

    def build(layer) -> Op:
        def op(xs):
            y = xs[0] != 0
            for x in xs[1:]:
                y = fn(y, x != 0)
            return [y.astype(F32)]

        return op

    return build


def _where(layer) -> Op:
    return lambda xs: [np.where(xs[0] != 0, xs[1], xs[2]).astype(F32, copy=False)]


BUILDERS: dict[str, Callable] = {
    "add": _legacy_elementwise(np.add, "add"),
    "multiply": _legacy_elementwise(np.multiply, "multiply"),
    "max": _broadcastable(np.maximum),
    "min": _broadcastable(np.minimum),
    "average": lambda layer: (lambda xs: [(sum(xs) / len(xs)).astype(F32, copy=False)]),
    "addBroadcastable": _broadcastable(np.add),
    "subtractBroadcastable": _broadcastable(np.subtract),
    "multiplyBroadcastable": _broadcastable(np.multiply),
    "divideBroadcastable": _broadcastable(np.divide),
    "maxBroadcastable": _broadcastable(np.maximum),
    "minBroadcastable": _broadcastable(np.minimum),
    "powBroadcastable": _broadcastable(np.power),
    "floorDivBroadcastable": _broadcastable(np.floor_divide),
    "modBroadcastable": _broadcastable(np.mod),
    "greaterThan": _compare(np.greater),
    "greaterEqual": _compare(np.greater_equal),
    "lessThan": _compare(np.less),
    "lessEqual": _compare(np.less_equal),
    "equal": _compare(np.equal),
    "notEqual": _compare(np.not_equal),
    "logicalAnd": _logical(np.logical_and),
    "logicalOr": _logical(np.logical_or),
    "logicalXor": _logical(np.logical_xor),
    "logicalNot": lambda layer: (lambda xs: [(xs[0] == 0).astype(F32)]),
    "whereBroadcastable": _where,
    "batchnorm": _batchnorm,
    "scale": _scale,
    "bias": _bias,
    "mvn": _mvn,
    "layerNormalization": _layer_norm,
}


def _lrn(layer) -> Op:
    """``x / (k + alpha / n * sum of x^2 over n neighbouring channels) ^ beta`` on axis -3."""
    p = layer.lrn
    n, k = int(p.localSize), (p.k or 1.0)
    before, after = (n - 1) // 2, n // 2

    def op(xs):
        x = xs[0]
        sq = np.square(x)
        pad = [(0, 0)] * x.ndim
        pad[x.ndim - 3] = (before, after)
        cs = np.cumsum(np.pad(sq, pad), axis=-3)
        cs = np.concatenate([np.zeros_like(cs[..., :1, :, :]), cs], axis=-3)
        window = cs[..., n:, :, :] - cs[..., :-n, :, :]
        return [(x / np.power(k + p.alpha / n * window, p.beta)).astype(F32, copy=False)]

    return op


def _l2_normalize(layer) -> Op:
    eps = layer.l2normalize.epsilon or 1e-6

    def op(xs):
        x = xs[0]
        return [(x / np.sqrt(np.sum(np.square(x), axis=(-3, -2, -1), keepdims=True) + eps)).astype(F32, copy=False)]

    return op


BUILDERS["lrn"] = _lrn
BUILDERS["l2normalize"] = _l2_normalize
