"""The Android module's checks that run this machine's tools on the module (checks.py runs them in order):
the JNI C++ compiled against the NDK headers and matched with the Kotlin externals, the JNI core built for the host
and run from a JVM (bundled runtime: the shipped .tflite in its shipped mode on the LiteRT C API of the
ai-edge-litert wheel; play-services runtime: the fp32 model on node-tflite's TFLite 2.2.0 C API), the manifest
linked with aapt2, the TFLite metadata round-tripped. Each returns its detail or raises ``_CheckFailed``."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from packager.compare import compare
from packager.modes import judged_gates
from packager.targets.android import metadata as tflite_metadata
from packager.targets.android.render import DEFAULT_THREADS, MAX_HOST_SAMPLES, _template_manifest, android_package

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec
    from packager.targets.base import Artifact


class _CheckFailed(Exception):
    pass


def _kotlin_jni_header(host, classes: Path, native_class: str, work: Path):
    """The external functions of the compiled ``native_class`` and a JNI header declaring them."""
    methods = host.native_methods(classes, native_class.replace(".", "/"))
    if not methods:
        raise _CheckFailed(f"{native_class} declares no external functions")
    header = work / "kotlin_jni.h"
    header.write_text(host.jni_header(methods), encoding="utf-8")
    return methods, header


def _check_jni_compiles(host, outdir: Path, classes: Path, native_class: str, work: Path,
                        runtime: str = "bundled") -> str:
    ndk_inc, ndk_jni = host.ndk_headers()
    if runtime == "play-services":  # the TFLite C API headers (the Play services AAR ships them via Prefab)
        runtime_flags = ["-DTFLITE_IN_GMSCORE", "-DTFLITE_WITH_STABLE_ABI", "-I", host.tflite_c()[0]]
        against = "and the TFLite C API headers"
    else:  # the LiteRT C API is declared in the module itself (litert_c_api.h)
        runtime_flags, against = [], "(the LiteRT C API declared in litert_c_api.h)"
    cxx = host.cxx()
    methods, header = _kotlin_jni_header(host, classes, native_class, work)
    names = [m.name for m in methods]
    expected = {host.jni_symbol(m, names.count(m.name) > 1) for m in methods}
    cpp_dir = outdir / "src/main/cpp"
    sources = sorted(cpp_dir.glob("*.cc"))
    objects = [work / (src.stem + ".o") for src in sources]
    # each file on its own, as the NDK's CMake compiles them, all at once (the module's checks wait for the last)
    with ThreadPoolExecutor(max_workers=max(1, len(sources))) as pool:
        runs = list(pool.map(lambda src, obj: host.run([cxx, *host.CXX_WARNINGS, "-fPIC", "-c", "-o", obj,
                                                         *runtime_flags, "-I", ndk_jni, "-I", ndk_inc, "-I", cpp_dir,
                                                         "-include", header, src]), sources, objects))
    for src, res in zip(sources, runs):
        if res.returncode != 0:
            raise _CheckFailed(f"{src.name} does not compile with -Wall -Werror:\n" + host.first_lines(res.output))
    defined = host.defined_jni_symbols(objects)
    missing, extra = sorted(expected - defined), sorted(defined - expected)
    if missing or extra:
        raise _CheckFailed("JNI names do not match the Kotlin external functions: "
                           + (f"not defined in C++: {', '.join(missing)}" if missing else "")
                           + ("; " if missing and extra else "")
                           + (f"defined but not declared in Kotlin: {', '.join(extra)}" if extra else ""))
    return (f"{len(sources)} C++ files compile (g++ {' '.join(host.CXX_WARNINGS)}) against Debian's NDK headers "
            f"{against}, with the JNI header generated from the compiled Kotlin "
            f"force-included; the {len(expected)} Java_* symbols match {native_class}'s external functions")


def _argb_inputs(spec: PackageSpec, source: Source, x: np.ndarray, pixels: bool = False) -> np.ndarray | None:
    """The ARGB pixels the preprocessed image sample ``x`` (1,H,W,C) came from, or None if it did not come from
    integer pixels (e.g. a .npy sample set) — then the Kotlin preprocessing cannot be exercised. ``pixels``: ``x``
    is the pixels themselves (a model that takes uint8 pixels: no mean/std)."""
    c = x.shape[-1]
    if spec.preprocessing.standardised and not pixels:  # each image's own mean/std: not invertible from the input
        return None
    mean, std = (np.asarray(v, np.float64) for v in (((0.0,) * c, (1.0,) * c) if pixels
                                                     else spec.preprocessing.per_channel(c)))
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


HOST_CORE_SOURCES = ["model_runner_litert.cc", "runner_registry.cc", "jni_bridge.cc"]  # the bundled runtime's


def host_core_sources(runtime: dict) -> list[str]:
    """The module's JNI core for ``runtime`` (one of render.RUNTIMES): every C++ file it ships (none calls Android:
    the model asset is mapped by the Kotlin side and handed over as a direct ByteBuffer)."""
    return [runtime["runner"], "runner_registry.cc", "jni_bridge.cc"]


def _build_host_core(host, code_dir: Path, classes: Path, ctx: dict, work: Path) -> Path:
    """The module's JNI core (all of its C++) as a host library in ``work/lib``, linked
    from jni-compiles' objects (bundled runtime) or compiled for the host; returns that folder. For the bundled
    runtime the folder also holds (a link to) the wheel's libLiteRt.so, which the module's Kotlin loads with
    System.loadLibrary("LiteRt") exactly as on Android."""
    lib_dir = work / "lib"
    header = work / "kotlin_jni.h"
    if not header.is_file():  # jni-compiles writes it, unless it stopped before
        _, header = _kotlin_jni_header(host, classes, f"{ctx['package']}.{ctx['class_name']}Native", work)
    runtime = ctx["runtime"]
    out_so = lib_dir / f"lib{ctx['lib_name']}.so"
    objects = [work / (Path(name).stem + ".o") for name in host_core_sources(runtime)]
    if runtime["key"] == "bundled" and all(o.is_file() for o in objects):  # jni-compiles built them (-fPIC)
        res = host.link_host_library(objects, out_so)
    else:  # play-services (other macros and a linked C library), or jni-compiles stopped early
        res = host.build_host_library(code_dir / "src/main/cpp", host_core_sources(runtime), out_so, header,
                                      runtime["key"])
    if res.returncode != 0:
        raise _CheckFailed("host build of the JNI core failed:\n" + host.first_lines(res.output))
    if runtime["library"]:
        folder, _ = host.litert_lib()
        link = lib_dir / f"lib{runtime['library']}.so"
        link.unlink(missing_ok=True)
        link.symlink_to(folder / link.name)
    return lib_dir


def _host_model(spec: PackageSpec, artifact: Artifact, outdir: Path, runtime: dict) -> tuple[Path, str]:
    """(the .tflite the host run executes, its mode). Bundled: the module's own model file in its shipped mode.
    Play services (checked on node-tflite's TFLite 2.2.0, which gives wrong numbers for quantized models): the fp32
    model the artifact was quantized from."""
    if runtime["key"] == "bundled":
        return outdir / _template_manifest(android_package(spec))["model"], artifact.mode
    float_path = artifact.extra.get("float_path")
    if float_path is None and artifact.mode not in ("fp32", "float32"):
        raise _CheckFailed(f"no fp32 model to run (artifact mode {artifact.mode!r} and no extra['float_path']); "
                           "node-tflite's TFLite 2.2.0 gives wrong numbers for quantized models")
    return Path(float_path or artifact.path), "fp32"


def _check_host_run(host, spec, source, artifact, samples, reference, classes: Path, lib_dir: Path, ctx: dict,
                    work: Path, outdir: Path | None = None) -> str:
    """The module's Kotlin + JNI core on this host's JVM runs the model on the samples (images: from their pixels
    through the Kotlin preprocessing) and must agree with the reference under the gates of the mode it runs."""
    runtime = ctx["runtime"]
    model, mode = _host_model(spec, artifact, Path(outdir or "."), runtime)
    from packager.targets.android.host import jvm_runner as jvm

    res, runner_dir = jvm.compile_runner(work)
    if res.returncode != 0:
        raise _CheckFailed("javac of the host runner failed:\n" + host.first_lines(res.output))

    # the module's own names, in the order its native index and INPUT_NAMES / OUTPUT_NAMES number them
    in_names, out_names = [t["name"] for t in ctx["inputs"]], [t["name"] for t in ctx["outputs"]]
    in_types = _input_dtypes(model)
    batches = [samples[i] for i in range(min(len(samples), MAX_HOST_SAMPLES))]
    use_argb = bool(ctx["is_image"]) and len(in_names) == 1 and (  # integer pixels (int32 too): classify(bitmap)'s
        bool(ctx["pixel_input"]) or in_types.get(in_names[0]) not in _RAW_INPUTS)  # floats, rounded in the JNI core
    chunks = []
    for batch in batches:
        for name in in_names:
            x = np.asarray(batch[name])
            argb = _argb_inputs(spec, source, x.astype(np.float32), ctx["pixel_input"]) if use_argb else None
            if use_argb and argb is None:
                use_argb = False
            chunks.append((name, x, argb))
    blob = bytearray()
    for name, x, argb in chunks:
        if use_argb:
            blob += np.int32(argb.size).astype("<i4").tobytes() + argb.astype("<i4").tobytes()
        else:  # int32/int64/bool tensors take their own type (runTyped), the others floats
            blob += x.astype(_RAW_INPUTS.get(in_types.get(name), "<f4")).tobytes()
    (work / "in.bin").write_bytes(bytes(blob))
    bundled = runtime["key"] == "bundled"  # the LiteRT C API names tensors by the signature; TFLite's C API does not
    (work / "in.names").write_bytes(_names_blob([n if bundled else f"#{i}" for i, n in enumerate(in_names)]))
    pre_class = f"{ctx['package']}.{ctx['class_name']}Preprocessing" if use_argb else "-"
    res = jvm.run_on_host(runner_dir, classes, lib_dir, [
        f"{ctx['package']}.{ctx['class_name']}Native", pre_class, model, work / "in.bin", work / "out.bin",
        str(len(batches)), str(DEFAULT_THREADS), "argb" if use_argb else "float", work / "in.names"])
    if res.returncode != 0:
        raise _CheckFailed("the JVM runner failed: " + host.first_lines(res.output))
    if "closed-handle: java.lang.IllegalStateException" not in res.output:
        raise _CheckFailed("a closed handle did not raise IllegalStateException: " + host.first_lines(res.output))
    shared = frozenset(t["name"] for t in ctx["outputs"] if t.get("shared"))
    reference = _per_sample(reference, len(samples))
    got = _named_outputs((work / "out.bin.names").read_bytes(), (work / "out.bin").read_bytes(), out_names,
                         reference, len(batches), bundled, shared)
    ref = {n: reference[n][:len(batches)] for n in out_names}
    kinds = {n: k for n, k in (getattr(spec, "output_kinds", None) or {}).items() if n in ref}
    cmp = compare(ref, got, judged_gates("android", artifact, mode, spec.tolerances), kinds or None)
    if runtime["key"] == "bundled":
        _, version = host.litert_lib()
        where = f"LiteRT C API {version} (libLiteRt.so of the ai-edge-litert {version} wheel; CompiledModel, CPU)"
    else:
        where = "TFLite C API 2.2.0 (node-tflite)"
    if not cmp.ok:
        raise _CheckFailed(f"host JNI run of the {mode} model {model.name} on {where} drifted from the reference "
                           f"({mode} gates): " + cmp.reason)
    m = cmp.metrics
    figures = f"max abs err {m['max_abs_error']:.2e}" + (
        f", top-1 agreement {m['top1_agreement']:.1%}" if m.get("top1_agreement") is not None else "")
    how = ("pixels through the Kotlin preprocessing" if use_argb
           else "preprocessed samples (Kotlin preprocessing not exercised: samples are not integer pixels)"
           if ctx["is_image"] else "raw samples")
    return (f"{len(batches)} of {len(samples)} samples, {how}, JVM -> JNI -> {where} on the {mode} model "
            f"{model.name}{' shipped in the module' if runtime['key'] == 'bundled' else ''}: {figures} "
            f"({mode} gates)")


_RAW_INPUTS = {np.dtype(np.int32): "<i4", np.dtype(np.int64): "<i8", np.dtype(np.bool_): "u1"}  # runTyped's
_OUTPUT_DTYPES = {2: "<i4", 4: "<i8", 6: "u1"}  # element type code -> what runTyped returns; the others: float32


def _input_dtypes(model: Path) -> dict:
    """{signature input name: numpy dtype of its tensor} of the .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model)).get_signature_runner("serving_default")
    return {name: np.dtype(d["dtype"]) for name, d in runner.get_input_details().items()}


