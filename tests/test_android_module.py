"""The Android Gradle module: golden tree, hostile labels, package names, and the real checks (kotlinc, g++ with
the NDK headers, the JNI core on the host JVM with the TFLite C library, aapt2) — including proof that they fail
on a broken module. Regenerate the golden tree deliberately with PACKAGER_REGEN_GOLDEN=1."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from packager.checks import FAIL, PASS, SKIPPED, UNVERIFIED
from packager.errors import UsageError
from packager.spec import PackageSpec, Preprocessing, TensorSpec
from packager.targets.android import metadata as tflite_metadata
from packager.targets.android import module as am
from packager.targets.android.target import AndroidTarget

GOLDEN = Path(__file__).parent / "golden" / "android"
HOSTILE_LABELS = ('say "hi"', "back\\slash", "$cost ${x}", "end */ comment", "naïve 猫 🐱", "it's")
MODEL_ASSET = "src/main/assets/com.example.tiny_net_q/model.tflite"  # the default package of make_spec()
LABELS_ASSET = "src/main/assets/com.example.tiny_net_q/labels.txt"


def _tools_present() -> bool:
    from packager.errors import ToolMissing
    from packager.targets.android.host import tools as host

    try:
        host.kotlinc(), host.android_stubs_jar(), host.tflite_c(), host.java_tools(), host.aapt2(), host.ndk_headers()
    except ToolMissing:
        return False
    return True


# In CI every tool must be there (set up by .ci/setup-android.sh): a missing one fails instead of skipping.
needs_tools = pytest.mark.skipif(not _tools_present() and os.environ.get("CI", "").lower() != "true",
                                 reason="Android check tools missing: run .ci/setup-android.sh")


@dataclass
class TinySource:
    """Stands in for packager.source.Source: the same fields, over a real SavedModel."""

    saved_model_dir: Path
    inputs: list
    outputs: list
    is_image: bool = True
    keras_model: object = None
    samples: object = None


class TinySamples(list):
    image_paths = None

    def stacked(self):
        return {k: np.concatenate([b[k] for b in self]) for k in self[0]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real tiny image classifier: SavedModel, fp32 .tflite, samples from integer pixels, TF reference."""
    import keras
    import tensorflow as tf

    d = tmp_path_factory.mktemp("android")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(len(HOSTILE_LABELS), activation="softmax")(x))
    sm = d / "saved_model"
    model.export(str(sm), verbose=False)
    sig = tf.saved_model.load(str(sm)).signatures["serving_default"]
    in_name = next(iter(sig.structured_input_signature[1]))
    out_name = sorted(sig.structured_outputs)[0]
    source = TinySource(sm, [TensorSpec(in_name, (None, 8, 8, 3))], [TensorSpec(out_name, (None, 6))])
    rng = np.random.default_rng(0)
    samples = TinySamples(
        {in_name: ((rng.integers(0, 256, (1, 8, 8, 3)).astype(np.float32) - 127.5) / 127.5).astype(np.float32)}
        for _ in range(5))
    reference = {out_name: np.concatenate([sig(**{k: tf.constant(v) for k, v in b.items()})[out_name].numpy()
                                           for b in samples])}
    artifact = AndroidTarget().convert(source, make_spec(), "fp32", d)  # the real conversion, metadata included
    artifact.extra["float_path"] = artifact.path
    return source, artifact, samples, reference


def make_spec(**kw) -> PackageSpec:
    base = dict(model=Path("tiny-net.keras"), samples=Path("samples"), labels=HOSTILE_LABELS,
                preprocessing=Preprocessing(color="rgb", mean=(127.5,), std=(127.5,)),
                name='tiny-net */ "q"', description="A tiny test net", author="packager tests", license="MIT")
    base.update(kw)
    return PackageSpec(**base)


def render(tiny, out: Path, spec: PackageSpec | None = None) -> Path:
    source, artifact, samples, reference = tiny
    am.render_module(spec or make_spec(), source, artifact, samples, reference, out)
    return out


# ---- names -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "single", "com..example", "com.example.", "1com.example", "com.class.app",
                                 "com.exa-mple", "com.example.naïve", "com.example._x", "com example"])
