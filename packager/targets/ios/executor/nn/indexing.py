"""Indexing layers: ``gather`` / ``gatherND`` / ``gatherAlongAxis``, their ``scatter`` counterparts,
``whereNonZero`` and ``oneHot``. Core ML NeuralNetworks carry indices as float32; they are rounded to
integers here, and an index outside the tensor is an :class:`ExecutorError`, never a silent wrap."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import F32, ExecutorError, Op, UnsupportedLayer

# ScatterMode: UPDATE, ADD, SUB, MUL, DIV, MAX, MIN -> the ufunc that combines data with updates
_SCATTER = {1: np.add, 2: np.subtract, 3: np.multiply, 4: np.divide, 5: np.maximum, 6: np.minimum}


def as_index(a, size: int | None = None, what: str = "index") -> np.ndarray:
    idx = np.rint(np.asarray(a, dtype=np.float64)).astype(np.int64)
    if size is not None and idx.size and (idx.min() < -size or idx.max() >= size):
        raise ExecutorError(f"{what} out of range: {int(idx.min())}..{int(idx.max())} for a dimension of {size}")
    return idx


def _gather(layer) -> Op:
    axis = int(layer.gather.axis)

    def op(xs):
        x = xs[0]
        return [np.take(x, as_index(xs[1], x.shape[axis], f"gather {layer.name!r}"), axis=axis)]

    return op


def _gather_nd(layer) -> Op:
    def op(xs):
        x, idx = xs[0], as_index(xs[1])
        k = idx.shape[-1]
        for d in range(k):
            as_index(idx[..., d], x.shape[d], f"gatherND {layer.name!r}")
        return [x[tuple(np.moveaxis(idx, -1, 0))]]

    return op


def _gather_along_axis(layer) -> Op:
    axis = int(layer.gatherAlongAxis.axis)

    def op(xs):
        x = xs[0]
        return [np.take_along_axis(x, as_index(xs[1], x.shape[axis], f"gatherAlongAxis {layer.name!r}"), axis)]

    return op


def _combine(mode: int, name: str):
    if mode == 0:
        return None
    if mode not in _SCATTER:
        raise UnsupportedLayer(f"scatter mode {mode}", name)
    return _SCATTER[mode]


def _scatter(layer) -> Op:
    """``out = data; out[..., indices[i], ...] = updates[..., i, ...]`` along ``axis`` (or combined)."""
    axis, fn = int(layer.scatter.axis), _combine(layer.scatter.mode, layer.name)

    def op(xs):
        data, upd = xs[0], np.asarray(xs[2], F32)
        ax = axis % data.ndim
        idx = as_index(xs[1], data.shape[ax], f"scatter {layer.name!r}")
        out = np.array(np.moveaxis(data, ax, 0), dtype=F32, copy=True)
        k = max(idx.ndim, 1)
        u = upd.reshape(data.shape[:ax] + (idx.size,) + data.shape[ax + 1:]) if k == 1 else upd
        u = np.moveaxis(u, list(range(ax, ax + k)), list(range(k))).reshape((idx.size,) + out.shape[1:])
        flat = idx.reshape(-1)
        if fn is None:
            out[flat] = u
        else:
            fn.at(out, flat, u)
        return [np.moveaxis(out, 0, ax)]

    return op


def _scatter_nd(layer) -> Op:
    fn = _combine(layer.scatterND.mode, layer.name)

    def op(xs):
        out = np.array(xs[0], dtype=F32, copy=True)
        idx = as_index(xs[1])
        where = tuple(np.moveaxis(idx, -1, 0))
        if fn is None:
            out[where] = xs[2]
        else:
            fn.at(out, where, xs[2])
        return [out]

    return op


def _scatter_along_axis(layer) -> Op:
    p = layer.scatterAlongAxis
    axis, fn = int(p.axis), _combine(p.mode, layer.name)

    def op(xs):
        out = np.array(xs[0], dtype=F32, copy=True)
        idx = as_index(xs[1], out.shape[axis], f"scatterAlongAxis {layer.name!r}")
        if fn is None:
            np.put_along_axis(out, idx, xs[2], axis)
            return [out]
        grid = list(np.indices(idx.shape, sparse=True))
        grid[axis % out.ndim] = idx
        fn.at(out, tuple(grid), xs[2])
        return [out]

    return op


def _where_non_zero(layer) -> Op:
    return lambda xs: [np.argwhere(np.asarray(xs[0]) != 0).astype(F32)]


def _one_hot(layer) -> Op:
    p = layer.oneHot

    def op(xs):
        depth = int(p.oneHotVectorSize) if len(xs) < 2 else int(np.asarray(xs[1]).reshape(-1)[0])
        idx = as_index(xs[0])
        hot = idx[..., None] == np.arange(depth)
        y = np.where(hot, F32(p.onValue), F32(p.offValue)).astype(F32)
        axis = int(p.axis)
        return [np.moveaxis(y, -1, axis if axis >= 0 else axis + y.ndim)]

    return op


BUILDERS: dict[str, Callable] = {
    "gather": _gather,
    "gatherND": _gather_nd,
    "gatherAlongAxis": _gather_along_axis,
    "scatter": _scatter,
    "scatterND": _scatter_nd,
    "scatterAlongAxis": _scatter_along_axis,
    "whereNonZero": _where_non_zero,
    "oneHot": _one_hot,
}
