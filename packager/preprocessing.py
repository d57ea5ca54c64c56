"""The ONE definition of how an image file becomes the model's input (docs/preprocessing.md says it in words,
for the Kotlin, Swift and JavaScript implementations to follow step by step).

1. decode to 8-bit RGBA, unpremultiplied: 16-bit samples keep their high byte (v >> 8: 65535 -> 255, a scale,
   never a clip), palette and grey images expand to RGB, 1-bit grey to 0/255, CMYK (Adobe-inverted JPEG)
   R = round((255 - C) * (255 - K) / 255) (likewise G, B);
2. the EXIF orientation (1-8) of a JPEG or PNG is applied: the pixels are turned upright, as photo apps and
   browsers show them (a WebP's is not: browsers ignore it);
3. alpha is composited on ``background`` (default white): v = (c * a + bg * (255 - a)) / 255, in floating point;
4. grayscale models take L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2 luma), not rounded;
5. the crop policy maps the upright image onto the model's W x H input (``crop_geometry``): stretch (the whole
   image, aspect ratio not kept), center-crop (the largest centred region of the input's aspect ratio) or
   letterbox (the whole image scaled to fit, centred, the rest filled with the background);
6. one resampler: Pillow's BILINEAR (a triangle filter, support 1) whose support is scaled by the reduction
   factor when downscaling, so every source pixel counts (antialiasing) — ``axis_weights``;
7. channels in the model's order (rgb, or bgr), then x = (v - mean) / std per channel — or, with ``normalize``
   "per-image" / "per-channel", each image standardised by its own statistics (``standardise``).

Values stay in floating point from step 3 on (no rounding to 8 bits), so implementations agree to ~1e-4 of a
pixel level; what can differ between platforms is the decoder (JPEG IDCT, CMYK rounding), which the build measures.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CROP_POLICIES = ("stretch", "center-crop", "letterbox")
DEFAULT_CROP = "stretch"
DEFAULT_BACKGROUND = (255, 255, 255)
DEFAULT_MAX_ABS_DIFF = 1.0  # gate on the largest difference of a target's model input, in 0..255 pixel units
LUMA = (0.299, 0.587, 0.114)
EXIF_ORIENTATION_TAG = 0x0112


# ---------------------------------------------------------------------------------------------
# 1-2. decoding


def decode_rgba(path: Path) -> np.ndarray:
    """The image file as an upright HxWx4 uint8 RGBA array (steps 1 and 2). Raises InputError."""
    from PIL import Image, UnidentifiedImageError

    from packager.errors import InputError

    try:
        with Image.open(path) as im:
            im.load()
            orientation = exif_orientation(im)
            rgba = to_rgba8(im)
    except Image.DecompressionBombError as e:
        raise InputError(f"image too large to decode safely: {e}", where=str(path),
                         hint="use sample images of at most ~89 megapixels (they are resized to the model "
                              "input anyway)") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot decode image: {e}", where=str(path),
                         hint="remove the file or re-save it as PNG/JPEG") from e
    return orient(rgba, orientation)


# Formats whose EXIF orientation is applied: JPEG (APP1) and PNG (eXIf), as browsers do. A WebP's EXIF
# orientation is not: Chromium ignores it (measured, Chromium 156), so the definition does too.
ORIENTED_FORMATS = ("JPEG", "MPO", "PNG")


def exif_orientation(im) -> int:
    """The EXIF orientation tag (1-8) of a JPEG or PNG; 1 when absent, invalid, or another format."""
    if im.format not in ORIENTED_FORMATS:
        return 1
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def to_rgba8(im) -> np.ndarray:
    """Any Pillow image -> HxWx4 uint8 RGBA (step 1): 16 bits -> high byte, never clipped."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        x = np.asarray(im)
        if im.mode.startswith("I;16") or (im.mode == "I" and x.max(initial=0) > 255):
            grey = (x.astype(np.uint32) >> 8).astype(np.uint8)  # 16-bit: the high byte, as libpng's strip_16
        else:  # 32-bit integer or float with 8-bit values
            grey = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        im = Image.fromarray(grey, "L")
    if im.mode != "RGBA":
        # P (with tRNS), PA, LA, La, RGBa (unpremultiplied), CMYK (Pillow: (255-C)(255-K)/255 rounded), YCbCr, 1, L
        im = im.convert("RGBA")
    return np.asarray(im, dtype=np.uint8)


