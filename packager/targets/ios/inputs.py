"""Samples -> Core ML inputs: image samples (preprocessed, model channel order) become RGB/gray pixels 0..255
again, what a camera frame gives Core ML; array samples are reshaped to the input's shape."""

from __future__ import annotations

import numpy as np


def feed(sample: dict, source, spec, features: dict, *, exact_pixels: bool = True) -> dict:
    """One sample -> Core ML inputs keyed by feature name."""
    out = {}
    for tensor in source.inputs:
        x = np.asarray(sample[tensor.name], np.float32)
        name = features["inputs"][tensor.name]
        if source.is_image:
            out[name] = sample_to_pixels(x, spec, exact=exact_pixels)
        else:
            out[name] = x.reshape(tensor.sample_shape)
    return out


def sample_to_pixels(x: np.ndarray, spec, *, exact: bool = True) -> np.ndarray:
    """Preprocessed ``(1, H, W, C)`` in model channel order -> ``(H, W, C)`` RGB/gray pixels.

    ``exact=False`` rounds to uint8 (what an image file holds; needed by Core ML on macOS)."""
    x = x.reshape(x.shape[-3:])
    c = x.shape[-1]
    mean, std = spec.preprocessing.per_channel(c)
    pixels = x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    if c == 3 and spec.preprocessing.color == "bgr":
        pixels = pixels[..., ::-1]
    if not exact:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.float32)

