"""The Android module's runtimes: the bundled LiteRT runtime's native path (the module's own C++ on the LiteRT C API
of the ai-edge-litert wheel's libLiteRt.so) runs the *shipped* .tflite in its shipped mode, int8 included, and
the play-services variant still renders, compiles and runs. Real conversions, the real libLiteRt.so, a real JVM."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_android_module import make_spec, needs_tools, render, tiny  # noqa: F401  (tiny is a fixture)

from packager.checks import FAIL, PASS, UNVERIFIED
from packager.targets.android import module as am
from packager.targets.android.target import AndroidTarget


@pytest.fixture(scope="module")
def tiny_int8(tiny, tmp_path_factory):  # noqa: F811
    """The tiny classifier converted to full-integer int8 (integer input and output tensors too)."""
    source, artifact, samples, reference = tiny
    d = tmp_path_factory.mktemp("int8")
    int8 = AndroidTarget().convert(dataclasses.replace(source, samples=samples), make_spec(int8_io=True), "int8", d)
    assert int8.mode == "int8"
    return source, int8, samples, reference


def _checks(spec, module, out):
    return {c.name: c for c in am.module_checks(spec, *module, out)}


@pytest.mark.slow
@needs_tools
def test_bundled_runtime_runs_the_shipped_int8_model_through_the_module_code(tiny_int8, tmp_path):
    spec = make_spec(int8_io=True)
    out = render(tiny_int8, tmp_path / "android", spec)
    assert (out / "src/main/cpp/model_runner_litert.cc").is_file()
    assert not (out / "src/main/cpp/model_runner_tflite.cc").exists()  # the other runtime's runner is not shipped
    checks = _checks(spec, tiny_int8, out)
    run = checks["jni-runs-shipped-model"]
    assert run.status == PASS, run.detail
    assert "int8 model model.tflite shipped in the module" in run.detail and "(int8 gates)" in run.detail
    assert "LiteRT C API 2.3.0" in run.detail and "through the Kotlin preprocessing" in run.detail
    assert "jni-runs-fp32" not in checks

    # It compares for real: a reference the model does not reproduce fails the check ...
    source, artifact, samples, reference = tiny_int8
    shifted = {k: v + 0.5 for k, v in reference.items()}
    checks = {c.name: c for c in am.module_checks(spec, source, artifact, samples, shifted, out)}
    assert checks["jni-runs-shipped-model"].status == FAIL and "drifted" in checks["jni-runs-shipped-model"].detail
    # ... and it runs the module's own model file.
    (out / am._template_manifest(am.android_package(spec))["model"]).unlink()
    checks = _checks(spec, tiny_int8, out)
    assert checks["jni-runs-shipped-model"].status == FAIL


@pytest.mark.slow
@needs_tools
def test_bundled_runtime_matches_the_python_litert_interpreter(tiny_int8, tmp_path):
    """The module's C++ on libLiteRt.so gives ai-edge-litert's own interpreter's int8 numbers on the same file (both
    LiteRT 2.3.0) to within one step of the output's quantization (XNNPACK under CompiledModel vs the interpreter's
    kernels; float->int8 input rounding half away from zero vs NumPy's half to even), nearly all bit-identical: the
    C API declarations (struct layouts, quantization parameters, tensor order) are right."""
    from packager.targets.android import metadata as tflite_metadata
    from packager.targets.android.host import jvm_runner as jvm
    from packager.targets.android.tflite import run_tflite

    source, artifact, samples, _ = tiny_int8
    spec = make_spec(int8_io=True)
    out = render(tiny_int8, tmp_path / "android", spec)
    ctx = am.module_context(spec, source, tflite_metadata.signature_io_names(artifact.path))
    compiled = am.compile_code(ctx, out, tmp_path / "work")
    assert compiled.host_error is None, compiled.host_error
    res, runner_dir = jvm.compile_runner(tmp_path / "work")
    assert res.returncode == 0, res.output
    in_name = source.inputs[0].name
    x = np.concatenate([b[in_name] for b in samples]).astype("<f4")
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    res = jvm.run_on_host(runner_dir, compiled.classes, compiled.lib_dir, [
        f"{ctx['package']}.{ctx['class_name']}Native", "-", str(artifact.path), str(tmp_path / "in.bin"),
        str(tmp_path / "out.bin"), str(len(samples)), "1", "float"])
    assert res.returncode == 0, res.output
    native = np.frombuffer((tmp_path / "out.bin").read_bytes(), "<f4").reshape(len(samples), -1)
    python, _, _ = run_tflite(artifact.path, source, samples)
    python = next(iter(python.values())).reshape(len(samples), -1)
    step = 1 / 256  # the softmax output's int8 scale
    assert np.max(np.abs(native - python)) <= step + 1e-7
    assert np.mean(native == python) >= 0.9, np.mean(native == python)


# ---- choosing the runtime ----------------------------------------------------------------------------------------

def _ns(**kw):
    import argparse

    base = dict(model="m.keras", samples="s", labels=None, targets=None, out=None, config=None, mean=None, std=None,
                color=None, quantize=None, int8_io=False, input_shape=None, output_names=None, name=None,
                android_package=None, ios_format=None, force=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_runtime_flag_and_config_key(tmp_path):
    from packager.config import build_spec
    from packager.errors import UsageError

    assert build_spec(_ns()).android_runtime == "bundled"  # the runtime whose native path is verified here
    cfg = tmp_path / "packager.toml"
    cfg.write_text('model = "a.keras"\nsamples = "s"\n[android]\nruntime = "play-services"\n')
    assert build_spec(_ns(model=None, samples=None, config=str(cfg))).android_runtime == "play-services"
    spec = build_spec(_ns(model=None, samples=None, config=str(cfg), android_runtime="bundled"))
    assert spec.android_runtime == "bundled"  # the flag wins over the file
    cfg.write_text('model = "a.keras"\nsamples = "s"\n[android]\nruntime = "gms"\n')
    with pytest.raises(UsageError) as e:
        build_spec(_ns(model=None, samples=None, config=str(cfg)))
    assert "gms" in e.value.message and "play-services" in e.value.hint


def test_cli_rejects_an_unknown_runtime():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "packager", "build", "m.keras", "--samples", "s",
                        "--android-runtime", "huawei"], capture_output=True, text=True)
    assert p.returncode == 2 and "bundled" in p.stderr and "play-services" in p.stderr


def test_each_runtime_renders_only_its_own_runner(tiny, tmp_path):  # noqa: F811
    bundled = render(tiny, tmp_path / "bundled")
    gms = render(tiny, tmp_path / "gms", make_spec(android_runtime="play-services"))
    assert sorted(p.name for p in (bundled / "src/main/cpp").iterdir()) == [
        "jni_bridge.cc", "jni_common.h", "litert_c_api.h", "model_runner.h",
        "model_runner_litert.cc", "quantization.h", "runner_registry.cc", "runner_registry.h", "tensor_types.h"]
    assert sorted(p.name for p in (gms / "src/main/cpp").iterdir()) == [
        "jni_bridge.cc", "jni_common.h", "model_runner.h", "model_runner_tflite.cc",
        "quantization.h", "runner_registry.cc", "runner_registry.h", "tensor_types.h"]
    b_gradle, g_gradle = ((d / "build.gradle.kts").read_text() for d in (bundled, gms))
    assert 'implementation("com.google.ai.edge.litert:litert") {\n        version { strictly("2.3.0") }' in b_gradle
    assert "prefab" not in b_gradle and "checkRuntime" not in (gms / "README.md").read_text(encoding="utf-8")
    assert 'implementation("com.google.android.gms:play-services-tflite-java:16.4.0")' in g_gradle
    assert "prefab = true" in g_gradle
    assert "find_package(tensorflowlite_jni_gms_client REQUIRED CONFIG)" in (gms / "CMakeLists.txt").read_text()
    b_kt, g_kt = (next((d / "src/main/java").rglob("*Classifier.kt")).read_text() for d in (bundled, gms))
    assert "gms" not in b_kt and "TfLiteNative.initialize" in g_kt
    b_native = next((bundled / "src/main/java").rglob("*Native.kt")).read_text()
    assert 'System.loadLibrary("LiteRt")' in b_native
    for d in (bundled, gms):  # both READMEs tell what each runtime costs
        readme = (d / "README.md").read_text()
        assert "APK size" in readme and "Amazon Fire" in readme and "--android-runtime" in readme


@pytest.mark.slow
@needs_tools
def test_play_services_variant_compiles_against_the_stubs_and_runs(tiny, tmp_path):  # noqa: F811
    """The play-services module: its Kotlin (Task API, TfLiteNative) and README compile against the stubs, its C++
    against the TFLite C API headers, and its JNI core runs the fp32 model on TFLite 2.2.0's C library."""
    spec = make_spec(android_runtime="play-services")
    out = render(tiny, tmp_path / "android", spec)
    checks = _checks(spec, tiny, out)
    for name in ("kotlin-compiles", "jni-compiles", "jni-runs-fp32", "manifest-links"):
        assert checks[name].status == PASS, f"{name}: {checks[name].detail}"
    assert "TFLite C API headers" in checks["jni-compiles"].detail
    assert "TFLite C API 2.2.0" in checks["jni-runs-fp32"].detail and "(fp32 gates)" in checks["jni-runs-fp32"].detail
    assert "play-services-tflite-java" in checks["gradle-build"].detail
    # what did not run is said, not passed over: Play services' own runtime
    not_run = checks["play-services-runtime"]
    assert not_run.status == UNVERIFIED and not_run.detail.startswith("not run: the module on LiteRT from Google Play")


