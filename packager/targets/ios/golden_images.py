"""The XCTest's golden images and their expectations: the chosen samples' ORIGINAL files (any size, as the user gave
them; a PNG of the pixels for array samples) and three made from one of them — stored turned with an EXIF
orientation, with transparency over black, and large and non-square — so that the Swift preprocessing's orientation,
alpha compositing, crop and resize all run. Each file's model inputs (upright, and shown upside down) are computed
from the file by ``packager.preprocessing``, the one definition the Swift code implements."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from packager import preprocessing as pp

EXIF_ROTATED = 6  # stored turned 90 degrees counter-clockwise: a viewer turns it clockwise to show it upright
# EXIF orientation o -> the orientation that shows o's upright picture turned upside down (180 degrees)
UPSIDE_DOWN = {1: 3, 2: 4, 3: 1, 4: 2, 5: 7, 6: 8, 7: 5, 8: 6}


@dataclass
class GoldenImage:
    name: str
    data: bytes
    why: str
    index: int  # the sample it is (or was made from)
    orientation: int  # the EXIF orientation stored in the file


def _png(rgba: np.ndarray, exif_orientation: int = 1) -> bytes:
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
    """A golden file's pixels as stored (RGBA uint8) and its EXIF orientation, by packager.preprocessing's rules."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return pp.to_rgba8(im), pp.exif_orientation(im)


def golden_images(spec, source, samples, chosen: list[tuple[int, str]], margins: dict[int, float]) -> list[GoldenImage]:
    """The chosen samples' files, then the three made from the chosen sample with the clearest top-1."""
    from packager.targets.ios.inputs import sample_to_pixels

    paths = list(getattr(samples, "image_paths", None) or [])
    images = []
    for i, why in chosen:
        if paths:
            data = paths[i].read_bytes()
            name = f"sample_{i}{paths[i].suffix.lower()}"
        else:
            px = sample_to_pixels(np.asarray(samples[i][source.inputs[0].name], np.float32), spec, exact=False)
            data, name = _png(px), f"sample_{i}.png"
        images.append(GoldenImage(name, data, why, i, decode(data)[1]))
    if not images:
        return images
    base = max(images, key=lambda g: margins.get(g.index, 0.0))
    stored, o = decode(base.data)
    upright = pp.orient(stored, o)
    rgb = upright[..., :3]
    turned = np.ascontiguousarray(np.rot90(rgb, 1, axes=(0, 1)))  # what orientation 6 turns upright
    assert np.array_equal(pp.orient(turned, EXIF_ROTATED), rgb)
    images.append(GoldenImage("exif_rotated.png", _png(turned, EXIF_ROTATED),
                              f"sample {base.index} stored turned, EXIF orientation {EXIF_ROTATED}", base.index,
                              EXIF_ROTATED))
    images.append(GoldenImage("alpha.png", _png(_with_transparency(rgb)),
                              f"sample {base.index} with a transparent (black underneath) border and a "
                              "half-transparent ring", base.index, 1))
    images.append(GoldenImage("large.png", _png(_large(rgb)),
                              f"sample {base.index} scaled up, large and not square", base.index, 1))
    return images


def _with_transparency(rgb: np.ndarray) -> np.ndarray:
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


def _large(rgb: np.ndarray) -> np.ndarray:
    """Scaled (bicubic) to about 1000 pixels wide, 0.62 as high: large, not square, not a multiple of the input."""
    from PIL import Image

    w = max(1000, 4 * rgb.shape[1]) + 13
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((w, int(w * 0.62)), Image.BICUBIC))


def model_inputs(data: bytes, spec, source) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """{"upright" | "rotated": (model input (1, H, W, C) by packager.preprocessing, the RGB/grey pixels 0..255 a
    Swift `{{name}}Frame` holds for it, the orientation the XCTest passes)}."""
    stored, o = decode(data)
    _, h, w, c = source.inputs[0].sample_shape
    pre = spec.preprocessing
    out = {}
    for case, orientation in (("upright", o), ("rotated", UPSIDE_DOWN[o])):
        rgba = pp.orient(stored, orientation)
        px = pp.model_pixels(rgba, w, h, c, color=pre.color, crop=pre.crop, background=pre.background)
        rgb = pp.model_pixels(rgba, w, h, c, color="rgb", crop=pre.crop, background=pre.background)
        out[case] = (pp.normalised(px, pre)[None], rgb, orientation)
    return out


def frame_levels(pixels: np.ndarray) -> np.ndarray:
    """The 8-bit levels the Swift code writes into the pixel buffer: rounded half away from zero, clipped."""
    return np.clip(np.floor(np.asarray(pixels, np.float64) + 0.5), 0, 255).astype(np.uint8)
