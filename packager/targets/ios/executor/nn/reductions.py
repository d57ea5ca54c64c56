"""Reductions along axes: ``reduce*`` (legacy and ND), ``argMax``/``argMin``, ``cumSum``, ``topK``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import F32, Op, UnsupportedLayer


def _reduce_nd(fn) -> Callable:
    def build(layer) -> Op:
        p = getattr(layer, layer.WhichOneof("layer"))
        axes = tuple(int(a) for a in p.axes)

        def op(xs):
            x = xs[0]
            ax = None if (p.reduceAll or not axes) else axes
            return [np.asarray(fn(x, axis=ax, keepdims=p.keepDims), dtype=F32)]

        return op

    return build


_REDUCE_ND = {
    "reduceMean": np.mean,
    "reduceSum": np.sum,
    "reduceMax": np.max,
    "reduceMin": np.min,
    "reduceProd": np.prod,
    "reduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "reduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "reduceLogSum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduceLogSumExp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
}


def _reduce_legacy(layer) -> Op:
    p = layer.reduce
    axes = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}[p.axis]
    eps = p.epsilon
    modes = {
        0: lambda x: x.sum(axis=axes, keepdims=True),
        1: lambda x: x.mean(axis=axes, keepdims=True),
        2: lambda x: x.prod(axis=axes, keepdims=True),
        3: lambda x: np.log(x.sum(axis=axes, keepdims=True) + eps),
        4: lambda x: (x * x).sum(axis=axes, keepdims=True),
        5: lambda x: np.abs(x).sum(axis=axes, keepdims=True),
        6: lambda x: np.sqrt((x * x).sum(axis=axes, keepdims=True)),
        7: lambda x: x.max(axis=axes, keepdims=True),
        8: lambda x: x.min(axis=axes, keepdims=True),
    }
    if p.mode not in modes:
        raise UnsupportedLayer(f"reduce.mode{p.mode}", layer.name)
    f = modes[p.mode]
    return lambda xs: [f(xs[0]).astype(F32, copy=False)]


def _arg_extreme(field: str, pick):
    """argMax / argMin: ``pick`` along ``axis``, the axis kept (size 1) unless ``removeDim``."""

    def build(layer) -> Op:
        p = getattr(layer, field)

        def op(xs):
            y = pick(xs[0], axis=int(p.axis))
            if not p.removeDim:
                y = np.expand_dims(y, int(p.axis))
            return [y.astype(F32, copy=False)]

        return op

    return build


def _cumsum(layer) -> Op:
    """Along ``axis`` (or the axis given as second input); ``excludeFinalSum`` makes it exclusive."""
    p = layer.cumSum

    def op(xs):
        x = xs[0]
        axis = int(np.asarray(xs[1]).reshape(-1)[0]) if len(xs) > 1 else int(p.axis)
        if p.reverse:
            x = np.flip(x, axis)
        y = np.cumsum(x, axis=axis, dtype=F32)
        if p.excludeFinalSum:
            y = y - x
        if p.reverse:
            y = np.flip(y, axis)
        return [np.ascontiguousarray(y, dtype=F32)]

    return op


def _topk(layer) -> Op:
    p = layer.topK

    def op(xs):
        x = xs[0]
        k = int(np.asarray(xs[1]).reshape(-1)[0]) if len(xs) > 1 else int(p.K)
        axis = int(p.axis)
        order = np.argsort(x if p.useBottomK else -x, axis=axis, kind="stable")
        idx = np.take(order, np.arange(k), axis=axis)
        return [np.take_along_axis(x, idx, axis), idx.astype(F32)]

    return op


BUILDERS: dict[str, Callable] = {
    "reduce": _reduce_legacy,
    **{name: _reduce_nd(fn) for name, fn in _REDUCE_ND.items()},
    "argMax": _arg_extreme("argMax", np.argmax),
    "argMin": _arg_extreme("argMin", np.argmin),
    "cumSum": _cumsum,
    "topK": _topk,
}
