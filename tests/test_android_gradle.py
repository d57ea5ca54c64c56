"""The generated module's build.gradle.kts read against the configuration rules of AGP 8.x (with the Kotlin Gradle
plugin 2.x) and of AGP 9 (built-in Kotlin, and its android.builtInKotlin=false opt-out).

No Gradle build can run here (AGP and the AARs live on Google Maven), so the rules that decide whether the script
configures are written down from Android's migration guide (developer.android.com/build/migrate-to-built-in-kotlin)
and checked on the rendered script: which plugins end up applied, whether Kotlin gets compiled, whether the script
uses a DSL that the path does not have, and whether Kotlin and Java target the same bytecode. No TensorFlow here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.render import render_tree, template_dir
from packager.spec import PackageSpec, Preprocessing, TensorSpec
from packager.targets.android import module as am

KGP_IDS = ("org.jetbrains.kotlin.android", "kotlin-android")


@dataclass(frozen=True)
class Agp:
    """What one AGP configuration does when a module's build script is evaluated."""

    name: str
    builtin_kotlin: bool  # AGP registers the `kotlin` extension itself and compiles Kotlin
    gradle_jdk: int = 21  # the JDK running Gradle (Android Studio's JBR)
    kgp_on_script_classpath: bool = True  # False: the Kotlin Gradle plugin is declared in :app only


AGP_8 = Agp("AGP 8.13 + Kotlin Gradle plugin 2.2", builtin_kotlin=False)
AGP_9 = Agp("AGP 9.0 (built-in Kotlin)", builtin_kotlin=True)
AGP_9_OPT_OUT = Agp("AGP 9.0 with android.builtInKotlin=false, android.newDsl=false", builtin_kotlin=False)
AGP_8_KGP_IN_APP = Agp("AGP 8.13, Kotlin Gradle plugin declared in :app only", builtin_kotlin=False,
                       kgp_on_script_classpath=False)


def _block(text: str, start: int) -> tuple[str, int]:
    """The body of the brace block whose ``{`` is at or after ``start``, and the index after its ``}``."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j], j + 1
    raise AssertionError("unbalanced braces")


def _top_level(text: str) -> list[tuple[str, str]]:
    """The script's top-level statements as (head, block body) pairs, e.g. ("plugins", "..."), ("if (...)", "...");
    a statement without a block has an empty body."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    while i < len(text):
        m = re.compile(r"\S").search(text, i)
        if not m:
            break
        line_end = text.find("\n", m.start())
        line_end = len(text) if line_end < 0 else line_end
        line = text[m.start():line_end]
        if "{" in line:
            head = line[:line.index("{")].strip()
            body, i = _block(text, m.start())
            out.append((head, body))
        else:
            out.append((line.strip(), ""))
            i = line_end
    return out


def configure(script: str, agp: Agp) -> list[str]:
    """Evaluate the script's plugin and Kotlin set-up under ``agp``'s rules; returns the configuration errors."""
    errors = []
    statements = _top_level(script)
    plugins = next((body for head, body in statements if head == "plugins"), "")
    ids = re.findall(r'id\("([^"]+)"\)', plugins) + [f"org.jetbrains.kotlin.{k}"
                                                      for k in re.findall(r'kotlin\("([^"]+)"\)', plugins)]
    if "com.android.library" not in ids:
        errors.append("com.android.library is not applied")
    kgp_in_plugins = any(i in KGP_IDS for i in ids)
    extensions = {"android"} | ({"kotlin"} if agp.builtin_kotlin or kgp_in_plugins else set())
    accessors = set(extensions)  # Kotlin DSL accessors exist for what the plugins block registered
    kgp_applied = kgp_in_plugins
    for head, body in statements:
        applied_here = [p for p in re.findall(r'apply\(plugin = "([^"]+)"\)', head + body) if p in KGP_IDS]
        if not applied_here:
            continue
        guard = re.fullmatch(r'if \(extensions\.findByName\("(\w+)"\) == null\)', head)
        if head.startswith("if") and guard is None:
            errors.append(f"cannot evaluate the condition {head!r}")
        elif guard is None or guard.group(1) not in extensions:
            kgp_applied = True
    if kgp_applied and agp.builtin_kotlin:
        errors.append("The 'org.jetbrains.kotlin.android' plugin is no longer required for Kotlin support since "
                      "AGP 9.0 (Cannot add extension with name 'kotlin')")
    if not (kgp_applied or agp.builtin_kotlin):
        errors.append("no Kotlin plugin: the Kotlin sources are not compiled")
    heads = [head for head, _ in statements]
    for head in heads:
        name = re.match(r"[\w.]+", head)
        if name and name.group(0) in ("kotlin", "kotlinOptions") and name.group(0) not in accessors:
            errors.append(f"Unresolved reference: {name.group(0)} (no accessor: the plugin is not in plugins {{}})")
    android = next((body for head, body in statements if head == "android"), "")
    if "kotlinOptions" in android and agp.builtin_kotlin:
        errors.append("android.kotlinOptions {} does not exist with built-in Kotlin")
    if "jvmToolchain(" in script:
        errors.append("jvmToolchain(17) needs a JDK 17 or a toolchain resolver; Android Studio runs Gradle on JBR 21")
    java = re.search(r"targetCompatibility = JavaVersion\.VERSION_(\d+)", android)
    java_target = int(java.group(1)) if java else agp.gradle_jdk
    code = "\n".join(re.sub(r"//.*", "", line) for line in script.splitlines())
    if not agp.kgp_on_script_classpath and re.search(r'(?<!")\borg\.jetbrains\.kotlin\.gradle\.', code):
        errors.append("Unresolved reference: jetbrains (a Kotlin Gradle plugin type named in a script whose "
                      "classpath has no Kotlin Gradle plugin)")
    pinned = re.search(r"withType<org\.jetbrains\.kotlin\.gradle\.tasks\.KotlinJvmCompile>\(\)\.configureEach\s*"
                       r"\{\s*compilerOptions\.jvmTarget\.set\(org\.jetbrains\.kotlin\.gradle\.dsl\.JvmTarget\.JVM_(\d+)\)",
                       script) or re.search(r'"org\.jetbrains\.kotlin\.gradle\.dsl\.JvmTarget"[\s\S]*?'
                                            r'getMethod\("fromTarget", String::class\.java\)\.invoke\(null, "(\d+)"\)',
                                            script)
    # KGP's default jvmTarget is the JDK running Gradle; built-in Kotlin's is compileOptions.targetCompatibility.
    kotlin_target = int(pinned.group(1)) if pinned else (java_target if agp.builtin_kotlin else agp.gradle_jdk)
    if kotlin_target != java_target:
        errors.append(f"Inconsistent JVM-target compatibility: compileDebugJavaWithJavac ({java_target}) and "
                      f"compileDebugKotlin ({kotlin_target})")
    return errors


