"""The androidTest's encoded golden images (issue 27): an image build ships samples as given plus an EXIF-rotated, an
alpha and a large non-square PNG, and the instrumented test's assertions (<Class>GoldenImages: model input within 1
level of packager's Python through fromEncoded's path, top-1 equal where the margin allows) run on the host JVM as
the ``androidtest-golden-images`` check. Breaking the module's Kotlin preprocessing (BGR swap, wrong mean) makes
those same assertions fail."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "out"
    r = run_cli("build", "--config", REPO / "packager/demo/packager.toml", "--targets", "android", "--quantize",
                "android=fp32", "--out", out)
    report = json.loads((out / "report.json").read_text())
    return r, out, report["targets"]["android"]


def test_golden_images_shipped_and_asserted_on_the_host(demo_build):
    r, out, android = demo_build
    checks = {c["name"]: c for c in android["checks"]}
    golden = checks["androidtest-golden-images"]
    assert golden["status"] == "PASS", golden["detail"]
    assert re.search(r"5 golden images: model inputs within [0-9.]+ level\(s\)", golden["detail"]), golden["detail"]
    assert r.returncode == 0, r.stderr[-2000:]
    assets = next((out / "android/src/androidTest/assets").iterdir())
    names = sorted(p.name for p in (assets / "golden_images").iterdir())
    assert names == ["alpha.png", "exif_rotated.png", "large.png", "sample_0.png", "sample_1.png"], names
    test = next(out.glob("android/src/androidTest/java/**/*ClassifierTest.kt")).read_text()
    assert "fun goldenImagesThroughTheBitmapPath()" in test
    assert "Preprocessing.fromEncoded(bytes)" in test and "classifier.classify(bitmap, topK = 1" in test


@pytest.mark.parametrize("mutation", ["bgr", "mean"])
def test_golden_assertions_catch_a_broken_kotlin_preprocessing(demo_build, tmp_path, mutation):
    """The rendered Kotlin preprocessing mutated (channels swapped; the mean off by 20 levels), compiled again with
    the module's own checks, and the androidTest's GoldenImages assertions run on the host JVM: they fail, naming the
    image and element."""
    from packager.targets.android import golden_check
    from packager.targets.android import module as am
    from packager.targets.android.render import _template_manifest

    _, out, _ = demo_build
    module = tmp_path / "android"
    shutil.copytree(out / "android", module)
    pre = next(module.glob("src/main/java/**/*Preprocessing.kt"))
    text = pre.read_text()
    if mutation == "bgr":
        broken = text.replace("private const val BGR: Boolean = false", "private const val BGR: Boolean = true")
    else:
        broken = text.replace("unmodifiableList(listOf(127.5f, 127.5f, 127.5f))",
                              "unmodifiableList(listOf(107.5f, 107.5f, 107.5f))", 1)  # MEAN, 20 levels off
    assert broken != text
    pre.write_text(broken)
    from packager.spec import PackageSpec, Preprocessing, TensorSpec
    from packager.targets.android.render import module_context

    class _Signature:  # the demo model's, as the build read it (the context the module was rendered from)
        inputs = [TensorSpec("image", (None, 32, 32, 3), "float32")]
        outputs = [TensorSpec("output_0", (None, 4), "float32")]
        is_image = True

    spec = PackageSpec(model=REPO / "packager/demo/model.keras", samples=REPO / "packager/demo/samples", name="Shapes",
                       android_package="com.example.shapes", preprocessing=Preprocessing(mean=(127.5,), std=(127.5,)))
    full = module_context(spec, _Signature(), (["image"], ["output_0"]))
    package = full["package"]
    compiled = am.compile_code(full, module, tmp_path / "work")
    assert compiled.checks[0].status == "PASS", compiled.checks[0].detail
    assert compiled.host_error is None, compiled.host_error
    with pytest.raises(golden_check.GoldenFailed) as failed:
        golden_check.run_on_host(full, module, _template_manifest(package), compiled.classes, compiled.lib_dir,
                                 tmp_path / "work")
    message = str(failed.value)
    assert "model input [" in message and "packager's Python made" in message, message
