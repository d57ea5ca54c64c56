"""MIL gathers and scatters: ``gather`` (negative indices wrap, ``batch_dims``), ``gather_along_axis``,
``gather_nd``, ``scatter`` / ``scatter_along_axis`` / ``scatter_nd``, ``one_hot`` and ``non_zero``."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer


def _index(indices, size: int, what: str) -> np.ndarray:
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ExecutorError(f"{what}: index out of range [0, {size})")
    return idx


def _gather(a):
    x = np.asarray(a["x"])
    axis = a.scalar("axis", 0) % x.ndim
    batch_dims = a.scalar("batch_dims", 0)
    idx = _index(a["indices"], x.shape[axis], "gather")
    if batch_dims == 0:
        return np.take(x, idx, axis=axis)
    batch = x.shape[:batch_dims]
    xs = x.reshape((-1,) + x.shape[batch_dims:])
    ids = idx.reshape((-1,) + idx.shape[batch_dims:])
    out = np.stack([np.take(xs[b], ids[b], axis=axis - batch_dims) for b in range(xs.shape[0])])
    return out.reshape(batch + out.shape[1:])


def _gather_along_axis(a):
    x = np.asarray(a["x"])
    axis = a.scalar("axis", 0) % x.ndim
    return np.take_along_axis(x, _index(a["indices"], x.shape[axis], "gather_along_axis"), axis=axis)


def _gather_nd(a):
    x = np.asarray(a["x"])
    if a.scalar("batch_dims", 0):
        raise UnsupportedLayer("gather_nd with batch_dims")
    idx = np.asarray(a["indices"]).astype(np.int64)
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    out = np.stack([x[tuple(i)] for i in flat]) if flat.shape[0] else np.zeros((0,) + x.shape[k:], x.dtype)
    return out.reshape(idx.shape[:-1] + x.shape[k:])


_MODES = {"update": lambda old, new: new, "add": np.add, "sub": np.subtract, "mul": np.multiply,
          "div": np.divide, "max": np.maximum, "min": np.minimum}


def _scatter(a):
    x = np.array(a["data"])
    axis = a.scalar("axis", 0) % x.ndim
    idx = _index(a["indices"], x.shape[axis], "scatter")
    upd = np.asarray(a["updates"])
    fn = _MODES[str(a.scalar("mode", "add"))]
    moved = np.moveaxis(x, axis, 0)
    u = np.moveaxis(upd, axis, 0)
    for i, row in zip(idx.reshape(-1), u.reshape((-1,) + moved.shape[1:])):
        moved[i] = fn(moved[i], row)
    return np.moveaxis(moved, 0, axis)


def _scatter_along_axis(a):
    x = np.array(a["data"])
    axis = a.scalar("axis", 0) % x.ndim
    idx = _index(a["indices"], x.shape[axis], "scatter_along_axis")
    upd = np.asarray(a["updates"])
    fn = _MODES[str(a.scalar("mode", "add"))]
    for pos in np.ndindex(idx.shape):
        target = list(pos)
        target[axis] = idx[pos]
        x[tuple(target)] = fn(x[tuple(target)], upd[pos])
    return x


def _scatter_nd(a):
    x = np.array(a["data"])
    idx = np.asarray(a["indices"]).astype(np.int64)
    upd = np.asarray(a["updates"])
    fn = _MODES[str(a.scalar("mode", "add"))]
    k = idx.shape[-1]
    for i, u in zip(idx.reshape(-1, k), upd.reshape((-1,) + x.shape[k:])):
        x[tuple(i)] = fn(x[tuple(i)], u)
    return x


def _one_hot(a):
    idx = np.asarray(a["indices"]).astype(np.int64)
    depth = a.scalar("one_hot_vector_size")
    axis = a.scalar("axis", -1)
    on, off = a.scalar("on_value", 1.0), a.scalar("off_value", 0.0)
    y = np.where(idx[..., None] == np.arange(depth), on, off).astype(np.float32)
    return np.moveaxis(y, -1, axis) if axis != -1 else y


OPS = {
    "gather": _gather, "gather_along_axis": _gather_along_axis, "gather_nd": _gather_nd,
    "scatter": _scatter, "scatter_along_axis": _scatter_along_axis, "scatter_nd": _scatter_nd,
    "one_hot": _one_hot,
    "non_zero": lambda a: np.argwhere(np.asarray(a["x"])).astype(np.int32),
}
