"""Web target: a TF.js graph model inside an offline PWA demo, verified in headless Chromium.

Order the pipeline calls it in: ``convert`` -> ``predict`` -> ``render`` -> ``checks`` (each mode that
``--quantize auto`` tries is predicted); with one mode asked for, ``convert`` -> ``render`` ->
``predict_and_check``: the predictions and the checks in one browser session on the rendered ``OUT/web/``.

- ``convert`` runs ``tensorflowjs`` in-process on the SavedModel export -> ``WORKDIR/tfjs_<mode>/``
  (model.json + weight shards). Weight modes: fp32, fp16, uint16, uint8 (default, see DEFAULT_MODE).
- ``predict`` renders the bundle into ``WORKDIR/web_bundle_<mode>/`` (the same bytes ``render``
  writes), serves it on 127.0.0.1 and runs every sample through the page's own
  ``window.packager.predict`` in headless Chromium.
- ``render`` writes ``OUT/web/``: page, manifest, icons, bundled samples, vendored tf.js, model,
  and ``sw.js`` whose cache name is the hash of every other file. Deterministic (no timestamps).
- ``checks`` serves ``OUT/web/`` and checks in Chromium: service worker active and controlling,
  reload with the network cut still predicts, manifest accepted by the browser, the page's image
  path equals the spec's preprocessing, no console errors.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from ..errors import ConversionError, PackagerError, ToolMissing
from ..kinds import primary_name
from ..render import REPO_ROOT, render_string, render_tree, template_dir
from .base import Artifact, Prediction, Unverified
from .web_convert import (  # noqa: F401  (convert_saved_model, signature_nodes: part of this module's API)
    QUANTIZATION,
    SHARD_GLOB,
    convert_frozen_graph,
    convert_saved_model,
    folder_bytes,
    io_nodes,
    signature_nodes,
)

if TYPE_CHECKING:
    from ..samples import SampleSet
    from ..source import Source
    from ..spec import PackageSpec

TFJS_VERSION = "4.22.0"
DEFAULT_MODE = "uint8"  # smallest download (1/4 of fp32); affine per-tensor quantization of weights only
DEFAULT_SHARD_BYTES = 4 * 1024 * 1024  # tensorflowjs' own default; spec.web_shard_bytes overrides it
BACKENDS = ("wasm", "webgl", "cpu")  # the page tries them in this order
MAX_BUNDLED_SAMPLES = 12
THEME_COLOR = "#1f5fa8"
BACKGROUND_COLOR = "#ffffff"
PAGE_TIMEOUT_MS = 120_000
# The build's browser checks serve the bundle under a sub-path, as GitHub Pages (/repo/) or an app (/demo/) would:
# a URL resolved against the origin's root instead of the page fails them.
CHECK_PREFIX = "/deployed/under/a-sub-path/"

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
    """The spec's preprocessing of an HxWx3 uint8 RGB image (already at the input size) -> (1,H,W,C).

    Same as packager.samples: one-channel inputs take PIL's ``convert("L")``; ``bgr`` swaps channels.
    """
    from PIL import Image

    if channels == 1:
        px = np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.float32)[..., None]
    elif spec.preprocessing.color == "bgr":
        px = rgb[..., ::-1].astype(np.float32)
    else:
        px = rgb.astype(np.float32)
    mean, std = spec.preprocessing.per_channel(channels)
    x = (px - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x[None].astype(np.float32)


def _sample_images(source: Source, spec: PackageSpec, samples: SampleSet, geom: dict) -> list[np.ndarray]:
    """HxWx3 uint8 RGB images at the model's input size for the bundled sample strip."""
    from PIL import Image

    w, h = geom["width"], geom["height"]
    paths = getattr(samples, "image_paths", None)
    images = []
    if paths:
        for p in list(paths)[:MAX_BUNDLED_SAMPLES]:
            with Image.open(p) as im:
                # Same order as packager.samples: colour conversion first, then the bilinear resize.
                im = im.convert("L" if geom["channels"] == 1 else "RGB")
                if im.size != (w, h):
                    im = im.resize((w, h), Image.BILINEAR)
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
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
    (outdir / samples_dir).mkdir(parents=True)
    bundled = []
    samples_url = None
    if geom is not None:
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
        image_cfg = {**geom, "color": spec.preprocessing.color, "mean": list(mean), "std": list(std)}
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


