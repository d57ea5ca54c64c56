"""The Android module's checks (listed in module.py's docstring): the compile checks of one rendering of the
module's code (``compile_code``, run ahead of the conversion by ``precompile``) and ``module_checks``, which runs
them all and turns a missing tool into SKIPPED (FAIL when ``CI=true``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from packager.checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from packager.errors import ToolMissing
from packager.targets.android.host_checks import (
    _build_host_core,
    _check_host_run,
    _check_jni_compiles,
    _check_manifest,
    _check_metadata,
    _CheckFailed,
)
from packager.targets.android.render import module_context, module_io_names, render_code

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec
    from packager.targets.base import Artifact


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


CODE_DIRS = ("src/main/java", "src/main/cpp", "src/androidTest/java")  # what the compile checks read, with the README's code blocks
README = "README.md"


def code_snapshot(module_dir: Path) -> dict[str, bytes]:
    """The module's Kotlin and C++ files and its README (whose code blocks are compiled), by relative path."""
    files = [p for d in CODE_DIRS for p in sorted((module_dir / d).rglob("*")) if p.is_file()]
    files += [module_dir / README] if (module_dir / README).is_file() else []
    return {p.relative_to(module_dir).as_posix(): p.read_bytes() for p in files}


@dataclass
class Compiled:
    """The compile checks (kotlin-compiles, jni-compiles) of one rendering of the module's code, and the host
    build of its JNI core that the host run check runs (or why there is none)."""

    code: dict[str, bytes]
    checks: list[Check]
    classes: Path
    lib_dir: Path | None
    host_error: Exception | None


class KotlinInputs(NamedTuple):
    sources: list[Path]  # the module's
    snippets: list[Path]  # README.md's Kotlin blocks
    tests: list[Path]  # src/androidTest's
    java_snippets: list[Path]  # README.md's Java blocks (javac)
    classpath: tuple[Path, ...]  # beside the Android API stubs

    @property
    def kotlin(self) -> list[Path]:
        return self.sources + self.snippets + self.tests


def kotlin_inputs(code_dir: Path, work: Path) -> KotlinInputs:
    """What kotlin-compiles compiles: one kotlinc run for the
    module, README.md's Kotlin blocks and the instrumented test (a second JVM and compiler start cost 4 CPU s).
    The test's JUnit 4 / AndroidX Test stubs are on the module's classpath too (the module's templates use none), and
    CameraX's (camera-core, which the module's camera entry point and the README's analyzer use)."""
    from packager.targets.android.host import snippets as android_snippets

    sources = sorted((code_dir / "src/main/java").rglob("*.kt"))
    kt_snippets, java_snippets = android_snippets.write_snippets(code_dir / README, work / "readme-snippets")
    tests = sorted((code_dir / "src/androidTest/java").rglob("*.kt"))
    from packager.targets.android.host.stubs import write_camerax_stub_jar, write_test_stub_jar

    work.mkdir(parents=True, exist_ok=True)
    write_camerax_stub_jar(work / "camerax-stubs.jar")  # camera-core, compileOnly in the module
    extra: tuple[Path, ...] = (work / "camerax-stubs.jar",)
    if tests:
        write_test_stub_jar(work / "android-test-stubs.jar")
        extra += (work / "android-test-stubs.jar",)
    return KotlinInputs(sources, kt_snippets, tests, java_snippets, extra)


def compile_code(ctx: dict, code_dir: Path, work: Path) -> Compiled:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="packager-jni") as pool:
        return _compile_code(ctx, code_dir, work, pool)


