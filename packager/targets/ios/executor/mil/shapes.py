"""MIL shape ops: ``reshape``, ``transpose``, ``concat``, ``split``, ``slice_by_index`` (TensorFlow's
strided slice, the NeuralNetwork executor's implementation), ``slice_by_size``, ``squeeze``,
``expand_dims``, ``stack``, ``tile``, ``shape``, ``fill``, ``range_1d``, ``flatten2d``, ``reverse``."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import ExecutorError
from packager.targets.ios.executor.nn.shapes import strided_slice


def _reshape(a):
    x = np.asarray(a["x"])
    shape = [x.shape[i] if d == 0 and i < x.ndim else d for i, d in enumerate(a.ints("shape"))]
    return x.reshape(shape)


def _concat(a):
    values = [np.asarray(v) for v in a.list("values")]
    axis = a.scalar("axis")
    if a.scalar("interleave", False):
        stacked = np.stack(values, axis=axis % values[0].ndim + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


def _split(a):
    x = np.asarray(a["x"])
    axis = a.scalar("axis")
    sizes = a.ints("split_sizes")
    if sizes is None:
        n = a.scalar("num_splits")
        sizes = [x.shape[axis] // n] * n
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _slice_by_index(a):
    x = np.asarray(a["x"])
    n = x.ndim
    begin, end = a.ints("begin"), a.ints("end")
    stride = a.ints("stride") or [1] * n
    masks = [a.ints(k) or [0] * n for k in ("begin_mask", "end_mask", "squeeze_mask")]
    y = strided_slice(x, begin, end, stride, *masks)
    if all(masks[2]) and y.size == 1:  # every axis squeezed: a rank-0 value
        return y.reshape(())
    return y


def _slice_by_size(a):
    x = np.asarray(a["x"])
    begin, size = a.ints("begin"), a.ints("size")
    idx = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    return x[idx]


def _squeeze(a):
    x = np.asarray(a["x"])
    axes = a.ints("axes")
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))


def _expand_dims(a):
    x = np.asarray(a["x"])
    out_rank = x.ndim + len(a.ints("axes"))
    axes = sorted(i % out_rank for i in a.ints("axes"))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


def _fill(a):
    return np.full(a.ints("shape"), a.get("value", np.float32(0)))


def _range_1d(a):
    return np.arange(a.scalar("start"), a.scalar("end"), a.scalar("step"))


def _flatten2d(a):
    x = np.asarray(a["x"])
    axis = a.scalar("axis", 1) % max(x.ndim, 1)
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _tile(a):
    reps = a.ints("reps")
    if reps is None:
        raise ExecutorError("tile without reps")
    return np.tile(np.asarray(a["x"]), reps)


OPS = {
    "reshape": _reshape,
    "transpose": lambda a: np.transpose(np.asarray(a["x"]), a.ints("perm")),
    "concat": _concat,
    "split": _split,
    "slice_by_index": _slice_by_index,
    "slice_by_size": _slice_by_size,
    "squeeze": _squeeze,
    "expand_dims": _expand_dims,
    "stack": lambda a: np.stack([np.asarray(v) for v in a.list("values")], axis=a.scalar("axis")),
    "tile": _tile,
    "shape": lambda a: np.asarray(np.shape(a["x"]), np.int32),
    "fill": _fill,
    "fill_like": lambda a: np.full(np.shape(a["ref_tensor"]), a.get("value", np.float32(0))),
    "range_1d": _range_1d,
    "flatten2d": _flatten2d,
    "reverse": lambda a: np.flip(np.asarray(a["x"]), axis=None if a.ints("axes") is None else tuple(a.ints("axes"))),
    "band_part": lambda a: _band_part(np.asarray(a["x"]), a.scalar("lower", -1), a.scalar("upper", -1)),
}


def _band_part(x, lower: int, upper: int):
    m, n = x.shape[-2:]
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    keep = ((lower < 0) | (i - j <= lower)) & ((upper < 0) | (j - i <= upper))
    return np.where(keep, x, np.zeros((), x.dtype))