def bundle_sizes(outdir: Path) -> dict[str, int]:
    """Bytes of the bundle: model (model.json + shards), runtime (vendored tf.js), rest, total."""
    manifest = template_manifest()
    runtime_dir = outdir / manifest["runtime_dir"].strip("/")
    model_dir = outdir / (manifest["model_dir"].strip("/") or ".")
    model = (model_dir / "model.json").stat().st_size + sum(p.stat().st_size for p in model_dir.glob(SHARD_GLOB))
    runtime = folder_bytes(runtime_dir)
    total = folder_bytes(outdir)
    return {"model": model, "runtime": runtime, "other": total - model - runtime, "total": total}


# ---------------------------------------------------------------------------------------------
# driving the page


class PageSession:
    """One page of a served bundle in a Chromium context, recording console errors."""

    def __init__(self, context, url: str):
        self.context = context
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.url = url
        self.response = None

    def open(self, url: str | None = None) -> str:
        """Load the page and wait for the model; returns the backend. Raises PackagerError on failure."""
        self.response = self.page.goto(url or self.url, wait_until="load")
        return self.wait_ready()

    def reload(self) -> str:
        self.response = self.page.reload(wait_until="load")
        return self.wait_ready()

    def wait_ready(self) -> str:
        try:
            return self.page.evaluate("() => window.packager.ready")
        except Exception as e:  # playwright.Error: the page reported why
            shown = self.page.evaluate("() => (window.packager && window.packager.error) || ''") if not self.page.is_closed() else ""
            raise PackagerError(f"the web demo did not load its model: {shown or e}{_load_failure_fix(shown)}") from e

    def predict(self, sample: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        payload = {k: {"shape": list(np.shape(v)), "b64": _b64(np.asarray(v))} for k, v in sample.items()}
        r = self.page.evaluate("(x) => window.packager.predictB64(x)", payload)
        return {k: _from_b64(v["b64"], v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])

    def predict_image(self, url: str) -> tuple[dict[str, np.ndarray], float]:
        r = self.page.evaluate(
            """async (url) => {
                const img = new Image();
                img.src = url;
                await img.decode();
                const r = await window.packager.predictImage(img);
                window.packager.showResult(r);
                const out = {};
                for (const [k, v] of Object.entries(r.outputs)) out[k] = {shape: v.shape, data: Array.from(v.data)};
                return {outputs: out, ms: r.ms};
            }""",
            url,
        )
        return {k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])

    def browser_version(self) -> str:
        cdp = self.context.new_cdp_session(self.page)
        try:
            return cdp.send("Browser.getVersion")["product"].split("/", 1)[-1]
        finally:
            cdp.detach()

    def close(self) -> None:
        self.page.close()


# tf.js' words when it cannot run a graph's control flow, on every backend: seen with the while loop of a Keras 3
# LSTM export (the official tensorflowjs_converter's output fails the same way; an unrolled LSTM runs).
_CONTROL_FLOW = "Cannot compute the outputs"


def _load_failure_fix(shown: str) -> str:
    if _CONTROL_FLOW in shown and "no tf.js backend could run" in shown:
        return (" — fix: tf.js cannot execute this graph's loop (as exported for Keras 3 recurrent layers); unroll the"
                " recurrent layers (e.g. keras.layers.LSTM(..., unroll=True) with a fixed sequence length), or use"
                " a different target")
    return ""


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([r[k] for r in rows], axis=0) for k in rows[0]} if rows else {}