@pytest.mark.slow
@needs_tools
def test_play_services_variant_says_its_int8_model_never_ran_through_the_module(tiny, tiny_int8, tmp_path):  # noqa: F811
    """The play-services module shipping an int8 model: only the fp32 model ran through its C++ (TFLite 2.2.0 gives
    wrong numbers for quantized models), so the report and the console's status line say the int8 model was not run
    through this variant (UNVERIFIED with the reason), never a plain PASS."""
    from packager.report import TargetResult

    spec = make_spec(int8_io=True, android_runtime="play-services")
    source, int8, samples, reference = tiny_int8
    # as the build hands it over (modes.py): the int8 artifact knows the fp32 model it was quantized from
    module = (source, dataclasses.replace(int8, extra={**int8.extra, "float_path": tiny[1].path}), samples, reference)
    out = render(module, tmp_path / "android", spec)
    checks = _checks(spec, module, out)
    assert checks["jni-runs-fp32"].status == PASS, checks["jni-runs-fp32"].detail
    not_run = checks["play-services-runtime"]
    assert not_run.status == UNVERIFIED, not_run.detail
    assert "not run: the shipped int8 model through the module" in not_run.detail
    assert "wrong numbers for quantized models" in not_run.detail and "never through this variant" in not_run.detail
    line = TargetResult("android", PASS, checks=list(checks.values())).status_line
    assert line.startswith("PASS (UNVERIFIED here: ") and "play-services-runtime" in line, line