def _compile_code(ctx: dict, code_dir: Path, work: Path, pool: ThreadPoolExecutor) -> Compiled:
    from packager.targets.android.host import kotlinc_server
    from packager.targets.android.host import tools as host

    native_class = f"{ctx['package']}.{ctx['class_name']}Native"
    checks: list[Check] = []
    classes = work / "classes"
    # 1. Kotlin compiles against the Android API stubs.
    kotlin_ok = False
    with _timed("kotlin-compiles", checks) as r:
        from packager.targets.android.host import snippets as android_snippets

        inputs = kotlin_inputs(code_dir, work)
        res = kotlinc_server.compile_kotlin(inputs.kotlin, classes, inputs.classpath)
        if res.returncode != 0:
            raise _CheckFailed("kotlinc failed (README_<n>.kt: the n-th code block of README.md; src/androidTest: the "
                               "instrumented test):\n" + host.first_lines(res.output))
        kotlin_ok = True
        # javac (the README's Java) and g++ (jni-compiles) both start from the compiled Kotlin: side by side
        jni = pool.submit(_check_jni_compiles, host, code_dir, classes, native_class, work, ctx["runtime"]["key"])
        if inputs.java_snippets:
            jres = android_snippets.compile_java(inputs.java_snippets, classes, work / "readme-java")
            if jres.returncode != 0:
                raise _CheckFailed("javac failed on README.md's Java code (README_<n>.java: its n-th code block):\n"
                                   + host.first_lines(jres.output))
        r["detail"] = (f"kotlinc 2.4.20 compiled {len(inputs.sources)} Kotlin files and README.md's "
                       f"{len(inputs.snippets)} Kotlin code blocks against Android API 29 stubs "
                       f"({host.android_stubs_jar().name}, from AOSP api/current.txt); javac compiled its "
                       f"{len(inputs.java_snippets)} Java code blocks against them; kotlinc compiled "
                       f"src/androidTest's {len(inputs.tests)} instrumented test file(s) against the module "
                       f"and JUnit 4 / AndroidX Test stubs; CameraX (camera-core) from its stubs"
                       + (f" ({res.note})" if res.note else ""))

    # 2. JNI C++ compiles against the NDK headers and matches the Kotlin externals.
    with _timed("jni-compiles", checks) as r:
        if not kotlin_ok:
            _needs_kotlin(checks[0])
        r["detail"] = jni.result()

    # The JNI core built for this host (the host run check runs it, and reports a failure here).
    lib_dir = host_error = None
    try:
        if not kotlin_ok:
            _needs_kotlin(checks[0])
        lib_dir = _build_host_core(host, code_dir, classes, ctx, work)
    except Exception as e:
        host_error = e
    return Compiled(code_snapshot(code_dir), checks, classes, lib_dir, host_error)


def host_run_check_name(runtime: dict) -> str:
    """``jni-runs-shipped-model`` (bundled: the module's own .tflite, any mode) or ``jni-runs-fp32`` (play-services:
    the fp32 model, on TFLite 2.2.0)."""
    return "jni-runs-shipped-model" if runtime["key"] == "bundled" else "jni-runs-fp32"


def play_services_not_run(mode: str) -> str:
    """Why the play-services variant's shipped model was not run through the module here, naming what ran instead."""
    instead = ("jni-runs-fp32 ran only the fp32 model through the module's C++, on node-tflite's TFLite 2.2.0 C API "
               "(not Play services' runtime)")
    if mode in ("fp32", "float32"):
        return ("not run: the module on LiteRT from Google Play services (the runtime is delivered to a device by "
                "Play services; there is no host build of it here); " + instead)
    return (f"not run: the shipped {mode} model through the module on LiteRT from Google Play services (the runtime is "
            "delivered to a device by Play services; there is no host build of it here); " + instead + ", which gives "
            f"wrong numbers for quantized models, so the {mode} model was checked in Python (ai-edge-litert) only, never "
            "through this variant's native code; run the module's androidTest on a device with Play services")


def render_preview(spec: PackageSpec, preview: Source, work: Path) -> tuple[dict, Path]:
    """(context, folder): the module rendered from ``preview`` (the signature as known before the conversion)
    into ``work``/module: ``precompile``'s layout, which the warm kotlinc (``host.kotlinc_server``) copies."""
    ctx = module_context(spec, preview, ([t.name for t in preview.inputs], [t.name for t in preview.outputs]))
    render_code(ctx, work / "module")
    return ctx, work / "module"