def test_bad_package_is_rejected_with_a_clear_error(bad):
    with pytest.raises(UsageError) as e:
        am.validate_android_package(bad)
    assert "--android-package" in e.value.message and repr(bad) in e.value.message
    assert e.value.hint and "com.example" in e.value.hint


def test_good_package_and_defaults():
    assert am.validate_android_package("com.example.my_model2") == "com.example.my_model2"
    assert am.default_android_package(make_spec()) == "com.example.tiny_net_q"
    assert am.default_android_package(make_spec(name="3d-net")) == "com.example.model_3d_net"
    assert am.default_android_package(make_spec(name="class")) == "com.example.model_class"
    with pytest.raises(UsageError):
        am.android_package(make_spec(android_package="com.Example.bad-name"))


# ---- golden tree ----------------------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_golden_tree(tiny, tmp_path):
    """Every rendered file except the model bytes (converter-version dependent) equals the golden copy."""
    out = render(tiny, tmp_path / "android", make_spec(android_package="com.example.golden",
                                                       android_abi_filters=("arm64-v8a", "x86_64")))
    got = _tree(out)
    golden_model = MODEL_ASSET.replace("com.example.tiny_net_q", "com.example.golden")
    assert golden_model in got
    got.pop(golden_model)
    if os.environ.get("PACKAGER_REGEN_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, data in got.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    want = _tree(GOLDEN)
    assert sorted(got) == sorted(want), "rendered file set changed (PACKAGER_REGEN_GOLDEN=1 to accept)"
    for rel in want:
        if rel.endswith("golden_outputs.bin"):  # the model's float outputs: their last bits follow the CPU's kernels
            a, b = (np.frombuffer(d, "<f4") for d in (got[rel], want[rel]))
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6), f"{rel}: outputs differ"
            continue
        assert got[rel] == want[rel], f"{rel} differs from tests/golden/android (PACKAGER_REGEN_GOLDEN=1 to accept)"


def test_module_layout_and_hostile_labels(tiny, tmp_path):
    out = render(tiny, tmp_path / "android")
    for rel in ("build.gradle.kts", "CMakeLists.txt", "README.md", "src/main/AndroidManifest.xml",
                "src/main/cpp/jni_bridge.cc", "src/main/cpp/model_runner_litert.cc",
                "src/main/java/com/example/tiny_net_q/TinyNetQClassifier.kt", MODEL_ASSET, LABELS_ASSET):
        assert (out / rel).is_file(), rel
    assert (out / LABELS_ASSET).read_text(encoding="utf-8").splitlines() == list(HOSTILE_LABELS)
    assert not (out / "src/main/assets/model.tflite").exists()  # nothing at the asset root, where apps collide
    gradle = (out / "build.gradle.kts").read_text()
    assert 'namespace = "com.example.tiny_net_q"' in gradle and "minSdk = 24" in gradle
    assert 'noCompress += "tflite"' in gradle
    assert not (out / "src/main/cpp/jni_assets.cc").exists()  # the model is mapped by the Kotlin side, not copied
    assert f'implementation("{am.RUNTIME["artifact"]}") {{\n        version {{ strictly("{am.RUNTIME["version"]}") }}' \
        in gradle
    cmake = (out / "CMakeLists.txt").read_text()
    assert "src/main/cpp/model_runner_litert.cc" in cmake and "tensorflowlite_jni_gms_client" not in cmake  # bundled
    kt = (out / "src/main/java/com/example/tiny_net_q/TinyNetQClassifier.kt").read_text(encoding="utf-8")
    assert "say" not in kt and "cost" not in kt  # labels have one home: the asset the classifier reads
    assert 'const val ASSET_DIR: String = "com.example.tiny_net_q"' in kt
    assert "*/" not in kt.split("package", 1)[0]  # the model name cannot close a comment
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert 'include(":tiny_net_q")' in readme and 'implementation(project(":tiny_net_q"))' in readme


