"""The rendered Swift preprocessing (``Sources/<Name>/<Name>Preprocessing.swift``) transcribed into Python step by
step, reading every constant from the Swift source itself (no Swift toolchain here to run it). What it computes is
what the Swift code writes into Core ML's pixel buffer; the iOS ``preprocessing`` check compares it with
``packager.preprocessing`` on the original sample files, and the golden mutation test runs it on mutated constants.

Step 1 (reading the stored bytes) is Pillow's decode here (8 bits, 16 bits -> high byte, as the Swift reader);
ImageIO's own decoders (JPEG IDCT, premultiplied PNGs) are not reproduced."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

_CONST = re.compile(r"^\s*public static let (\w+): ([\w\[\]]+) = (.+?)\s*$", re.M)


def constants(swift: str) -> dict:
    """``public static let name: Type = value`` of the Swift source -> {name: Python value}."""
    out: dict = {}
    for name, kind, value in _CONST.findall(swift):
        if kind == "Bool":
            out[name] = value == "true"
        elif kind == "Int":
            out[name] = int(value)
        elif kind == "Double":
            out[name] = float(value)
        elif kind == "String" and value.startswith('"'):
            out[name] = value[1:-1]
        elif kind in ("[Double]", "[Int]"):
            cast = float if kind == "[Double]" else int
            out[name] = [cast(v) for v in value.strip("[]").split(",") if v.strip()]
    return out


def source_file(outdir: Path, name: str) -> Path:
    return outdir / "Sources" / name / f"{name}Preprocessing.swift"


def upright(b: np.ndarray, o: int) -> np.ndarray:
    """``upright(_:_:)``: out[y][x] = stored[sy][sx] by the Swift switch."""
    h, w = b.shape[:2]
    if o <= 1 or o > 8:
        return b
    ow, oh = (h, w) if o >= 5 else (w, h)
    y, x = np.mgrid[0:oh, 0:ow]
    sx, sy = {2: (w - 1 - x, y), 3: (w - 1 - x, h - 1 - y), 4: (x, h - 1 - y), 5: (y, x), 6: (y, h - 1 - x),
              7: (w - 1 - y, h - 1 - x)}.get(o, (w - 1 - y, x))
    return b[sy, sx]


def composited(b: np.ndarray, c: dict) -> np.ndarray:
    a = b[..., 3:4].astype(np.float64) if c["compositesAlpha"] else np.float64(255)
    bg = np.asarray(c["background"], np.float64)
    rgb = (b[..., :3].astype(np.float64) * a + bg * (255 - a)) / 255
    if c["channels"] == 1:
        lum = c["luma"]
        return (lum[0] * rgb[..., 0] + lum[1] * rgb[..., 1] + lum[2] * rgb[..., 2])[..., None]
    return rgb


def geometry(sw: int, sh: int, c: dict) -> tuple:
    w, h = c["width"], c["height"]
    wider = sw * h >= sh * w
    if c["cropPolicy"] == "center-crop":
        if wider:
            cw = sh * w / h
            x0 = (sw - cw) / 2
            return (x0, 0.0, x0 + cw, float(sh), w, h, 0, 0)
        ch = sw * h / w
        y0 = (sh - ch) / 2
        return (0.0, y0, float(sw), y0 + ch, w, h, 0, 0)
    if c["cropPolicy"] == "letterbox":
        cw = w if wider else max(1, (2 * sw * h + sh) // (2 * sh))
        ch = max(1, (2 * sh * w + sw) // (2 * sw)) if wider else h
        return (0.0, 0.0, float(sw), float(sh), cw, ch, (w - cw) // 2, (h - ch) // 2)
    return (0.0, 0.0, float(sw), float(sh), w, h, 0, 0)


def weights(n: int, b0: float, b1: float, count: int, c: dict) -> list[tuple[int, np.ndarray]]:
    scale = (b1 - b0) / count
    filter_scale = max(scale, 1.0) if c["antialiased"] else 1.0
    support = c["filterSupport"] * filter_scale
    out = []
    for i in range(count):
        center = b0 + (i + 0.5) * scale
        lo = max(math.floor(center - support + 0.5), 0)
        hi = min(math.floor(center + support + 0.5), n)
        wts = np.maximum(0.0, 1 - np.abs((np.arange(lo, max(lo, hi)) - center + 0.5) / filter_scale))
        total = wts.sum()
        out.append((lo, wts / total if total != 0 else wts))
    return out


def resampled(values: np.ndarray, g: tuple, c: dict) -> np.ndarray:
    sh, sw = values.shape[:2]
    cw, ch = g[4], g[5]
    tmp = np.zeros((sh, cw, values.shape[2]))
    for x, (first, wts) in enumerate(weights(sw, g[0], g[2], cw, c)):
        for j, wt in enumerate(wts):
            tmp[:, x] += values[:, min(first + j, sw - 1)] * wt
    out = np.zeros((ch, cw, values.shape[2]))
    for y, (first, wts) in enumerate(weights(sh, g[1], g[3], ch, c)):
        for j, wt in enumerate(wts):
            out[y] += tmp[min(first + j, sh - 1)] * wt
    return out


def model_pixels(stored_rgba: np.ndarray, orientation: int, c: dict) -> np.ndarray:
    """``modelPixels(_:orientation:)``: HxWxC float64, RGB or grey, 0..255."""
    b = upright(stored_rgba, orientation)
    g = geometry(b.shape[1], b.shape[0], c)
    content = resampled(composited(b, c), g, c)
    if (g[4], g[5]) == (c["width"], c["height"]):
        return content
    bg, lum = c["background"], c["luma"]
    fill = [lum[0] * bg[0] + lum[1] * bg[1] + lum[2] * bg[2]] if c["channels"] == 1 else bg
    out = np.empty((c["height"], c["width"], c["channels"]))
    out[...] = fill
    out[g[7]:g[7] + g[5], g[6]:g[6] + g[4]] = content
    return out


def core_ml_pixels(pixels: np.ndarray, c: dict) -> np.ndarray:
    """``pixelBuffer(_:)`` then Core ML reading it: each value rounded half away from zero into the 32BGRA buffer
    at ``bufferChannelOffsets``; Core ML reads R, G, B at offsets 2, 1, 0 of each pixel (grey: the one byte)."""
    levels = np.clip(np.floor(pixels + 0.5), 0, 255).astype(np.uint8)
    if c["channels"] == 1:
        return levels.astype(np.float32)
    bgra = np.full(levels.shape[:2] + (4,), 255, np.uint8)
    for ch, offset in enumerate(c["bufferChannelOffsets"]):
        bgra[..., offset] = levels[..., ch]
    return bgra[..., [2, 1, 0]].astype(np.float32)


def file_pixels(path: Path, c: dict) -> np.ndarray:
    """An image file through the transcribed Swift path: the RGB/grey levels Core ML receives (HxWxC float32)."""
    from PIL import Image

    from packager import preprocessing as pp

    with Image.open(path) as im:
        im.load()
        return core_ml_pixels(model_pixels(pp.to_rgba8(im), pp.exif_orientation(im), c), c)
