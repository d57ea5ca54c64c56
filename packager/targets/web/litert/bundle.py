"""``OUT/web/`` for ``--web-runtime litert``: web_template's PWA shell (page, image code, manifest, icons, samples,
service worker) with web_template/litert/'s files over it (model.js on LiteRT.js, model_files.js, model.d.ts,
README.md), the Android ``.tflite`` as ``model.tflite`` and the vendored LiteRT.js runtime in ``litert/``.
Deterministic (no timestamps)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

from packager.kinds import primary_name
from packager.render import render_string, render_tree, template_dir
from packager.targets.web.assets import (
    BACKGROUND_COLOR,
    ICONS,
    THEME_COLOR,
    _short_name,
    image_config,
    make_icon,
    package_manifest,
)
from packager.targets.web.bundle import (
    NOT_PRECACHED,
    image_geometry,
    package_name,
    template_manifest,
    write_bundled_samples,
)
from packager.targets.web.litert.runtime import LITERTJS_VERSION, ON_DEMAND, vendored_runtime

BACKENDS = ("wasm", "webgpu")  # LiteRT.js accelerators, in the order the page tries them (each validated)


def litert_template() -> Path:
    return template_dir("web") / "litert"


def litert_manifest() -> dict:
    return tomllib.loads((litert_template() / "template.toml").read_text(encoding="utf-8"))


def build_litert_bundle(spec, source, artifact, samples, outdir: Path, backends: tuple[str, ...] = ("wasm",)) -> dict:
    """Write the PWA into ``outdir`` (replacing it); returns the page config (metadata.json + the page's own)."""
    shell, own = template_manifest(), litert_manifest()
    runtime = vendored_runtime()
    outdir = Path(outdir)
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    model_file, runtime_dir = own["model_file"], own["runtime_dir"]
    icons_dir, samples_dir = shell["icons_dir"].strip("/"), shell["samples_dir"].strip("/")

    shutil.copyfile(artifact.extra["tflite"], outdir / model_file)
    (outdir / runtime_dir).mkdir()
    for name, src in runtime.items():
        shutil.copyfile(src, outdir / runtime_dir / name)
    (outdir / icons_dir).mkdir()
    for name, size, maskable in ICONS:
        (outdir / icons_dir / name).write_bytes(make_icon(size, maskable=maskable))

    geom = image_geometry(source)
    bundled, samples_url = write_bundled_samples(spec, source, samples, outdir, samples_dir, geom)

    labels = list(spec.labels)
    primary = primary_name(spec, source)
    image_cfg = image_config(spec, geom)
    metadata = {
        "name": spec.display_name,
        "runtime": "litert",
        "model_url": model_file,
        "model_sha256": artifact.extra["sha256"],
        "android_mode": artifact.extra["android_mode"],
        "runtime_dir": runtime_dir,
        "backends": list(backends),
        "mode": artifact.mode,
        "inputs": [{"name": i["name"], "tensor": i["tensor"], "dtype": i["dtype"], "shape": i["shape"]}
                   for i in artifact.extra["inputs"]],
        "outputs": [{"name": o["name"], "tensor": o["tensor"]} for o in artifact.extra["outputs"]],
        "labels": labels,
        "label_output": primary if labels else None,
        "primary_output": primary,
        "top_k": min(5, len(labels)) if labels else 0,
        "image": image_cfg,
        "litertjs_version": LITERTJS_VERSION,
    }
    (outdir / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    page = {"samples": bundled, "samples_url": samples_url}
    model_files = [model_file, "metadata.json"]
    runtime_files = [f"{runtime_dir}/{name}" for name in sorted(runtime)]
    name = package_name(spec.display_name)
    description = spec.description or f"{spec.display_name}: on-device inference demo (LiteRT.js)"
    manifest = package_manifest(name, description, model_files, runtime_files, LITERTJS_VERSION)
    manifest.pop("peerDependencies", None)  # no tf.js to share: LiteRT.js runs the .tflite
    manifest.pop("peerDependenciesMeta", None)
    for rel in runtime_files:  # model.js loads the wasm .js files by URL: an app's bundler may reach them by path
        manifest["exports"]["./" + rel] = "./" + rel
    manifest["sideEffects"] = False
    (outdir / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    context = {
        "page": page, "image": image_cfg, "display_name": spec.display_name,
        "short_name": _short_name(spec.display_name), "package_name": name, "description": description,
        "model_file": model_file, "metadata_file": "metadata.json", "shard_files": [],
        "wasm_files": [(n, f"{runtime_dir}/{n}") for n in sorted(runtime) if n.startswith("litert_wasm")],
        "theme_color": THEME_COLOR, "background_color": BACKGROUND_COLOR, "tfjs_version": LITERTJS_VERSION,
        "litertjs_version": LITERTJS_VERSION, "android_mode": artifact.extra["android_mode"],
        "mode": f"{artifact.extra['android_mode']} (.tflite)", "runtime_dir": runtime_dir, "is_image": geom is not None,
        "bundled_samples": bool(bundled), "content_hash": "", "precache": [], "on_demand": [], "revisions": {},
        "paths": {},
    }
    render_tree(template_dir("web"), outdir, context)
    render_tree(litert_template(), outdir, context)  # model.js & co. on LiteRT.js, over web_template's
    _retarget_page(outdir / "index.html", runtime_dir)

    content_hash, precache = write_service_worker(outdir, shell["service_worker"], runtime_dir, context)
    return {**metadata, **page, "content_hash": content_hash, "precache": precache}


def _retarget_page(index: Path, runtime_dir: str) -> None:
    """The shell's page names tf.js's runtime (its modulepreload and the runtime line): LiteRT.js's here."""
    text = index.read_text(encoding="utf-8")
    text = text.replace(f'href="{runtime_dir}/tf-runtime.js"', f'href="{runtime_dir}/litert-runtime.js"')
    text = text.replace(">TF.js ", ">LiteRT.js ", 1)
    index.write_text(text, encoding="utf-8", newline="\n")


def write_service_worker(outdir: Path, template: str, runtime_dir: str, context: dict) -> tuple[str, list[str]]:
    """As the TF.js bundle's (web.bundle.write_service_worker), with LiteRT.js's on-demand files: the compat wasm
    only browsers without relaxed SIMD fetch is not precached."""
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
    revisions = {url: file_hashes["index.html" if url == "./" else url].hex()[:16] for url in [*precache, *on_demand]
                 if (url == "./" and "index.html" in file_hashes) or url in file_hashes}
    context.update(content_hash=content_hash, precache=precache, on_demand=on_demand, revisions=revisions)
    sw_text = render_string((template_dir("web") / template).read_text(encoding="utf-8"), context)
    (outdir / sw_name).write_text(sw_text, encoding="utf-8", newline="\n")
    return content_hash, precache


def first_visit_bytes(outdir: Path) -> dict[str, int]:
    """Bytes of the bundle: model, runtime (what the page downloads: the on-demand compat build left out), rest."""
    own = litert_manifest()
    model = (outdir / own["model_file"]).stat().st_size
    rdir = outdir / own["runtime_dir"]
    runtime = sum(p.stat().st_size for p in rdir.iterdir() if p.name not in ON_DEMAND)
    total = sum(p.stat().st_size for p in outdir.rglob("*") if p.is_file())
    return {"model": model, "runtime": runtime, "other": total - model - runtime, "total": total}
