"""Spatial MIL ops on (N, C, *spatial) tensors, 1-D and 2-D: ``conv``, ``conv_transpose``, ``max_pool`` /
``avg_pool`` / ``l2_pool``, ``pad``, and the nearest / bilinear upsampling ops. Convolution kernels are the
NeuralNetwork executor's (``coreml_numpy.spatial``); 1-D inputs run as 2-D with a height of 1."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.nn.common import UnsupportedLayer
from packager.targets.ios.executor.nn.resample import bilinear
from packager.targets.ios.executor.nn.spatial import _grouped_conv, _same_pads, depthwise_conv

F32 = np.float32


def _as_2d(x: np.ndarray, what: str) -> tuple[np.ndarray, bool]:
    if x.ndim == 3:
        return x[:, :, None, :], True
    if x.ndim != 4:
        raise UnsupportedLayer(f"{what} on a rank-{x.ndim} input", detail="1-D and 2-D spatial ops only")
    return x, False


def _pair(values, one_d: bool, default: int) -> list[int]:
    v = [int(i) for i in np.asarray(values).reshape(-1)] if values is not None else []
    if one_d:
        return [1] + (v or [default])
    return v or [default, default]


def _pads(a, sizes, kernel, strides, dilations, one_d: bool) -> list[tuple[int, int]]:
    kind = str(a.scalar("pad_type", "valid"))
    if kind == "valid":
        return [(0, 0), (0, 0)]
    if kind == "custom":
        p = [int(i) for i in np.asarray(a.get("pad", [0] * 4)).reshape(-1)]
        p = ([0, 0] + p) if one_d else p
        return [(p[0], p[1]), (p[2], p[3])]
    if kind in ("same", "same_lower"):
        return [_same_pads(sizes[i], kernel[i], strides[i], dilations[i], kind == "same_lower") for i in range(2)]
    raise UnsupportedLayer(f"pad_type {kind!r}")


def _conv(a):
    x, one_d = _as_2d(np.asarray(a["x"], F32), "conv")
    w = np.asarray(a["weight"], F32)
    w = w[:, :, None, :] if one_d else w
    groups = a.scalar("groups", 1)
    kernel = list(w.shape[2:])
    strides = _pair(a.get("strides"), one_d, 1)
    dil = _pair(a.get("dilations"), one_d, 1)
    pads = _pads(a, x.shape[2:], kernel, strides, dil, one_d)
    xp = np.pad(x, [(0, 0), (0, 0), pads[0], pads[1]])
    ho = (xp.shape[2] - (kernel[0] - 1) * dil[0] - 1) // strides[0] + 1
    wo = (xp.shape[3] - (kernel[1] - 1) * dil[1] - 1) // strides[1] + 1
    cin = x.shape[1]
    if groups > 1 and groups == cin and w.shape[1] == 1:
        y = depthwise_conv(xp, w, ho, wo, strides[0], strides[1], dil[0], dil[1])
    else:
        y = _grouped_conv(xp, w, groups, ho, wo, strides[0], strides[1], dil[0], dil[1])
    if a.get("bias") is not None:
        y = y + np.asarray(a["bias"], F32).reshape(1, -1, 1, 1)
    return y[:, :, 0, :] if one_d else y


def _conv_transpose(a):
    x, one_d = _as_2d(np.asarray(a["x"], F32), "conv_transpose")
    w = np.asarray(a["weight"], F32)  # (Cin, Cout / groups, kh, kw)
    w = w[:, :, None, :] if one_d else w
    groups = a.scalar("groups", 1)
    strides = _pair(a.get("strides"), one_d, 1)
    dil = _pair(a.get("dilations"), one_d, 1)
    n, cin, h, wd = x.shape
    kh, kw = w.shape[2:]
    og = w.shape[1]
    full_h, full_w = (h - 1) * strides[0] + (kh - 1) * dil[0] + 1, (wd - 1) * strides[1] + (kw - 1) * dil[1] + 1
    y = np.zeros((n, og * groups, full_h, full_w), F32)
    ig = cin // groups
    for g in range(groups):
        xg = x[:, g * ig:(g + 1) * ig]
        wg = w[g * ig:(g + 1) * ig]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", xg, wg[:, :, i, j])
                y[:, g * og:(g + 1) * og, i * dil[0]: i * dil[0] + strides[0] * (h - 1) + 1: strides[0],
                  j * dil[1]: j * dil[1] + strides[1] * (wd - 1) + 1: strides[1]] += contrib
    kind = str(a.scalar("pad_type", "valid"))
    out_shape = a.ints("output_shape")
    if out_shape:
        oh, ow = ([1] + out_shape[-1:]) if one_d else out_shape[-2:]
        if kind in ("same", "same_lower"):
            th, tw = full_h - oh, full_w - ow
            top, left = (th - th // 2, tw - tw // 2) if kind == "same_lower" else (th // 2, tw // 2)
        else:
            p = a.ints("pad") or [0, 0, 0, 0]
            p = [0, 0] + p if one_d else p
            top, left = p[0], p[2]
        y = y[:, :, top:top + oh, left:left + ow]
    elif kind == "custom":
        p = a.ints("pad") or [0, 0, 0, 0]
        p = [0, 0] + p if one_d else p
        y = y[:, :, p[0]:full_h - p[1], p[2]:full_w - p[3]]
    elif kind in ("same", "same_lower"):
        oh, ow = h * strides[0], wd * strides[1]
        th, tw = full_h - oh, full_w - ow
        top, left = (th - th // 2, tw - tw // 2) if kind == "same_lower" else (th // 2, tw // 2)
        y = y[:, :, top:top + oh, left:left + ow]
    if a.get("bias") is not None:
        y = y + np.asarray(a["bias"], F32).reshape(1, -1, 1, 1)
    return y[:, :, 0, :] if one_d else y


def _pool(kind: str):
    def op(a):
        x, one_d = _as_2d(np.asarray(a["x"], F32), f"{kind}_pool")
        kernel = _pair(a.get("kernel_sizes"), one_d, 1)
        strides = _pair(a.get("strides"), one_d, 1)
        h, wd = x.shape[2:]
        pads = _pads(a, (h, wd), kernel, strides, [1, 1], one_d)
        ceil = bool(a.scalar("ceil_mode", False))
        outs = []
        for size, k, s, (b, e) in zip((h, wd), kernel, strides, pads):
            span = size + b + e - k
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= size + b:
                o -= 1
            outs.append(o)
        ho, wo = outs
        extra = [max((o - 1) * s + k - size - b - e, 0) for o, s, k, size, (b, e) in zip(outs, strides, kernel, (h, wd), pads)]
        width = [(0, 0), (0, 0), (pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1])]
        xp = np.pad(x, width, constant_values=-np.inf if kind == "max" else 0.0)
        win = np.lib.stride_tricks.sliding_window_view(xp, tuple(kernel), axis=(2, 3))
        win = win[:, :, : strides[0] * (ho - 1) + 1: strides[0], : strides[1] * (wo - 1) + 1: strides[1]]
        if kind == "max":
            y = win.max(axis=(-2, -1))
        elif kind == "l2":
            y = np.sqrt((win * win).sum(axis=(-2, -1)))
        else:
            y = win.sum(axis=(-2, -1))
            if a.scalar("exclude_padding_from_average", False):
                ones = np.pad(np.ones((1, 1, h, wd), F32), width)
                cw = np.lib.stride_tricks.sliding_window_view(ones, tuple(kernel), axis=(2, 3))
                cnt = cw[:, :, : strides[0] * (ho - 1) + 1: strides[0], : strides[1] * (wo - 1) + 1: strides[1]]
                y = y / np.maximum(cnt.sum(axis=(-2, -1)), 1)
            else:
                y = y / (kernel[0] * kernel[1])
        return y[:, :, 0, :] if one_d else y
    return op


def _pad(a):
    x = np.asarray(a["x"])
    p = a.ints("pad")
    n = len(p) // 2
    width = [(0, 0)] * (x.ndim - n) + [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    mode = str(a.scalar("mode", "constant"))
    if mode == "constant":
        return np.pad(x, width, constant_values=a.scalar("constant_val", 0.0))
    if mode in ("reflect", "replicate"):
        return np.pad(x, width, mode="reflect" if mode == "reflect" else "edge")
    raise UnsupportedLayer(f"pad mode {mode!r}")


def _upsample_nearest(a):
    x = np.asarray(a["x"])
    sh, sw = a.scalar("scale_factor_height", 1), a.scalar("scale_factor_width", 1)
    if float(sh).is_integer() and float(sw).is_integer():
        return x.repeat(int(sh), axis=-2).repeat(int(sw), axis=-1)
    h, w = x.shape[-2:]
    rows = np.minimum(np.floor(np.arange(int(h * sh)) / sh).astype(int), h - 1)
    cols = np.minimum(np.floor(np.arange(int(w * sw)) / sw).astype(int), w - 1)
    return x[..., rows, :][..., cols]


def _upsample_bilinear(a):
    x = np.asarray(a["x"], F32)
    h, w = x.shape[-2:]
    oh, ow = int(h * a.scalar("scale_factor_height", 1)), int(w * a.scalar("scale_factor_width", 1))
    if a.scalar("align_corners", False):
        method = "align_corners"
    elif a.scalar("half_pixel_centers", True):
        method = "half_pixel"
    else:
        method = "upsample"
    return _bilinear(x, oh, ow, method)


def _resize_bilinear(a):
    x = np.asarray(a["x"], F32)
    mode = str(a.scalar("sampling_mode", "DEFAULT"))
    methods = {"DEFAULT": "upsample", "STRICT_ALIGN_CORNERS": "align_corners", "ALIGN_CORNERS": "align_endpoints",
               "UNALIGN_CORNERS": "half_pixel", "OFFSET_CORNERS": "roi_align"}
    if mode not in methods:
        raise UnsupportedLayer(f"resize_bilinear sampling_mode {mode!r}")
    return _bilinear(x, a.scalar("target_size_height"), a.scalar("target_size_width"), methods[mode])


def _bilinear(x, oh: int, ow: int, method: str):
    lead = x.shape[:-2]
    flat = x.reshape((-1, 1) + x.shape[-2:])
    y = bilinear(flat, int(oh), int(ow), method)
    return y.reshape(lead + y.shape[-2:])


OPS = {
    "conv": _conv, "conv_transpose": _conv_transpose,
    "max_pool": _pool("max"), "avg_pool": _pool("avg"), "l2_pool": _pool("l2"),
    "pad": _pad, "upsample_nearest_neighbor": _upsample_nearest, "upsample_bilinear": _upsample_bilinear,
    "resize_bilinear": _resize_bilinear,
}
