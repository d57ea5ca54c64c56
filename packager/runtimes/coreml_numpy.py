"""A NumPy executor for Core ML NeuralNetwork models (``.mlmodel``), for machines without Core ML.

Core ML's runtime exists only on Apple platforms. This module reads the saved spec (the protobuf,
through ``coremltools.proto``) and executes its layers in order with NumPy, so the converted file
itself — not the converter's intermediate graph — is what gets checked on Linux.

Scope: the layer types ``coremltools`` emits for convolutional / dense models (see
``SUPPORTED_LAYERS``). Anything else raises :class:`UnsupportedLayer` naming the layer type, so a
caller can report the model as UNVERIFIED instead of guessing.

Semantics follow Apple's ``NeuralNetwork.proto`` for models with ``EXACT_ARRAY_MAPPING`` /
``RANK4_IMAGE_MAPPING`` (what coremltools 4+ produces): tensors keep their real rank; the image
input becomes ``(1, C, H, W)``; spatial layers act on the last three axes ``(C, H, W)``. Weights
stored as float16 or linearly / look-up-table quantized are dequantized exactly as Core ML does.
Everything is computed in float32.

Entry point: ``run(spec_or_path, inputs) -> {output_name: array}``. Image inputs may be given as an
``(H, W, C)`` / ``(1, H, W, C)`` array of RGB (or gray) pixel values 0..255 — what a ``CGImage`` or
PIL image holds — and are converted the way Core ML does: colour layout (RGB/BGR), then
``channelScale * pixel + channelBias``. Array inputs are used as given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


class UnsupportedLayer(Exception):
    """The model uses a layer type (or a variant of one) this executor does not implement."""

    def __init__(self, layer_type: str, layer_name: str = "", detail: str = ""):
        self.layer_type = layer_type
        self.layer_name = layer_name
        msg = f"Core ML layer type {layer_type!r} is not supported by the NumPy executor"
        if detail:
            msg += f" ({detail})"
        if layer_name:
            msg += f" [layer {layer_name!r}]"
        super().__init__(msg)


class ExecutorError(Exception):
    """The model or the inputs are malformed (missing input, unknown blob, bad shape)."""


Op = Callable[[list[np.ndarray]], list[np.ndarray]]
F32 = np.float32


# --------------------------------------------------------------------------- weights


def weights(wp, shape: Sequence[int] | None = None, axis: int = 0) -> np.ndarray:
    """Decode a ``WeightParams``: float32, float16, or n-bit linear / look-up-table quantized.

    ``shape`` is the stored layout; ``axis`` the channel axis of per-channel linear quantization
    (0 for every layer except deconvolution, where it is 1).
    """
    if len(wp.floatValue):
        a = np.asarray(wp.floatValue, dtype=F32)
    elif len(wp.float16Value):
        a = np.frombuffer(wp.float16Value, dtype="<f2").astype(F32, copy=False)
    elif len(wp.rawValue) or len(wp.int8RawValue):
        a = _dequantize(wp, shape, axis)
    else:
        a = np.zeros(0, dtype=F32)
    if shape is not None:
        a = a.reshape(tuple(int(s) for s in shape))
    return a


def _dequantize(wp, shape, axis: int) -> np.ndarray:
    q = wp.quantization
    kind = q.WhichOneof("QuantizationType")
    if len(wp.int8RawValue):
        codes = np.frombuffer(wp.int8RawValue, dtype=np.int8).astype(F32, copy=False)
    elif kind is None:  # raw little-endian float32 bytes
        return np.frombuffer(wp.rawValue, dtype="<f4").astype(F32, copy=False)
    else:
        nbits = q.numberOfBits or 8
        raw = np.frombuffer(wp.rawValue, dtype=np.uint8)
        if nbits == 8:
            codes = raw.astype(F32, copy=False)
        else:  # bit stream, most significant bit first
            count = int(np.prod(shape)) if shape is not None else (raw.size * 8) // nbits
            bits = np.unpackbits(raw)[: count * nbits].reshape(count, nbits)
            codes = (bits.astype(np.int64) @ (1 << np.arange(nbits - 1, -1, -1))).astype(F32, copy=False)
    if kind == "lookupTableQuantization":
        lut = np.asarray(q.lookupTableQuantization.floatValue, dtype=F32)
        return lut[codes.astype(np.int64)]
    if kind == "linearQuantization":
        scale = np.asarray(q.linearQuantization.scale, dtype=F32)
        bias = np.asarray(q.linearQuantization.bias, dtype=F32)
        if scale.size <= 1 and bias.size <= 1:
            return codes * (scale[0] if scale.size else 1) + (bias[0] if bias.size else 0)
        if shape is None:
            raise ExecutorError("per-channel quantized weights need a shape")
        shp = tuple(int(s) for s in shape)
        w = codes.reshape(shp)
        bshape = [1] * len(shp)
        bshape[axis] = -1
        w = w * scale.reshape(bshape) + bias.reshape(bshape)
        return w.reshape(-1)
    return codes


# --------------------------------------------------------------------------- helpers


def _same_pads(size: int, k: int, s: int, d: int, top_left_heavy: bool = False) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if top_left_heavy else (small, big)


def _border(amounts) -> list[tuple[int, int]]:
    """``BorderAmounts`` -> [(top, bottom), (left, right)]."""
    b = list(amounts.borderAmounts)
    out = [(int(e.startEdgeSize), int(e.endEdgeSize)) for e in b]
    while len(out) < 2:
        out.append((0, 0))
    return out


def _pad_hw(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    (t, b), (left, r) = pads
    if not (t or b or left or r):
        return x
    width = [(0, 0)] * (x.ndim - 2) + [(t, b), (left, r)]
    return np.pad(x, width, mode="constant", constant_values=value)


def _as_nchw(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Spatial layers see the last three axes as (C, H, W); leading axes are batch."""
    if x.ndim < 3:
        raise ExecutorError(f"spatial layer needs rank >= 3, got shape {x.shape}")
    lead = x.shape[:-3]
    return x.reshape((-1,) + x.shape[-3:]), lead


