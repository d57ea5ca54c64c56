"""The web target's bundle: the offline PWA that ``render`` writes to ``OUT/web/`` (and ``predict`` to
``WORKDIR/web_bundle_<mode>/``, the same bytes).

- ``vendored_runtime``: the tf.js runtime (.ci/setup-web.sh: tfjs-core + converter + backends, bundled by esbuild)
  copied into the bundle, checked against TFJS_VERSION.
- ``build_bundle``: the model's ES module (model.js, model_files.js: a literal URL per file it loads, model.d.ts,
  package.json, README.md, metadata.json), the demo page
  using it, manifest, icons, bundled samples, runtime, model, and ``sw.js`` whose cache name is the hash of every
  other file; it precaches what the page needs. Deterministic (no timestamps).
- ``bundle_sizes``: bytes of model, runtime and the rest, for the bundle_size check.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from packager.errors import ConversionError, ToolMissing
from packager.kinds import primary_name
from packager.render import REPO_ROOT, render_string, render_tree, template_dir
from packager.targets.web.assets import (  # noqa: F401  (re-exported)
    BACKGROUND_COLOR,
    ICONS,
    MAX_BUNDLED_SAMPLES,
    THEME_COLOR,
    _b64,
    _from_b64,
    _png_bytes,
    _sample_images,
    _short_name,
    b64_sample,
    image_config,
    make_icon,
    package_manifest,
    preprocess_pixels,
)
from packager.targets.web.convert import SHARD_GLOB, folder_bytes

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec
    from packager.targets.base import Artifact

TFJS_VERSION = "4.22.0"
BACKENDS = ("wasm", "webgl", "cpu")  # the page tries them in this order (each validated by the build)

# Vendored runtime: bundle file name -> path under the npm-web tools folder (.ci/setup-web.sh builds runtime/).
VENDOR_FILES = {
    "tf-runtime.js": "runtime/tf-runtime.js",
    "tfjs-backend-wasm-simd.wasm": "runtime/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm.wasm": "runtime/tfjs-backend-wasm.wasm",
}
# Fetched only by browsers without wasm SIMD: not precached, cached by the service worker when first fetched.
ON_DEMAND = ("tfjs-backend-wasm.wasm",)
# For developers importing the module (npm install ./web), never fetched by the page: not precached.
NOT_PRECACHED = ("model.d.ts", "package.json", "README.md")


# ---------------------------------------------------------------------------------------------
# tools


def npm_web_dir() -> Path:
    base = Path(os.environ["PACKAGER_TOOLS"]) if os.environ.get("PACKAGER_TOOLS") else REPO_ROOT / ".tools"
    return base / "npm-web"


def vendored_files(spec=None) -> list[Path]:
    """The tf.js files a bundle ships (the registry's ``cache_inputs``: the cache hashes them)."""
    return [npm_web_dir() / rel for rel in VENDOR_FILES.values()]


def vendored_runtime() -> dict[str, Path]:
    """Bundle file name -> cached npm file; ToolMissing when the set-up has not fetched them."""
    root = npm_web_dir()
    files = {name: root / rel for name, rel in VENDOR_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ToolMissing(
            f"the vendored tf.js {TFJS_VERSION} runtime is missing: {missing[0]}",
            hint="run .ci/setup-web.sh (installs tfjs-core, tfjs-converter and the backends with npm and bundles "
                 "them with esbuild)",
        )
    versions = root / "runtime" / "versions.json"
    version = json.loads(versions.read_text()).get("tfjs") if versions.is_file() else None
    if version != TFJS_VERSION:
        raise ToolMissing(f"{versions.parent} holds tf.js {version}, expected {TFJS_VERSION}",
                          hint="delete it and run .ci/setup-web.sh again")
    return files


def template_manifest() -> dict:
    return tomllib.loads((template_dir("web") / "template.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# bundle contents



def write_bundled_samples(spec, source, samples, outdir: Path, samples_dir: str,
                          geom: dict | None) -> tuple[list[dict], str | None]:
    """The page's sample strip in ``outdir/samples_dir`` (both runtimes' bundles): PNGs of image samples, else up to
    MAX_BUNDLED_SAMPLES tensors in samples.json; (their entries for the page, samples.json's URL or None). Nothing
    with --no-bundled-samples: no sample image, samples.json or tensor; the page shows no sample strip."""
    bundled: list[dict] = []
    if not spec.bundle_samples:
        return bundled, None
    (outdir / samples_dir).mkdir(parents=True)
    if geom is not None:
        names = [Path(p).name for p in getattr(samples, "image_paths", None) or []]
        for i, rgb in enumerate(_sample_images(source, spec, samples, geom)):
            rel = f"{samples_dir}/sample_{i:02d}.png"
            (outdir / rel).write_bytes(_png_bytes(rgb))
            bundled.append({"image": rel, "label": f"Sample {i + 1}: {names[i]}" if i < len(names) else
                            f"Sample image {i + 1}"})
        return bundled, None
    rows = []
    for i, sample in enumerate(samples):
        if i >= MAX_BUNDLED_SAMPLES:
            break
        rows.append(b64_sample(dict(sorted(sample.items()))))
        bundled.append({"label": f"Sample input {i + 1}"})
    samples_url = f"{samples_dir}/samples.json"
    (outdir / samples_url).write_text(json.dumps(rows, sort_keys=True), encoding="utf-8")
    return bundled, samples_url


def module_metadata(spec, source, geom: dict | None) -> dict:
    """metadata.json's fields every web runtime writes the same way (model.js and the page read them whichever
    runtime runs the model): name, labels (of the primary output, packager.kinds: the same output on every
    target), primary output, top_k and the image preprocessing (None: the model takes no image)."""
    labels = list(spec.labels)
    primary = primary_name(spec, source)
    image_cfg = image_config(spec, geom)
    return {"name": spec.display_name, "labels": labels, "label_output": primary if labels else None,
            "primary_output": primary, "top_k": min(5, len(labels)) if labels else 0, "image": image_cfg}


def output_kind(spec, name: str) -> str:
    """An output's kind in metadata.json ("image": imageOutputs() renders it), "" when packager gave it none."""
    return (spec.output_kinds or {}).get(name, "")


def image_geometry(source: Source) -> dict | None:
    """{input, height, width, channels} when the model takes one NHWC image, else None; with ``pixels: True`` when
    that input is an integer tensor of whole pixel levels 0..255 (uint8: the model normalises them itself)."""
    from packager.samples import is_pixel_image

    pixels = is_pixel_image(source)
    if not getattr(source, "is_image", False) and not pixels:
        return None
    spec = source.inputs[0]
    _, h, w, c = (int(d) for d in spec.sample_shape)
    return {"input": spec.name, "height": h, "width": w, "channels": c, **({"pixels": True} if pixels else {})}


def package_name(display_name: str) -> str:
    """An npm package name for ``npm install ./web``: lowercase, URL-safe, from the model's display name."""
    name = re.sub(r"[^a-z0-9._~-]+", "-", display_name.lower()).strip("-._~")[:200]
    return name or "packager-model"


def build_bundle(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet, outdir: Path,
                 backends: tuple[str, ...] = BACKENDS) -> dict:
    """Write the PWA into ``outdir`` (replacing it). Returns the page config: metadata.json's content plus the
    demo page's own (samples, precache, content hash). ``backends``: those the page may pick (validated)."""
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
        if f.is_file() and f.name != "model.json":
            shutil.copyfile(f, dst / f.name)
    (outdir / runtime_dir).mkdir(parents=True)
    for name, src in runtime.items():
        shutil.copyfile(src, outdir / runtime_dir / name)
    (outdir / icons_dir).mkdir(parents=True)
    for name, size, maskable in ICONS:
        (outdir / icons_dir / name).write_bytes(make_icon(size, maskable=maskable))

    geom = image_geometry(source)
    bundled, samples_url = write_bundled_samples(spec, source, samples, outdir, samples_dir, geom)

    missing = [t.name for t in source.inputs if t.name not in in_nodes] + \
              [t.name for t in source.outputs if t.name not in out_nodes]
    if missing:
        raise ConversionError(f"no TF.js node for {missing}", where=str(model_json_path))
    shared = module_metadata(spec, source, geom)
    image_cfg = shared["image"]
    metadata = {
        **shared,
        "runtime": "tfjs",
        "model_url": "model.json" if model_dir == "." else f"{model_dir}/model.json",
        "runtime_dir": runtime_dir,
        "backends": list(backends),
        "mode": artifact.mode,
        "inputs": [{"name": t.name, "node": in_nodes[t.name]["node"], "dtype": in_nodes[t.name]["dtype"],
                    "shape": list(t.sample_shape)} for t in source.inputs],
        "outputs": [{"name": t.name, "node": out_nodes[t.name]["node"], "kind": output_kind(spec, t.name)}
                    for t in source.outputs],
        "tfjs_version": TFJS_VERSION,
    }
    (outdir / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    # The same metadata inside model.json (tf.js: GraphModel.metadata), for code that loads model.json alone.
    model_json = json.loads(model_json_path.read_text(encoding="utf-8"))
    model_json.setdefault("userDefinedMetadata", {})["packager"] = metadata
    (dst / "model.json").write_text(json.dumps(model_json, separators=(",", ":")), encoding="utf-8")

    page = {"samples": bundled, "samples_url": samples_url}
    shards = [p for group in model_json["weightsManifest"] for p in group["paths"]]
    in_model_dir = (lambda name: name) if model_dir == "." else (lambda name: f"{model_dir}/{name}")
    model_files = [metadata["model_url"], "metadata.json", *(in_model_dir(p) for p in shards)]
    runtime_files = [f"{runtime_dir}/{name}" for name in sorted(runtime)]
    name, description = package_name(spec.display_name), spec.description or \
        f"{spec.display_name}: on-device inference demo (TF.js)"
    (outdir / "package.json").write_text(
        json.dumps(package_manifest(name, description, model_files, runtime_files, TFJS_VERSION), indent=2) + "\n",
        encoding="utf-8")
    context = {
        "page": page,
        "image": image_cfg,
        "display_name": spec.display_name,
        "short_name": _short_name(spec.display_name),
        "package_name": name,
        "description": description,
        "model_file": metadata["model_url"],
        "metadata_file": "metadata.json",
        "shard_files": [(p, in_model_dir(p)) for p in shards],
        "wasm_files": [(n, f"{runtime_dir}/{n}") for n in sorted(runtime) if n.endswith(".wasm")],
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "tfjs_version": TFJS_VERSION,
        "mode": artifact.mode,
        "runtime_dir": runtime_dir,
        "is_image": geom is not None,
        "bundled_samples": bool(bundled),
        "content_hash": "",
        "precache": [],
        "on_demand": [],
        "revisions": {},
        "paths": {},
    }
    render_tree(template_dir("web"), outdir, context)

    content_hash, precache = write_service_worker(outdir, manifest["service_worker"], runtime_dir, context)
    return {**metadata, **page, "content_hash": content_hash, "precache": precache}


def write_service_worker(outdir: Path, template: str, runtime_dir: str, context: dict) -> tuple[str, list[str]]:
    """The service worker, last: it precaches what the page needs, each file under its own content hash, and
    carries the hash of every other file (a changed file changes sw.js). Returns (that hash, the precache list)."""
    sw_name = template.removesuffix(".j2")
    files = sorted(p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file())
    files = [f for f in files if f != sw_name]
    digest = hashlib.sha256()
    file_hashes = {rel: hashlib.sha256((outdir / rel).read_bytes()).digest() for rel in files}
    for rel in files:
        digest.update(rel.encode() + b"\0" + file_hashes[rel])
    content_hash = digest.hexdigest()[:16]
    on_demand = [f"{runtime_dir}/{name}" for name in ON_DEMAND]
    precache = ["./", *(f for f in files if f not in on_demand and f not in NOT_PRECACHED)]
    # Each cached file's own revision (its content hash): a new deployment fetches only the files that changed.
    revisions = {url: file_hashes["index.html" if url == "./" else url].hex()[:16] for url in [*precache, *on_demand]
                 if (url == "./" and "index.html" in file_hashes) or url in file_hashes}
    context.update(content_hash=content_hash, precache=precache, on_demand=on_demand, revisions=revisions)
    sw_text = render_string((template_dir("web") / template).read_text(encoding="utf-8"), context)
    (outdir / sw_name).write_text(sw_text, encoding="utf-8", newline="\n")
    return content_hash, precache


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

