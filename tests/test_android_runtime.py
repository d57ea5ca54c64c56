"""The Android module's runtimes: the bundled LiteRT runtime's native path (the module's own C++ on the LiteRT C API
of the ai-edge-litert wheel's libLiteRt.so) runs the *shipped* .tflite in its shipped mode, int8 included, and
the play-services variant still renders, compiles and runs. Real conversions, the real libLiteRt.so, a real JVM."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_android_module import make_spec, needs_tools, render, tiny  # noqa: F401  (tiny is a fixture)

from packager.checks import FAIL, PASS
from packager.targets import android_module as am
from packager.targets.android import AndroidTarget


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
    from packager.runtimes import android_jvm_runner as jvm
    from packager.targets import tflite_metadata
    from packager.targets.android import run_tflite

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
