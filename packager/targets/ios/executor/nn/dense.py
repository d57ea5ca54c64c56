"""Matrix layers: ``innerProduct``, ``batchedMatmul`` and the embedding lookups."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import F32, ExecutorError, Op, weights


def _inner_product(layer) -> Op:
    p = layer.innerProduct
    cin, cout = int(p.inputChannels), int(p.outputChannels)
    w = weights(p.weights, (cout, cin))
    b = weights(p.bias, (cout,)) if p.hasBias else None

    def ip(xs):
        x = xs[0]
        spatial = x.ndim >= 3 and x.shape[-3:] == (cin, 1, 1)
        flat = x.reshape(x.shape[:-3] + (cin,)) if spatial else x
        if flat.shape[-1] != cin:  # legacy: (C, H, W) flattened
            flat = x.reshape(x.shape[:-3] + (-1,))
        y = flat @ w.T
        if b is not None:
            y = y + b
        y = y.astype(F32, copy=False)
        return [y.reshape(y.shape + (1, 1)) if spatial or x.ndim >= 3 else y]

    return ip


def _batched_matmul(layer) -> Op:
    p = layer.batchedMatmul
    if len(layer.input) == 1:
        k, n = int(p.weightMatrixFirstDimension), int(p.weightMatrixSecondDimension)
        w = weights(p.weights, (n, k)).T  # stored (C_out, C_in)
        b = weights(p.bias, (n,)) if p.hasBias else None

        def mm1(xs):
            y = xs[0] @ w
            if b is not None:
                y = y + b
            return [y.astype(F32, copy=False)]

        return mm1

    def mm2(xs):
        a, bb = xs[0], xs[1]
        if p.transposeA:
            a = np.swapaxes(a, -1, -2)
        if p.transposeB:
            bb = np.swapaxes(bb, -1, -2)
        return [np.matmul(a, bb).astype(F32, copy=False)]

    return mm2


def _lookup(table: np.ndarray, idx: np.ndarray, name: str) -> np.ndarray:
    ids = np.rint(np.asarray(idx, dtype=np.float64)).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ExecutorError(f"embedding {name!r}: index {int(ids.min())}..{int(ids.max())} outside the "
                            f"vocabulary of {table.shape[0]}")
    return table[ids]


def _embedding_nd(layer) -> Op:
    """Input ``(..., 1)`` of ids -> ``(..., embeddingSize)``; weights stored ``(embeddingSize, vocabSize)``."""
    p = layer.embeddingND
    table = np.ascontiguousarray(weights(p.weights, (p.embeddingSize, p.vocabSize)).T)
    b = weights(p.bias, (p.embeddingSize,)) if p.hasBias else None

    def op(xs):
        x = xs[0]
        if x.shape[-1] != 1:
            raise ExecutorError(f"embeddingND {layer.name!r} needs a last axis of size 1, got shape {x.shape}")
        y = _lookup(table, x[..., 0], layer.name)
        return [(y + b if b is not None else y).astype(F32, copy=False)]

    return op


def _embedding(layer) -> Op:
    """Legacy: ids of shape ``(..., 1, 1, 1)`` -> ``(..., outputChannels, 1, 1)``."""
    p = layer.embedding
    table = np.ascontiguousarray(weights(p.weights, (p.outputChannels, p.inputDim)).T)
    b = weights(p.bias, (p.outputChannels,)) if p.hasBias else None

    def op(xs):
        x = xs[0]
        ids = x.reshape(x.shape[:-3]) if x.ndim >= 3 else x
        y = _lookup(table, ids, layer.name)
        if b is not None:
            y = y + b
        return [y.astype(F32, copy=False).reshape(y.shape + (1, 1))]

    return op


BUILDERS = {
    "innerProduct": _inner_product,
    "batchedMatmul": _batched_matmul,
    "embedding": _embedding,
    "embeddingND": _embedding_nd,
}
