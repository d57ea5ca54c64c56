"""The Android module's names and rendering: ``render_module`` renders ``android_template/`` into the module folder
(model + labels included, with TFLite metadata embedded) from ``module_context``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from packager.kinds import image_outputs, primary_name
from packager.names import default_android_package, jni_library_name, validate_android_package
from packager.render import render_tree, template_dir
from packager.targets.android import metadata as tflite_metadata
from packager.values import check_abi_filters

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec
    from packager.targets.base import Artifact

# The runtimes the module can use (``--android-runtime`` / ``[android] runtime``). Each ships one of the C++
# runners (``runner``, with the files only it needs in ``own_files``); the other runtime's files are not rendered.
RUNTIMES = {
    "bundled": {
        "key": "bundled",
        "name": "LiteRT 2.3 bundled with the app (LiteRT C API: CompiledModel, tensor buffers)",
        "short": "LiteRT C API",
        "version": "2.3.0",
        "coordinates": "com.google.ai.edge.litert:litert:2.3.0",
        "artifact": "com.google.ai.edge.litert:litert",  # pinned with strictly(version) in build.gradle.kts
        "library": "LiteRt",  # libLiteRt.so, packaged from the AAR; the JNI code resolves the C API in it
        "runner": "model_runner_litert.cc",
        "own_files": ("src/main/cpp/model_runner_litert.cc", "src/main/cpp/litert_c_api.h"),
    },
    "play-services": {
        "key": "play-services",
        "name": "LiteRT (TensorFlow Lite) in Google Play services, TFLite C API",
        "short": "TFLite C API",
        "version": "16.4.0",
        "coordinates": "com.google.android.gms:play-services-tflite-java:16.4.0",
        "artifact": "",  # declared with its version as usual (no C API of its own in the module to pin)
        "cmake_package": "tensorflowlite_jni_gms_client",
        "library": "",
        "runner": "model_runner_tflite.cc",
        "own_files": ("src/main/cpp/model_runner_tflite.cc",),
    },
}
DEFAULT_RUNTIME = "bundled"  # its native path is the one verified here end to end (the host check runs it)
RUNTIME = RUNTIMES[DEFAULT_RUNTIME]
COMPILE_SDK = 36  # the highest API level AGP 9.0 supports
NDK_VERSION = "28.2.13676358"  # AGP 9.0's default NDK
MIN_SDK = 24
CMAKE_VERSION = "3.22.1"
COROUTINES_VERSION = "1.10.2"  # kotlinx-coroutines-core the module declares (create() is cancellable with it)
DEFAULT_THREADS = 2
MAX_HOST_SAMPLES = 256  # the host JNI run checks the glue; the full set is validated by ai-edge-litert

def runtime_of(spec: PackageSpec) -> dict:
    key = getattr(spec, "android_runtime", "") or DEFAULT_RUNTIME
    if key not in RUNTIMES:
        from packager.errors import UsageError

        raise UsageError(f"unknown Android runtime {key!r}", hint=f"choose one of {', '.join(RUNTIMES)}")
    return RUNTIMES[key]


# ---- names -----------------------------------------------------------------------------------------------------

def android_package(spec: PackageSpec) -> str:
    return validate_android_package(spec.android_package or default_android_package(spec))


def lib_name(spec: PackageSpec) -> str:
    """The JNI library's name: ``names.jni_library_name`` of the module's namespace."""
    return jni_library_name(android_package(spec))


def jni_prefix(package: str, class_name: str) -> str:
    from packager.targets.android.host.tools import jni_mangle

    return f"Java_{jni_mangle(package.replace('.', '/') + '/' + class_name + 'Native')}_"


# ---- rendering -------------------------------------------------------------------------------------------------

def _template_manifest(package: str) -> dict:
    """Where the model and its labels go inside the module (``__package__`` = the module's namespace)."""
    import tomllib

    manifest = tomllib.loads((template_dir("android") / "template.toml").read_text(encoding="utf-8"))
    return {k: v.replace("__package__", package) for k, v in manifest.items()}


def image_input(source: Source) -> bool:
    """Whether the module takes images (classify(bitmap), the Kotlin preprocessing): one NHWC input with 1 or 3
    channels, float32 (normalised by the preprocessing's mean/std) or an integer type that holds pixels 0..255
    (uint8, int16, uint16, int32: the model normalises; the samples are those pixels too)."""
    from packager.samples import is_pixel_image

    return bool(source.is_image or is_pixel_image(source))


def module_io_names(spec: PackageSpec, model: Path) -> tuple[list[str], list[str], list[str]]:
    """(input names, output names, shared output names) of ``model`` in the order the module's native index numbers
    them (the graph's: LiteRT's C API and TFLite's alike); shared: outputs bound to one tensor with another."""
    return (*tflite_metadata.signature_io_names(model), tflite_metadata.shared_outputs(model))


def module_context(spec: PackageSpec, source: Source, io_names: tuple[list[str], ...]) -> dict:
    """The template's context; ``io_names`` = the .tflite's signature (input names, output names[, the output names
    bound to one tensor with another]) in the graph's order (``module_io_names``)."""
    package = android_package(spec)
    class_name = spec.identifier
    in_names, out_names = io_names[:2]
    shared = set(io_names[2]) if len(io_names) > 2 else set()
    primary = primary_name(spec, source)
    by_name = {t.name: t for t in source.inputs}
    inputs = [{"name": n, "shape": list(by_name[n].sample_shape) if n in by_name else []} for n in in_names]
    ctx = {
        "package": package,
        "class_name": class_name,
        "lib_name": lib_name(spec),
        "module_name": re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower(),
        "jni_prefix": jni_prefix(package, class_name),
        "display_name": spec.display_name,
        "version": spec.version,
        "runtime": runtime_of(spec),
        "compile_sdk": COMPILE_SDK,
        "ndk_version": NDK_VERSION,
        "min_sdk": MIN_SDK,
        "cmake_version": CMAKE_VERSION,
        "coroutines_version": COROUTINES_VERSION,
        "abi_filters": list(check_abi_filters(spec.android_abi_filters, "[android] abi_filters")),
        "default_threads": DEFAULT_THREADS,
        "inputs": inputs,
        "outputs": [{"name": n, "shared": n in shared} for n in out_names],
        "primary_output": primary,  # the wrapper's classify(): the same output on every target (kinds.py)
        "primary_index": out_names.index(primary) if primary in out_names else 0,  # in the .tflite's order
        "labels": list(spec.labels),
        "is_image": image_input(source),
        "pixel_input": image_input(source) and not source.is_image,  # integer pixels, no mean/std
        "image_outputs": [{"name": o.name, "shape": [1, *(int(d) for d in o.shape[1:])]}
                          for o in image_outputs(spec, source) if o.name in out_names],
        "paths": {"package_path": package.replace(".", "/"), "class_name": class_name},
    }
    if ctx["is_image"]:
        h, w, c = (int(d) for d in source.inputs[0].shape[1:4])
        mean, std = ((0.0,) * c, (1.0,) * c) if ctx["pixel_input"] else spec.preprocessing.per_channel(c)
        ctx.update(width=w, height=h, channels=c, color=spec.preprocessing.color, crop=spec.preprocessing.crop,
                   background=list(spec.preprocessing.background),
                   mean=[repr(float(v)) for v in mean], std=[repr(float(v)) for v in std],
                   normalize=spec.preprocessing.normalize)
    return ctx


def render_code(ctx: dict, dst: Path) -> None:
    """Render the template into ``dst`` without the files of the runtimes the module does not use."""
    render_tree(template_dir("android"), dst, ctx)
    for key, runtime in RUNTIMES.items():
        if key != ctx["runtime"]["key"]:
            for rel in runtime["own_files"]:
                (dst / rel).unlink(missing_ok=True)


def render_module(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
                  reference: dict[str, np.ndarray], outdir: Path) -> Path:
    """Write the module into ``outdir`` (e.g. ``OUT/android``): template, model (with metadata), labels.
    Returns the model's path inside the module."""
    outdir = Path(outdir)
    ctx = module_context(spec, source, module_io_names(spec, Path(artifact.path)))
    render_code(ctx, outdir)
    manifest = _template_manifest(ctx["package"])
    model = outdir / manifest["model"]
    model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact.path, model)  # the validated file; metadata was embedded at conversion
    labels = outdir / manifest["labels"]
    labels.write_text(tflite_metadata.labels_text(spec.labels), encoding="utf-8", newline="\n")
    write_golden(spec, artifact, samples, reference, ctx, outdir, manifest, source)
    return Path(manifest["model"])


