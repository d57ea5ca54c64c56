"""Activations and elementwise unary math: ``activation``, ``unary``, ``gelu``, softmax, ``clip`` and the
ND math layers (``exp2``, ``floor``, ``sin``, ...)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import F32, Op, UnsupportedLayer, weights


def _activation_fn(p, layer_name: str) -> Callable[[np.ndarray], np.ndarray]:
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return lambda x: np.maximum(x, 0)
    if kind == "linear":
        a, b = p.linear.alpha, p.linear.beta
        return lambda x: (a * x + b).astype(F32, copy=False)
    if kind == "leakyReLU":
        a = p.leakyReLU.alpha
        return lambda x: np.where(x >= 0, x, a * x).astype(F32, copy=False)
    if kind == "thresholdedReLU":
        a = p.thresholdedReLU.alpha
        return lambda x: np.where(x > a, x, 0).astype(F32, copy=False)
    if kind == "tanh":
        return np.tanh
    if kind == "scaledTanh":
        a, b = p.scaledTanh.alpha, p.scaledTanh.beta
        return lambda x: (a * np.tanh(b * x)).astype(F32, copy=False)
    if kind == "sigmoid":
        return lambda x: (1.0 / (1.0 + np.exp(-x))).astype(F32, copy=False)
    if kind == "sigmoidHard":
        a, b = p.sigmoidHard.alpha, p.sigmoidHard.beta
        return lambda x: np.clip(a * x + b, 0, 1).astype(F32, copy=False)
    if kind == "ELU":
        a = p.ELU.alpha
        return lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)).astype(F32, copy=False)
    if kind == "softsign":
        return lambda x: (x / (1 + np.abs(x))).astype(F32, copy=False)
    if kind == "softplus":
        return lambda x: np.logaddexp(0, x).astype(F32, copy=False)
    if kind == "PReLU":
        alpha = weights(p.PReLU.alpha)

        def prelu(x):
            a = alpha.reshape((-1, 1, 1)) if alpha.size > 1 else alpha
            return np.where(x >= 0, x, a * x).astype(F32, copy=False)

        return prelu
    if kind == "parametricSoftplus":
        al, be = weights(p.parametricSoftplus.alpha), weights(p.parametricSoftplus.beta)

        def psoftplus(x):
            a = al.reshape((-1, 1, 1)) if al.size > 1 else al
            b = be.reshape((-1, 1, 1)) if be.size > 1 else be
            return (a * np.logaddexp(0, b * x)).astype(F32, copy=False)

        return psoftplus
    raise UnsupportedLayer(f"activation.{kind}", layer_name)


def _activation(layer) -> Op:
    f = _activation_fn(layer.activation, layer.name)
    return lambda xs: [f(xs[0])]


def _unary(layer) -> Op:
    p = layer.unary
    scale = p.scale if p.scale != 0 else 1.0  # proto default: 1 when unset
    shift, alpha, eps = p.shift, p.alpha, p.epsilon
    fns = {
        0: lambda x: np.sqrt(x),
        1: lambda x: 1 / np.sqrt(x + eps),
        2: lambda x: 1 / (x + eps),
        3: lambda x: np.power(x, alpha),
        4: lambda x: np.exp(x),
        5: lambda x: np.log(x + eps),
        6: lambda x: np.abs(x),
        7: lambda x: np.maximum(x, alpha),
    }
    if p.type not in fns:
        raise UnsupportedLayer(f"unary.{p.type}", layer.name)
    f = fns[p.type]
    return lambda xs: [f(scale * xs[0] + shift).astype(F32, copy=False)]


def _softmax_axis(axis: int) -> Op:
    def op(xs):
        x = xs[0]
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return [(e / e.sum(axis=axis, keepdims=True)).astype(F32, copy=False)]

    return op


def _softmax_nd(layer) -> Op:
    return _softmax_axis(int(layer.softmaxND.axis))


def _softmax_legacy(layer) -> Op:
    return _softmax_axis(-3)


def _clip(layer) -> Op:
    p = layer.clip
    return lambda xs: [np.clip(xs[0], p.minVal, p.maxVal).astype(F32, copy=False)]


def _gelu(layer) -> Op:
    mode = layer.gelu.mode  # EXACT=0, TANH_APPROXIMATION=1, SIGMOID_APPROXIMATION=2
    from math import sqrt

    def op(xs):
        x = xs[0]
        if mode == 0:
            y = 0.5 * x * (1 + _erf(x / sqrt(2.0)))
        elif mode == 1:
            y = 0.5 * x * (1 + np.tanh(sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
        else:
            y = x / (1 + np.exp(-1.702 * x))
        return [y.astype(F32, copy=False)]

    return op


def _elementwise_nd(fn) -> Callable:
    def build(layer) -> Op:
        return lambda xs: [np.asarray(fn(xs[0]), dtype=F32)]

    return build


def _clamped_relu(layer) -> Op:
    a, b = F32(layer.clampedReLU.alpha), F32(layer.clampedReLU.beta)
    return lambda xs: [np.minimum(np.where(xs[0] >= 0, xs[0], a * xs[0]), b).astype(F32, copy=False)]


_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    return _ERF(np.asarray(x, dtype=np.float64)).astype(F32)


BUILDERS: dict[str, Callable] = {
    "activation": _activation,
    "unary": _unary,
    "softmax": _softmax_legacy,
    "softmaxND": _softmax_nd,
    "clip": _clip,
    "clampedReLU": _clamped_relu,
    "gelu": _gelu,
    **{name: _elementwise_nd(fn) for name, fn in {
        "exp2": np.exp2, "ceil": np.ceil, "floor": np.floor, "round": np.round, "sign": np.sign,
        "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
        "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
        "atanh": np.arctanh, "erf": _erf,
    }.items()},
}
