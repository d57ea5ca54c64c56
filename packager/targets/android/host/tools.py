"""What checks the Android module on this machine: tool locations, Kotlin compilation against the API stubs,
JNI header generation from the compiled Kotlin and the host build of the JNI core (the JVM runner that runs it is
``android_jvm_runner``).

Tools come from ``.ci/setup-android.sh`` (cached under ``.tools/``) and Debian packages. Every function that
needs a missing tool raises :class:`packager.errors.ToolMissing` naming it and how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packager.errors import ToolMissing
from packager.tool_output import cause_first

REPO_ROOT = Path(__file__).resolve().parents[4]
SETUP_HINT = "run `sudo .ci/setup-android.sh` (fetches kotlinc, the TFLite C library and the Android API stubs)"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")
NDK_INCLUDE = Path("/usr/include/android")  # android/asset_manager.h ... (android-platform-frameworks-native-headers)
NDK_JNI_INCLUDE = Path("/usr/include/android/nativehelper")  # Android's jni.h (android-libnativehelper-dev)


def tools_dir() -> Path:
    return Path(os.environ.get("PACKAGER_TOOLS") or REPO_ROOT / ".tools")


def _need_file(path: Path, what: str, hint: str = SETUP_HINT) -> Path:
    if not path.exists():
        raise ToolMissing(f"{what} not found at {path}", hint=hint)
    return path


def _need_exe(name: str, package: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise ToolMissing(f"`{name}` not found on PATH", hint=f"apt-get install {package}")
    return exe


def kotlinc() -> Path:
    return _need_file(tools_dir() / "kotlin-compiler/package/bin/kotlinc", "kotlinc (npm kotlin-compiler@2.4.20)")


def kotlin_stdlib() -> Path:
    return _need_file(tools_dir() / "kotlin-compiler/package/lib/kotlin-stdlib.jar", "kotlin-stdlib.jar")


def kotlinx_coroutines() -> Path:
    """kotlinx-coroutines-core (JVM) from kotlinc's own lib folder: what the module's cancellable create() compiles and
    runs against here (apps get org.jetbrains.kotlinx:kotlinx-coroutines-core from the module's build.gradle.kts)."""
    return _need_file(tools_dir() / "kotlin-compiler/package/lib/kotlinx-coroutines-core-jvm.jar",
                      "kotlinx-coroutines-core-jvm.jar (npm kotlin-compiler@2.4.20)")


def android_stubs_jar() -> Path:
    return _need_file(tools_dir() / "android-api/android-stubs.jar", "Android API stub jar (from AOSP api/current.txt)")


def tflite_c() -> tuple[Path, Path]:
    """(include dir, folder holding libtensorflowlite_c.so) from npm node-tflite@0.0.2 (TFLite 2.2.0)."""
    base = tools_dir() / "node-tflite/package/tflite"
    _need_file(base / "include/tensorflow/lite/c/c_api.h", "TFLite C API headers (npm node-tflite@0.0.2)")
    _need_file(base / "linux_x86_64/libtensorflowlite_c.so", "libtensorflowlite_c.so (npm node-tflite@0.0.2)")
    return base / "include", base / "linux_x86_64"


def litert_lib() -> tuple[Path, str]:
    """(folder holding libLiteRt.so, its version): the LiteRT C API library of the ``ai-edge-litert`` wheel, the same
    runtime family and version line as the bundled Android runtime (com.google.ai.edge.litert:litert 2.3.x)."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    spec = importlib.util.find_spec("ai_edge_litert")
    hint = "pip install ai-edge-litert (a dependency of packager)"
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissing("the ai-edge-litert package (libLiteRt.so, the LiteRT C API) is not installed", hint=hint)
    folder = Path(next(iter(spec.submodule_search_locations)))
    _need_file(folder / "libLiteRt.so", "libLiteRt.so (LiteRT C API, from the ai-edge-litert wheel)", hint=hint)
    try:
        return folder, version("ai-edge-litert")
    except PackageNotFoundError:
        return folder, "unknown"


def java_tools() -> dict[str, str]:
    return {n: _need_exe(n, "default-jdk-headless") for n in ("java", "javac", "javap")}


def jdk_include() -> list[Path]:
    javac = Path(os.path.realpath(_need_exe("javac", "default-jdk-headless")))
    inc = javac.parent.parent / "include"
    _need_file(inc / "jni.h", "the JDK's jni.h", hint="apt-get install default-jdk-headless")
    return [inc, inc / "linux"]


def cxx() -> str:
    return _need_exe("g++", "g++")


def ndk_headers() -> tuple[Path, Path]:
    _need_file(NDK_INCLUDE / "android/asset_manager_jni.h", "NDK headers (android/asset_manager_jni.h)",
               hint="apt-get install android-platform-frameworks-native-headers")
    _need_file(NDK_JNI_INCLUDE / "jni.h", "Android's jni.h", hint="apt-get install android-libnativehelper-dev")
    return NDK_INCLUDE, NDK_JNI_INCLUDE


def aapt2() -> tuple[str, Path]:
    exe = _need_exe("aapt2", "android-sdk")
    return exe, _need_file(FRAMEWORK_RES, "framework-res.apk", hint="apt-get install android-framework-res")


@dataclass
class Run:
    returncode: int
    output: str
    note: str = ""  # how it ran, when that is worth a line in the report


# The host tools (kotlinc, javac, g++, the JVM runs) are checks whose results are awaited last: on a busy machine
# they yield the CPU to the conversions and the browser, which the build waits for first (MobileNetV2, 3 targets
# on 2 CPUs: the web target's browser checks were the build's last 16 s, starved by kotlinc and g++).
# Through nice(1), not preexec_fn: the build runs these from threads, where a preexec_fn can deadlock the child.
HOST_TOOL_NICENESS = 5


def lower_priority(cmd: list[str]) -> list[str]:
    nice = shutil.which("nice")
    return [nice, "-n", str(HOST_TOOL_NICENESS), *cmd] if nice else cmd


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 600, env: dict | None = None) -> Run:
    p = subprocess.run(lower_priority([str(c) for c in cmd]), cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    return Run(p.returncode, (p.stdout + p.stderr).strip())


def first_lines(text: str, n: int = 12) -> str:
    """What a tool printed, for a reason: cause first, runtime log lines after it (``packager.tool_output``)."""
    return cause_first(text, n)


# ---- Kotlin -----------------------------------------------------------------------------------------------------

def kotlinc_args(sources, classes_dir: Path, extra_classpath: tuple[Path, ...] = ()) -> list[str]:
    """kotlinc's arguments for ``compile_kotlin`` (and the warm kotlinc's warm-up, which must match them)."""
    cp = os.pathsep.join(str(p) for p in (android_stubs_jar(), kotlinx_coroutines(), *extra_classpath))
    return ["-jvm-target", "17", "-cp", cp, "-d", str(classes_dir), *map(str, sources)]


# Short JVM runs (one small compile, 16 samples) spend most of their CPU in the JIT's optimizing tier:
# stopping at C1 halves kotlinc's CPU time on 2 cores (8.3 -> 4.7 CPU s); one compiler thread takes ~0.2 CPU s
# less again (kotlinc on MobileNetV2's module, 2026-12-06: 5.43-5.57 vs 5.63-5.88 CPU s user).
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:CICompilerCount=1")


def kotlinc_class_archive() -> Path:
    """kotlinc's own classes, pre-parsed (a Java class-data-sharing archive written by .ci/setup-android.sh)."""
    return tools_dir() / "kotlin-compiler" / "kotlinc.jsa"


