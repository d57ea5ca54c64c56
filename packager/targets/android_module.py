"""The Android drop-in Gradle library module: rendering it and checking it on this machine.

``render_module`` renders ``android_template/`` into the module folder (model + labels included, with TFLite
metadata embedded); ``module_checks`` verifies what can be verified here:

1. ``kotlin-compiles``: kotlinc 2.4 against stubs generated from AOSP's API signature file (API 29), with the
   README's Kotlin code blocks; its Java code blocks with javac against the result;
2. ``jni-compiles``: the JNI C++ with ``-Wall -Werror`` against Debian's NDK headers and the TFLite C API, with
   the JNI header generated from the *compiled Kotlin* force-included (a signature mismatch is a compile
   error) and the defined ``Java_*`` symbols compared with the Kotlin ``external`` functions (a missing or
   extra name fails);
3. ``jni-runs-fp32``: the JNI core built for this host, called from a JVM through the module's own Kotlin
   classes, runs the fp32 ``.tflite`` on the sample set with the real TFLite C library (2.2.0);
4. ``manifest-links``: ``aapt2 link`` of the manifest against the platform's ``framework-res.apk``;
5. ``gradle-build``: always UNVERIFIED here (no Android Gradle Plugin reachable);
plus ``tflite-metadata``: the metadata round-trips and the model with it still runs identically.

A check whose tool is missing is SKIPPED with the reason — FAIL when ``CI=true``.

Checks 1-2 and the host build of 3 need only the module's code, which depends on the model only through its
signature: ``precompile`` runs them on a rendering from the signature known before the conversion (during a Keras
model's export, a guess of it), and ``module_checks`` uses that result only for byte-identical code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from ..compare import compare, gates_for
from ..errors import ToolMissing
from ..kinds import primary_name
from ..names import default_android_package, validate_android_package
from ..render import render_tree, template_dir
from ..values import check_abi_filters
from . import tflite_metadata

if TYPE_CHECKING:
    from ..samples import SampleSet
    from ..source import Source
    from ..spec import PackageSpec
    from .base import Artifact

RUNTIME = {
    "name": "LiteRT (TensorFlow Lite) in Google Play services, C API",
    "coordinates": "com.google.android.gms:play-services-tflite-java:16.4.0",
    "cmake_package": "tensorflowlite_jni_gms_client",
}
COMPILE_SDK = 35
MIN_SDK = 24
CMAKE_VERSION = "3.22.1"
DEFAULT_THREADS = 2
MAX_HOST_SAMPLES = 256  # the host JNI run checks the glue; the full set is validated by ai-edge-litert

# ---- names -----------------------------------------------------------------------------------------------------

def android_package(spec: PackageSpec) -> str:
    return validate_android_package(spec.android_package or default_android_package(spec))


def lib_name(spec: PackageSpec) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", spec.identifier).lower() + "_jni"


def jni_prefix(package: str, class_name: str) -> str:
    from ..runtimes.android_host import jni_mangle

    return f"Java_{jni_mangle(package.replace('.', '/') + '/' + class_name + 'Native')}_"


# ---- rendering -------------------------------------------------------------------------------------------------

def _template_manifest(package: str) -> dict:
    """Where the model and its labels go inside the module (``__package__`` = the module's namespace)."""
    import tomllib

    manifest = tomllib.loads((template_dir("android") / "template.toml").read_text(encoding="utf-8"))
    return {k: v.replace("__package__", package) for k, v in manifest.items()}


def module_context(spec: PackageSpec, source: Source, io_names: tuple[list[str], list[str]]) -> dict:
    """The template's context; ``io_names`` = the .tflite's signature (input names, output names), in its order."""
    package = android_package(spec)
    class_name = spec.identifier
    in_names, out_names = io_names
    primary = primary_name(spec, source)
    by_name = {t.name: t for t in source.inputs}
    inputs = [{"name": n, "shape": list(by_name[n].sample_shape) if n in by_name else []} for n in in_names]
    ctx = {
        "package": package,
        "class_name": class_name,
        "lib_name": lib_name(spec),
        "module_name": lib_name(spec).removesuffix("_jni"),
        "jni_prefix": jni_prefix(package, class_name),
        "display_name": spec.display_name,
        "version": spec.version,
        "runtime": RUNTIME,
        "compile_sdk": COMPILE_SDK,
        "min_sdk": MIN_SDK,
        "cmake_version": CMAKE_VERSION,
        "abi_filters": list(check_abi_filters(spec.android_abi_filters, "[android] abi_filters")),
        "default_threads": DEFAULT_THREADS,
        "inputs": inputs,
        "outputs": [{"name": n} for n in out_names],
        "primary_output": primary,  # the wrapper's classify(): the same output on every target (kinds.py)
        "primary_index": out_names.index(primary) if primary in out_names else 0,  # in the .tflite's order
        "labels": list(spec.labels),
        "is_image": bool(source.is_image),
        "paths": {"package_path": package.replace(".", "/"), "class_name": class_name},
    }
    if source.is_image:
        h, w, c = (int(d) for d in source.inputs[0].shape[1:4])
        mean, std = spec.preprocessing.per_channel(c)
        ctx.update(width=w, height=h, channels=c, color=spec.preprocessing.color,
                   mean=[repr(float(v)) for v in mean], std=[repr(float(v)) for v in std])
    return ctx


def render_module(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
                  reference: dict[str, np.ndarray], outdir: Path) -> Path:
    """Write the module into ``outdir`` (e.g. ``OUT/android``): template, model (with metadata), labels.
    Returns the model's path inside the module."""
    outdir = Path(outdir)
    ctx = module_context(spec, source, tflite_metadata.signature_io_names(Path(artifact.path)))
    render_tree(template_dir("android"), outdir, ctx)
    manifest = _template_manifest(ctx["package"])
    model = outdir / manifest["model"]
    model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact.path, model)  # the validated file; metadata was embedded at conversion
    labels = outdir / manifest["labels"]
    labels.write_text(tflite_metadata.labels_text(spec.labels), encoding="utf-8", newline="\n")
    return Path(manifest["model"])