def _names_blob(names: list[str]) -> bytes:
    """Names as the host runner reads them (readNames): int32 length + UTF-8 bytes each, so any name works."""
    return b"".join(len(b).to_bytes(4, "big") + b for b in (n.encode("utf-8") for n in names))


def _per_sample(reference: dict, n: int) -> dict:
    """One row per sample: an output with no batch dimension (shape (6,) from a reduction over the batch, in each
    one-sample run) is concatenated flat in the reference, (6 * n,), and was read here as 6 * n samples of one."""
    return {k: v.reshape(n, -1) if n and v.shape[:1] != (n,) and v.size % n == 0 else v for k, v in reference.items()}


def _named_outputs(meta: bytes, data: bytes, out_names: list[str], reference: dict, samples: int,
                   bundled: bool, shared: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """The runner's outputs keyed by name, as OUTPUT_NAMES (the order ``run`` promises) names them; bundled runtime:
    the names the module reads natively must be those (outputs bound to one tensor: one of theirs). ``meta``: per
    output int32 type code, int32 length and the UTF-8 name."""
    native, offset = [], 0
    while offset < len(meta):
        code = int.from_bytes(meta[offset:offset + 4], "big", signed=True)
        size = int.from_bytes(meta[offset + 4:offset + 8], "big")
        native.append((meta[offset + 8:offset + 8 + size].decode("utf-8", "replace"), code))
        offset += 8 + size
    if len(native) != len(out_names):
        raise _CheckFailed(f"the module reports {len(native)} outputs, the model {len(out_names)}")
    reported = [n for n, _ in native] if bundled else list(out_names)
    # outputs bound to one tensor (equal values) are reported by LiteRT 2.3 under one of their names
    same = [r == n or (n in shared and r in shared) for r, n in zip(reported, out_names)]
    if not all(same):
        raise _CheckFailed(f"the module's outputs are named {reported}, but OUTPUT_NAMES (the order run() returns) "
                           f"says {list(out_names)}")
    names = list(out_names)
    dtypes = [np.dtype(_OUTPUT_DTYPES.get(code, "<f4")) for _, code in native]
    sizes = [int(np.prod(reference[n].shape[1:])) for n in names]
    per_sample = sum(s * d.itemsize for s, d in zip(sizes, dtypes))
    if len(data) != per_sample * samples:
        raise _CheckFailed(f"runner wrote {len(data)} bytes, expected {per_sample * samples}")
    got: dict[str, list] = {n: [] for n in names}
    offset = 0
    for _ in range(samples):
        for name, size, dtype in zip(names, sizes, dtypes):
            got[name].append(np.frombuffer(data, dtype, size, offset))
            offset += size * dtype.itemsize
    return {n: np.stack(v).reshape(reference[n][:samples].shape).astype(reference[n].dtype) for n, v in got.items()}


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