def test_metadata_embedded_and_model_still_runs(tiny, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    out = render(tiny, tmp_path / "android")
    model = out / MODEL_ASSET
    am.render_module(make_spec(), *tiny, out)  # re-rendering re-embeds without growing the model
    assert (out / MODEL_ASSET).stat().st_size == model.stat().st_size
    meta = tflite_metadata.read_metadata(model)
    assert meta["name"] == 'tiny-net */ "q"' and meta["license"] == "MIT" and meta["min_parser_version"] == "1.0.0"
    assert meta["inputs"][0]["mean"] == [127.5] * 3 and meta["inputs"][0]["std"] == [127.5] * 3
    assert meta["inputs"][0]["color_space"] == 1  # RGB
    assert meta["outputs"][0]["associated_files"] == [("labels.txt", 2)]  # TENSOR_AXIS_LABELS
    assert meta["files"]["labels.txt"].splitlines() == list(HOSTILE_LABELS)
    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    interp.invoke()


# ---- the real checks ------------------------------------------------------------------------------------------

@pytest.mark.slow
@needs_tools
def test_checks_pass_on_the_rendered_module(tiny, tmp_path):
    out = render(tiny, tmp_path / "android")
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    for name in ("kotlin-compiles", "jni-compiles", "jni-runs-shipped-model", "manifest-links", "tflite-metadata"):
        assert checks[name].status == PASS, f"{name}: {checks[name].detail}"
        assert checks[name].seconds is not None
    assert checks["gradle-build"].status == UNVERIFIED and "Gradle" in checks["gradle-build"].detail
    assert "README.md's 2 Kotlin code blocks" in checks["kotlin-compiles"].detail
    assert "its 1 Java code blocks" in checks["kotlin-compiles"].detail
    assert "through the Kotlin preprocessing" in checks["jni-runs-shipped-model"].detail


@pytest.mark.slow
@needs_tools
def test_compile_checks_run_ahead_only_count_for_identical_code(tiny, tmp_path):
    """``precompile`` (started before the conversion, from the signature as known then) stands in for the compile
    checks only when it compiled byte-identical code; a wrong guess of the signature is compiled again."""
    import dataclasses
    from concurrent.futures import Future

    source, artifact, samples, reference = tiny
    out = render(tiny, tmp_path / "android")

    def checks_with(preview, name):
        prepared = Future()
        prepared.set_result(am.precompile(make_spec(), preview, tmp_path / name))
        art = dataclasses.replace(artifact, extra={**artifact.extra, "prepared": prepared})
        return {c.name: c for c in am.module_checks(make_spec(), source, art, samples, reference, out)}

    checks = checks_with(source, "right")
    for name in ("kotlin-compiles", "jni-compiles", "jni-runs-shipped-model", "manifest-links", "tflite-metadata"):
        assert checks[name].status == PASS, f"{name}: {checks[name].detail}"
    assert checks["kotlin-compiles"].detail.endswith(am.AHEAD) and checks["jni-compiles"].detail.endswith(am.AHEAD)

    wrong = dataclasses.replace(source, outputs=[TensorSpec("output_9", (None, 6))])  # OUTPUT_NAMES differs
    checks = checks_with(wrong, "wrong")
    assert checks["kotlin-compiles"].status == PASS and not checks["kotlin-compiles"].detail.endswith(am.AHEAD)
    assert checks["jni-runs-shipped-model"].status == PASS


@pytest.mark.slow
@needs_tools
def test_checks_fail_on_a_broken_module(tiny, tmp_path):
    """A JNI signature drift (C++ takes jlong where Kotlin passes Int), a JNI function missing from the C++,
    a misspelt Android API call and a bad manifest attribute each fail their check."""
    out = render(tiny, tmp_path / "android")
    bridge = out / "src/main/cpp/jni_bridge.cc"
    text = bridge.read_text()
    bridge.write_text(text.replace("jobject model, jint threads", "jobject model, jlong threads"))
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["kotlin-compiles"].status == PASS
    assert checks["jni-compiles"].status == FAIL and "createFromBuffer" in checks["jni-compiles"].detail
    assert checks["jni-runs-shipped-model"].status == FAIL

    # a C++ JNI function that Kotlin does not declare (renamed), and a Kotlin external with no C++ definition
    bridge.write_text(text.replace("outputCount(JNIEnv* env", "outputCounts(JNIEnv* env"))
    kt = next((out / "src/main/java").rglob("*Classifier.kt"))
    kt.write_text(kt.read_text().replace("bitmap.copy(Bitmap.Config", "bitmap.copyy(Bitmap.Config"))
    manifest = out / "src/main/AndroidManifest.xml"
    manifest.write_text(manifest.read_text().replace("<application />", '<application android:bogus="1" />'))
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["kotlin-compiles"].status == FAIL and "copyy" in checks["kotlin-compiles"].detail
    assert checks["manifest-links"].status == FAIL and "bogus" in checks["manifest-links"].detail
    kt.write_text(kt.read_text().replace("bitmap.copyy(", "bitmap.copy("))
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["jni-compiles"].status == FAIL and "outputCounts" in checks["jni-compiles"].detail

    close_fn = text.index("JNIEXPORT void JNICALL")
    bridge.write_text(text[:close_fn] + text[text.index('}  // extern "C"'):])
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["jni-compiles"].status == FAIL
    assert "not defined in C++" in checks["jni-compiles"].detail and "close" in checks["jni-compiles"].detail

@pytest.mark.slow
@needs_tools
def test_host_core_is_safe_with_many_threads_and_close_during_runs(tiny, tmp_path):
    """The module's own JNI core (built for this host, called from a JVM): 8 threads classifying on one handle get
    exactly the results each gets alone, and closing the handle while they run makes each call either complete
    correctly or throw IllegalStateException — no crash (the unguarded core crashed with SIGSEGV here)."""
    from packager.targets.android.host import jvm_runner as jvm
    from packager.targets.android.host import tools as host

    source, artifact, _, _ = tiny
    out = render(tiny, tmp_path / "android")
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    compiled = am.compile_code(ctx, out, tmp_path / "work")
    assert compiled.host_error is None, compiled.host_error
    res, runner_dir = jvm.compile_runner(tmp_path / "work")
    assert res.returncode == 0, res.output
    threads, iterations = 8, 300
    res, phases = jvm.stress_on_host(runner_dir, compiled.classes, compiled.lib_dir,
                                      f"{ctx['package']}.{ctx['class_name']}Native", artifact.path, threads, iterations)
    assert res.returncode == 0, f"exit {res.returncode}: {host.first_lines(res.output)}"
    together = phases["concurrent-runs"]
    assert together == {"hung": 0, "ok": threads * iterations, "wrong": 0, "closed": 0, "errors": 0}, res.output
    closing = phases["close-during-runs"]
    assert closing["closed"] == threads and closing["ok"] >= threads * iterations // 2, res.output
    assert closing["wrong"] == closing["errors"] == closing["hung"] == 0, res.output


@pytest.mark.slow
@needs_tools
def test_nan_input_to_a_quantized_model_is_an_exception(tiny, tmp_path):
    """NaN has no int8 value (casting it is undefined behaviour): the JNI core rejects it for a quantized input with
    IllegalArgumentException naming the element, while a float model receives it as is."""
    import dataclasses

    from packager.targets.android.host import jvm_runner as jvm

    source, artifact, samples, _ = tiny
    int8 = AndroidTarget().convert(dataclasses.replace(source, samples=samples), make_spec(int8_io=True), "int8",
                                   tmp_path)
    out = render(tiny, tmp_path / "android")
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    compiled = am.compile_code(ctx, out, tmp_path / "work")
    assert compiled.host_error is None, compiled.host_error
    res, runner_dir = jvm.compile_runner(tmp_path / "work")
    assert res.returncode == 0, res.output
    native = f"{ctx['package']}.{ctx['class_name']}Native"
    for model, expected in ((int8.path, "nan-input: java.lang.IllegalArgumentException: input 0 has NaN at element 0"),
                            (artifact.path, "nan-input: ok")):
        res = jvm.run_on_host(runner_dir, compiled.classes, compiled.lib_dir, ["--nan", native, str(model)])
        assert res.returncode == 0 and expected in res.output, res.output


TOP_INDICES_JAVA = """
import java.util.List;

public final class TopIndicesProbe {
    public static void main(String[] args) throws Exception {
        Class<?> c = Class.forName(args[0]);
        java.lang.reflect.Method top = c.getMethod("topIndices", float[].class, int.class, float.class);
        float[] scores = {0.1f, 0.7f, Float.NaN, 0.4f, 0.7f, -2f};
        System.out.println(top.invoke(null, scores, 3, Float.NEGATIVE_INFINITY));
        System.out.println(top.invoke(null, scores, 5, 0.4f));
        System.out.println(top.invoke(null, scores, 2, 0.9f));
        try {
            top.invoke(null, scores, 0, 0f);
        } catch (java.lang.reflect.InvocationTargetException e) {
            System.out.println(e.getCause().getClass().getSimpleName());
        }
    }
}
"""


@pytest.mark.slow
@needs_tools
def test_top_classes_rank_with_a_score_threshold(tiny, tmp_path):
    """The generated ranking (Classifier.topIndices, behind classify/topClasses), run on a JVM: best first, ties in
    index order, NaN never ranked, minScore and topK honoured, topK <= 0 rejected."""
    import subprocess

    from packager.targets.android.host import kotlinc_server
    from packager.targets.android.host import tools as host

    source, artifact, _, _ = tiny
    out = render(tiny, tmp_path / "android")
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    classes = tmp_path / "classes"
    from packager.targets.android.host.stubs import write_camerax_stub_jar

    write_camerax_stub_jar(tmp_path / "camerax-stubs.jar")  # the module's camera entry point compiles against it
    res = kotlinc_server.compile_kotlin(sorted((out / "src/main/java").rglob("*.kt")), classes,
                                        (tmp_path / "camerax-stubs.jar",))
    assert res.returncode == 0, res.output
    (tmp_path / "TopIndicesProbe.java").write_text(TOP_INDICES_JAVA, encoding="utf-8")
    tools = host.java_tools()
    subprocess.run([tools["javac"], "-d", str(tmp_path), str(tmp_path / "TopIndicesProbe.java")], check=True)
    cp = os.pathsep.join(map(str, (tmp_path, classes, host.kotlin_stdlib(), host.android_stubs_jar())))
    run = subprocess.run([tools["java"], "-cp", cp, "TopIndicesProbe", f"{ctx['package']}.{ctx['class_name']}Classifier"],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.split("\n")[:4] == ["[1, 4, 3]", "[1, 4, 3]", "[]", "IllegalArgumentException"], run.stdout + run.stderr


@pytest.mark.slow
@needs_tools
def test_readme_code_blocks_are_compiled_with_the_module(tiny, tmp_path):
    """Every ```kotlin / ```java block of the README is compiled as written (Kotlin with the module's sources,
    Java against the compiled module): a wrong call in either fails kotlin-compiles, naming the block."""
    from packager.targets.android.host.snippets import readme_snippets

    source, artifact, _, _ = tiny
    out = render(tiny, tmp_path / "android")
    readme = out / "README.md"
    assert [lang for lang, _ in readme_snippets(readme)] == ["kotlin", "kotlin", "java"]
    text = readme.read_text(encoding="utf-8")
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    for n, (good, bad) in [(1, (".create(context)", ".creat(context)")), (3, ("createAsync(", "createAsynk("))]:
        assert good in text
        readme.write_text(text.replace(good, bad), encoding="utf-8")
        kotlin = am.compile_code(ctx, out, tmp_path / f"work{n}").checks[0]
        assert kotlin.name == "kotlin-compiles" and kotlin.status == FAIL, kotlin.detail
        assert f"README_{n}." in kotlin.detail and bad.strip(".(") in kotlin.detail, kotlin.detail


def test_missing_tools_are_skipped_locally_and_fail_in_ci(tiny, tmp_path, monkeypatch):
    out = render(tiny, tmp_path / "android")
    monkeypatch.setenv("PACKAGER_TOOLS", str(tmp_path / "no-tools"))
    monkeypatch.setenv("CI", "false")
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["kotlin-compiles"].status == SKIPPED and "setup-android.sh" in checks["kotlin-compiles"].detail
    assert checks["gradle-build"].status == UNVERIFIED
    monkeypatch.setenv("CI", "true")
    checks = {c.name: c for c in am.module_checks(make_spec(), *tiny, out)}
    assert checks["kotlin-compiles"].status == FAIL and "CI=true" in checks["kotlin-compiles"].detail


# ---- the stub generator and JNI naming ------------------------------------------------------------------------

def test_jni_mangling_matches_the_spec():
    from packager.targets.android.host.tools import NativeMethod, jni_header, jni_symbol

    m = NativeMethod("com/example/my_model/Näive", "run_it", "([[FJ)[F", True)
    assert jni_symbol(m) == "Java_com_example_my_1model_N_000e4ive_run_1it"
    assert jni_symbol(m, overloaded=True) == "Java_com_example_my_1model_N_000e4ive_run_1it___3_3FJ"
    assert "JNIEXPORT jfloatArray JNICALL" in jni_header([m]) and "(JNIEnv*, jclass, jobjectArray, jlong)" in jni_header([m])


def test_stub_generator_emits_generic_nested_and_enum_classes(tmp_path):
    import subprocess
    import zipfile

    from packager.targets.android.host.stubs import write_stub_jar

    api = tmp_path / "current.txt"
    api.write_text("""// Signature format: 2.0
package android.demo {
  public final class Box<T extends java.lang.Comparable<T>> implements java.lang.Iterable<T> {
    ctor public Box(@NonNull T...);
    method @Nullable public <R> R map(java.util.function.Function<? super T,? extends R>) throws java.io.IOException;
    field public static final int ANSWER = 42; // 0x2a
  }
  public enum Box.Mode {
    enum_constant public static final android.demo.Box.Mode FAST;
  }
}
""")
    jar = tmp_path / "stubs.jar"
    assert write_stub_jar(api, jar) >= 7  # + the Play services classes
    names = zipfile.ZipFile(jar).namelist()
    assert "android/demo/Box.class" in names and "android/demo/Box$Mode.class" in names
    assert "com/google/android/gms/tflite/java/TfLiteNative.class" in names
    javap = shutil.which("javap")
    if javap:
        r = subprocess.run([javap, "-s", "-cp", str(jar), "android.demo.Box"], capture_output=True, text=True)
        assert "public <R> R map(java.util.function.Function<? super T, ? extends R>) throws java.io.IOException" \
            in r.stdout, r.stdout
        assert "Box(T...)" in r.stdout


@needs_tools
def test_native_methods_read_from_the_class_file_match_javap(tmp_path):
    """The JNI header's methods come from the .class file itself (no javap JVM): the same native methods, descriptors
    and static flags that javap prints, on a class with every constant-pool shape that shifts offsets (long and
    double constants take two entries, strings, lambdas' invokedynamic and method handles, fields with attributes)."""
    import subprocess

    from packager.targets.android.host import tools as host
    from packager.targets.android.host.class_file import methods

    src = tmp_path / "p" / "Natives.java"
    src.parent.mkdir()
    src.write_text("""package p;
public class Natives {
    static final long BIG = 1234567890123L; static final double PI = 3.14159; static final String S = "naïve 猫 🐱 \\0";
    private final java.util.function.Supplier<String> f = () -> S + BIG + PI;
    public static native long open(byte[] model, int threads, String name);
    public native float[] run(long handle, float[] x, int[][] shape);
    public native void run(long handle);
    static native boolean close(long handle);
    public String plain() { return f.get(); }
}
""", encoding="utf-8")
    tools = host.java_tools()
    subprocess.run([tools["javac"], "-d", tmp_path / "classes", src], check=True)
    javap = subprocess.run([tools["javap"], "-p", "-s", "-cp", tmp_path / "classes", "p.Natives"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    expected = []
    for k, line in enumerate(javap):
        if " native " in f" {line.strip()} ":
            expected.append((line.split("(")[0].split()[-1], javap[k + 1].split(":", 1)[1].strip(),
                             " static " in f" {line.strip()} "))
    got = [(m.name, m.descriptor, m.static) for m in methods(tmp_path / "classes/p/Natives.class") if m.native]
    assert len(expected) == 4 and got == expected
    assert [m.name for m in host.native_methods(tmp_path / "classes", "p/Natives")] == ["open", "run", "run", "close"]