# ---- checks ----------------------------------------------------------------------------------------------------

def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class _CheckFailed(Exception):
    pass


class _Unverified(Exception):
    pass


@contextmanager
def _timed(name: str, out: list[Check]):
    """Run a check body; it returns via ``result`` (status, detail). Tool gaps become SKIPPED (FAIL in CI)."""
    result: dict = {}
    t0 = time.perf_counter()
    try:
        yield result
        status, detail = PASS, result.get("detail", "")
    except ToolMissing as e:
        status = FAIL if _in_ci() else SKIPPED
        detail = f"{e.message}; {e.hint}" + (" (CI=true: a missing tool is a failure)" if _in_ci() else "")
    except _CheckFailed as e:
        status, detail = FAIL, str(e)
    except _Unverified as e:
        status, detail = UNVERIFIED, str(e)
    except Exception as e:  # a check must report, never crash the build
        status, detail = FAIL, f"{type(e).__name__}: {e}"
    out.append(Check(name, status, detail, time.perf_counter() - t0))


def _needs_kotlin(kotlin_check: Check) -> None:
    """A check that needs the compiled Kotlin classes: SKIPPED like kotlin-compiles when its tools are
    missing, FAIL when kotlin-compiles failed."""
    if kotlin_check.status == SKIPPED:
        raise ToolMissing("needs the compiled Kotlin classes, and kotlin-compiles was skipped",
                          hint="run .ci/setup-android.sh")
    raise _CheckFailed("needs the compiled Kotlin classes (kotlin-compiles did not pass)")


CODE_DIRS = ("src/main/java", "src/main/cpp")  # what the compile checks read, with the README's code blocks
README = "README.md"


def code_snapshot(module_dir: Path) -> dict[str, bytes]:
    """The module's Kotlin and C++ files and its README (whose code blocks are compiled), by relative path."""
    files = [p for d in CODE_DIRS for p in sorted((module_dir / d).rglob("*")) if p.is_file()]
    files += [module_dir / README] if (module_dir / README).is_file() else []
    return {p.relative_to(module_dir).as_posix(): p.read_bytes() for p in files}


