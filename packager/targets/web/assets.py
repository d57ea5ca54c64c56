"""The web bundle's generated assets: icons, sample images (PNG), sample tensors (base64 float32) and the npm
package's manifest (package.json: what `npm pack` ships, what `exports` exposes)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec

MAX_BUNDLED_SAMPLES = 12
THEME_COLOR = "#1f5fa8"
BACKGROUND_COLOR = "#ffffff"
# name, size, maskable: the manifest's icons and the apple-touch-icon at the size iOS asks for (180 px)
ICONS = (("icon-192.png", 192, False), ("icon-512.png", 512, False), ("icon-maskable-512.png", 512, True),
         ("apple-touch-icon.png", 180, False))


# The ES module's own files (model.js and what it imports, its types, its README); the demo page is not shipped.
MODULE_FILES = ("model.js", "model_runtime.js", "model_files.js", "model.d.ts", "image_input.js", "image_output.js",
                "loading.js", "preprocess.js", "preprocess_worker.js", "README.md")
# Registers tf.js's kernels and backends when imported: the one module a bundler must never drop.
SIDE_EFFECTS = "tf-runtime.js"


def package_manifest(name: str, description: str, model_files: list[str], runtime_files: list[str],
                     tfjs_version: str) -> dict:
    """package.json of ``npm install ./web``: the ES module, its model files and runtime (``files``, ``exports``:
    an app or its bundler may reach each model file and wasm binary by path), never the demo page."""
    exports: dict = {".": {"types": "./model.d.ts", "default": "./model.js"}}
    for rel in [*model_files, *(f for f in runtime_files if f.endswith(".wasm"))]:
        exports["./" + rel] = "./" + rel
    exports["./package.json"] = "./package.json"
    return {
        "name": name,
        "version": "1.0.0",
        "description": description,
        "type": "module",
        "main": "./model.js",
        "types": "./model.d.ts",
        "exports": exports,
        "files": sorted({*MODULE_FILES, *model_files, *runtime_files}),
        "sideEffects": [f"./{f}" for f in runtime_files if f.endswith(SIDE_EFFECTS)],
        # load({tf}) shares the app's tf.js (optional: without it the bundled runtime is used)
        "peerDependencies": {"@tensorflow/tfjs": f"^{tfjs_version}"},
        "peerDependenciesMeta": {"@tensorflow/tfjs": {"optional": True}},
        "private": True,
    }


def image_preprocessing(spec: PackageSpec, geom: dict | None):
    """The preprocessing the image input takes: the spec's; for a pixel input (``geom["pixels"]``: uint8, the model
    normalises) the pixels 0..255 as they are, no mean/std (step 7 off), as packager.samples feeds the reference."""
    from dataclasses import replace

    pre = spec.preprocessing
    return replace(pre, mean=(0.0,), std=(1.0,), normalize="mean-std") if geom and geom.get("pixels") else pre


def image_config(spec: PackageSpec, geom: dict | None) -> dict | None:
    """metadata.json's ``image`` block (preprocess.js reads it): geometry, colour, crop, background, step 7; with
    ``pixels: true`` the page rounds the pixels to whole levels (half to even, as Python does) and feeds them as is."""
    if geom is None:
        return None
    pre = image_preprocessing(spec, geom)
    mean, std = pre.per_channel(geom["channels"])
    return {**geom, "color": pre.color, "mean": list(mean), "std": list(std), "crop": pre.crop,
            "background": list(pre.background), "normalize": pre.normalize}


def preprocess_pixels(rgb: np.ndarray, spec: PackageSpec, channels: int, pixels: bool = False) -> np.ndarray:
    """The spec's preprocessing (packager.preprocessing) of an HxWx3 uint8 RGB image already at the input size
    -> (1,H,W,C); ``pixels``: the input takes whole pixel levels (uint8), rounded half to even like the samples."""
    from packager.preprocessing import model_pixels, normalised

    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    pre = spec.preprocessing
    px = model_pixels(rgba, rgb.shape[1], rgb.shape[0], channels, color=pre.color, crop=pre.crop,
                      background=pre.background)
    if pixels:
        return np.clip(np.rint(px), 0, 255).astype(np.uint8)[None]
    return normalised(px, pre)[None]


def _sample_images(source: Source, spec: PackageSpec, samples: SampleSet, geom: dict) -> list[np.ndarray]:
    """HxWx3 uint8 RGB images at the model's input size for the bundled sample strip."""
    from packager.preprocessing import file_pixels

    w, h = geom["width"], geom["height"]
    paths = getattr(samples, "image_paths", None)
    images = []
    if paths:
        for p in list(paths)[:MAX_BUNDLED_SAMPLES]:
            # packager.preprocessing's pixels (upright, alpha on the background, cropped, resized), rounded
            px = file_pixels(p, w, h, geom["channels"], spec.preprocessing)
            if px.shape[-1] == 1:
                px = np.repeat(px, 3, axis=-1)
            elif spec.preprocessing.color == "bgr":
                px = px[..., ::-1]
            images.append(np.ascontiguousarray(np.clip(np.rint(px), 0, 255).astype(np.uint8)))
        return images
    # No source images: undo the preprocessing of the sample tensors.
    from packager.preprocessing import display_pixels

    for i, sample in enumerate(samples):
        if i >= MAX_BUNDLED_SAMPLES:
            break
        x = np.asarray(sample[geom["input"]], np.float32)[0]
        px = np.clip(np.rint(display_pixels(x, image_preprocessing(spec, geom))), 0, 255).astype(np.uint8)
        if px.shape[-1] == 1:
            px = np.repeat(px, 3, axis=-1)
        elif spec.preprocessing.color == "bgr":
            px = px[..., ::-1]
        images.append(np.ascontiguousarray(px))
    return images


