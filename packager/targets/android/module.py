"""The Android drop-in Gradle library module: rendering it and checking it on this machine.

``render_module`` renders ``android_template/`` into the module folder (model + labels included, with TFLite
metadata embedded); ``module_checks`` verifies what can be verified here:

1. ``kotlin-compiles``: kotlinc 2.4 against stubs generated from AOSP's API signature file (API 29), with the
   README's Kotlin code blocks; its Java code blocks with javac against the result;
2. ``jni-compiles``: the JNI C++ with ``-Wall -Werror`` against Debian's NDK headers (play-services runtime: and
   the TFLite C API headers; bundled: the LiteRT C API the module declares itself in litert_c_api.h), with
   the JNI header generated from the *compiled Kotlin* force-included (a signature mismatch is a compile
   error) and the defined ``Java_*`` symbols compared with the Kotlin ``external`` functions (a missing or
   extra name fails);
3. ``jni-runs-shipped-model`` (bundled runtime, the default): the JNI core built for this host, called from a JVM
   through the module's own Kotlin classes, runs the module's own ``.tflite`` in its shipped mode (int8 included)
   on the sample set with the LiteRT C API of the ai-edge-litert wheel's libLiteRt.so (2.3.0, the runtime family
   and version line of com.google.ai.edge.litert:litert 2.3.x), compared with the reference under that mode's
   gates; ``jni-runs-fp32`` (play-services runtime): the same with the TFLite C API runner on the fp32 model and
   node-tflite's TFLite 2.2.0 C library (which gives wrong numbers for quantized models);
4. ``manifest-links``: ``aapt2 link`` of the manifest against the platform's ``framework-res.apk``;
5. ``gradle-build``: always UNVERIFIED here (no Android Gradle Plugin reachable); ``play-services-runtime``
   (play-services runtime): always UNVERIFIED, naming what did not run (Play services' runtime; a quantized model);
plus ``tflite-metadata``: the metadata round-trips and the model with it still runs identically.

A check whose tool is missing is SKIPPED with the reason — FAIL when ``CI=true``.

Checks 1-2 and the host build of 3 need only the module's code, which depends on the model only through its
signature: ``precompile`` runs them on a rendering from the signature known before the conversion (during a Keras
Rendering lives in ``render``, the checks in ``checks`` (the tool-running ones in
``host_checks``); their names stay importable from here.
"""

from packager.targets.android.checks import (  # noqa: F401  (re-exported: part of this module's API)
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
    host_run_check_name,
    module_checks,
    precompile,
)
from packager.targets.android.host_checks import (  # noqa: F401  (re-exported: part of this module's API)
    HOST_CORE_SOURCES,
    _argb_inputs,
    _build_host_core,
    _check_host_run,
    _check_jni_compiles,
    _check_manifest,
    _check_metadata,
    _CheckFailed,
    _kotlin_jni_header,
    host_core_sources,
)
from packager.targets.android.render import (  # noqa: F401  (re-exported: part of this module's API)
    CMAKE_VERSION,
    COMPILE_SDK,
    DEFAULT_RUNTIME,
    DEFAULT_THREADS,
    MAX_HOST_SAMPLES,
    MIN_SDK,
    RUNTIME,
    RUNTIMES,
    _template_manifest,
    android_package,
    default_android_package,
    jni_prefix,
    lib_name,
    module_context,
    render_code,
    render_module,
    runtime_of,
    validate_android_package,
)

