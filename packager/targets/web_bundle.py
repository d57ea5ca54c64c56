"""The web target's bundle: the offline PWA that ``render`` writes to ``OUT/web/`` (and ``predict`` to
``WORKDIR/web_bundle_<mode>/``, the same bytes).

- ``vendored_runtime``: the tf.js files (.ci/setup-web.sh) copied into the bundle, checked against TFJS_VERSION.
- ``build_bundle``: page, manifest, icons (``make_icon``), bundled samples, vendored tf.js, model, and ``sw.js``
  whose cache name is the hash of every other file, which it precaches. Deterministic (no timestamps).
- ``bundle_sizes``: bytes of model, runtime and the rest, for the bundle_size check.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConversionError, ToolMissing
from ..kinds import primary_name
from ..render import REPO_ROOT, render_string, render_tree, template_dir
from .web_convert import SHARD_GLOB, folder_bytes

if TYPE_CHECKING:
    from ..samples import SampleSet
    from ..source import Source
    from ..spec import PackageSpec
    from .base import Artifact

TFJS_VERSION = "4.22.0"
BACKENDS = ("wasm", "webgl", "cpu")  # the page tries them in this order
MAX_BUNDLED_SAMPLES = 12
THEME_COLOR = "#1f5fa8"
BACKGROUND_COLOR = "#ffffff"

# Vendored runtime: bundle file name -> path under the npm-web tools folder (.ci/setup-web.sh).
VENDOR_FILES = {
    "tf.min.js": "tfjs/package/dist/tf.min.js",
    "tf-backend-wasm.min.js": "tfjs-backend-wasm/package/dist/tf-backend-wasm.min.js",
    "tfjs-backend-wasm.wasm": "tfjs-backend-wasm/package/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm": "tfjs-backend-wasm/package/dist/tfjs-backend-wasm-simd.wasm",
}


# ---------------------------------------------------------------------------------------------
# tools


def npm_web_dir() -> Path:
    base = Path(os.environ["PACKAGER_TOOLS"]) if os.environ.get("PACKAGER_TOOLS") else REPO_ROOT / ".tools"
    return base / "npm-web"


def vendored_runtime() -> dict[str, Path]:
    """Bundle file name -> cached npm file; ToolMissing when the set-up has not fetched them."""
    root = npm_web_dir()
    files = {name: root / rel for name, rel in VENDOR_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ToolMissing(
            f"the vendored tf.js {TFJS_VERSION} runtime is missing: {missing[0]}",
            hint="run .ci/setup-web.sh (fetches @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm with npm)",
        )
    for pkg in ("tfjs", "tfjs-backend-wasm"):
        version = json.loads((root / pkg / "package" / "package.json").read_text())["version"]
        if version != TFJS_VERSION:
            raise ToolMissing(f"{root / pkg} holds tf.js {version}, expected {TFJS_VERSION}",
                              hint="delete it and run .ci/setup-web.sh again")
    return files


def template_manifest() -> dict:
    return tomllib.loads((template_dir("web") / "template.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# bundle contents


def image_geometry(source: Source) -> dict | None:
    """{input, height, width, channels} when the model takes one NHWC image, else None."""
    if not getattr(source, "is_image", False):
        return None
    spec = source.inputs[0]
    _, h, w, c = (int(d) for d in spec.sample_shape)
    return {"input": spec.name, "height": h, "width": w, "channels": c}


def preprocess_pixels(rgb: np.ndarray, spec: PackageSpec, channels: int) -> np.ndarray:
    """The spec's preprocessing (packager.preprocessing) of an HxWx3 uint8 RGB image already at the input size
    -> (1,H,W,C)."""
    from ..preprocessing import model_pixels, normalise

    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    pre = spec.preprocessing
    px = model_pixels(rgba, rgb.shape[1], rgb.shape[0], channels, color=pre.color, crop=pre.crop,
                      background=pre.background)
    mean, std = pre.per_channel(channels)
    return normalise(px, mean, std)[None]


def _sample_images(source: Source, spec: PackageSpec, samples: SampleSet, geom: dict) -> list[np.ndarray]:
    """HxWx3 uint8 RGB images at the model's input size for the bundled sample strip."""
    from ..preprocessing import file_pixels

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
    mean, std = spec.preprocessing.per_channel(geom["channels"])
    for i, sample in enumerate(samples):
        if i >= MAX_BUNDLED_SAMPLES:
            break
        x = np.asarray(sample[geom["input"]], np.float32)[0]
        px = np.clip(np.rint(x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)), 0, 255).astype(np.uint8)
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
    return name if len(name) <= 12 else name[:11].rstrip() + "\u2026"