def rendered_script(tmp_path: Path) -> str:
    spec = PackageSpec(model=Path("m.keras"), samples=Path("s"), labels=("a", "b"), name="gradle-rules",
                       preprocessing=Preprocessing(color="rgb", mean=(127.5,), std=(127.5,)))

    class Source:
        inputs = [TensorSpec("image", (None, 8, 8, 3))]
        outputs = [TensorSpec("output_0", (None, 2))]
        is_image = True

    ctx = am.module_context(spec, Source(), (["image"], ["output_0"]))
    render_tree(template_dir("android"), tmp_path / "module", ctx)
    return (tmp_path / "module" / "build.gradle.kts").read_text(encoding="utf-8")


@pytest.mark.parametrize("agp", [AGP_8, AGP_9, AGP_9_OPT_OUT, AGP_8_KGP_IN_APP], ids=lambda a: a.name)
def test_build_script_configures_under_agp_8_and_9(tmp_path, agp):
    assert configure(rendered_script(tmp_path), agp) == []


OLD_SCRIPT = """plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}
android {
    compileOptions {
        targetCompatibility = JavaVersion.VERSION_17
    }
}
kotlin {
    jvmToolchain(17)
}
"""


def test_the_rules_reject_what_fails_in_a_real_build():
    """The rules are not vacuous: the script packager generated before (KGP in plugins {}, a JVM toolchain) fails
    AGP 9 and Android Studio's JDK; dropping the Kotlin plugin without a replacement fails AGP 8; an unpinned
    Kotlin target drifts from Java's under KGP."""
    errors = configure(OLD_SCRIPT, AGP_9)
    assert any("no longer required" in e for e in errors) and any("jvmToolchain" in e for e in errors)
    bare = 'plugins {\n    id("com.android.library")\n}\nandroid {\n    compileOptions {\n' \
           '        targetCompatibility = JavaVersion.VERSION_17\n    }\n}\n'
    assert configure(bare, AGP_9) == []
    assert any("not compiled" in e for e in configure(bare, AGP_8))
    guarded = bare + 'if (extensions.findByName("kotlin") == null) {\n    apply(plugin = "org.jetbrains.kotlin.android")\n}\n'
    assert configure(guarded, AGP_9) == []
    assert any("Inconsistent JVM-target" in e for e in configure(guarded, AGP_8))
    unguarded = bare + 'apply(plugin = "org.jetbrains.kotlin.android")\n'
    assert any("no longer required" in e for e in configure(unguarded, AGP_9))
    accessor = guarded + "kotlin {\n    compilerOptions { }\n}\n"
    assert any("Unresolved reference: kotlin" in e for e in configure(accessor, AGP_8))
    typed = guarded + ("tasks.withType<org.jetbrains.kotlin.gradle.tasks.KotlinJvmCompile>().configureEach {\n"
                       "    compilerOptions.jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)\n}\n")
    assert configure(typed, AGP_8) == []  # the script packager generated before: fine with KGP on its classpath,
    assert any("Unresolved reference: jetbrains" in e for e in configure(typed, AGP_8_KGP_IN_APP))  # not without


def test_compile_sdk_and_ndk_version(tmp_path):
    script = rendered_script(tmp_path)
    assert "compileSdk = 36" in script and 'ndkVersion = "28.2.13676358"' in script


def test_no_werror_in_the_consumers_build(tmp_path):
    """-Werror belongs to packager's own checks (jni-compiles), not to the app's build: a warning a newer NDK adds
    must not break it."""
    script = rendered_script(tmp_path)
    cmake = (tmp_path / "module" / "CMakeLists.txt").read_text(encoding="utf-8")
    for text in (script, cmake):
        code = "\n".join(re.sub(r"(//|#).*", "", line) for line in text.splitlines())
        assert "-Wall" in code and "-Werror" not in code
