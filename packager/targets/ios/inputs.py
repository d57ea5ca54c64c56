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
    if spec.preprocessing.standardised:
        pixels = standardised_pixels(x)
    else:
        mean, std = spec.preprocessing.per_channel(c)
        pixels = x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    if c == 3 and spec.preprocessing.color == "bgr":
        pixels = pixels[..., ::-1]
    if not exact:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.float32)



def standardised_pixels(x: np.ndarray) -> np.ndarray:
    """Pixels (0..255) whose standardisation (per image or per channel: the model's graph does it, convert.py) is
    the standardised input ``x`` again: the image's own mean and scale are gone from ``x``, and standardising is
    blind to them, so 127.5 + k x (one k > 0 keeping every value in 0..255) is such an image."""
    x = np.asarray(x, np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    k = 127.5 / peak if peak > 0 else 1.0
    return (127.5 + k * x).astype(np.float32)