@dataclass
class Compiled:
    """The compile checks (kotlin-compiles, jni-compiles) of one rendering of the module's code, and the host
    build of its JNI core that jni-runs-fp32 runs (or why there is none)."""

    code: dict[str, bytes]
    checks: list[Check]
    classes: Path
    lib_dir: Path | None
    host_error: Exception | None


def compile_code(ctx: dict, code_dir: Path, work: Path) -> Compiled:
    from ..runtimes import android_host as host

    native_class = f"{ctx['package']}.{ctx['class_name']}Native"
    checks: list[Check] = []
    classes = work / "classes"
    # 1. Kotlin compiles against the Android API stubs.
    kotlin_ok = False
    with _timed("kotlin-compiles", checks) as r:
        from ..runtimes import android_snippets

        sources = sorted((code_dir / "src/main/java").rglob("*.kt"))
        kt_snippets, java_snippets = android_snippets.write_snippets(code_dir / README, work / "readme-snippets")
        res = host.compile_kotlin(sources + kt_snippets, classes)
        if res.returncode != 0:
            raise _CheckFailed("kotlinc failed (README_<n>.kt: the n-th code block of README.md):\n"
                               + host.first_lines(res.output))
        kotlin_ok = True
        if java_snippets:
            res = android_snippets.compile_java(java_snippets, classes, work / "readme-java")
            if res.returncode != 0:
                raise _CheckFailed("javac failed on README.md's Java code (README_<n>.java: its n-th code block):\n"
                                   + host.first_lines(res.output))
        r["detail"] = (f"kotlinc 2.4.20 compiled {len(sources)} Kotlin files and README.md's {len(kt_snippets)} "
                       f"Kotlin code blocks against Android API 29 stubs ({host.android_stubs_jar().name}, from AOSP "
                       f"api/current.txt); javac compiled its {len(java_snippets)} Java code blocks against them")

    # 2. JNI C++ compiles against the NDK headers and matches the Kotlin externals.
    with _timed("jni-compiles", checks) as r:
        if not kotlin_ok:
            _needs_kotlin(checks[0])
        r["detail"] = _check_jni_compiles(host, code_dir, classes, native_class, work)

    # The JNI core built for this host (jni-runs-fp32 runs it, and reports a failure here).
    lib_dir = host_error = None
    try:
        if not kotlin_ok:
            _needs_kotlin(checks[0])
        lib_dir = _build_host_core(host, code_dir, classes, ctx, work)
    except Exception as e:
        host_error = e
    return Compiled(code_snapshot(code_dir), checks, classes, lib_dir, host_error)


def precompile(spec: PackageSpec, preview: Source, workdir: Path) -> Compiled:
    """``compile_code`` on the module rendered from ``preview`` (the model's signature, read before the
    conversion and possibly guessed before the export), so the compilers run while the model converts.
    ``module_checks`` uses the result only if the module it checks has byte-identical code."""
    ctx = module_context(spec, preview, ([t.name for t in preview.inputs], [t.name for t in preview.outputs]))
    work = Path(workdir) / "precompiled"
    if work.exists():
        shutil.rmtree(work)
    render_tree(template_dir("android"), work / "module", ctx)
    return compile_code(ctx, work / "module", work)


AHEAD = " (run ahead of the conversion on code byte-identical to this module's)"


def _precompiled(prepared, outdir: Path) -> Compiled | None:
    """The result of ``precompile`` (a Future) if it compiled exactly this module's code, else None."""
    if prepared is None:
        return None
    try:
        compiled = prepared.result()
    except Exception:  # the checks below compile the module themselves and report what fails
        return None
    if compiled.code != code_snapshot(outdir):  # a wrong guess of the signature: not this module's code
        return None
    checks = [dataclasses.replace(c, detail=c.detail + AHEAD) if c.status == PASS else c for c in compiled.checks]
    return dataclasses.replace(compiled, checks=checks)