QUANT_PROBE = r"""
#include <cmath>
#include <cstdio>
#include <limits>
#include "quantization.h"

int main() {
  std::string error;
  const float in[4] = {0.5f, -1.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  int8_t q[4] = {7, 7, 7, 7};
  bool r = packager::Quantize(in, 4, 0.5f, 1, q, 0, &error);
  std::printf("ok=%d %d %d %d %d\n", r, q[0], q[1], q[2], q[3]);
  r = packager::Quantize(in, 4, 0.0f, 0, q, 0, &error);
  std::printf("zero-scale=%d [%s]\n", r, error.c_str());
  r = packager::Quantize(in, 4, std::nanf(""), 0, q, 0, &error);
  std::printf("nan-scale=%d [%s]\n", r, error.c_str());
  const float nan_in[2] = {1.0f, std::nanf("")};
  q[0] = 7;
  r = packager::Quantize(nan_in, 2, 1.0f, 0, q, 0, &error);
  std::printf("nan-input=%d untouched=%d [%s]\n", r, q[0], error.c_str());
  const uint8_t u[2] = {0, 255};
  float out[2] = {0, 0};
  r = packager::Dequantize(u, 2, 0.5f, 128, out, 0, &error);
  std::printf("dequant=%d %g %g\n", r, out[0], out[1]);
  r = packager::Dequantize(u, 2, 0.0f, 0, out, 1, &error);
  std::printf("dequant-zero-scale=%d [%s]\n", r, error.c_str());
  return 0;
}
"""


