"""MIL activations: ReLU family, sigmoid/tanh family, GELU (exact and both approximations), SiLU,
softplus, softsign, ELU, PReLU, softmax and log-softmax (on the given axis)."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.activations import _erf


def _x32(a):
    x = np.asarray(a["x"])
    return x, x.astype(np.float32, copy=False)


def _f(fn):
    """Compute in float32, give back the input's dtype (the output is cast to the declared type anyway)."""
    def op(a):
        _, x = _x32(a)
        return fn(x, a)
    return op


def _gelu(x, a):
    mode = str(a.scalar("mode", "EXACT"))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(np.float32(-1.702) * x))
    return 0.5 * x * (1 + _erf(x / np.float32(np.sqrt(2))))


def _softmax(x, a):
    axis = a.scalar("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, a):
    axis = a.scalar("axis", -1)
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _prelu(x, a):
    alpha = np.asarray(a["alpha"], np.float32).reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, alpha * x)


def _sigmoid(x, a):
    return 1 / (1 + np.exp(-x))


OPS = {
    "relu": _f(lambda x, a: np.maximum(x, 0)),
    "relu6": _f(lambda x, a: np.clip(x, 0, 6)),
    "leaky_relu": _f(lambda x, a: np.where(x >= 0, x, np.float32(a.scalar("alpha", 0.01)) * x)),
    "thresholded_relu": _f(lambda x, a: np.where(x > a.scalar("alpha", 1.0), x, 0)),
    "elu": _f(lambda x, a: np.where(x > 0, x, np.float32(a.scalar("alpha", 1.0)) * np.expm1(np.minimum(x, 0)))),
    "prelu": _f(_prelu),
    "sigmoid": _f(_sigmoid),
    "sigmoid_hard": _f(lambda x, a: np.clip(np.float32(a.scalar("alpha", 0.2)) * x
                                            + np.float32(a.scalar("beta", 0.5)), 0, 1)),
    "tanh": _f(lambda x, a: np.tanh(x)),
    "scaled_tanh": _f(lambda x, a: np.float32(a.scalar("alpha", 1.0)) * np.tanh(np.float32(a.scalar("beta", 1.0)) * x)),
    "linear_activation": _f(lambda x, a: np.float32(a.scalar("alpha", 1.0)) * x + np.float32(a.scalar("beta", 0.0))),
    "silu": _f(lambda x, a: x * _sigmoid(x, a)),
    "softplus": _f(lambda x, a: np.logaddexp(np.float32(0), x)),
    "softsign": _f(lambda x, a: x / (1 + np.abs(x))),
    "gelu": _f(_gelu),
    "softmax": _f(_softmax),
    "log_softmax": _f(_log_softmax),
}