def kotlinc_jvm_options(archive: Path | None = None) -> str:
    """``archive``: of another class path than kotlinc's script (the warm kotlinc's, ``kotlinc_server``)."""
    opts = ["-Xss4m", *QUICK_JVM]
    archive = archive or kotlinc_class_archive()
    if archive.is_file():  # a stale or foreign archive is ignored by the JVM (-Xshare:auto), silently
        opts += [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xlog:disable", "-Xlog:all=error:stderr"]
    return " ".join(opts)


# ---- JNI header from compiled classes ----------------------------------------------------------------------------

_JNI_TYPES = {"Z": "jboolean", "B": "jbyte", "C": "jchar", "S": "jshort", "I": "jint", "J": "jlong",
              "F": "jfloat", "D": "jdouble", "V": "void"}
_JNI_ARRAYS = {"Z": "jbooleanArray", "B": "jbyteArray", "C": "jcharArray", "S": "jshortArray", "I": "jintArray",
               "J": "jlongArray", "F": "jfloatArray", "D": "jdoubleArray"}
_JNI_CLASSES = {"java/lang/String": "jstring", "java/lang/Class": "jclass", "java/lang/Throwable": "jthrowable"}


@dataclass(frozen=True)
class NativeMethod:
    class_binary: str  # com/example/FooNative
    name: str
    descriptor: str
    static: bool


def jni_mangle(s: str) -> str:
    """JNI short-name mangling (JNI spec, 'Resolving Native Method Names')."""
    out = []
    for ch in s:
        if ch == "/":
            out.append("_")
        elif ch == "_":
            out.append("_1")
        elif ch == ";":
            out.append("_2")
        elif ch == "[":
            out.append("_3")
        elif ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append("_0%04x" % ord(ch))
    return "".join(out)


def jni_symbol(m: NativeMethod, overloaded: bool = False) -> str:
    name = f"Java_{jni_mangle(m.class_binary)}_{jni_mangle(m.name)}"
    if overloaded:
        name += "__" + jni_mangle(m.descriptor[1:m.descriptor.index(")")])
    return name


def _parse_descriptor(desc: str) -> tuple[list[str], str]:
    def one(i: int) -> tuple[str, int]:
        if desc[i] == "[":
            if desc[i + 1] in _JNI_ARRAYS:
                return _JNI_ARRAYS[desc[i + 1]], i + 2
            _, j = one(i + 1)
            return "jobjectArray", j
        if desc[i] == "L":
            j = desc.index(";", i)
            return _JNI_CLASSES.get(desc[i + 1:j], "jobject"), j + 1
        return _JNI_TYPES[desc[i]], i + 1

    params, i = [], 1
    while desc[i] != ")":
        t, i = one(i)
        params.append(t)
    ret, _ = one(i + 1)
    return params, ret


def native_methods(classes_dir: Path, class_binary: str) -> list[NativeMethod]:
    """The ``native`` (Kotlin ``external``) methods of one compiled class, read from its .class file."""
    from packager.targets.android.host.class_file import ClassFileError, methods

    path = Path(classes_dir) / f"{class_binary}.class"
    try:
        found = methods(path)
    except OSError as e:
        raise RuntimeError(f"cannot read the compiled class {class_binary}: {e}") from e
    except ClassFileError as e:
        raise RuntimeError(str(e)) from e
    return [NativeMethod(class_binary, m.name, m.descriptor, m.static) for m in found if m.native]


def jni_header(methods: list[NativeMethod]) -> str:
    """A C header declaring exactly the JNI functions the JVM will look up for ``methods``."""
    names = [m.name for m in methods]
    out = ["// Generated from the compiled Kotlin classes: the JNI functions the JVM looks up.",
           "#pragma once", "#include <jni.h>", '#ifdef __cplusplus', 'extern "C" {', "#endif"]
    for m in methods:
        params, ret = _parse_descriptor(m.descriptor)
        args = ", ".join(["JNIEnv*", "jclass" if m.static else "jobject", *params])
        out.append(f"JNIEXPORT {ret} JNICALL {jni_symbol(m, names.count(m.name) > 1)}({args});")
    out += ["#ifdef __cplusplus", "}", "#endif", ""]
    return "\n".join(out)


def defined_jni_symbols(objects: list[Path]) -> set[str]:
    nm = _need_exe("nm", "binutils")
    found: set[str] = set()
    for obj in objects:
        r = run([nm, "--defined-only", "-g", obj])
        found |= {ln.split()[-1] for ln in r.output.splitlines() if ln.split() and ln.split()[-1].startswith("Java_")}
    return found


# ---- host build and JVM runner --------------------------------------------------------------------------------

CXX_WARNINGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wmissing-declarations"]


def build_host_library(cpp_dir: Path, sources: list[str], out_so: Path, jni_header_file: Path | None = None,
                       runtime: str = "bundled") -> Run:
    """The portable JNI core (no Android calls) as a host .so against the JDK's jni.h. ``bundled``: the LiteRT C API
    runner, which resolves libLiteRt.so at run time (dlopen, as on Android; see ``litert_lib``), so nothing more is
    linked; ``play-services``: the TFLite C API runner, linked with node-tflite's TFLite 2.2.0 C library."""
    cmd = [cxx(), *CXX_WARNINGS, "-O1", "-fPIC", "-shared", "-o", out_so]
    for d in jdk_include():
        cmd += ["-I", d]
    if runtime == "play-services":
        inc, libdir = tflite_c()
        cmd += ["-I", inc]
    cmd += ["-I", cpp_dir]
    if jni_header_file is not None:
        cmd += ["-include", jni_header_file]
    cmd += [cpp_dir / s for s in sources]
    if runtime == "play-services":
        cmd += ["-L", libdir, "-ltensorflowlite_c", f"-Wl,-rpath,{libdir}"]
    cmd += ["-ldl", "-Wl,--no-undefined"]
    out_so.parent.mkdir(parents=True, exist_ok=True)
    return run(cmd)


def link_host_library(objects: list[Path], out_so: Path) -> Run:
    """The bundled runtime's JNI core as a host .so from the objects the jni-compiles check built (position
    independent, against Android's jni.h: JNI's types and function table are the same ABI as the JDK's), so the
    host run executes the very objects that check compiled; libLiteRt.so is resolved at run time (dlopen)."""
    out_so.parent.mkdir(parents=True, exist_ok=True)
    return run([cxx(), "-shared", "-o", out_so, *objects, "-ldl", "-Wl,--no-undefined"])