def _max_abs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0 for k in a)


def _runtime_name(browser_version: str, backend: str) -> str:
    return f"Chromium {browser_version} (headless, Playwright) + tf.js {TFJS_VERSION} {backend} backend"


# ---------------------------------------------------------------------------------------------
# the target


class WebTarget:
    name = "web"
    modes = ("fp32", "fp16", "uint16", "uint8")
    default_mode = DEFAULT_MODE

    def convert(self, source: Source, spec: PackageSpec, mode: str, workdir: Path) -> Artifact:
        if mode not in QUANTIZATION:
            raise ConversionError(f"unknown web weight mode {mode!r}", hint=f"use one of {', '.join(self.modes)}")
        out = Path(workdir) / f"tfjs_{mode}"
        float_out = Path(workdir) / "tfjs_fp32" if mode != "fp32" else None
        shard = int(getattr(spec, "web_shard_bytes", 0) or DEFAULT_SHARD_BYTES)
        t0 = time.perf_counter()
        try:
            if getattr(source, "format", "") == "frozen_pb":  # as tensorflowjs_converter --input_format=tf_frozen_model
                convert_frozen_graph(Path(source.frozen_graph or source.spec.model), source.spec.output_names,
                                     out, mode, shard, float_out)
            else:
                convert_saved_model(Path(source.saved_model_dir), out, mode, shard, float_out,
                                    loaded=getattr(source, "_loaded", None))
        except PackagerError:
            raise
        except Exception as e:
            raise ConversionError(f"tensorflowjs could not convert the model ({mode}): {e}",
                                  where=str(source.saved_model_dir)) from e
        seconds = round(time.perf_counter() - t0, 3)
        artifact = self._artifact(source, mode, out, shard, seconds)
        if float_out is not None:
            artifact.extra["by_products"] = {"fp32": self._artifact(source, "fp32", float_out, shard, seconds)}
        return artifact

    def _artifact(self, source: Source, mode: str, out: Path, shard: int, seconds: float) -> Artifact:
        model_json = json.loads((out / "model.json").read_text(encoding="utf-8"))
        in_nodes, out_nodes = io_nodes(model_json, source, str(out / "model.json"))
        shards = sorted(p.name for p in out.glob(SHARD_GLOB))
        return Artifact(
            target=self.name, mode=mode, path=out, bytes=folder_bytes(out),
            extra={
                "format": "tfjs_graph_model",
                "shards": shards,
                "shard_bytes": shard,
                "output_nodes": {k: v["node"] for k, v in out_nodes.items()},
                "input_nodes": {k: v["node"] for k, v in in_nodes.items()},
                "inputs": in_nodes,  # the spec's tensor name -> {node, dtype} (io_nodes)
                "outputs": out_nodes,
                "convert_seconds": seconds,
            },
        )

    def predict(self, artifact: Artifact, source: Source, spec: PackageSpec, samples: SampleSet) -> Prediction:
        from ..runtimes.browser import StaticServer, chromium

        bundle = Path(artifact.path).parent / f"web_bundle_{artifact.mode}"
        try:
            build_bundle(spec, source, artifact, samples, bundle)
        except ToolMissing as e:
            raise Unverified(f"cannot build the web bundle here: {e.message}") from e
        try:
            with StaticServer(bundle) as server, chromium() as browser:
                session = PageSession(browser.new_context(service_workers="block"), server.url + "index.html")
                backend = session.open()
                prediction = _predict_samples(session, source, samples, _runtime_name(browser.version, backend))
                session.context.close()
        except ToolMissing as e:
            raise Unverified(f"no browser to run the web demo: {e.message}") from e
        return prediction

    def render(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> Path:
        build_bundle(spec, source, artifact, samples, Path(outdir))
        return Path(template_manifest()["model_dir"]) / "model.json"

    def checks(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
               reference: dict[str, np.ndarray], outdir: Path) -> list[Check]:
        outdir = Path(outdir)
        checks = _file_checks(outdir)
        try:
            with _served_page(outdir) as (session, server):
                t0 = time.perf_counter()
                try:
                    backend = session.open()
                except PackagerError as e:
                    return checks + [Check(n, FAIL, e.message) for n in ("service_worker", "offline_reload",
                                                                          "console_errors")]
                checks.extend(_browser_checks(session, server, spec, source, samples, outdir, backend, t0))
        except ToolMissing as e:
            checks.extend(_skipped_browser_checks(e.message))
        return checks

    def predict_and_check(self, spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
                          reference: dict[str, np.ndarray], outdir: Path) -> Prediction:
        """``predict`` and ``checks`` in one browser session, on the bundle ``render`` wrote to ``outdir``: one
        Chromium start and one page load instead of two of each (the pipeline's path when one mode is asked for).
        The checks come back in ``Prediction.checks``; with no browser, Unverified carries the file checks."""
        outdir = Path(outdir)
        checks = _file_checks(outdir)
        try:
            with _served_page(outdir) as (session, server):
                t0 = time.perf_counter()
                backend = session.open()  # PackagerError: the page did not load its model, nothing ran
                prediction = _predict_samples(session, source, samples,
                                              _runtime_name(session.browser_version(), backend))
                checks.extend(_browser_checks(session, server, spec, source, samples, outdir, backend, t0))
        except ToolMissing as e:
            raise Unverified(f"no browser to run the web demo: {e.message}",
                             checks=checks + _skipped_browser_checks(e.message)) from e
        prediction.checks.extend(checks)
        return prediction


@contextlib.contextmanager
def _served_page(outdir: Path):
    """(page session, server): ``outdir`` served on 127.0.0.1 and a page for it (not opened yet) in a fresh
    Chromium profile, service workers allowed; all closed on exit. ToolMissing when there is no browser."""
    from ..runtimes.browser import StaticServer, chromium_profile

    server = StaticServer(outdir, prefix=CHECK_PREFIX).start()
    try:
        with chromium_profile() as context:
            session = PageSession(context, server.url)
            try:
                yield session, server
            finally:
                session.close()
    finally:
        server.stop()


def _predict_samples(session: PageSession, source: Source, samples: SampleSet, runtime: str) -> Prediction:
    """Every sample through the page's own ``window.packager.predict``; a page_console check of the run."""
    rows, times = [], []
    for sample in samples:
        out, ms = session.predict(sample)
        rows.append(out)
        times.append(ms)
    errors = list(session.errors)
    stacked = _stack(rows)
    return Prediction(
        outputs={t.name: stacked[t.name] for t in source.outputs},
        runtime=runtime,
        latency_ms=float(np.mean(times)) if times else None,
        checks=[Check("page_console", PASS if not errors else FAIL,
                      "no console errors while predicting" if not errors else "; ".join(errors[:5]))],
    )


BROWSER_CHECKS = ("service_worker", "offline_reload", "manifest_installable", "image_path", "console_errors")


def _skipped_browser_checks(why: str) -> list[Check]:
    return [Check(name, SKIPPED, why) for name in BROWSER_CHECKS]


def _file_checks(outdir: Path) -> list[Check]:
    sizes = bundle_sizes(outdir)
    return [Check("bundle_size", PASS, f"model {sizes['model']} B, tf.js runtime {sizes['runtime']} B, "
                                       f"page+icons+samples {sizes['other']} B, total {sizes['total']} B"),
            _manifest_file_check(outdir)]


# ---------------------------------------------------------------------------------------------
# checks


REQUIRED_MANIFEST = ("name", "short_name", "start_url", "display", "icons", "theme_color", "background_color")


def _manifest_file_check(outdir: Path) -> Check:
    from PIL import Image

    path = outdir / "manifest.webmanifest"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return Check("manifest_fields", FAIL, f"manifest.webmanifest unreadable: {e}")
    problems = [f"missing {k}" for k in REQUIRED_MANIFEST if not data.get(k)]
    if data.get("display") not in ("standalone", "fullscreen", "minimal-ui"):
        problems.append(f"display is {data.get('display')!r}")
    sizes = set()
    for icon in data.get("icons", []):
        p = outdir / icon.get("src", "")
        try:
            with Image.open(p) as im:
                actual = f"{im.width}x{im.height}"
        except OSError:
            problems.append(f"icon {icon.get('src')} missing or not an image")
            continue
        if actual != icon.get("sizes"):
            problems.append(f"icon {icon.get('src')} is {actual}, manifest says {icon.get('sizes')}")
        sizes.add((actual, icon.get("purpose", "any")))
    for need in (("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")):
        if need not in sizes:
            problems.append(f"no {need[0]} {need[1]} icon")
    return Check("manifest_fields", FAIL if problems else PASS,
                 "; ".join(problems) or f"{', '.join(REQUIRED_MANIFEST)} present; icons 192, 512, maskable 512 match their files")


def _browser_checks(session: PageSession, server, spec, source, samples, outdir: Path, backend: str,
                    t0: float) -> list[Check]:
    """The checks of the bundle served by ``server``, on the page ``session`` opened (at ``t0``) from it."""
    checks: list[Check] = []
    first = next(iter(samples))
    online, _ = session.predict(first)

    # Service worker: active, controlling the page, cache holding every precached file.
    sw = _service_worker_state(session.page)
    config_precache = _precache_list(outdir)
    ok = (sw["state"] == "activated" and sw["controlled"] and sw["cache"] is not None
          and sw["cache"].endswith(":" + _content_hash(outdir)) and sw["entries"] == len(config_precache))
    checks.append(Check(
        "service_worker", PASS if ok else FAIL,
        f"state {sw['state']}, controlling: {sw['controlled']}, cache "
        f"{(sw['cache'] or '').replace(server.url, '<origin>/')!r} holds "
        f"{sw['entries']}/{len(config_precache)} files", time.perf_counter() - t0))

    # Manifest as the browser sees it.
    checks.append(_installability_check(session))

    # The page's own image path on the bundled sample images vs the spec's preprocessing.
    checks.append(_image_path_check(session, spec, source, outdir))

    # Network cut: stop the server and take the context offline, reload, predict again.
    t0 = time.perf_counter()
    online_errors = list(session.errors)
    server.stop()
    session.context.set_offline(True)
    try:
        session.reload()
        from_sw = bool(session.response is not None and session.response.from_service_worker)
        offline, _ = session.predict(first)
        diff = _max_abs(online, offline)
        ok = from_sw and diff <= 1e-6
        checks.append(Check("offline_reload", PASS if ok else FAIL,
                            f"reloaded with the server stopped and the network offline; page from service "
                            f"worker: {from_sw}; prediction max |diff| vs online {diff:.3g}", time.perf_counter() - t0))
    except Exception as e:
        checks.append(Check("offline_reload", FAIL, f"reload with the network cut failed: {e}",
                            time.perf_counter() - t0))
    offline_errors = session.errors[len(online_errors):]
    errors = online_errors + offline_errors
    checks.append(Check("console_errors", PASS if not errors else FAIL,
                        f"no console errors ({backend} backend, online and offline)" if not errors
                        else "; ".join(errors[:5])))
    return checks


def _precache_list(outdir: Path) -> list[str]:
    text = (outdir / "sw.js").read_text(encoding="utf-8")
    line = next(li for li in text.splitlines() if li.startswith("const PRECACHE = "))
    return json.loads(line.removeprefix("const PRECACHE = ").rstrip(";"))


def _content_hash(outdir: Path) -> str:
    text = (outdir / "sw.js").read_text(encoding="utf-8")
    line = next(li for li in text.splitlines() if li.startswith("const CACHE = CACHE_PREFIX + "))
    return json.loads(line.removeprefix("const CACHE = CACHE_PREFIX + ").rstrip(";"))


def _service_worker_state(page) -> dict:
    page.evaluate("() => window.packager.serviceWorker")
    try:
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    except Exception:
        pass
    return page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.getRegistration();
            const state = reg && reg.active ? reg.active.state : "none";
            const keys = (await caches.keys()).filter((k) => k.startsWith("packager-web:"));
            let entries = 0;
            if (keys.length === 1) entries = (await (await caches.open(keys[0])).keys()).length;
            return {state, controlled: navigator.serviceWorker.controller !== null,
                    cache: keys.length === 1 ? keys[0] : (keys.length ? keys.join(",") : null), entries};
        }"""
    )


def _installability_check(session: PageSession) -> Check:
    try:
        cdp = session.context.new_cdp_session(session.page)
        manifest = cdp.send("Page.getAppManifest")
        installability = cdp.send("Page.getInstallabilityErrors")
        cdp.detach()
    except Exception as e:
        return Check("manifest_installable", UNVERIFIED, f"Chromium did not report its manifest parse: {e}")
    errors = [m.get("message", str(m)) for m in manifest.get("errors", [])]
    install_errors = [e.get("errorId", str(e)) for e in installability.get("installabilityErrors", [])]
    ok = not errors and not install_errors and bool(manifest.get("url"))
    detail = (f"Chromium parsed {manifest.get('url', '?').rsplit('/', 1)[-1]} without errors and reports no "
              "installability errors" if ok else
              "; ".join([f"manifest: {m}" for m in errors] + [f"installability: {m}" for m in install_errors])
              or "Chromium found no manifest")
    return Check("manifest_installable", PASS if ok else FAIL, detail)


def _image_path_check(session: PageSession, spec, source, outdir: Path) -> Check:
    """The page's image -> canvas -> preprocessing path equals the spec's preprocessing (same PNGs)."""
    from PIL import Image

    config = json.loads(session.page.evaluate("() => JSON.stringify(window.packager.config)"))
    image = config.get("image")
    if not image:
        return Check("image_path", SKIPPED, "the model does not take an image")
    images = [s["image"] for s in config["samples"] if s.get("image")]
    if not images:
        return Check("image_path", SKIPPED, "no bundled sample images")
    worst = 0.0
    scale = 1.0
    page_rows, inputs = [], []
    for rel in images:
        page_out, _ = session.predict_image(rel)
        with Image.open(outdir / rel) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        x = preprocess_pixels(rgb, spec, image["channels"])
        hook_out, _ = session.predict({image["input"]: x})
        worst = max(worst, _max_abs(page_out, hook_out))
        page_rows.append(page_out)
        inputs.append(x)
        scale = max(scale, max(float(np.max(np.abs(v))) for v in hook_out.values()))
    ok = worst <= 1e-5 * scale
    # For the record: the page's image path against the original model on the same images.
    versus = ""
    try:
        original = source.predict({image["input"]: np.concatenate(inputs)})
        page = _stack(page_rows)
        name = config.get("primary_output") or config["outputs"][0]["name"]
        top1 = float(np.mean(original[name].reshape(len(images), -1).argmax(-1) == page[name].reshape(len(images), -1).argmax(-1)))
        versus = f"; vs the original model on the same images: top-1 {top1:.3f}, max |diff| {_max_abs(page, original):.3g}"
    except Exception as e:  # the reference is informative here; the gate is the equality above
        versus = f"; original model not run on them: {type(e).__name__}"
    return Check("image_path", PASS if ok else FAIL,
                 f"{len(images)} bundled sample images through the page's canvas preprocessing vs the spec's "
                 f"preprocessing in Python, same TF.js model: max |diff| {worst:.3g}{versus}")
