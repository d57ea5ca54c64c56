"""Dense MIL ops: ``linear`` (x @ W.T + b), ``matmul`` (NumPy batched semantics, optional transposes) and
``einsum``."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _linear(a):
    x = np.asarray(a["x"], F32)
    y = x @ np.asarray(a["weight"], F32).T
    if a.get("bias") is not None:
        y = y + np.asarray(a["bias"], F32)
    return y


def _matmul(a):
    x, y = np.asarray(a["x"], F32), np.asarray(a["y"], F32)
    if a.scalar("transpose_x", False) and x.ndim > 1:
        x = np.swapaxes(x, -1, -2)
    if a.scalar("transpose_y", False) and y.ndim > 1:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _einsum(a):
    values = [np.asarray(v, F32) for v in a.list("values")]
    return np.einsum(str(a.scalar("equation")), *values)


OPS = {"linear": _linear, "matmul": _matmul, "einsum": _einsum}