def orient(rgba: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation ``orientation`` (1-8): the returned pixels are upright."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1, :],  # mirrored vertically
        5: lambda a: a.transpose(1, 0, 2),  # transposed (mirror + 90 CCW)
        6: lambda a: a.transpose(1, 0, 2)[:, ::-1],  # rotated 90 CW to be upright
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # transversed
        8: lambda a: a.transpose(1, 0, 2)[::-1, :],  # rotated 90 CCW to be upright
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(rgba))


# ---------------------------------------------------------------------------------------------
# 3-6. pixels -> model pixels


def composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """HxWx4 uint8 -> HxWx3 float32: (c * a + bg * (255 - a)) / 255 (step 3)."""
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4]
    if alpha.min(initial=255) == 255:
        return rgb
    a = alpha.astype(np.float32)
    bg = np.asarray(background, np.float32)
    return (rgb * a + bg * (255.0 - a)) / np.float32(255.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxWx1 float32: 0.299 R + 0.587 G + 0.114 B (step 4)."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).astype(np.float32)[..., None]


@dataclass(frozen=True)
class Geometry:
    """Where the image goes: the source box [x0, x1) x [y0, y1) (fractional) resampled to ``cw`` x ``ch`` pixels
    placed at (ox, oy) in the ``w`` x ``h`` input; the rest of the input is the background."""

    x0: float
    y0: float
    x1: float
    y1: float
    cw: int
    ch: int
    ox: int
    oy: int


def crop_geometry(src_w: int, src_h: int, w: int, h: int, crop: str) -> Geometry:
    """Step 5. Integer arithmetic where a size is decided, so every language gets the same pixels."""
    if crop == "stretch":
        return Geometry(0.0, 0.0, float(src_w), float(src_h), w, h, 0, 0)
    wider = src_w * h >= src_h * w  # the image's aspect ratio is at least the input's
    if crop == "center-crop":
        if wider:
            cw_src = src_h * w / h
            x0 = (src_w - cw_src) / 2.0
            return Geometry(x0, 0.0, x0 + cw_src, float(src_h), w, h, 0, 0)
        ch_src = src_w * h / w
        y0 = (src_h - ch_src) / 2.0
        return Geometry(0.0, y0, float(src_w), y0 + ch_src, w, h, 0, 0)
    if crop == "letterbox":
        if wider:
            cw, ch = w, max(1, (2 * src_h * w + src_w) // (2 * src_w))  # round(src_h * w / src_w), halves up
        else:
            cw, ch = max(1, (2 * src_w * h + src_h) // (2 * src_h)), h
        return Geometry(0.0, 0.0, float(src_w), float(src_h), cw, ch, (w - cw) // 2, (h - ch) // 2)
    raise ValueError(f"unknown crop policy {crop!r}")


@functools.lru_cache(maxsize=64)  # every sample of a set usually has the same geometry
def axis_weights(n_in: int, b0: float, b1: float, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 6 on one axis: (first source index per output pixel (n_out,), weights (n_out, k)) resampling the
    source interval [b0, b1) of ``n_in`` pixels to ``n_out`` pixels. Pillow's precompute_coeffs for BILINEAR.
    The arrays are shared between calls (read-only)."""
    scale = (b1 - b0) / n_out
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    first = np.zeros(n_out, np.int64)
    weights = np.zeros((n_out, ksize), np.float64)
    for i in range(n_out):
        center = b0 + (i + 0.5) * scale
        lo = max(int(math.floor(center - support + 0.5)), 0)
        hi = min(int(math.floor(center + support + 0.5)), n_in)
        x = (np.arange(lo, hi, dtype=np.float64) - center + 0.5) / filterscale
        w = np.maximum(0.0, 1.0 - np.abs(x))
        total = w.sum()
        if total != 0.0:
            w = w / total
        first[i] = lo
        weights[i, : hi - lo] = w
    first.flags.writeable = weights.flags.writeable = False
    return first, weights


def _identity(n_in: int, b0: float, b1: float, n_out: int) -> bool:
    """The axis maps pixel i to pixel i (weights 1, 0, 0: resampling would copy it)."""
    return b0 == 0 and b1 == n_in == n_out


def resample(img: np.ndarray, g: Geometry) -> np.ndarray:
    """HxWxC float32 -> ch x cw x C: horizontal pass, then vertical (step 6). Each output pixel is the float64 sum,
    tap by tap from zero, of source pixel x weight; the horizontal pass runs on the image stored column-major (each
    tap gathers whole rows, not single pixels: half the time on a large photo), in the same arithmetic order."""
    h_in, w_in = img.shape[:2]
    if _identity(w_in, g.x0, g.x1, g.cw):  # an image already the input's size: nothing to resample
        tmp = img.astype(np.float64)
    else:
        fx, wx = axis_weights(w_in, g.x0, g.x1, g.cw)
        columns = np.ascontiguousarray(img.transpose(1, 0, 2), np.float64)
        tmp = np.ascontiguousarray(_taps(columns, fx, wx).transpose(1, 0, 2))
    if _identity(h_in, g.y0, g.y1, g.ch):
        return tmp.astype(np.float32)
    fy, wy = axis_weights(h_in, g.y0, g.y1, g.ch)
    return _taps(tmp, fy, wy).astype(np.float32)


def _taps(src: np.ndarray, first: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """out[i] = sum over k of src[min(first[i] + k, n - 1)] * weights[i, k] along axis 0, in float64, k in order."""
    out = np.zeros((len(first), *src.shape[1:]), np.float64)
    term = np.empty_like(out)
    for k in range(weights.shape[1]):
        np.multiply(src[np.minimum(first + k, src.shape[0] - 1)], weights[:, k][:, None, None], out=term)
        out += term
    return out


def model_pixels(rgba: np.ndarray, width: int, height: int, channels: int, *, color: str = "rgb",
                 crop: str = DEFAULT_CROP, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> np.ndarray:
    """Upright RGBA uint8 -> the model input's pixels, HxWxC float32 in 0..255, channels in the model's order
    (steps 3-7 before mean/std)."""
    img = composite(rgba, background)
    fill: list[float] = [float(v) for v in background]
    if channels == 1:
        img = luma(img)
        fill = [float(luma(np.asarray(background, np.float32)[None, None])[0, 0, 0])]
    g = crop_geometry(rgba.shape[1], rgba.shape[0], width, height, crop)
    content = resample(img, g)
    if (g.cw, g.ch) == (width, height):
        out = content
    else:
        out = np.empty((height, width, channels), np.float32)
        out[...] = np.asarray(fill, np.float32)
        out[g.oy:g.oy + g.ch, g.ox:g.ox + g.cw] = content
    if channels == 3 and color == "bgr":
        out = out[..., ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def normalise(px: np.ndarray, mean, std) -> np.ndarray:
    """Step 7: (v - mean) / std per channel, float32; px is HxWxC."""
    return ((px - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def standardise(px: np.ndarray, per_channel: bool = False) -> np.ndarray:
    """Step 7 for ``normalize = "per-image"`` (``per_channel`` False) or ``"per-channel"``: px is HxWxC pixels
    (0..255); with m the mean and s the population standard deviation of the N values (all of the image's, or one
    channel's H*W), x = (v - m) / max(s, 1 / sqrt(N)) — tf.image.per_image_standardization's formula (the floor
    keeps a uniform image finite: it becomes 0). Statistics in float64, result float32."""
    v = np.asarray(px, np.float64)
    axes = (0, 1) if per_channel else None
    n = (v.shape[0] * v.shape[1]) if per_channel else v.size
    m = v.mean(axis=axes, keepdims=per_channel)
    s = np.sqrt(np.square(v - m).mean(axis=axes, keepdims=per_channel))
    return ((v - m) / np.maximum(s, 1.0 / math.sqrt(max(n, 1)))).astype(np.float32)


def normalised(px: np.ndarray, pre) -> np.ndarray:
    """Step 7 the ``Preprocessing`` ``pre`` way: HxWxC pixels (0..255) -> the model's input values, float32."""
    if pre.normalize in ("per-image", "per-channel"):
        return standardise(px, per_channel=pre.normalize == "per-channel")
    mean, std = pre.per_channel(px.shape[-1])
    return normalise(px, mean, std)


def level_scale(px: np.ndarray, pre) -> np.ndarray:
    """Per channel, how many pixel levels one unit of the model input is for these pixels (std, or the image's
    standard deviation): a difference of model inputs times this is a difference in pixel levels."""
    c = px.shape[-1]
    if pre.normalize in ("per-image", "per-channel"):
        v = np.asarray(px, np.float64)
        per = pre.normalize == "per-channel"
        n = (v.shape[0] * v.shape[1]) if per else v.size
        s = np.sqrt(np.square(v - v.mean(axis=(0, 1) if per else None)).mean(axis=(0, 1) if per else None))
        return np.broadcast_to(np.maximum(s, 1.0 / math.sqrt(max(n, 1))), (c,)).astype(np.float64)
    return np.asarray(pre.per_channel(c)[1], np.float64)


def display_pixels(x: np.ndarray, pre) -> np.ndarray:
    """A model input (..., H, W, C) back to 0..255 pixel values for showing it: mean/std undone exactly; a
    standardised input (its mean and scale are gone) stretched so that +-3 standard deviations span 0..255."""
    x = np.asarray(x, np.float32)
    if pre.normalize in ("per-image", "per-channel"):
        return np.clip(127.5 + x * (127.5 / 3.0), 0, 255).astype(np.float32)
    mean, std = pre.per_channel(x.shape[-1])
    return x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)


def file_pixels(path: Path, width: int, height: int, channels: int, pre) -> np.ndarray:
    """An image file -> HxWxC model pixels (0..255, before mean/std) the spec's ``Preprocessing`` ``pre`` way."""
    return model_pixels(decode_rgba(path), width, height, channels, color=pre.color, crop=pre.crop,
                        background=pre.background)


def file_input(path: Path, width: int, height: int, channels: int, pre) -> np.ndarray:
    """An image file -> the model input (1, H, W, C) float32."""
    return normalised(file_pixels(path, width, height, channels, pre), pre)[None]


def parse_background(value) -> tuple[int, int, int]:
    """``"#rrggbb"``, ``"white"``/``"black"``, ``"r,g,b"`` or [r, g, b] -> (r, g, b) ints in 0..255. ValueError."""
    names = {"white": (255, 255, 255), "black": (0, 0, 0)}
    if isinstance(value, str):
        text = value.strip().lower()
        if text in names:
            return names[text]
        if text.startswith("#") and len(text) == 7:
            try:
                return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                pass
            raise ValueError(f"not a #rrggbb colour: {value!r}")
        parts = [p.strip() for p in text.split(",")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise ValueError(f"not a colour: {value!r}")
    try:
        rgb = tuple(int(p) for p in parts if not isinstance(p, bool) and float(p) == int(float(p)))
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or len(parts) != 3 or any(not 0 <= v <= 255 for v in rgb):
        raise ValueError(f"not a colour: {value!r}")
    return rgb  # type: ignore[return-value]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