def build_bundle(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet, outdir: Path) -> dict:
    """Write the PWA into ``outdir`` (replacing it). Returns the page config (also in index.html)."""
    manifest = template_manifest()
    runtime = vendored_runtime()
    model_json_path = artifact.path / "model.json"
    in_nodes, out_nodes = artifact.extra["inputs"], artifact.extra["outputs"]

    outdir = Path(outdir)
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)

    model_dir = manifest["model_dir"].strip("/") or "."
    runtime_dir = manifest["runtime_dir"].strip("/")
    icons_dir = manifest["icons_dir"].strip("/")
    samples_dir = manifest["samples_dir"].strip("/")

    dst = outdir / model_dir
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(artifact.path.iterdir()):
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
    (outdir / runtime_dir).mkdir(parents=True)
    for name, src in runtime.items():
        shutil.copyfile(src, outdir / runtime_dir / name)
    (outdir / icons_dir).mkdir(parents=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("icon-maskable-512.png", 512, True)):
        (outdir / icons_dir / name).write_bytes(make_icon(size, maskable=maskable))

    geom = image_geometry(source)
    bundled = []
    samples_url = None
    if spec.bundle_samples:
        (outdir / samples_dir).mkdir(parents=True)
    if not spec.bundle_samples:
        pass  # --no-bundled-samples: no sample image, samples.json or tensor; the page shows no sample strip
    elif geom is not None:
        for i, rgb in enumerate(_sample_images(source, spec, samples, geom)):
            rel = f"{samples_dir}/sample_{i:02d}.png"
            (outdir / rel).write_bytes(_png_bytes(rgb))
            bundled.append({"image": rel})
    else:
        rows = []
        for i, sample in enumerate(samples):
            if i >= MAX_BUNDLED_SAMPLES:
                break
            rows.append({k: {"shape": list(np.shape(v)), "b64": _b64(np.asarray(v))} for k, v in sorted(sample.items())})
            bundled.append({})
        samples_url = f"{samples_dir}/samples.json"
        (outdir / samples_url).write_text(json.dumps(rows, sort_keys=True), encoding="utf-8")

    labels = list(spec.labels)  # of the primary output (packager.kinds), the same output on every target
    primary = primary_name(spec, source)
    label_output = primary if labels else None
    missing = [t.name for t in source.inputs if t.name not in in_nodes] + \
              [t.name for t in source.outputs if t.name not in out_nodes]
    if missing:
        raise ConversionError(f"no TF.js node for {missing}", where=str(model_json_path))
    inputs_cfg = [{"name": t.name, "node": in_nodes[t.name]["node"], "dtype": in_nodes[t.name]["dtype"],
                   "shape": list(t.sample_shape)} for t in source.inputs]
    outputs_cfg = [{"name": t.name, "node": out_nodes[t.name]["node"]} for t in source.outputs]

    image_cfg = None
    if geom is not None:
        mean, std = spec.preprocessing.per_channel(geom["channels"])
        image_cfg = {**geom, "color": spec.preprocessing.color, "mean": list(mean), "std": list(std),
                     "crop": spec.preprocessing.crop, "background": list(spec.preprocessing.background)}
    model_url = "model.json" if model_dir == "." else f"{model_dir}/model.json"
    config = {
        "name": spec.display_name,
        "model_url": model_url,
        "runtime_dir": runtime_dir,
        "backends": list(BACKENDS),
        "mode": artifact.mode,
        "inputs": inputs_cfg,
        "outputs": outputs_cfg,
        "labels": labels,
        "label_output": label_output,
        "primary_output": primary,
        "top_k": min(5, len(labels)) if labels else 0,
        "image": image_cfg,
        "samples": bundled,
        "samples_url": samples_url,
        "tfjs_version": TFJS_VERSION,
    }
    context = {
        "config": config,
        "display_name": spec.display_name,
        "short_name": _short_name(spec.display_name),
        "description": spec.description or f"{spec.display_name}: on-device inference demo (TF.js)",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "tfjs_version": TFJS_VERSION,
        "mode": artifact.mode,
        "runtime_dir": runtime_dir,
        "is_image": geom is not None,
        "bundled_samples": bool(bundled),
        "content_hash": "",
        "precache": [],
        "paths": {},
    }
    render_tree(template_dir("web"), outdir, context)

    # The service worker last: its cache name is the hash of every other file, which it precaches.
    sw_name = manifest["service_worker"].removesuffix(".j2")
    files = sorted(p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file())
    files = [f for f in files if f != sw_name]
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0" + hashlib.sha256((outdir / rel).read_bytes()).digest())
    content_hash = digest.hexdigest()[:16]
    context.update(content_hash=content_hash, precache=["./", *files])
    sw_text = render_string((template_dir("web") / manifest["service_worker"]).read_text(encoding="utf-8"), context)
    (outdir / sw_name).write_text(sw_text, encoding="utf-8", newline="\n")
    config["content_hash"] = content_hash
    config["precache"] = context["precache"]
    return config


def bundled_note(config: dict) -> str:
    """The console line saying what sample data the bundle ships (and how not to)."""
    n = len(config["samples"])
    if not n:
        return "no sample data bundled in web/ (--no-bundled-samples)"
    what = "sample images" if config.get("image") else "sample inputs (samples.json)"
    return (f"bundles {n} of your {what} in web/{template_manifest()['samples_dir']}/ for the page's sample strip "
            "(--no-bundled-samples leaves them out)")


def bundle_sizes(outdir: Path) -> dict[str, int]:
    """Bytes of the bundle: model (model.json + shards), runtime (vendored tf.js), rest, total."""
    manifest = template_manifest()
    runtime_dir = outdir / manifest["runtime_dir"].strip("/")
    model_dir = outdir / (manifest["model_dir"].strip("/") or ".")
    model = (model_dir / "model.json").stat().st_size + sum(p.stat().st_size for p in model_dir.glob(SHARD_GLOB))
    runtime = folder_bytes(runtime_dir)
    total = folder_bytes(outdir)
    return {"model": model, "runtime": runtime, "other": total - model - runtime, "total": total}

