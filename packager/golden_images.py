"""Encoded golden images that make a target's own image code run every preprocessing step: from one upright picture,
a PNG stored turned with an EXIF orientation, one with transparency over black, and one large and not square. Each
image's model input is computed from the encoded file by ``packager.preprocessing``, the one definition every target
implements. Shared by targets (no target imported here)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from packager import preprocessing as pp

EXIF_ROTATED = 6  # stored turned 90 degrees counter-clockwise: a viewer turns it clockwise to show it upright


@dataclass
class EncodedImage:
    name: str
    data: bytes
    why: str


def png(rgba: np.ndarray, exif_orientation: int = 1) -> bytes:
    """HxWx{1,3,4} uint8 as PNG bytes, with an eXIf orientation when it is not 1."""
    from PIL import Image

    mode = {1: "L", 3: "RGB", 4: "RGBA"}[rgba.shape[2]]
    arr = rgba[..., 0] if mode == "L" else rgba
    buf = io.BytesIO()
    kw = {}
    if exif_orientation != 1:
        exif = Image.Exif()
        exif[pp.EXIF_ORIENTATION_TAG] = exif_orientation
        kw["exif"] = exif.tobytes()
    Image.fromarray(np.ascontiguousarray(arr), mode).save(buf, format="PNG", **kw)
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """An encoded image's pixels as stored (RGBA uint8) and its EXIF orientation, by packager.preprocessing's rules."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return pp.to_rgba8(im), pp.exif_orientation(im)


def upright_rgb(data: bytes) -> np.ndarray:
    stored, o = decode(data)
    return np.ascontiguousarray(pp.orient(stored, o)[..., :3])


def made_from(rgb: np.ndarray, source: str) -> list[EncodedImage]:
    """The three images made from the upright HxWx3 picture ``rgb`` (``source`` names it in their reasons)."""
    turned = np.ascontiguousarray(np.rot90(rgb, 1, axes=(0, 1)))  # what orientation 6 turns upright
    return [
        EncodedImage("exif_rotated.png", png(turned, EXIF_ROTATED),
                     f"{source} stored turned, EXIF orientation {EXIF_ROTATED}"),
        EncodedImage("alpha.png", png(with_transparency(rgb)),
                     f"{source} with a transparent (black underneath) border and a half-transparent ring"),
        EncodedImage("large.png", png(large(rgb)), f"{source} scaled up, large and not square"),
    ]


def with_transparency(rgb: np.ndarray) -> np.ndarray:
    """RGBA: a border an eighth of each side wide fully transparent over black (as drawing apps store it), the ring
    inside it half transparent (alpha 128), so that compositing on the background decides what the model sees."""
    h, w = rgb.shape[:2]
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    by, bx = max(1, h // 8), max(1, w // 8)
    ry, rx = by + max(1, h // 16), bx + max(1, w // 16)
    rgba[:ry, :, 3] = rgba[h - ry:, :, 3] = rgba[:, :rx, 3] = rgba[:, w - rx:, 3] = 128
    for region in (np.s_[:by], np.s_[h - by:], np.s_[:, :bx], np.s_[:, w - bx:]):
        rgba[region] = 0
    return rgba


def large(rgb: np.ndarray) -> np.ndarray:
    """Scaled (bicubic) to about 1000 pixels wide, 0.62 as high: large, not square, not a multiple of the input."""
    from PIL import Image

    w = max(1000, 4 * rgb.shape[1]) + 13
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((w, int(w * 0.62)), Image.BICUBIC))


def model_pixels(data: bytes, width: int, height: int, channels: int, pre) -> np.ndarray:
    """The encoded image's model pixels (HxWxC, 0..255 before mean/std) by packager.preprocessing."""
    stored, o = decode(data)
    return pp.model_pixels(pp.orient(stored, o), width, height, channels, color=pre.color, crop=pre.crop,
                           background=pre.background)