def precompile(spec: PackageSpec, preview: Source, workdir: Path) -> Compiled:
    """``compile_code`` on the module rendered from ``preview`` (the model's signature, read before the
    conversion and possibly guessed before the export), so the compilers run while the model converts.
    ``module_checks`` uses the result only if the module it checks has byte-identical code."""
    work = Path(workdir) / "precompiled"
    if work.exists():
        shutil.rmtree(work)
    ctx, module = render_preview(spec, preview, work)
    return compile_code(ctx, module, work)


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
    """The checks listed in module.py's docstring. ``artifact.extra["prepared"]``, a Future of ``precompile``,
    stands in for the compile checks when it compiled this very code."""
    from packager.targets.android.host import tools as host

    outdir = Path(outdir)
    ctx = module_context(spec, source, module_io_names(spec, Path(artifact.path)))
    work = Path(tempfile.mkdtemp(prefix="packager-android-"))
    try:
        compiled = _precompiled(artifact.extra.get("prepared"), outdir) or compile_code(ctx, outdir, work)
        checks = list(compiled.checks)

        # 3. The JNI core runs the model on the host: bundled, the shipped model in its mode on LiteRT's C API;
        #    play-services, the fp32 model on TFLite 2.2.0's C API.
        with _timed(host_run_check_name(ctx["runtime"]), checks) as r:
            if compiled.host_error is not None:
                raise compiled.host_error
            r["detail"] = _check_host_run(host, spec, source, artifact, samples, reference, compiled.classes,
                                          compiled.lib_dir, ctx, work, outdir)

        # Play services: its runtime exists only on a device, so the shipped model never ran through this variant.
        if ctx["runtime"]["key"] == "play-services":
            with _timed("play-services-runtime", checks):
                raise _Unverified(play_services_not_run(artifact.mode))

        # The Kotlin preprocessing core on the original sample files (the preprocessing check, #16).
        if not ctx.get("is_image"):
            pass
        elif compiled.checks and compiled.checks[0].status == PASS:
            from packager.targets.android.preprocessing_check import android_check

            pre = android_check(spec, samples, compiled.classes, f"{ctx['package']}.{ctx['class_name']}Preprocessing",
                                (ctx["width"], ctx["height"], ctx["channels"]), bool(ctx.get("pixel_input")))
            if pre is not None:
                checks.append(pre)
        elif getattr(samples, "image_paths", None):
            from packager.preprocessing_checks import not_run_data

            checks.append(Check("preprocessing", SKIPPED if compiled.checks[0].status == SKIPPED else FAIL,
                                "needs the compiled Kotlin classes (kotlin-compiles did not pass)",
                                data=not_run_data(spec, "not run")))

        # The instrumented test's golden-image assertions, on this JVM (the module's Kotlin preprocessing + JNI core).
        from packager.targets.android import golden_check
        from packager.targets.android.render import _template_manifest

        manifest = _template_manifest(ctx["package"])
        if ctx.get("is_image") and golden_check.has_golden_images(outdir, manifest):
            with _timed("androidtest-golden-images", checks) as r:
                if not (compiled.checks and compiled.checks[0].status == PASS):
                    _needs_kotlin(compiled.checks[0])
                if compiled.host_error is not None:
                    raise compiled.host_error
                try:
                    r["detail"] = golden_check.run_on_host(ctx, outdir, manifest, compiled.classes, compiled.lib_dir,
                                                           work)
                except golden_check.GoldenFailed as e:
                    raise _CheckFailed(str(e)) from None

        # 4. The manifest links against the platform.
        with _timed("manifest-links", checks) as r:
            r["detail"] = _check_manifest(host, outdir, ctx["package"], work)

        # 5. The Gradle build cannot run here.
        with _timed("gradle-build", checks):
            raise _Unverified(
                "not run: the Android Gradle Plugin, the NDK toolchain and the runtime AAR "
                f"({ctx['runtime']['coordinates']}) live on Google Maven / Maven Central, which this machine cannot "
                "reach (Debian's Gradle is 4.4.1, too old for AGP); run `./gradlew :<module>:assemble` in an app")

        with _timed("tflite-metadata", checks) as r:
            r["detail"] = _check_metadata(spec, outdir, artifact, samples)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return checks