GOLDEN_MAX_SAMPLES = 8
GOLDEN_MAX_BYTES = 2 * 1024 * 1024  # of inputs: the instrumented test's assets stay small


def write_golden(spec: PackageSpec, artifact: Artifact, samples: SampleSet, reference: dict[str, np.ndarray],
                 ctx: dict, outdir: Path, manifest: dict, source: Source | None = None) -> int:
    """The instrumented test's golden samples: the first samples' model inputs (float32 little-endian, in the
    model's input order, as ``run`` takes them), the original model's outputs for them (in ``OUTPUT_NAMES`` order)
    and golden.properties with their count and the gates of the shipped mode. Returns the count."""
    from packager.modes import judged_gates

    in_names = [t["name"] for t in ctx["inputs"]]
    out_names = [t["name"] for t in ctx["outputs"]]
    per_sample = sum(int(np.prod(np.shape(samples[0][n]))) for n in in_names) * 4 if len(samples) else 0
    count = min(len(samples), GOLDEN_MAX_SAMPLES, max(1, GOLDEN_MAX_BYTES // max(per_sample, 1)))
    inputs = b"".join(np.asarray(samples[i][n], "<f4").tobytes() for i in range(count) for n in in_names)
    outputs = b"".join(np.asarray(reference[n][i], "<f4").tobytes() for i in range(count) for n in out_names)
    gates = judged_gates("android", artifact, artifact.mode, spec.tolerances)
    for key, data in (("golden_inputs", inputs), ("golden_outputs", outputs)):
        (outdir / manifest[key]).parent.mkdir(parents=True, exist_ok=True)
        (outdir / manifest[key]).write_bytes(data)
    (outdir / manifest["golden_properties"]).write_text(
        f"# Written by packager: {count} samples, gates of the shipped mode ({artifact.mode})\n"
        f"samples={count}\nmode={artifact.mode}\nmax_abs_error={gates['max_abs_error']!r}\n"
        f"min_top1={gates['min_top1']!r}\n", encoding="utf-8", newline="\n")
    if source is not None and ctx["is_image"] and len(samples):  # encoded images: the Bitmap path
        from packager.targets.android import golden_images

        golden_images.write(spec, source, samples, reference, ctx, outdir,
                            (outdir / manifest["golden_properties"]).parent, gates)
    return count