def module_checks(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet,
                  reference: dict[str, np.ndarray], outdir: Path) -> list[Check]:
    """The checks listed in this module's docstring. ``artifact.extra["prepared"]``, a Future of ``precompile``,
    stands in for the compile checks when it compiled this very code."""
    from ..runtimes import android_host as host

    outdir = Path(outdir)
    ctx = module_context(spec, source, tflite_metadata.signature_io_names(Path(artifact.path)))
    work = Path(tempfile.mkdtemp(prefix="packager-android-"))
    try:
        compiled = _precompiled(artifact.extra.get("prepared"), outdir) or compile_code(ctx, outdir, work)
        checks = list(compiled.checks)

        # 3. The JNI core runs the fp32 model on the host through the TFLite C API.
        with _timed("jni-runs-fp32", checks) as r:
            if compiled.host_error is not None:
                raise compiled.host_error
            r["detail"] = _check_host_run(host, spec, source, artifact, samples, reference, compiled.classes,
                                          compiled.lib_dir, ctx, work)

        # 4. The manifest links against the platform.
        with _timed("manifest-links", checks) as r:
            r["detail"] = _check_manifest(host, outdir, ctx["package"], work)

        # 5. The Gradle build cannot run here.
        with _timed("gradle-build", checks):
            raise _Unverified(
                "not run: the Android Gradle Plugin, the NDK toolchain and the runtime AAR "
                f"({RUNTIME['coordinates']}) live on Google Maven / Maven Central, which this machine cannot "
                "reach (Debian's Gradle is 4.4.1, too old for AGP); run `./gradlew :<module>:assemble` in an app")

        with _timed("tflite-metadata", checks) as r:
            r["detail"] = _check_metadata(spec, outdir, artifact, samples)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return checks


def _kotlin_jni_header(host, classes: Path, native_class: str, work: Path):
    """The external functions of the compiled ``native_class`` and a JNI header declaring them."""
    methods = host.native_methods(classes, native_class.replace(".", "/"))
    if not methods:
        raise _CheckFailed(f"{native_class} declares no external functions")
    header = work / "kotlin_jni.h"
    header.write_text(host.jni_header(methods), encoding="utf-8")
    return methods, header


def _check_jni_compiles(host, outdir: Path, classes: Path, native_class: str, work: Path) -> str:
    ndk_inc, ndk_jni = host.ndk_headers()
    tfl_inc, _ = host.tflite_c()
    cxx = host.cxx()
    methods, header = _kotlin_jni_header(host, classes, native_class, work)
    names = [m.name for m in methods]
    expected = {host.jni_symbol(m, names.count(m.name) > 1) for m in methods}
    cpp_dir = outdir / "src/main/cpp"
    sources = sorted(cpp_dir.glob("*.cc"))
    objects = []
    for src in sources:
        obj = work / (src.stem + ".o")
        res = host.run([cxx, *host.CXX_WARNINGS, "-c", "-o", obj, "-DTFLITE_IN_GMSCORE",
                        "-DTFLITE_WITH_STABLE_ABI", "-I", ndk_jni, "-I", ndk_inc, "-I", tfl_inc, "-I", cpp_dir,
                        "-include", header, src])
        if res.returncode != 0:
            raise _CheckFailed(f"{src.name} does not compile with -Wall -Werror:\n" + host.first_lines(res.output))
        objects.append(obj)
    defined = host.defined_jni_symbols(objects)
    missing, extra = sorted(expected - defined), sorted(defined - expected)
    if missing or extra:
        raise _CheckFailed("JNI names do not match the Kotlin external functions: "
                           + (f"not defined in C++: {', '.join(missing)}" if missing else "")
                           + ("; " if missing and extra else "")
                           + (f"defined but not declared in Kotlin: {', '.join(extra)}" if extra else ""))
    return (f"{len(sources)} C++ files compile (g++ {' '.join(host.CXX_WARNINGS)}) against Debian's NDK headers "
            f"and the TFLite C API headers, with the JNI header generated from the compiled Kotlin "
            f"force-included; the {len(expected)} Java_* symbols match {native_class}'s external functions")


