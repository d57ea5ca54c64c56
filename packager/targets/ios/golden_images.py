"""The XCTest's golden images and their expectations: the chosen samples' ORIGINAL files (any size, as the user gave
them; a PNG of the pixels for array samples) and three made from one of them — stored turned with an EXIF
orientation, with transparency over black, and large and non-square — so that the Swift preprocessing's orientation,
alpha compositing, crop and resize all run. Each file's model inputs (upright, and shown upside down) are computed
from the file by ``packager.preprocessing``, the one definition the Swift code implements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from packager import preprocessing as pp
from packager.golden_images import decode, made_from, png

# EXIF orientation o -> the orientation that shows o's upright picture turned upside down (180 degrees)
UPSIDE_DOWN = {1: 3, 2: 4, 3: 1, 4: 2, 5: 7, 6: 8, 7: 5, 8: 6}


@dataclass
class GoldenImage:
    name: str
    data: bytes
    why: str
    index: int  # the sample it is (or was made from)
    orientation: int  # the EXIF orientation stored in the file


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
            data, name = png(px), f"sample_{i}.png"
        images.append(GoldenImage(name, data, why, i, decode(data)[1]))
    if not images:
        return images
    base = max(images, key=lambda g: margins.get(g.index, 0.0))
    stored, o = decode(base.data)
    upright = pp.orient(stored, o)
    rgb = upright[..., :3]
    for made in made_from(rgb, f"sample {base.index}"):  # EXIF-rotated, with transparency, large
        images.append(GoldenImage(made.name, made.data, made.why, base.index, decode(made.data)[1]))
    return images


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
