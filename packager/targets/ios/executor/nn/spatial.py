"""Spatial layers on the last three axes ``(C, H, W)``: convolution, deconvolution, pooling, padding and
cropping (resampling is in ``resample``)."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import F32, ExecutorError, Op, UnsupportedLayer, weights


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


def _convolution(layer) -> Op:
    p = layer.convolution
    if p.isDeconvolution:
        return _deconvolution(layer)
    cout, kch, groups = int(p.outputChannels), int(p.kernelChannels), int(p.nGroups or 1)
    kh, kw = (list(p.kernelSize) or [3, 3])
    sh, sw = (list(p.stride) or [1, 1])
    dh, dw = (list(p.dilationFactor) or [1, 1])
    w = weights(p.weights, (cout, kch, kh, kw))
    bias = weights(p.bias, (1, cout, 1, 1)) if p.hasBias else None
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
            y = depthwise_conv(xp, w, ho, wo, sh, sw, dh, dw)
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


def depthwise_conv(xp: np.ndarray, w: np.ndarray, ho: int, wo: int, sh: int, sw: int, dh: int, dw: int) -> np.ndarray:
    """Depthwise convolution of a padded (N, C, H, W) input with (Cout, 1, kh, kw) weights, Cout a multiple of C
    (output channel o reads input channel o // multiplier): one multiply-add per kernel tap, vectorised."""
    cout, _, kh, kw = w.shape
    if cout != xp.shape[1]:
        xp = np.repeat(xp, cout // xp.shape[1], axis=1)
    y = np.zeros((xp.shape[0], cout, ho, wo), dtype=np.result_type(xp.dtype, F32))
    buf = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            np.multiply(tap, w[:, 0, i, j].reshape(1, cout, 1, 1), out=buf)
            y += buf
    return y


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
    bias = weights(p.bias, (1, cout, 1, 1)) if p.hasBias else None
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


def _crop(layer) -> Op:
    """One input: crop ``cropAmounts`` off H and W. Two inputs: take the second's H x W at ``offset``."""
    p = layer.crop
    (top, bottom), (left, right) = _border(p.cropAmounts)
    offset = [int(v) for v in p.offset] + [0, 0]

    def op(xs):
        x = xs[0]
        h, w = x.shape[-2:]
        if len(xs) > 1:
            th, tw = xs[1].shape[-2:]
            return [x[..., offset[0]: offset[0] + th, offset[1]: offset[1] + tw]]
        return [x[..., top: h - bottom, left: w - right]]

    return op


BUILDERS = {
    "convolution": _convolution,
    "pooling": _pooling,
    "padding": _padding,
    "constantPad": _constant_pad,
    "crop": _crop,
}
