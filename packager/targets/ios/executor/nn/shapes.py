"""Layers that move data without arithmetic: reshape, flatten, transpose, concat, squeeze, slice, split,
stack, tile, constants, shape queries, fills and ranges."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import F32, Op, UnsupportedLayer, weights


def _reshape_static(layer) -> Op:
    shape = tuple(int(s) for s in layer.reshapeStatic.targetShape)
    return lambda xs: [xs[0].reshape(shape)]


def _reshape_legacy(layer) -> Op:
    p = layer.reshape
    shape = tuple(int(s) for s in p.targetShape)

    def op(xs):
        x = xs[0]
        lead = x.shape[:-3] if x.ndim > 3 else ()
        if len(shape) == 4:  # (Seq, C, H, W): keep batch before it
            lead = x.shape[:-4] if x.ndim > 4 else lead[:-1] if len(lead) else ()
        src = x if p.mode == 0 else np.moveaxis(x, -3, -1)
        y = src.reshape(lead + shape) if p.mode == 0 else src.reshape(lead + shape[:-3] + (shape[-2], shape[-1], shape[-3]))
        if p.mode != 0:
            y = np.moveaxis(y, -1, -3)
        return [y]

    return op


def _reshape_like(layer) -> Op:
    return lambda xs: [xs[0].reshape(xs[1].shape)]


def _reshape_dynamic(layer) -> Op:
    return lambda xs: [xs[0].reshape(tuple(int(v) for v in xs[1].reshape(-1)))]


def _flatten_legacy(layer) -> Op:
    mode = layer.flatten.mode  # CHANNEL_FIRST=0, CHANNEL_LAST=1

    def op(xs):
        x = xs[0]
        if mode == 1:
            x = np.moveaxis(x, -3, -1)
        return [x.reshape(x.shape[:-3] + (-1, 1, 1))]

    return op


def _flatten_to_2d(layer) -> Op:
    axis = int(layer.flattenTo2D.axis)

    def op(xs):
        x = xs[0]
        a = axis if axis >= 0 else axis + x.ndim
        return [x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)]

    return op


def _transpose(layer) -> Op:
    axes = tuple(int(a) for a in layer.transpose.axes)
    return lambda xs: [np.ascontiguousarray(np.transpose(xs[0], axes))]


def _permute(layer) -> Op:
    axes = [int(a) for a in layer.permute.axis]  # over (Seq, C, H, W)

    def op(xs):
        x = xs[0]
        if x.ndim == 3:
            return [np.transpose(x, [a - 1 for a in axes[1:]])]
        lead = x.ndim - 4
        return [np.transpose(x, list(range(lead)) + [lead + a for a in axes])]

    return op


def _concat(layer) -> Op:
    seq = layer.concat.sequenceConcat
    return lambda xs: [np.concatenate(xs, axis=-5 if seq and xs[0].ndim >= 5 else -3)]


def _concat_nd(layer) -> Op:
    axis = int(layer.concatND.axis)
    if layer.concatND.interleave:
        raise UnsupportedLayer("concatND.interleave", layer.name)
    return lambda xs: [np.concatenate(xs, axis=axis)]


def _squeeze(layer) -> Op:
    p = layer.squeeze
    axes = tuple(int(a) for a in p.axes)

    def op(xs):
        x = xs[0]
        if p.squeezeAll or not axes:
            y = np.squeeze(x)
            return [y.reshape(1) if y.ndim == 0 else y]
        return [np.squeeze(x, axis=axes)]

    return op


def _expand_dims(layer) -> Op:
    axes = sorted(int(a) for a in layer.expandDims.axes)

    def op(xs):
        x = xs[0]
        out_rank = x.ndim + len(axes)
        return [np.expand_dims(x, tuple(a if a >= 0 else a + out_rank for a in axes))]

    return op


def _load_constant_nd(layer) -> Op:
    p = layer.loadConstantND
    data = weights(p.data, [int(s) for s in p.shape])
    return lambda xs: [data]


def _load_constant(layer) -> Op:
    p = layer.loadConstant
    data = weights(p.data, [int(s) for s in p.shape])
    return lambda xs: [data]


def _slice_static(layer) -> Op:
    p = layer.sliceStatic
    args = (list(p.beginIds), list(p.endIds), list(p.strides), list(p.beginMasks), list(p.endMasks),
            list(p.squeezeMasks))
    return lambda xs: [strided_slice(xs[0], *args)]


def _split_nd(layer) -> Op:
    p = layer.splitND
    axis, sizes, n = int(p.axis), [int(s) for s in p.splitSizes], int(p.numSplits)

    def op(xs):
        x = xs[0]
        if sizes:
            return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        return np.split(x, n or len(layer.output), axis=axis)

    return op


def _stack(layer) -> Op:
    axis = int(layer.stack.axis)
    return lambda xs: [np.stack(xs, axis=axis)]


def _tile(layer) -> Op:
    reps = tuple(int(r) for r in layer.tile.reps)
    return lambda xs: [np.tile(xs[0], _ints(xs[1]) if len(xs) > 1 else reps)]


def _copy(layer) -> Op:
    return lambda xs: [xs[0]]


def _ints(a) -> tuple[int, ...]:
    return tuple(int(v) for v in np.rint(np.asarray(a, dtype=np.float64)).reshape(-1))


def strided_slice(x, begin, end, strides, begin_masks, end_masks, squeeze_masks) -> np.ndarray:
    """TensorFlow ``strided_slice`` semantics; lists shorter than the rank leave the remaining axes whole.
    A squeezed axis takes the single element at ``begin`` (its end is ignored) and disappears."""
    idx: list = []
    for i in range(x.ndim):
        if i >= len(begin):
            idx.append(slice(None))
            continue
        if i < len(squeeze_masks) and squeeze_masks[i]:
            idx.append(int(begin[i]))
            continue
        step = int(strides[i]) if i < len(strides) else 1
        b = None if (i < len(begin_masks) and begin_masks[i]) else int(begin[i])
        e = None if (i < len(end_masks) and end_masks[i]) or i >= len(end) else int(end[i])
        idx.append(slice(b, e, step))
    y = x[tuple(idx)]
    return y.reshape(1) if y.ndim == 0 else y


def _slice_dynamic(layer) -> Op:
    p = layer.sliceDynamic
    end_ids, strides = list(p.endIds), list(p.strides)
    bm, em, sq = list(p.beginMasks), list(p.endMasks), list(p.squeezeMasks)

    def op(xs):
        begin = _ints(xs[1])
        end = _ints(xs[2]) if len(xs) > 2 else end_ids
        st = _ints(xs[3]) if len(xs) > 3 else strides
        return [strided_slice(xs[0], begin, end, st, bm, em, sq)]

    return op


def _slice_legacy(layer) -> Op:
    p = layer.slice
    axis = {0: -3, 1: -2, 2: -1}[p.axis]
    start, end, stride = int(p.startIndex), int(p.endIndex), int(p.stride or 1)

    def op(xs):
        x = xs[0]
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(start, end, stride)
        return [x[tuple(idx)]]

    return op


def _slice_by_size(layer) -> Op:
    p = layer.sliceBySize
    axis, size = int(p.axis), int(p.size)

    def op(xs):
        x = xs[0]
        b = _ints(xs[1])[0]
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(b, b + size)
        return [x[tuple(idx)]]

    return op


def _get_shape(layer) -> Op:
    return lambda xs: [np.asarray(xs[0].shape, dtype=F32)]


def _fill_like(layer) -> Op:
    v = F32(layer.fillLike.value)
    return lambda xs: [np.full(xs[0].shape, v, dtype=F32)]


def _fill_static(layer) -> Op:
    shape, v = tuple(int(s) for s in layer.fillStatic.targetShape), F32(layer.fillStatic.value)
    return lambda xs: [np.full(shape, v, dtype=F32)]


def _fill_dynamic(layer) -> Op:
    v = F32(layer.fillDynamic.value)
    return lambda xs: [np.full(_ints(xs[0]), v, dtype=F32)]


def _range_static(layer) -> Op:
    p = layer.rangeStatic
    y = np.arange(p.startValue, p.endValue, p.stepSizeValue or 1.0).astype(F32)
    return lambda xs: [y]


def _range_dynamic(layer) -> Op:
    """Inputs as coremltools writes them: ``[end]``, ``[end, start]`` or ``[end, start, step]``."""
    p = layer.rangeDynamic

    def op(xs):
        vals = [float(np.asarray(x).reshape(-1)[0]) for x in xs]
        end = vals[0]
        start = vals[1] if len(vals) > 1 else p.startValue
        step = vals[2] if len(vals) > 2 else (p.stepSizeValue or 1.0)
        return [np.arange(start, end, step).astype(F32)]

    return op


def _broadcast(x, shape) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape))))


def _reverse(layer) -> Op:
    dims = [bool(d) for d in layer.reverse.reverseDim]

    def op(xs):
        x = xs[0]
        axes = tuple(i for i, d in enumerate(dims) if d and i < x.ndim)
        return [np.flip(x, axis=axes) if axes else x]

    return op


BUILDERS = {
    "reshape": _reshape_legacy,
    "reshapeStatic": _reshape_static,
    "reshapeLike": _reshape_like,
    "reshapeDynamic": _reshape_dynamic,
    "flatten": _flatten_legacy,
    "flattenTo2D": _flatten_to_2d,
    "transpose": _transpose,
    "permute": _permute,
    "concat": _concat,
    "concatND": _concat_nd,
    "squeeze": _squeeze,
    "expandDims": _expand_dims,
    "loadConstant": _load_constant,
    "loadConstantND": _load_constant_nd,
    "slice": _slice_legacy,
    "sliceStatic": _slice_static,
    "sliceDynamic": _slice_dynamic,
    "sliceBySize": _slice_by_size,
    "splitND": _split_nd,
    "stack": _stack,
    "tile": _tile,
    "copy": _copy,
    "getShape": _get_shape,
    "fillLike": _fill_like,
    "fillStatic": _fill_static,
    "fillDynamic": _fill_dynamic,
    "rangeStatic": _range_static,
    "rangeDynamic": _range_dynamic,
    "broadcastToLike": lambda layer: (lambda xs: [_broadcast(xs[0], xs[1].shape)]),
    "broadcastToStatic": lambda layer: (lambda xs, s=tuple(layer.broadcastToStatic.targetShape): [_broadcast(xs[0], s)]),
    "broadcastToDynamic": lambda layer: (lambda xs: [_broadcast(xs[0], _ints(xs[1]))]),
    "reverse": _reverse,
}