# --------------------------------------------------------------------------- layers
# Each builder receives the layer's params message (and the whole layer when it needs names /
# input counts) and returns an Op: list of input arrays -> list of output arrays.


def _activation_fn(p, layer_name: str) -> Callable[[np.ndarray], np.ndarray]:
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return lambda x: np.maximum(x, 0)
    if kind == "linear":
        a, b = p.linear.alpha, p.linear.beta
        return lambda x: (a * x + b).astype(F32, copy=False)
    if kind == "leakyReLU":
        a = p.leakyReLU.alpha
        return lambda x: np.where(x >= 0, x, a * x).astype(F32, copy=False)
    if kind == "thresholdedReLU":
        a = p.thresholdedReLU.alpha
        return lambda x: np.where(x > a, x, 0).astype(F32, copy=False)
    if kind == "tanh":
        return np.tanh
    if kind == "scaledTanh":
        a, b = p.scaledTanh.alpha, p.scaledTanh.beta
        return lambda x: (a * np.tanh(b * x)).astype(F32, copy=False)
    if kind == "sigmoid":
        return lambda x: (1.0 / (1.0 + np.exp(-x))).astype(F32, copy=False)
    if kind == "sigmoidHard":
        a, b = p.sigmoidHard.alpha, p.sigmoidHard.beta
        return lambda x: np.clip(a * x + b, 0, 1).astype(F32, copy=False)
    if kind == "ELU":
        a = p.ELU.alpha
        return lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)).astype(F32, copy=False)
    if kind == "softsign":
        return lambda x: (x / (1 + np.abs(x))).astype(F32, copy=False)
    if kind == "softplus":
        return lambda x: np.logaddexp(0, x).astype(F32, copy=False)
    if kind == "PReLU":
        alpha = weights(p.PReLU.alpha)

        def prelu(x):
            a = alpha.reshape((-1, 1, 1)) if alpha.size > 1 else alpha
            return np.where(x >= 0, x, a * x).astype(F32, copy=False)

        return prelu
    if kind == "parametricSoftplus":
        al, be = weights(p.parametricSoftplus.alpha), weights(p.parametricSoftplus.beta)

        def psoftplus(x):
            a = al.reshape((-1, 1, 1)) if al.size > 1 else al
            b = be.reshape((-1, 1, 1)) if be.size > 1 else be
            return (a * np.logaddexp(0, b * x)).astype(F32, copy=False)

        return psoftplus
    raise UnsupportedLayer(f"activation.{kind}", layer_name)


def _activation(layer) -> Op:
    f = _activation_fn(layer.activation, layer.name)
    return lambda xs: [f(xs[0])]


