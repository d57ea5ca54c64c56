"""Offline data for the demo: coloured shapes drawn with Pillow on noisy backgrounds (nothing downloaded)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

LABELS = ("circle", "square", "triangle", "cross")
SIZE = 32


def draw_shape(kind: str, rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    bg = tuple(int(v) for v in rng.integers(0, 90, 3))
    fg = tuple(int(v) for v in rng.integers(150, 256, 3))
    noise = rng.integers(-20, 21, (size, size, 3))
    base = np.clip(np.array(bg)[None, None, :] + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    d = ImageDraw.Draw(im)
    r = rng.uniform(size * 0.22, size * 0.4)
    cx, cy = rng.uniform(r, size - r, 2)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        a = rng.uniform(0, math.pi / 2)
        pts = [(cx + r * math.cos(a + k * math.pi / 2), cy + r * math.sin(a + k * math.pi / 2)) for k in range(4)]
        d.polygon(pts, fill=fg)
    elif kind == "triangle":
        a = rng.uniform(0, 2 * math.pi)
        pts = [(cx + r * math.cos(a + k * 2 * math.pi / 3), cy + r * math.sin(a + k * 2 * math.pi / 3)) for k in range(3)]
        d.polygon(pts, fill=fg)
    elif kind == "cross":
        w = max(2.0, r * 0.35)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    else:
        raise ValueError(kind)
    return im


def dataset(n_per_class: int, seed: int) -> tuple[list[Image.Image], np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(n_per_class):
        for k, kind in enumerate(LABELS):
            images.append(draw_shape(kind, rng))
            labels.append(k)
    return images, np.array(labels)
