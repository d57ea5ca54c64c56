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
        pixels = standardised_pixels(x, spec.preprocessing.normalize == "per-channel")
    else:
        mean, std = spec.preprocessing.per_channel(c)
        pixels = x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    if c == 3 and spec.preprocessing.color == "bgr":
        pixels = pixels[..., ::-1]
    if not exact:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.float32)



def standardised_pixels(x: np.ndarray, per_channel: bool = False) -> np.ndarray:
    """Pixels (0..255) whose standardisation (per image or per channel: the model's graph does it, convert.py) is
    the standardised input ``x`` again. The image's own mean and scale are gone from ``x`` and standardising is blind
    to them, so 127.5 + k x is such an image for one k > 0: 127.5 / max |x| (every value in 0..255) when x has unit
    deviation; when the floor 1/sqrt(N) divided instead (a nearly uniform image, deviation below 1), k = 1/sqrt(N)
    makes the floor divide again."""
    x = np.asarray(x, np.float64)
    groups = [x[..., c:c + 1] for c in range(x.shape[-1])] if per_channel else [x]
    out = []
    for g in groups:
        n = g.size
        peak = float(np.max(np.abs(g))) if n else 0.0
        floored = n and float(np.sqrt(np.mean(np.square(g - g.mean())))) < 1 - 1e-3
        k = 1.0 / np.sqrt(n) if floored else (127.5 / peak if peak > 0 else 1.0)
        out.append(127.5 + k * g)
    return np.concatenate(out, axis=-1).astype(np.float32) if per_channel else out[0].astype(np.float32)