def _convolution(layer) -> Op:
    p = layer.convolution
    if p.isDeconvolution:
        return _deconvolution(layer)
    cout, kch, groups = int(p.outputChannels), int(p.kernelChannels), int(p.nGroups or 1)
    kh, kw = (list(p.kernelSize) or [3, 3])
    sh, sw = (list(p.stride) or [1, 1])
    dh, dw = (list(p.dilationFactor) or [1, 1])
    w = weights(p.weights, (cout, kch, kh, kw))
    bias = weights(p.bias).reshape(1, cout, 1, 1) if p.hasBias else None
    pad_kind = p.WhichOneof("ConvolutionPaddingType")
    depthwise = groups > 1 and kch == 1
    w_mat = w.reshape(cout, -1)

    def conv(xs):
        x, lead = _as_nchw(xs[0])
        _, cin, h, wd = x.shape
        if pad_kind == "same":
            tl = p.same.asymmetryMode == 1
            pads = [_same_pads(h, kh, sh, dh, tl), _same_pads(wd, kw, sw, dw, tl)]
        else:
            pads = _border(p.valid.paddingAmounts)
        xp = _pad_hw(x, pads)
        hp, wp_ = xp.shape[2:]
        ho = (hp - (kh - 1) * dh - 1) // sh + 1
        wo = (wp_ - (kw - 1) * dw - 1) // sw + 1
        if depthwise:
            if cout != cin:  # channel multiplier: output channel o reads input channel o // m
                xp = np.repeat(xp, cout // cin, axis=1)
            y = np.zeros((xp.shape[0], cout, ho, wo), dtype=F32)
            buf = np.empty_like(y)
            for i in range(kh):  # one multiply-add per kernel tap, vectorised over channels
                for j in range(kw):
                    tap = xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                    np.multiply(tap, w[:, 0, i, j].reshape(1, cout, 1, 1), out=buf)
                    y += buf
        elif kh == 1 and kw == 1 and groups == 1:
            xs_ = xp[:, :, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw]
            n = xs_.shape[0]
            y = np.matmul(w_mat, xs_.reshape(n, cin, ho * wo)).reshape(n, cout, ho, wo)
        else:
            y = _grouped_conv(xp, w, groups, ho, wo, sh, sw, dh, dw)
        if bias is not None:
            y = y + bias
        return [y.astype(F32, copy=False).reshape(lead + y.shape[1:])]

    return conv


def _grouped_conv(xp, w, groups, ho, wo, sh, sw, dh, dw) -> np.ndarray:
    n, cin = xp.shape[:2]
    cout, kch, kh, kw = w.shape
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw, ::dh, ::dw]  # n,c,ho,wo,kh,kw
    og = cout // groups
    outs = []
    for g in range(groups):
        cols = win[:, g * kch:(g + 1) * kch]  # n,kch,ho,wo,kh,kw
        cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho * wo, kch * kh * kw)
        wg = w[g * og:(g + 1) * og].reshape(og, -1)
        outs.append(np.matmul(cols, wg.T).transpose(0, 2, 1).reshape(n, og, ho, wo))
    return outs[0] if groups == 1 else np.concatenate(outs, axis=1)


def _deconvolution(layer) -> Op:
    p = layer.convolution
    cout, kch, groups = int(p.outputChannels), int(p.kernelChannels), int(p.nGroups or 1)
    kh, kw = list(p.kernelSize) or [3, 3]
    sh, sw = list(p.stride) or [1, 1]
    dh, dw = list(p.dilationFactor) or [1, 1]
    og = cout // groups
    w = weights(p.weights, (kch, og, kh, kw), axis=1)  # (C_in, C_out/groups, kh, kw)
    bias = weights(p.bias).reshape(1, cout, 1, 1) if p.hasBias else None
    out_shape = list(p.outputShape)
    pad_kind = p.WhichOneof("ConvolutionPaddingType")

    def deconv(xs):
        x, lead = _as_nchw(xs[0])
        n, cin, h, wd = x.shape
        full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (wd - 1) * sw + (kw - 1) * dw + 1
        y = np.zeros((n, cout, full_h, full_w), dtype=F32)
        icg = cin // groups
        for g in range(groups):
            xg = x[:, g * icg:(g + 1) * icg]
            wg = w[g * icg:(g + 1) * icg]  # icg, og, kh, kw
            for i in range(kh):
                for j in range(kw):
                    contrib = np.einsum("nchw,co->nohw", xg, wg[:, :, i, j])
                    y[:, g * og:(g + 1) * og, i * dh: i * dh + sh * (h - 1) + 1: sh,
                      j * dw: j * dw + sw * (wd - 1) + 1: sw] += contrib
        if pad_kind == "same":
            th, tw = h * sh, wd * sw
        else:
            (pt, pb), (pl, pr) = _border(p.valid.paddingAmounts)
            th, tw = full_h - pt - pb, full_w - pl - pr
        if out_shape:
            th, tw = int(out_shape[0]), int(out_shape[1])
        top = (full_h - th) // 2 if pad_kind == "same" else _border(p.valid.paddingAmounts)[0][0]
        left = (full_w - tw) // 2 if pad_kind == "same" else _border(p.valid.paddingAmounts)[1][0]
        y = y[:, :, top: top + th, left: left + tw]
        if bias is not None:
            y = y + bias
        return [y.reshape(lead + y.shape[1:])]

    return deconv


