"""The bundled runtime is version-safe (issue 27): build.gradle.kts pins com.google.ai.edge.litert:litert with
Gradle's `strictly`, the README says what a newer one does, and at load the module checks that the runtime reads the
model as the verified one did (LiteRT 2.3's C API has no version call). The check runs in the host run of the
module's own Kotlin + JNI on libLiteRt.so; made to disagree (the module's packaged input names edited), the host run
fails with the module's message."""

from __future__ import annotations

import pytest
from test_android_module import make_spec, needs_tools, render, tiny  # noqa: F401  (tiny is a fixture)

from packager.checks import FAIL, PASS
from packager.targets.android import module as am

pytestmark = [pytest.mark.slow, needs_tools]

CLASSIFIER_KT = "src/main/java/com/example/tiny_net_q/TinyNetQClassifier.kt"
NATIVE_KT = "src/main/java/com/example/tiny_net_q/TinyNetQNative.kt"


def test_runtime_is_pinned_and_checked_at_load(tiny, tmp_path):  # noqa: F811
    out = render(tiny, tmp_path / "android")
    gradle = (out / "build.gradle.kts").read_text(encoding="utf-8")
    assert 'implementation("com.google.ai.edge.litert:litert") {\n        version { strictly("2.3.0") }' in gradle
    assert 'implementation("com.google.ai.edge.litert:litert:' not in gradle  # no unpinned declaration
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Runtime version" in readme and "dependency resolution fails" in readme and "IllegalStateException" in readme
    native = (out / NATIVE_KT).read_text(encoding="utf-8")
    assert 'const val RUNTIME_VERSION: String = "2.3.0"' in native and "fun checkRuntime(handle: Long)" in native
    kt = (out / CLASSIFIER_KT).read_text(encoding="utf-8")
    assert "TinyNetQNative.checkRuntime(created)" in kt

    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["jni-runs-shipped-model"].status == PASS, checks["jni-runs-shipped-model"].detail

    # the packaged names no longer match what libLiteRt.so reads: the load-time check stops the host run
    classifier = out / CLASSIFIER_KT
    text = classifier.read_text(encoding="utf-8")
    assert 'val INPUT_NAMES: List<String> = Collections.unmodifiableList(listOf("image"))' in text
    classifier.write_text(text.replace('unmodifiableList(listOf("image"))', 'unmodifiableList(listOf("pixels"))'),
                          encoding="utf-8")
    run = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}["jni-runs-shipped-model"]
    assert run.status == FAIL, run.detail
    assert "checkRuntime failed: java.lang.IllegalStateException: the LiteRT runtime in this app reads the model " \
           "differently from LiteRT 2.3.0" in run.detail, run.detail
    assert "inputs [image], expected [pixels]" in run.detail, run.detail
