"""Elementwise MIL ops: binary arithmetic (NumPy broadcasting, as MIL's), comparisons, logical ops,
``select``, unary math (with MIL's epsilons), ``clip``, ``cast``, ``identity`` and ``classify``."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.mil.values import CAST_NAMES
from packager.targets.ios.executor.nn.activations import _erf


def _binary(fn):
    return lambda a: fn(a["x"], a["y"])


def _floor_div(x, y):
    return np.floor_divide(x, y) if np.issubdtype(np.result_type(x, y), np.integer) else np.floor(x / y)


def _mod(x, y):
    return x - np.floor(np.asarray(x, np.float64) / y).astype(np.result_type(x, y)) * y


def _real_div(x, y):
    if np.issubdtype(np.result_type(x, y), np.integer):  # MIL real_div of integers truncates? no: it is float
        return np.asarray(x, np.float32) / np.asarray(y, np.float32)
    return x / y


def _unary(fn):
    return lambda a: fn(a["x"])


def _with_eps(fn, default: float):
    return lambda a: fn(a["x"], a.scalar("epsilon", default))


def _cast(a):
    name = a.scalar("dtype")
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name not in CAST_NAMES:
        raise ValueError(f"cast to unknown dtype {name!r}")
    x = a["x"]
    if np.issubdtype(CAST_NAMES[name], np.integer) and np.issubdtype(np.asarray(x).dtype, np.floating):
        x = np.trunc(x)
    return np.asarray(x).astype(CAST_NAMES[name])


def _classify(a):
    """Label with the highest probability, and the label -> probability dict (what Core ML returns)."""
    probs = np.asarray(a["probabilities"], np.float64).reshape(-1)
    classes = [c.reshape(-1)[0] if isinstance(c, np.ndarray) else c for c in a["classes"]] \
        if isinstance(a["classes"], list) else list(np.asarray(a["classes"]).reshape(-1))
    classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    return np.asarray(classes[int(np.argmax(probs))], dtype=object), dict(zip(classes, probs.tolist()))


OPS = {
    "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply), "real_div": _binary(_real_div),
    "floor_div": _binary(_floor_div), "mod": _binary(_mod), "pow": _binary(np.power),
    "maximum": _binary(np.maximum), "minimum": _binary(np.minimum),
    "equal": _binary(np.equal), "not_equal": _binary(np.not_equal), "less": _binary(np.less),
    "less_equal": _binary(np.less_equal), "greater": _binary(np.greater), "greater_equal": _binary(np.greater_equal),
    "logical_and": _binary(np.logical_and), "logical_or": _binary(np.logical_or),
    "logical_xor": _binary(np.logical_xor), "logical_not": _unary(np.logical_not),
    "select": lambda a: np.where(a["cond"], a["a"], a["b"]),
    "abs": _unary(np.abs), "ceil": _unary(np.ceil), "floor": _unary(np.floor), "round": _unary(np.round),
    "sign": _unary(np.sign), "exp": _unary(np.exp), "exp2": _unary(np.exp2), "sqrt": _unary(np.sqrt),
    "square": _unary(np.square), "sin": _unary(np.sin), "cos": _unary(np.cos), "tan": _unary(np.tan),
    "asin": _unary(np.arcsin), "acos": _unary(np.arccos), "atan": _unary(np.arctan), "sinh": _unary(np.sinh),
    "cosh": _unary(np.cosh), "atanh": _unary(np.arctanh), "erf": _unary(_erf),
    "log": _with_eps(lambda x, e: np.log(x + np.asarray(e, x.dtype)), 1e-45),
    "rsqrt": _with_eps(lambda x, e: 1 / np.sqrt(x + np.asarray(e, x.dtype)), 1e-12),
    "inverse": _with_eps(lambda x, e: 1 / (x + np.asarray(e, x.dtype)), 1e-4),
    "clip": lambda a: np.minimum(np.maximum(a["x"], a["alpha"]), a["beta"]),
    "cast": _cast,
    "identity": lambda a: a["x"],
    "classify": _classify,
}