def _argb_inputs(spec: PackageSpec, source: Source, x: np.ndarray) -> np.ndarray | None:
    """The ARGB pixels the preprocessed image sample ``x`` (1,H,W,C) came from, or None if it did not come from
    integer pixels (e.g. a .npy sample set) — then the Kotlin preprocessing cannot be exercised."""
    c = x.shape[-1]
    mean, std = (np.asarray(v, np.float64) for v in spec.preprocessing.per_channel(c))
    px = x.astype(np.float64) * std + mean
    rounded = np.clip(np.rint(px), 0, 255)
    if np.max(np.abs(rounded - px)) > 1e-3:
        return None
    rounded = rounded.astype(np.int64).reshape(-1, c)
    if c == 1:
        r = g = b = rounded[:, 0]
    elif spec.preprocessing.color == "bgr":
        b, g, r = rounded[:, 0], rounded[:, 1], rounded[:, 2]
    else:
        r, g, b = rounded[:, 0], rounded[:, 1], rounded[:, 2]
    argb = (0xFF << 24) | (r << 16) | (g << 8) | b
    return argb.astype(np.uint32).view(np.int32)


HOST_CORE_SOURCES = ["model_runner.cc", "runner_registry.cc", "jni_bridge.cc"]


def _build_host_core(host, code_dir: Path, classes: Path, ctx: dict, work: Path) -> Path:
    """The module's JNI core (everything but the Android-only jni_assets) as a host library in ``work/lib``; returns
    that folder."""
    lib_dir = work / "lib"
    header = work / "kotlin_jni.h"
    if not header.is_file():  # jni-compiles writes it, unless it stopped before
        _, header = _kotlin_jni_header(host, classes, f"{ctx['package']}.{ctx['class_name']}Native", work)
    res = host.build_host_library(code_dir / "src/main/cpp", HOST_CORE_SOURCES,
                                  lib_dir / f"lib{ctx['lib_name']}.so", header)
    if res.returncode != 0:
        raise _CheckFailed("host build of the JNI core failed:\n" + host.first_lines(res.output))
    return lib_dir


def _check_host_run(host, spec, source, artifact, samples, reference, classes: Path, lib_dir: Path, ctx: dict,
                    work: Path) -> str:
    float_path = Path(artifact.extra.get("float_path") or artifact.path)
    if artifact.extra.get("float_path") is None and artifact.mode not in ("fp32", "float32"):
        raise _CheckFailed(f"no fp32 model to run (artifact mode {artifact.mode!r} and no extra['float_path']); "
                           "node-tflite's TFLite 2.2.0 gives wrong numbers for quantized models")
    from ..runtimes import android_jvm_runner as jvm

    res, runner_dir = jvm.compile_runner(work)
    if res.returncode != 0:
        raise _CheckFailed("javac of the host runner failed:\n" + host.first_lines(res.output))

    in_names, out_names = tflite_metadata.signature_io_names(float_path)
    batches = [samples[i] for i in range(min(len(samples), MAX_HOST_SAMPLES))]
    use_argb = bool(source.is_image) and len(in_names) == 1
    chunks = []
    for batch in batches:
        for name in in_names:
            x = np.asarray(batch[name], np.float32)
            argb = _argb_inputs(spec, source, x) if use_argb else None
            if use_argb and argb is None:
                use_argb = False
            chunks.append((x, argb))
    blob = bytearray()
    for x, argb in chunks:
        if use_argb:
            blob += np.int32(argb.size).astype("<i4").tobytes() + argb.astype("<i4").tobytes()
        else:
            blob += x.astype("<f4").tobytes()
    (work / "in.bin").write_bytes(bytes(blob))
    pre_class = f"{ctx['package']}.{ctx['class_name']}Preprocessing" if use_argb else "-"
    res = jvm.run_on_host(runner_dir, classes, lib_dir, [
        f"{ctx['package']}.{ctx['class_name']}Native", pre_class, float_path, work / "in.bin", work / "out.bin",
        str(len(batches)), str(DEFAULT_THREADS), "argb" if use_argb else "float"])
    if res.returncode != 0:
        raise _CheckFailed("the JVM runner failed:\n" + host.first_lines(res.output))
    if "closed-handle: java.lang.IllegalStateException" not in res.output:
        raise _CheckFailed("a closed handle did not raise IllegalStateException: " + host.first_lines(res.output))

    out = np.frombuffer((work / "out.bin").read_bytes(), dtype="<f4")
    sizes = [int(np.prod(reference[n].shape[1:])) for n in out_names]
    per_sample = sum(sizes)
    if out.size != per_sample * len(batches):
        raise _CheckFailed(f"runner wrote {out.size} floats, expected {per_sample * len(batches)}")
    out = out.reshape(len(batches), per_sample)
    ref = {n: reference[n][:len(batches)] for n in out_names}
    got, offset = {}, 0
    for name, size in zip(out_names, sizes):
        got[name] = out[:, offset:offset + size].reshape(ref[name].shape)
        offset += size
    cmp = compare(ref, got, gates_for("android", "fp32", spec.tolerances))
    if not cmp.ok:
        raise _CheckFailed("host JNI run of the fp32 model drifted from the reference: " + cmp.reason)
    m = cmp.metrics
    figures = f"max abs err {m['max_abs_error']:.2e}" + (
        f", top-1 agreement {m['top1_agreement']:.1%}" if m["top1_agreement"] is not None else "")
    how = ("pixels through the Kotlin preprocessing" if use_argb
           else "preprocessed samples (Kotlin preprocessing not exercised: samples are not integer pixels)"
           if source.is_image else "raw samples")
    return (f"{len(batches)} of {len(samples)} samples, {how}, JVM -> JNI -> TFLite C API 2.2.0 (node-tflite) on {float_path.name}: "
            f"{figures} (fp32 gates)")