def test_quantization_guards_scale_zero_nan_and_infinity(tmp_path):
    """quantization.h, shared by both runtimes' runners, compiled with -Werror and run: scale 0 or NaN is an error
    naming the tensor, a NaN input is an error that leaves the tensor untouched, +-inf clamp to the int8 range."""
    import shutil
    import subprocess

    from packager.render import template_dir
    from packager.targets.android.host.tools import CXX_WARNINGS

    if shutil.which("g++") is None:
        pytest.skip("g++ missing")
    (tmp_path / "probe.cc").write_text(QUANT_PROBE)
    exe = tmp_path / "probe"
    subprocess.run(["g++", *CXX_WARNINGS, "-I", str(template_dir("android") / "src/main/cpp"), "-o", str(exe),
                    str(tmp_path / "probe.cc")], check=True, capture_output=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert lines[0] == "ok=1 2 -1 127 -128"  # round(0.5/0.5)+1, round(-1/0.5)+1, +inf, -inf clamped
    assert lines[1].startswith("zero-scale=0 [input 0 is quantized with scale 0.000000")
    assert lines[2].startswith("nan-scale=0 [input 0 is quantized with scale nan")
    assert lines[3] == "nan-input=0 untouched=7 [input 0 has NaN at element 1; a quantized model cannot represent it]"
    assert lines[4] == "dequant=1 -64 63.5"
    assert lines[5].startswith("dequant-zero-scale=0 [output 1 is quantized with scale 0")


# ---- the instrumented test ---------------------------------------------------------------------------------------

@pytest.mark.slow
@needs_tools
def test_instrumented_test_with_golden_samples_compiles_against_the_stubs(tiny, tmp_path):  # noqa: F811
    """src/androidTest: a JUnit 4 / AndroidX Test class running golden samples through the classifier, compiled
    by kotlin-compiles against the module and test API stubs (a misspelt call fails it), with golden assets that
    hold the samples' inputs and the original model's outputs."""
    from packager.targets.android import metadata as tflite_metadata

    source, artifact, samples, reference = tiny
    spec = make_spec()
    out = render(tiny, tmp_path / "android", spec)
    manifest = am._template_manifest(am.android_package(spec))
    props = dict(ln.split("=", 1) for ln in (out / manifest["golden_properties"]).read_text().splitlines()
                 if "=" in ln and not ln.startswith("#"))
    n = int(props["samples"])
    assert n == len(samples) and props["mode"] == "fp32" and float(props["max_abs_error"]) == 1e-3
    inputs = np.frombuffer((out / manifest["golden_inputs"]).read_bytes(), "<f4")
    outputs = np.frombuffer((out / manifest["golden_outputs"]).read_bytes(), "<f4")
    in_name, out_name = source.inputs[0].name, next(iter(reference))
    np.testing.assert_array_equal(inputs, np.concatenate([samples[i][in_name].ravel() for i in range(n)]))
    np.testing.assert_array_equal(outputs, reference[out_name][:n].ravel())
    gradle = (out / "build.gradle.kts").read_text()
    assert 'testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"' in gradle
    assert 'androidTestImplementation("androidx.test.ext:junit:' in gradle

    ctx = am.module_context(spec, source, tflite_metadata.signature_io_names(artifact.path))
    compiled = am.compile_code(ctx, out, tmp_path / "ok")
    kotlin = compiled.checks[0]
    assert kotlin.status == PASS and "src/androidTest's 2 instrumented test file(s)" in kotlin.detail, kotlin.detail
    assert (tmp_path / "ok/classes/com/example/tiny_net_q/TinyNetQClassifierTest.class").is_file()  # one kotlinc run

    test_kt = next((out / "src/androidTest/java").rglob("*ClassifierTest.kt"))
    test_kt.write_text(test_kt.read_text().replace("classifier.run(feed)", "classifier.runn(feed)"))
    kotlin = am.compile_code(ctx, out, tmp_path / "broken").checks[0]
    assert kotlin.status == FAIL and "src/androidTest" in kotlin.detail and "runn" in kotlin.detail


_THREAD_PROBE = r"""
#include <dirent.h>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>
#include "model_runner.h"
static int Tasks() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
int main(int argc, char** argv) {  // model.tflite threads -> "before after": this process's threads around Create
  std::ifstream f(argv[1], std::ios::binary);
  auto bytes = std::make_shared<std::vector<char>>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  packager::ModelBytes model{bytes->data(), bytes->size(), bytes};
  std::string error;
  const int before = Tasks();
  auto runner = packager::ModelRunner::Create(model, std::stoi(argv[2]), &error);
  if (!runner) return std::printf("error %s\n", error.c_str()), 1;
  std::vector<float> x(runner->InputSize(0), 0.5f);
  if (!runner->SetInput(0, x.data(), x.size(), &error) || !runner->Invoke(&error))
    return std::printf("error %s\n", error.c_str()), 1;
  std::printf("%d %d\n", before, Tasks());
}
"""


@pytest.mark.slow
@needs_tools
def test_threads_reach_the_bundled_runtime(tiny, tmp_path):  # noqa: F811
    """``threads`` is applied: the module's own C++ (as shipped, on the wheel's libLiteRt.so) hands it to LiteRT's CPU
    accelerator, which starts threads - 1 XNNPACK workers beside the caller (a runner that ignored it: none)."""
    import subprocess

    from packager.targets.android.host.tools import cxx, litert_lib

    out = render(tiny, tmp_path / "android", make_spec())
    cpp = out / "src/main/cpp"
    (tmp_path / "probe.cc").write_text(_THREAD_PROBE)
    exe = tmp_path / "probe"
    subprocess.run([cxx(), "-std=c++17", "-O1", f"-I{cpp}", str(tmp_path / "probe.cc"),
                    str(cpp / "model_runner_litert.cc"), "-ldl", "-o", str(exe)], check=True)
    model = out / am._template_manifest(am.android_package(make_spec()))["model"]
    env = {"LD_LIBRARY_PATH": str(litert_lib()[0]), "PATH": "/usr/bin:/bin"}
    for threads in (1, 2, 4):
        res = subprocess.run([str(exe), str(model), str(threads)], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        before, after = map(int, res.stdout.split()[-2:])
        assert after - before == threads - 1, (threads, res.stdout)
