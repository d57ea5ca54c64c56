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
Rendering lives in ``android_render``, the checks in ``android_checks`` (the tool-running ones in
``android_host_checks``); their names stay importable from here.
"""

from .android_checks import (  # noqa: F401  (re-exported: part of this module's API)
    AHEAD,
    CODE_DIRS,
    README,
    Compiled,
    _in_ci,
    _needs_kotlin,
    _precompiled,
    _timed,
    _Unverified,
    code_snapshot,
    compile_code,
    module_checks,
    precompile,
)
from .android_host_checks import (  # noqa: F401  (re-exported: part of this module's API)
    HOST_CORE_SOURCES,
    _argb_inputs,
    _build_host_core,
    _check_host_run,
    _check_jni_compiles,
    _check_manifest,
    _check_metadata,
    _CheckFailed,
    _kotlin_jni_header,
)
from .android_render import (  # noqa: F401  (re-exported: part of this module's API)
    CMAKE_VERSION,
    COMPILE_SDK,
    DEFAULT_THREADS,
    MAX_HOST_SAMPLES,
    MIN_SDK,
    RUNTIME,
    _template_manifest,
    android_package,
    default_android_package,
    jni_prefix,
    lib_name,
    module_context,
    render_module,
    validate_android_package,
)