def _check_manifest(host, outdir: Path, package: str, work: Path) -> str:
    exe, framework = host.aapt2()
    manifest = outdir / "src/main/AndroidManifest.xml"
    text = manifest.read_text(encoding="utf-8")
    # AGP writes the Gradle `namespace` into the merged manifest as package=...; aapt2 needs it.
    merged = work / "AndroidManifest.xml"
    merged.write_text(re.sub(r"<manifest\b", f'<manifest package="{package}"', text, count=1), encoding="utf-8")
    res = host.run([exe, "link", "--static-lib", "-I", framework, "--manifest", merged, "-o", work / "manifest.apk"])
    if res.returncode != 0:
        raise _CheckFailed("aapt2 link rejected AndroidManifest.xml:\n" + host.first_lines(res.output))
    return f"aapt2 link --static-lib against {framework} (package {package} as AGP merges it from `namespace`)"


def _check_metadata(spec: PackageSpec, outdir: Path, artifact: Artifact, samples: SampleSet) -> str:
    model = outdir / _template_manifest(android_package(spec))["model"]
    meta = tflite_metadata.read_metadata(model)
    if meta["name"] != spec.display_name:
        raise _CheckFailed(f"metadata name {meta['name']!r} != {spec.display_name!r}")
    if spec.labels:
        text = meta["files"].get(tflite_metadata.LABELS_FILE)
        if text != tflite_metadata.labels_text(spec.labels):
            raise _CheckFailed("labels.txt zipped in the model does not match the labels")
        out_names = tflite_metadata.signature_io_names(model)[1]
        index = out_names.index(spec.primary_output) if spec.primary_output in out_names else 0
        if (tflite_metadata.LABELS_FILE, tflite_metadata.ASSOCIATED_FILE_TENSOR_AXIS_LABELS) not in \
                meta["outputs"][index]["associated_files"]:
            raise _CheckFailed(f"the primary output {out_names[index]!r} has no TENSOR_AXIS_LABELS associated file")
    drift = tflite_metadata.outputs_differ(Path(artifact.path), model, samples)
    if drift:
        raise _CheckFailed(f"the model with metadata gives different outputs from the validated one: {drift}")
    norm = [(t["name"], t["mean"], t["std"]) for t in meta["inputs"] if "mean" in t]
    return (f"metadata (schema M001, min parser {meta['min_parser_version']}) round-trips: name, "
            f"{len(spec.labels)} labels zipped as labels.txt (TENSOR_AXIS_LABELS)"
            + (f", normalisation mean={norm[0][1]} std={norm[0][2]}" if norm else "")
            + "; ai-edge-litert gives identical outputs with and without it")
