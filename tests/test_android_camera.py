"""The module's camera input (issue 27): ``classify(image: ImageProxy)`` (CameraX, <Class>Camera.kt) and
``classify(bitmap, rotationDegrees = ...)``, compiled by kotlin-compiles against stubs of the CameraX classes they
use (written from camera-core's reference pages, like the Android API stubs); the README's analyzer compiled with
them; and the frame-size and rotation arithmetic run on the host JVM from the module's own compiled Kotlin."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_android_module import make_spec, needs_tools, render, tiny  # noqa: F401  (tiny is a fixture)

from packager.checks import FAIL, PASS
from packager.targets.android import metadata as tflite_metadata
from packager.targets.android import module as am

pytestmark = [pytest.mark.slow, needs_tools]

CAMERA_KT = "src/main/java/com/example/tiny_net_q/TinyNetQCamera.kt"

PROBE = """
import com.example.tiny_net_q.TinyNetQPreprocessing;
public class CameraProbe {
    public static void main(String[] a) {
        int[][] sizes = {{4000, 3000, 1}, {3000, 4000, 6}, {30, 20, 1}, {64, 33, 1}, {100, 70, 1}};
        for (int[] s : sizes) {
            int[] got = TinyNetQPreprocessing.prescaledSize(s[0], s[1], s[2]);
            System.out.println("size " + s[0] + "x" + s[1] + "@" + s[2] + " -> " + got[0] + "x" + got[1]);
        }
        for (int d : new int[] {0, 90, 180, 270, -90, 450}) {
            System.out.println("rotation " + d + " -> " + TinyNetQPreprocessing.orientationForRotation(d));
        }
    }
}
"""


def _compile(tiny, out: Path, work: Path):  # noqa: F811
    source, artifact, _, _ = tiny
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    return am.compile_code(ctx, out, work)


def test_camera_entry_points_and_readme_analyzer_compile_against_camerax(tiny, tmp_path):  # noqa: F811
    out = render(tiny, tmp_path / "android")
    camera = (out / CAMERA_KT).read_text(encoding="utf-8")
    assert "fun TinyNetQClassifier.classify(image: ImageProxy" in camera
    assert "rotationDegrees = image.imageInfo.rotationDegrees" in camera and "image.toBitmap()" in camera
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert ": ImageAnalysis.Analyzer" in readme and "classifier.classify(it, topK = 3" in readme
    gradle = (out / "build.gradle.kts").read_text(encoding="utf-8")
    assert 'compileOnly("androidx.camera:camera-core:' in gradle

    compiled = _compile(tiny, out, tmp_path / "work")
    kotlin = compiled.checks[0]
    assert kotlin.name == "kotlin-compiles" and kotlin.status == PASS, kotlin.detail
    assert "README.md's 2 Kotlin code blocks" in kotlin.detail and "CameraX" in kotlin.detail, kotlin.detail

    # the frame arithmetic, from the module's compiled Kotlin on this JVM (8x8 input, PRESCALE 4: 32 px a side)
    from packager.targets.android.host import jvm_runner as jvm
    from packager.targets.android.host import tools as host

    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "CameraProbe.java").write_text(PROBE, encoding="utf-8")
    cp = ":".join(map(str, (compiled.classes, host.kotlin_stdlib(), host.android_stubs_jar())))
    res = host.run([host.java_tools()["javac"], "-cp", cp, "-d", probe_dir, probe_dir / "CameraProbe.java"])
    assert res.returncode == 0, res.output
    res = host.run([host.java_tools()["java"], *jvm.QUICK_JVM, "-cp", f"{probe_dir}:{cp}", "CameraProbe"])
    assert res.returncode == 0, res.output
    lines = set(res.output.splitlines())
    for want in ("size 4000x3000@1 -> 43x32",  # a 12 MP-class frame: the short side to 4x the input
                 "size 3000x4000@6 -> 32x43",
                 "size 30x20@1 -> 30x20",  # small: untouched
                 "size 64x33@1 -> 64x33",  # not 8x the input along both axes: untouched
                 "size 100x70@1 -> 46x32",  # just over: the short side to 4x the input
                 "rotation 90 -> 6", "rotation 180 -> 3", "rotation 270 -> 8", "rotation -90 -> 8",
                 "rotation 450 -> 6", "rotation 0 -> 1"):
        assert want in lines, (want, res.output)


def test_kotlin_compiles_fails_on_a_camerax_call_the_stubs_do_not_have(tiny, tmp_path):  # noqa: F811
    """The stubs bite: a misspelt CameraX member in the module's Kotlin, or in the README's analyzer, fails
    kotlin-compiles, naming where."""
    out = render(tiny, tmp_path / "android")
    camera = out / CAMERA_KT
    camera.write_text(camera.read_text(encoding="utf-8").replace("imageInfo.rotationDegrees", "imageInfo.rotation"),
                      encoding="utf-8")
    readme = out / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("STRATEGY_KEEP_ONLY_LATEST", "STRATEGY_LATEST"),
                      encoding="utf-8")
    kotlin = _compile(tiny, out, tmp_path / "work").checks[0]
    assert kotlin.status == FAIL, kotlin.detail
    assert "TinyNetQCamera.kt" in kotlin.detail and "rotation" in kotlin.detail, kotlin.detail
    assert "README_2.kt" in kotlin.detail and "STRATEGY_LATEST" in kotlin.detail, kotlin.detail
