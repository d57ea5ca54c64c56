"""MIL reductions (``reduce_*`` over ``axes``, all axes when none), ``reduce_argmax``/``argmin``, ``cumsum``
and ``topk``."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _reduce(fn):
    def op(a):
        x = np.asarray(a["x"])
        axes = a.ints("axes")
        axes = None if axes is None else tuple(i % max(x.ndim, 1) for i in axes)
        y = fn(x.astype(F32) if x.dtype == np.float16 else x, axes)
        if a.scalar("keep_dims", False):
            y = np.expand_dims(y, axes if axes is not None else tuple(range(x.ndim))) if np.ndim(y) < x.ndim else y
        return np.asarray(y)
    return op


def _arg(fn):
    def op(a):
        x = np.asarray(a["x"])
        axis = a.scalar("axis", -1)
        y = fn(x, axis=axis)
        if a.scalar("keep_dims", False):
            y = np.expand_dims(y, axis)
        return y.astype(np.int32)
    return op


def _cumsum(a):
    x = np.asarray(a["x"])
    axis = a.scalar("axis", 0)
    if a.scalar("reverse", False):
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis)
    if a.scalar("exclusive", False):
        y = y - x
    return np.flip(y, axis) if a.scalar("reverse", False) else y


def _topk(a):
    x = np.asarray(a["x"])
    k, axis = a.scalar("k", 1), a.scalar("axis", -1)
    order = np.argsort(x if a.scalar("ascending", False) else -x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int32)


OPS = {
    "reduce_sum": _reduce(lambda x, ax: x.sum(axis=ax)),
    "reduce_mean": _reduce(lambda x, ax: x.mean(axis=ax)),
    "reduce_max": _reduce(lambda x, ax: x.max(axis=ax)),
    "reduce_min": _reduce(lambda x, ax: x.min(axis=ax)),
    "reduce_prod": _reduce(lambda x, ax: x.prod(axis=ax)),
    "reduce_l1_norm": _reduce(lambda x, ax: np.abs(x).sum(axis=ax)),
    "reduce_l2_norm": _reduce(lambda x, ax: np.sqrt((x * x).sum(axis=ax))),
    "reduce_sum_square": _reduce(lambda x, ax: (x * x).sum(axis=ax)),
    "reduce_log_sum": _reduce(lambda x, ax: np.log(x.sum(axis=ax))),
    "reduce_log_sum_exp": _reduce(lambda x, ax: np.log(np.exp(x).sum(axis=ax))),
    "reduce_argmax": _arg(np.argmax), "reduce_argmin": _arg(np.argmin),
    "cumsum": _cumsum, "topk": _topk,
}