def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode("ascii")


def b64_sample(sample: dict) -> dict:
    """One sample as the page's ``predictB64`` and samples.json take it: {input: {"shape", "b64"}}, in its order."""
    return {k: {"shape": list(np.shape(v)), "b64": _b64(np.asarray(v))} for k, v in sample.items()}


def _from_b64(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.float32).reshape(shape)


def make_icon(size: int, *, maskable: bool) -> bytes:
    """A deterministic PNG icon: a small three-layer network drawn on the theme colour."""
    from PIL import Image, ImageDraw

    scale = 4  # draw large, downsample: smooth edges, same bytes every time
    s = size * scale
    im = Image.new("RGB", (s, s), BACKGROUND_COLOR if not maskable else THEME_COLOR)
    d = ImageDraw.Draw(im)
    if not maskable:
        d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=THEME_COLOR)
    # Maskable icons keep their content inside the central 80% "safe zone" circle.
    inner = 0.5 if maskable else 0.64
    lo, hi = s * (1 - inner) / 2, s * (1 + inner) / 2
    cols = [lo, (lo + hi) / 2, hi]
    rows = {0: [0.25, 0.5, 0.75], 1: [0.33, 0.67], 2: [0.5]}
    pts = [[(cols[c], lo + (hi - lo) * r) for r in rows[c]] for c in range(3)]
    for a, b in ((0, 1), (1, 2)):
        for p in pts[a]:
            for q in pts[b]:
                d.line((p, q), fill="#9cc0ee", width=max(1, s // 64))
    r = s * 0.055
    for col in pts:
        for x, y in col:
            d.ellipse((x - r, y - r, x + r, y + r), fill="#ffffff")
    im = im.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _short_name(name: str) -> str:
    """The manifest's short_name (shown under the home-screen icon): whole words up to 12 characters, no "…"."""
    if len(name) <= 12:
        return name
    words, short = name.split(), ""
    for w in words:
        if len((short + " " + w).strip()) > 12:
            break
        short = (short + " " + w).strip()
    return short or name[:12].rstrip()