def _pooling(layer) -> Op:
    p = layer.pooling
    kind = p.type  # MAX=0 AVERAGE=1 L2=2
    kh, kw = list(p.kernelSize) or [3, 3]
    sh, sw = list(p.stride) or [1, 1]
    pad_kind = p.WhichOneof("PoolingPaddingType")
    exclude = p.avgPoolExcludePadding

    def pool(xs):
        x, lead = _as_nchw(xs[0])
        if p.globalPooling:
            red = {0: np.max, 1: np.mean}.get(kind)
            y = red(x, axis=(2, 3), keepdims=True) if red else np.sqrt(np.sum(x * x, axis=(2, 3), keepdims=True))
            return [y.astype(F32, copy=False).reshape(lead + y.shape[1:])]
        h, wd = x.shape[2:]
        if pad_kind == "same":
            tl = p.same.asymmetryMode == 1
            pads = [_same_pads(h, kh, sh, 1, tl), _same_pads(wd, kw, sw, 1, tl)]
            ho, wo = -(-h // sh), -(-wd // sw)
        elif pad_kind == "includeLastPixel":
            (pt, pl) = [int(v) for v in (list(p.includeLastPixel.paddingAmounts) + [0, 0])[:2]]
            ho = -(-(h + 2 * pt - kh) // sh) + 1
            wo = -(-(wd + 2 * pl - kw) // sw) + 1
            if (ho - 1) * sh >= h + pt:
                ho -= 1
            if (wo - 1) * sw >= wd + pl:
                wo -= 1
            pads = [(pt, max((ho - 1) * sh + kh - h - pt, pt)), (pl, max((wo - 1) * sw + kw - wd - pl, pl))]
        else:
            pads = _border(p.valid.paddingAmounts)
            ho = (h + sum(pads[0]) - kh) // sh + 1
            wo = (wd + sum(pads[1]) - kw) // sw + 1
        fill = -np.inf if kind == 0 else 0.0
        xp = _pad_hw(x, pads, fill)
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
        win = win[:, :, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw]
        if kind == 0:
            y = win.max(axis=(-2, -1))
        elif kind == 1:
            y = win.sum(axis=(-2, -1))
            if exclude:
                ones = _pad_hw(np.ones((1, 1, h, wd), F32), pads, 0.0)
                cw = np.lib.stride_tricks.sliding_window_view(ones, (kh, kw), axis=(2, 3))
                cnt = cw[:, :, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw].sum(axis=(-2, -1))
                y = y / np.maximum(cnt, 1)
            else:
                y = y / (kh * kw)
        else:
            y = np.sqrt((win * win).sum(axis=(-2, -1)))
        y = y.astype(F32, copy=False)
        return [y.reshape(lead + y.shape[1:])]

    return pool


def _padding(layer) -> Op:
    p = layer.padding
    pads = _border(p.paddingAmounts)
    kind = p.WhichOneof("PaddingType")
    mode = {"constant": "constant", "reflection": "reflect", "replication": "edge"}[kind]
    value = p.constant.value if kind == "constant" else 0.0

    def pad(xs):
        x = xs[0]
        width = [(0, 0)] * (x.ndim - 2) + pads
        if mode == "constant":
            return [np.pad(x, width, mode="constant", constant_values=value)]
        return [np.pad(x, width, mode=mode)]

    return pad


def _constant_pad(layer) -> Op:
    p = layer.constantPad
    amounts = [int(a) for a in p.padAmounts]
    if p.padToGivenOutputSizeMode:
        raise UnsupportedLayer("constantPad.padToGivenOutputSizeMode", layer.name)

    def pad(xs):
        x = xs[0]
        pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2)]
        width = [(0, 0)] * (x.ndim - len(pairs)) + pairs
        return [np.pad(x, width, mode="constant", constant_values=p.value)]

    return pad


def _batchnorm(layer) -> Op:
    p = layer.batchnorm
    c = int(p.channels)
    gamma, beta = weights(p.gamma).reshape(c, 1, 1), weights(p.beta).reshape(c, 1, 1)
    eps = p.epsilon

    def bn(xs):
        x = xs[0]
        if p.computeMeanVar:
            axes = (-2, -1) if p.instanceNormalization else tuple(i for i in range(x.ndim) if i != x.ndim - 3)
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
        else:
            mean, var = weights(p.mean).reshape(c, 1, 1), weights(p.variance).reshape(c, 1, 1)
        return [((x - mean) / np.sqrt(var + eps) * gamma + beta).astype(F32, copy=False)]

    return bn


def _scale(layer) -> Op:
    p = layer.scale
    s = weights(p.scale, list(p.shapeScale) or None)
    b = weights(p.bias, list(p.shapeBias) or None) if p.hasBias else None

    def fit(a):
        return a.reshape((-1, 1, 1)) if a.ndim == 1 and a.size > 1 else a

    def scale(xs):
        y = xs[0] * fit(s)
        if b is not None:
            y = y + fit(b)
        return [y.astype(F32, copy=False)]

    return scale


def _bias(layer) -> Op:
    b = weights(layer.bias.bias, list(layer.bias.shape) or None)
    b = b.reshape((-1, 1, 1)) if b.ndim == 1 and b.size > 1 else b
    return lambda xs: [(xs[0] + b).astype(F32, copy=False)]


def _legacy_elementwise(reduce_fn, name: str) -> Callable:
    def build(layer) -> Op:
        alpha = getattr(layer, name).alpha

        def op(xs):
            if len(xs) == 1:
                return [reduce_fn(xs[0], np.asarray(alpha, F32)).astype(F32, copy=False)]
            y = xs[0]
            for x in xs[1:]:
                y = reduce_fn(y, x)
            return [y.astype(F32, copy=False)]

        return op

    return build


def _broadcastable(fn) -> Callable:
    def build(layer) -> Op:
        def op(xs):
            y = xs[0]
            for x in xs[1:]:
                y = fn(y, x)
            return [np.asarray(y, dtype=F32)]

        return op

    return build


def _unary(layer) -> Op:
    p = layer.unary
    scale = p.scale if p.scale != 0 else 1.0  # proto default: 1 when unset
    shift, alpha, eps = p.shift, p.alpha, p.epsilon
    fns = {
        0: lambda x: np.sqrt(x),
        1: lambda x: 1 / np.sqrt(x + eps),
        2: lambda x: 1 / (x + eps),
        3: lambda x: np.power(x, alpha),
        4: lambda x: np.exp(x),
        5: lambda x: np.log(x + eps),
        6: lambda x: np.abs(x),
        7: lambda x: np.maximum(x, alpha),
    }
    if p.type not in fns:
        raise UnsupportedLayer(f"unary.{p.type}", layer.name)
    f = fns[p.type]
    return lambda xs: [f(scale * xs[0] + shift).astype(F32, copy=False)]


def _softmax_axis(axis: int) -> Op:
    def op(xs):
        x = xs[0]
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return [(e / e.sum(axis=axis, keepdims=True)).astype(F32, copy=False)]

    return op


def _inner_product(layer) -> Op:
    p = layer.innerProduct
    cin, cout = int(p.inputChannels), int(p.outputChannels)
    w = weights(p.weights, (cout, cin))
    b = weights(p.bias) if p.hasBias else None

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
        b = weights(p.bias) if p.hasBias else None

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


def _clip(layer) -> Op:
    p = layer.clip
    return lambda xs: [np.clip(xs[0], p.minVal, p.maxVal).astype(F32, copy=False)]


def _gelu(layer) -> Op:
    mode = layer.gelu.mode  # EXACT=0, TANH_APPROXIMATION=1, SIGMOID_APPROXIMATION=2
    from math import sqrt

    def op(xs):
        x = xs[0]
        if mode == 0:
            from scipy.special import erf

            y = 0.5 * x * (1 + erf(x / sqrt(2.0)))
        elif mode == 1:
            y = 0.5 * x * (1 + np.tanh(sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
        else:
            y = x / (1 + np.exp(-1.702 * x))
        return [y.astype(F32, copy=False)]

    return op


def _elementwise_nd(fn) -> Callable:
    def build(layer) -> Op:
        return lambda xs: [np.asarray(fn(xs[0]), dtype=F32)]

    return build


def _slice_static(layer) -> Op:
    p = layer.sliceStatic
    begin, end, strides = list(p.beginIds), list(p.endIds), list(p.strides)
    bm, em = list(p.beginMasks), list(p.endMasks)
    sq = list(p.squeezeMasks)

    def op(xs):
        x = xs[0]
        idx = []
        for i in range(x.ndim):
            if i >= len(begin):
                idx.append(slice(None))
                continue
            b = None if (bm and bm[i]) else begin[i]
            e = None if (em and em[i]) else end[i]
            idx.append(slice(b, e, strides[i] if strides else 1))
        y = x[tuple(idx)]
        sq_axes = tuple(i for i, s in enumerate(sq) if s)
        return [np.squeeze(y, axis=sq_axes) if sq_axes else y]

    return op


def _split_nd(layer) -> Op:
    p = layer.splitND
    axis, sizes, n = int(p.axis), [int(s) for s in p.splitSizes], int(p.numSplits)

    def op(xs):
        x = xs[0]
        if sizes:
            return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        return np.split(x, n or len(layer.output), axis=axis)

    return op


def _upsample(layer) -> Op:
    p = layer.upsample
    fh, fw = (list(p.scalingFactor) or [1, 1])
    if p.mode != 0 or list(p.fractionalScalingFactor):
        raise UnsupportedLayer("upsample.BILINEAR", layer.name)
    fh, fw = int(fh), int(fw)
    return lambda xs: [np.repeat(np.repeat(xs[0], fh, axis=-2), fw, axis=-1)]


def _stack(layer) -> Op:
    axis = int(layer.stack.axis)
    return lambda xs: [np.stack(xs, axis=axis)]


def _tile(layer) -> Op:
    reps = tuple(int(r) for r in layer.tile.reps)
    return lambda xs: [np.tile(xs[0], reps)]


def _softmax_nd(layer) -> Op:
    return _softmax_axis(int(layer.softmaxND.axis))


def _softmax_legacy(layer) -> Op:
    return _softmax_axis(-3)


def _mvn(layer) -> Op:
    p = layer.mvn

    def op(xs):
        x = xs[0]
        axes = (-3, -2, -1) if p.acrossChannels else (-2, -1)
        y = x - x.mean(axis=axes, keepdims=True)
        if p.normalizeVariance:
            y = y / np.sqrt((y * y).mean(axis=axes, keepdims=True) + p.epsilon)
        return [y.astype(F32, copy=False)]

    return op


def _layer_norm(layer) -> Op:
    p = layer.layerNormalization
    shape = [int(s) for s in p.normalizedShape]
    gamma = weights(p.gamma, shape) if len(p.gamma.floatValue) or len(p.gamma.float16Value) or len(p.gamma.rawValue) else None
    beta = weights(p.beta, shape) if len(p.beta.floatValue) or len(p.beta.float16Value) or len(p.beta.rawValue) else None

    def op(xs):
        x = xs[0]
        axes = tuple(range(-len(shape), 0))
        y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + p.eps)
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return [y.astype(F32, copy=False)]

    return op


def _argmax(layer) -> Op:
    p = layer.argMax

    def op(xs):
        y = np.argmax(xs[0], axis=int(p.axis))
        if not p.removeDim:
            y = np.expand_dims(y, int(p.axis))
        return [y.astype(F32, copy=False)]

    return op


def _copy(layer) -> Op:
    return lambda xs: [xs[0]]


BUILDERS: dict[str, Callable] = {
    "activation": _activation,
    "convolution": _convolution,
    "pooling": _pooling,
    "padding": _padding,
    "constantPad": _constant_pad,
    "batchnorm": _batchnorm,
    "scale": _scale,
    "bias": _bias,
    "add": _legacy_elementwise(np.add, "add"),
    "multiply": _legacy_elementwise(np.multiply, "multiply"),
    "max": _broadcastable(np.maximum),
    "min": _broadcastable(np.minimum),
    "average": lambda layer: (lambda xs: [(sum(xs) / len(xs)).astype(F32, copy=False)]),
    "addBroadcastable": _broadcastable(np.add),
    "subtractBroadcastable": _broadcastable(np.subtract),
    "multiplyBroadcastable": _broadcastable(np.multiply),
    "divideBroadcastable": _broadcastable(np.divide),
    "maxBroadcastable": _broadcastable(np.maximum),
    "minBroadcastable": _broadcastable(np.minimum),
    "powBroadcastable": _broadcastable(np.power),
    "unary": _unary,
    "softmax": _softmax_legacy,
    "softmaxND": _softmax_nd,
    "innerProduct": _inner_product,
    "batchedMatmul": _batched_matmul,
    "reduce": _reduce_legacy,
    **{name: _reduce_nd(fn) for name, fn in _REDUCE_ND.items()},
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
    "clip": _clip,
    "gelu": _gelu,
    "exp2": _elementwise_nd(np.exp2),
    "ceil": _elementwise_nd(np.ceil),
    "floor": _elementwise_nd(np.floor),
    "round": _elementwise_nd(np.round),
    "sign": _elementwise_nd(np.sign),
    "sin": _elementwise_nd(np.sin),
    "cos": _elementwise_nd(np.cos),
    "tan": _elementwise_nd(np.tan),
    "sliceStatic": _slice_static,
    "splitND": _split_nd,
    "upsample": _upsample,
    "stack": _stack,
    "tile": _tile,
    "mvn": _mvn,
    "layerNormalization": _layer_norm,
    "argMax": _argmax,
    "copy": _copy,
}

SUPPORTED_LAYERS: list[str] = sorted(BUILDERS)


# --------------------------------------------------------------------------- model


def load_spec(spec_or_path):
    """A ``Model_pb2.Model`` from a path (``.mlmodel``) or an already loaded spec."""
    if isinstance(spec_or_path, (str, Path)):
        from coremltools.proto import Model_pb2

        spec = Model_pb2.Model()
        spec.ParseFromString(Path(spec_or_path).read_bytes())
        return spec
    return spec_or_path


def network_of(spec):
    kind = spec.WhichOneof("Type")
    if kind not in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        raise UnsupportedLayer(f"model type {kind}", detail="only NeuralNetwork models (.mlmodel) are executed")
    return kind, getattr(spec, kind)


def layer_types(spec_or_path) -> list[str]:
    """The distinct layer types of a model, in first-use order."""
    _, nn = network_of(load_spec(spec_or_path))
    seen: dict[str, None] = {}
    for layer in nn.layers:
        seen.setdefault(layer.WhichOneof("layer"), None)
    return list(seen)


def unsupported_layers(spec_or_path) -> list[str]:
    return [t for t in layer_types(spec_or_path) if t not in BUILDERS]


def _relu_cap_chain(chain, consumers: Counter) -> float | None:
    """coremltools writes ReLU6 (and any capped ReLU) as four layers: ReLU, linear(-1), unary
    threshold(-cap), linear(-1). Returns ``cap`` when ``chain`` is exactly that, each intermediate blob
    read by the next layer only (so fusing it changes nothing observable), else None."""
    if len(chain) != 4 or any(len(layer.input) != 1 or len(layer.output) != 1 for layer in chain):
        return None
    relu, neg1, thresh, neg2 = chain
    if not (relu.WhichOneof("layer") == "activation" and relu.activation.WhichOneof("NonlinearityType") == "ReLU"):
        return None
    for neg in (neg1, neg2):
        if not (neg.WhichOneof("layer") == "activation" and neg.activation.WhichOneof("NonlinearityType") == "linear"
                and neg.activation.linear.alpha == -1.0 and neg.activation.linear.beta == 0.0):
            return None
    u = thresh.unary if thresh.WhichOneof("layer") == "unary" else None
    if u is None or u.type != 7 or u.scale not in (0.0, 1.0) or u.shift != 0.0 or u.alpha >= 0:
        return None
    for a, b in ((relu, neg1), (neg1, thresh), (thresh, neg2)):
        if b.input[0] != a.output[0] or consumers[a.output[0]] != 1:
            return None
    return -float(u.alpha)


class Program:
    """A compiled model: weights decoded once, layers bound to NumPy functions."""

    def __init__(self, spec_or_path):
        self.spec = load_spec(spec_or_path)
        self.kind, self.nn = network_of(self.spec)
        self.steps: list[tuple[str, list[str], list[str], Op]] = []
        layers = list(self.nn.layers)
        for layer in layers:
            if layer.WhichOneof("layer") not in BUILDERS:
                raise UnsupportedLayer(layer.WhichOneof("layer"), layer.name)
        consumers = Counter(i for layer in layers for i in layer.input)
        consumers.update(o.name for o in self.spec.description.output)
        i = 0
        while i < len(layers):
            cap = _relu_cap_chain(layers[i:i + 4], consumers)
            if cap is not None:  # ReLU -> x*-1 -> max(x, -cap) -> x*-1 is min(max(x, 0), cap): one pass
                self.steps.append((layers[i + 3].name, list(layers[i].input), list(layers[i + 3].output),
                                   lambda xs, cap=cap: [np.clip(xs[0], F32(0), F32(cap))]))
                i += 4
                continue
            layer = layers[i]
            self.steps.append((layer.name, list(layer.input), list(layer.output),
                               BUILDERS[layer.WhichOneof("layer")](layer)))
            i += 1
        self.preprocessing = {p.featureName: p for p in self.nn.preprocessing}
        if not self.preprocessing and len(self.nn.preprocessing) == 1:
            self.preprocessing = {"": self.nn.preprocessing[0]}

    # -- inputs

    def _image_input(self, feature, value: np.ndarray) -> np.ndarray:
        img = feature.type.imageType
        space = img.colorSpace  # GRAYSCALE=10, RGB=20, BGR=30, GRAYSCALE_FLOAT16=40
        x = np.asarray(value, dtype=F32)
        if x.ndim == 4:
            x = x[0]
        if x.ndim == 2:
            x = x[:, :, None]
        if x.shape[:2] != (img.height, img.width) and img.height and img.width:
            raise ExecutorError(
                f"image input {feature.name!r} must be {img.height}x{img.width}, got {x.shape[0]}x{x.shape[1]}"
            )
        gray = space in (10, 40)
        if gray and x.shape[2] == 3:  # Core ML converts colour to gray (BT.601 luma)
            x = x @ np.asarray([0.299, 0.587, 0.114], F32)[:, None]
        if space == 30:
            x = x[:, :, ::-1]
        pre = self.preprocessing.get(feature.name) or self.preprocessing.get("")
        if pre is not None and pre.WhichOneof("preprocessor") == "scaler":
            s = pre.scaler
            scale = s.channelScale if s.channelScale != 0 else 1.0
            if gray:
                bias = np.asarray([s.grayBias], F32)
            elif space == 30:
                bias = np.asarray([s.blueBias, s.greenBias, s.redBias], F32)
            else:
                bias = np.asarray([s.redBias, s.greenBias, s.blueBias], F32)
            x = x * F32(scale) + bias
        elif pre is not None and pre.WhichOneof("preprocessor") is not None:
            raise UnsupportedLayer(f"preprocessing.{pre.WhichOneof('preprocessor')}")
        chw = np.ascontiguousarray(np.transpose(x, (2, 0, 1)))[None]
        if self.nn.imageInputShapeMapping == 0:  # RANK5: (Seq, Batch, C, H, W)
            chw = chw[None]
        return chw.astype(F32, copy=False)

    def _array_input(self, feature, value: np.ndarray) -> np.ndarray:
        x = np.asarray(value, dtype=F32)
        shape = tuple(feature.type.multiArrayType.shape)
        if self.nn.arrayInputShapeMapping == 0 and len(shape) in (1, 3):  # RANK5 legacy: (C,H,W) -> 5-D
            x = x.reshape((1, 1) + ((shape[0], 1, 1) if len(shape) == 1 else shape))
        return x

    # -- run

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs: dict[str, np.ndarray] = {}
        for feature in self.spec.description.input:
            if feature.name not in inputs:
                raise ExecutorError(f"missing input {feature.name!r}")
            kind = feature.type.WhichOneof("Type")
            if kind == "imageType":
                blobs[feature.name] = self._image_input(feature, inputs[feature.name])
            elif kind == "multiArrayType":
                blobs[feature.name] = self._array_input(feature, inputs[feature.name])
            else:
                raise UnsupportedLayer(f"input type {kind}")
        for name, ins, outs, op in self.steps:
            try:
                args = [blobs[i] for i in ins]
            except KeyError as e:
                raise ExecutorError(f"layer {name!r} reads unknown blob {e.args[0]!r}") from None
            results = op(args)
            for o, r in zip(outs, results):
                blobs[o] = r
        return self._outputs(blobs)

    def _outputs(self, blobs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.kind == "neuralNetworkClassifier":
            probs_name = self.nn.labelProbabilityLayerName or self.spec.description.predictedProbabilitiesName
            probs = blobs[probs_name].reshape(-1)
            labels = _class_labels(self.nn)
            if self.spec.description.predictedProbabilitiesName:
                out[self.spec.description.predictedProbabilitiesName] = probs
            out[self.spec.description.predictedFeatureName or "classLabel"] = np.asarray(labels[int(np.argmax(probs))])
            for feature in self.spec.description.output:
                if feature.name not in out and feature.name in blobs:
                    out[feature.name] = blobs[feature.name]
            return out
        for feature in self.spec.description.output:
            if feature.name not in blobs:
                raise ExecutorError(f"output {feature.name!r} is produced by no layer")
            out[feature.name] = blobs[feature.name]
        return out


def _class_labels(nn) -> list:
    kind = nn.WhichOneof("ClassLabels")
    if kind == "stringClassLabels":
        return list(nn.stringClassLabels.vector)
    if kind == "int64ClassLabels":
        return list(nn.int64ClassLabels.vector)
    return []


def compile_model(spec_or_path) -> Program:
    return Program(spec_or_path)


def run(spec_or_path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute a NeuralNetwork ``.mlmodel`` (path or spec) on one input set.

    For classifiers, the probabilities output is the full vector in label order and the
    predicted-feature output holds the top label.
    """
    return Program(spec_or_path)(inputs)
