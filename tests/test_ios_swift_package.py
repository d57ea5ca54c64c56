"""The generated Swift package (#14): its structure where no Swift compiler exists here (tree-sitter parses, the
rest is read as text against what SwiftPM and Apple's APIs need), the golden XCTest's data, and the swift-build
check, which is UNVERIFIED in report.json and on the console line when no toolchain built the package."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from packager.checks import PASS, UNVERIFIED
from packager.errors import UsageError
from packager.targets.ios import render as ios_render
from packager.targets.ios.swift_build import check_swift_build

HERE = Path(__file__).parent


# ---------------------------------------------------------------------- no TensorFlow


def test_swift_build_is_unverified_without_a_toolchain(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    check = check_swift_build(tmp_path, "TinyNet")
    assert check.name == "swift-build" and check.status == UNVERIFIED
    assert check.detail.startswith("not run: no Swift toolchain") and "swift build" in check.detail


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS a toolchain really builds the package")
def test_swift_build_names_a_toolchain_without_apple_sdks_and_stays_unverified(tmp_path, monkeypatch):
    """A Swift toolchain on Linux cannot build a package that imports CoreML and Vision: UNVERIFIED, naming it
    (the `swift` here is a stand-in that prints a version, since none is installable on this machine)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text("#!/bin/sh\necho 'Swift version 6.0.3 (swift-6.0.3-RELEASE)'\necho 'Target: x86_64-unknown-linux-gnu'\n")
    swift.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    check = check_swift_build(tmp_path, "TinyNet")
    assert check.status == UNVERIFIED
    assert "Swift version 6.0.3 (swift-6.0.3-RELEASE)" in check.detail and "CoreML" in check.detail


def test_swift_build_is_not_fooled_by_another_swift_command(tmp_path, monkeypatch):
    """python-swiftclient (OpenStack) installs a `swift` command: that is no Swift toolchain."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    swift = bin_dir / "swift"
    swift.write_text("#!/bin/sh\necho 'python-swiftclient 4.2.0'\n")
    swift.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    check = check_swift_build(tmp_path, "TinyNet")
    assert check.status == UNVERIFIED and check.detail.startswith("not run: no Swift toolchain")
    assert "is not a Swift compiler" in check.detail


@pytest.mark.parametrize(("policy", "option"), [(None, "scaleFill"), ("stretch", "scaleFill"),
                                                ("center-crop", "centerCrop"), ("center_crop", "centerCrop"),
                                                ("letterbox", "scaleFit")])
def test_crop_policy_maps_to_vision(policy, option):
    spec = SimpleNamespace(preprocessing=SimpleNamespace(crop=policy))
    assert ios_render.VISION_CROP[ios_render.crop_policy(spec)] == option


def test_unknown_crop_policy_is_a_usage_error():
    with pytest.raises(UsageError, match="crop policy 'zoom'"):
        ios_render.crop_policy(SimpleNamespace(preprocessing=SimpleNamespace(crop="zoom")))


def test_golden_samples_are_the_hard_ones():
    """Where the shipped model disagreed first, then the lowest top-1 margins, then the first sample."""
    ref = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.51, 0.49], [0.7, 0.3], [0.6, 0.4]], np.float32)
    got = ref.copy()
    got[4] = [0.3, 0.7]  # the converted model flips sample 4
    spec = SimpleNamespace(primary_output="out")
    source = SimpleNamespace(outputs=[SimpleNamespace(name="out")])
    chosen = dict(ios_render.choose_samples(spec, source, list(range(6)), {"out": ref}, {"out": got}))
    assert sorted(chosen) == [0, 1, 3, 4]
    assert "differed" in chosen[4] and "margin" in chosen[3] and "margin" in chosen[1] and chosen[0] == "first sample"


# ---------------------------------------------------------------------- rendered on real conversions

keras = pytest.importorskip("keras")
ct = pytest.importorskip("coremltools")


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """One image classifier rendered as .mlmodel (fp16) and as .mlpackage."""
    from test_ios_target import _build, _image_folder, _small_cnn

    from packager.targets.ios.target import IOSTarget

    keras.utils.set_random_seed(7)  # a fixed model: the upside-down assertion below measures it
    tmp = tmp_path_factory.mktemp("swiftpkg")
    samples = _image_folder(tmp / "samples", 6, (16, 16))
    spec, source, samp, ref, work = _build(tmp, _small_cnn(4), samples=samples, labels=("cat", "dog", "owl", "eel"),
                                           license="CC-BY-4.0 (test)")
    target = IOSTarget()
    out = {}
    for fmt in ("neuralnetwork", "mlprogram"):
        s = spec.with_(ios_format=fmt)
        art = target.convert(source, s, "fp16", work)
        with contextlib.suppress(Exception):
            target.predict(art, source, s, samp)  # UNVERIFIED for .mlpackage until an executor exists here
        d = tmp / fmt / "ios"
        # the build's main process computes the upside-down references (reference_extras); without them the render
        # asks the model itself (mlprogram here): test_turned_references_* compares the two
        source.turned_reference = {}
        if fmt == "neuralnetwork":
            target.reference_extras(s, source, samp, ref)
            assert source.turned_reference
        target.render(s, source, art, samp, ref, d)
        out[fmt] = (d, {c.name: c for c in target.checks(s, source, art, samp, ref, d)}, art)
    out["samples"] = samples
    out["build"] = (spec.with_(ios_format="neuralnetwork"), source, samp, ref)
    return out


def _read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def test_package_manifest_is_swift6_with_platforms_and_the_right_resource_rule(packages):
    for fmt, rule in (("neuralnetwork", '.process("TinyNetModel.mlmodel")'), ("mlprogram", '.copy("TinyNetModel.mlpackage")')):
        root, checks, _ = packages[fmt]
        manifest = _read(root, "Package.swift")
        assert manifest.startswith("// swift-tools-version:6.0\n")
        assert "swiftLanguageModes: [.v6]" in manifest
        assert "platforms: [.iOS(.v16), .macOS(.v13), .tvOS(.v16), .visionOS(.v1)]" in manifest
        assert rule in manifest, manifest
        # SwiftPM's native build copies a .process'd folder's files flat: an .mlpackage must never be processed
        assert ".process(\"TinyNetModel.mlpackage\")" not in manifest
        assert (root / "Sources/TinyNet" / rule.split('"')[1]).exists()
        assert checks["swift-syntax"].status == PASS and checks["feature-names"].status == PASS, checks


def test_wrapper_finds_compiles_and_caches_the_model(packages):
    for fmt, ext in (("neuralnetwork", "mlmodel"), ("mlprogram", "mlpackage")):
        root, _, art = packages[fmt]
        swift = _read(root, "Sources/TinyNet/TinyNetModelFile.swift")
        wrapper = _read(root, "Sources/TinyNet/TinyNetClassifier.swift")
        assert 'forResource: resourceName, withExtension: "mlmodelc"' in swift  # a build's compiled model first
        assert f'static let resourceExtension: String = "{ext}"' in swift
        assert 'static let resourceName: String = "TinyNetModel"' in swift
        digest = re.search(r'static let digest: String = "([0-9a-f]{16})"', swift).group(1)
        assert digest == ios_render.model_digest(root / f"Sources/TinyNet/TinyNetModel.{ext}")
        assert digest == ios_render.model_digest(art.path)
        # asynchronous compile (not the deprecated synchronous one), cached in Caches keyed by the hash, out of
        # backups; stale copies deleted; a copy that fails to load deleted and compiled again
        assert swift.count("await MLModel.compileModel(at:") == 1 and "try await MLModel.compileModel(at: raw)" in swift
        assert ".cachesDirectory" in swift and ".applicationSupportDirectory" not in swift + wrapper
        assert 'static let cachedName: String = "\\(resourceName)-\\(digest).mlmodelc"' in swift
        assert "values.isExcludedFromBackup = true" in swift and "try? cached.setResourceValues(values)" in swift
        assert "removeStale(in: folder)" in swift and "name != cachedName" in swift
        assert swift.index("removeStale(in: folder)") < swift.index("if fileManager.fileExists(atPath: cached.path)")
        assert "} catch where cached {" in wrapper and "TinyNetModelFile.discard(url)" in wrapper
        assert wrapper.index("TinyNetModelFile.discard(url)") < wrapper.index("let recompiled = try await TinyNetModelFile.compiledURL()")
        assert "try await MLModel.load(contentsOf: url, configuration: configuration)" in wrapper
        assert "MLModel(contentsOf:" not in swift + wrapper
        # no comment may claim that Xcode compiles a copied .mlpackage or generates a class for it
        manifest, readme = _read(root, "Package.swift"), _read(root, "README.md")
        if fmt == "mlprogram":
            for text in (swift, manifest, readme):
                assert "Xcode compiles" not in text and "Xcode generates" not in text and "Xcode made" not in text
            assert "compiled by\n            // no build system" in manifest and "no Swift class is generated" in manifest
            assert "(none does for a copied `.mlpackage`)" in readme


def test_outputs_are_read_through_shaped_arrays_never_by_index(packages):
    """No MultiArray is indexed (``array[i]`` ignores strides): outputs go through MLShapedArray<Float>, with a
    branch for Float32 and a conversion for Float16/Double; inputs are built from MLShapedArray too."""
    from packager.targets.ios import swift_syntax

    old = "static func floats(_ array: MLMultiArray) -> [Float] {\n    (0..<array.count).map { array[$0].floatValue }\n}\n"
    assert swift_syntax.multiarray_subscripts(old) == ["array[$0]"]  # the query finds the old stride-blind read
    assert swift_syntax.multiarray_subscripts("let a = try MLMultiArray(shape: [2], dataType: .float32)\na[1] = 0\n")
    assert swift_syntax.multiarray_subscripts("let x = provider.featureValue(for: n)?.multiArrayValue\nx![0]\n")
    for fmt in ("neuralnetwork", "mlprogram"):
        root, checks, _ = packages[fmt]
        for f in (root / "Sources").rglob("*.swift"):
            assert swift_syntax.multiarray_subscripts(f.read_text(encoding="utf-8")) == [], f
        swift = _read(root, "Sources/TinyNet/TinyNetClassifier.swift")
        cases = swift_syntax.switch_cases(swift, "shaped", "array.dataType")
        assert cases == {".float32": "sameScalars(array)", ".float16": "MLShapedArray<Float>(converting: array)",
                         ".double": "MLShapedArray<Float>(converting: array)",
                         ".int32": "MLShapedArray<Float>(converting: array)"}, cases
        assert "outputs[name] = TinyNetOutput(shaped(array))" in swift
        # the concrete MLShapedArray.init(_: MLMultiArray) is iOS 18+: reached through the protocol's (iOS 15)
        assert "MLShapedArray<Float>(array)" not in swift and "Shaped: MLShapedArrayProtocol" in swift
        assert "public let outputs: [String: TinyNetOutput]" in swift and "public let shape: [Int]" in swift
        assert checks["swift-syntax"].status == PASS
    # an array model renders the input side: MultiArrays built from shaped arrays, Float16 converted by Core ML
    arr = _array_package(packages)
    swift = (arr / "Sources/TinyNet/TinyNetClassifier.swift").read_text(encoding="utf-8")
    assert swift_syntax.multiarray_subscripts(swift) == []
    assert "MLMultiArray(MLShapedArray<Float>(scalars: values, shape: shape))" in swift
    assert "MLMultiArray(concatenating: [floats], axis: 0, dataType: dataType)" in swift
    assert "guard let scores = outputs[TinyNetFeatures.primaryOutput]?.scalars" in swift
    tests = (arr / "Tests/TinyNetTests/TinyNetTests.swift").read_text(encoding="utf-8")
    assert '"\\(what): no output \\(name)").scalars' in tests


def _array_package(packages) -> Path:
    from test_ios_target import _build

    from packager.targets.ios.target import IOSTarget

    tmp = packages["samples"].parent / "arr"
    if (tmp / "ios").exists():
        return tmp / "ios"
    tmp.mkdir()
    inp = keras.Input((5,))
    model = keras.Model(inp, [keras.layers.Dense(3)(inp), keras.layers.Dense(2, activation="softmax")(inp)])
    np.save(tmp / "x.npy", np.random.default_rng(3).normal(size=(6, 5)).astype(np.float32))
    spec, source, samp, ref, work = _build(tmp, model, samples=tmp / "x.npy")
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    target.render(spec, source, art, samp, ref, tmp / "ios")
    return tmp / "ios"


def test_async_prediction_configuration_model_and_cpu_fallback(packages):
    for fmt in ("neuralnetwork", "mlprogram"):
        root, _, _ = packages[fmt]
        swift = _read(root, "Sources/TinyNet/TinyNetClassifier.swift")
        engine = _read(root, "Sources/TinyNet/TinyNetModelFile.swift")
        # iOS 17+: the async prediction (in the Sendable engine: MLModel is not Sendable); before: synchronous
        assert "if #available(iOS 17.0, macOS 14.0, tvOS 17.0, visionOS 1.0, *) {" in swift
        assert "read = try await engine.prediction(input" in swift and "try engine.synchronousPrediction(input)" in swift
        assert "let output = try await model.prediction(from: input)" in engine
        # the synchronous call sits in a synchronous function: in an async one it would resolve to the async
        # overload (iOS 17+, needing await)
        assert "func synchronousPrediction(_ input: MLFeatureProvider) throws -> MLFeatureProvider {\n" \
               "        try model.prediction(from: input)\n" in engine
        assert "@available(iOS 17.0, macOS 14.0, tvOS 17.0, visionOS 1.0, *)" in engine
        # every model call goes through predict(_:topK:) (one place for the availability branch)
        assert swift.count("prediction(from: ") == 0 and engine.count("prediction(from: ") == 2
        assert "public static func load(configuration: MLModelConfiguration) async throws -> TinyNetClassifier" in swift
        assert "public nonisolated var model: MLModel {" in swift
        assert "public nonisolated var configuration: MLModelConfiguration {" in swift
        assert "} catch where configuration.computeUnits != .cpuOnly {" in swift and "cpuOnly.computeUnits = .cpuOnly" in swift
        assert "self.computeUnits = model.configuration.computeUnits" in swift


# Required-reason API categories (Apple's list): file timestamps, boot time, disk space, active keyboards, defaults
REQUIRED_REASON = ("creationDate", "modificationDate", "contentModificationDate", "fileModificationDate",
                   "attributesOfItem", "systemUptime", "mach_absolute_time", "volumeAvailableCapacity",
                   "systemFreeSize", "activeInputModes", "UserDefaults", "stat(", "getattrlist")


def test_license_is_mit_in_full_and_privacy_manifest_is_not_needed(packages):
    for fmt in ("neuralnetwork", "mlprogram"):
        root, _, _ = packages[fmt]
        license_text = _read(root, "LICENSE")
        assert "MIT License" in license_text and "THE SOFTWARE IS PROVIDED \"AS IS\"" in license_text
        assert "Permission is hereby granted, free of charge" in license_text
        holder = re.search(r"^Copyright \(c\) (\d{4}) (.+)$", license_text, re.M)
        assert holder and holder.group(2) == "the authors of the Tiny Net package", license_text
        assert "CC-BY-4.0 (test)" in license_text  # the model keeps its own terms
        readme = _read(root, "README.md")
        assert "No `PrivacyInfo.xcprivacy` is needed" in readme and "required-reason API" in readme
        assert not list(root.rglob("PrivacyInfo.xcprivacy"))
        # the claim holds only while no Swift source calls a required-reason API
        for f in root.rglob("*.swift"):
            text = f.read_text(encoding="utf-8")
            assert [api for api in REQUIRED_REASON if api in text] == [], f
        # install routes: Xcode local folder, Xcode git URL, SwiftPM url
        assert "Add Package Dependencies… ▸ Add Local…" in readme
        assert "paste `<your-git-url>` in the search field" in readme
        assert '.package(url: "<your-git-url>", from: "1.0.0")' in readme


def test_wrapper_is_a_swift6_actor_with_camera_and_photo_entry_points(packages):
    root, _, _ = packages["neuralnetwork"]
    swift = _read(root, "Sources/TinyNet/TinyNetClassifier.swift")
    tests = _read(root, "Tests/TinyNetTests/TinyNetTests.swift")
    for text in (swift, tests):
        assert "@unchecked Sendable" not in text and "nonisolated(unsafe)" not in text
    # the one exception: the immutable engine holding the MLModel for Core ML's concurrency-safe async prediction
    engine = _read(root, "Sources/TinyNet/TinyNetModelFile.swift")
    assert engine.count("@unchecked Sendable") == 1 and "final class TinyNetEngine: @unchecked Sendable {\n    let model: MLModel\n" in engine
    assert "public actor TinyNetClassifier {" in swift
    # no completion handler or continuation: nothing to resume twice; no Vision (its resize is not the spec's)
    assert "Continuation" not in swift and ".resume(" not in swift and "completionHandler" not in swift
    assert "import Vision" not in swift and "VNCoreMLModel" not in swift
    pre = _read(root, "Sources/TinyNet/TinyNetPreprocessing.swift")
    assert "public enum TinyNetPreprocessing {" in pre and "public struct TinyNetFrame: Sendable, Equatable {" in pre
    assert 'public static let cropPolicy: String = "stretch"' in swift and 'cropPolicy: String = "stretch"' in pre
    # every image path: the Swift preprocessing, then the exact-size pixel buffer straight to Core ML
    assert "MLFeatureValue(pixelBuffer: buffer)" in swift and "try TinyNetPreprocessing.pixelBuffer(frame.pixels)" in swift
    for signature in ("func classify(_ pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up",
                      "func classify(_ image: CGImage, orientation: CGImagePropertyOrientation = .up",
                      "func classify(_ image: UIImage, topK: Int = 3)", "func classify(_ image: NSImage, topK: Int = 3)",
                      "func classify(contentsOf url: URL, topK: Int = 3)", "func classify(_ frame: TinyNetFrame"):
        assert signature in swift, signature
    for signature in ("public init(_ sampleBuffer: CMSampleBuffer, orientation: CGImagePropertyOrientation)",
                      "public init(_ pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation)",
                      "public init(contentsOf url: URL)"):
        assert signature in pre, signature
    assert swift.index("#if canImport(UIKit)\n\n    /// A `UIImage`") < swift.index("func classify(_ image: UIImage")
    assert swift.index("#elseif canImport(AppKit)") < swift.index("func classify(_ image: NSImage") < swift.rindex("#endif")
    # cancellation checked before and after each model call
    assert swift.count("try Task.checkCancellation()") >= 4
    # labels from the model, typed results
    assert "model.modelDescription.classLabels" in swift and '"cat"' not in swift
    assert "public struct TinyNetResult: Sendable, Equatable" in swift


def test_every_public_type_is_prefixed_so_two_packages_do_not_collide(packages):
    from packager.targets.ios import swift_syntax

    root, _, _ = packages["neuralnetwork"]
    tree = swift_syntax.parse((root / "Sources/TinyNet/TinyNetClassifier.swift").read_bytes())
    names = []
    for node in tree.root_node.children:
        if node.type in ("class_declaration", "protocol_declaration"):
            name = node.child_by_field_name("name")
            names.append(name.text.decode() if name is not None else "?")
    assert len(names) >= 6, names
    assert all(n.startswith("TinyNet") and n != "TinyNet" for n in names), names


def test_turned_references_computed_ahead_equal_the_models_own(packages):
    goldens = {fmt: json.loads(_read(packages[fmt][0], "Tests/TinyNetTests/Resources/golden.json"))
               for fmt in ("neuralnetwork", "mlprogram")}
    by_index = {fmt: {s["image"]: s["rotated"]["expected"]["output_0"]["values"] for s in g["samples"]}
                for fmt, g in goldens.items()}
    common = by_index["neuralnetwork"].keys() & by_index["mlprogram"].keys()
    assert common
    for i in common:
        np.testing.assert_allclose(by_index["neuralnetwork"][i], by_index["mlprogram"][i], rtol=0, atol=1e-6)


def test_golden_xctest_data_bites(packages):
    root, checks, _ = packages["neuralnetwork"]
    golden = json.loads(_read(root, "Tests/TinyNetTests/Resources/golden.json"))
    tol = golden["tolerance"]
    # measured on the shipped model here, with a floor; .all (float16 on GPU/ANE) no tighter than .cpuOnly
    assert golden["measuredError"] is not None and "executed here" in golden["toleranceBasis"]
    assert tol["cpuOnly"] == pytest.approx(max(ios_render.CPU_FLOOR_QUANTIZED, 3 * golden["measuredError"]))
    assert tol["all"] >= tol["cpuOnly"] and tol["all"] < 0.02  # the old 0.02 let an upside-down image pass
    assert golden["topK"] == 3 and golden["labels"] == ["cat", "dog", "owl", "eel"]
    assert any("margin" in s["why"] for s in golden["samples"])
    turned = 0.0
    for s in golden["samples"]:
        up, down = (np.asarray(s[c]["expected"]["output_0"]["values"]) for c in ("upright", "rotated"))
        turned = max(turned, float(np.abs(up - down).max()))
        assert len(s["upright"]["top"]["labels"]) == 3 and isinstance(s["upright"]["top"]["check"], bool)
    assert turned > tol["all"], "an upside-down image must fail the golden tolerance"
    # the golden files exercise orientation, alpha, crop and scale: originals as given, plus three made from one
    from packager.targets.ios.golden_images import decode

    res = root / "Tests/TinyNetTests/Resources"
    by_name = {s["image"]: s for s in golden["samples"]}
    for s in golden["samples"]:
        if s["image"].startswith("sample_"):
            assert (res / s["image"]).read_bytes() == (packages["samples"] / f"img_{s['index']}.png").read_bytes()
    stored, o = decode((res / "exif_rotated.png").read_bytes())
    assert o == 6 and by_name["exif_rotated.png"]["upright"]["orientation"] == 6
    assert by_name["exif_rotated.png"]["rotated"]["orientation"] == 8
    rgba, _ = decode((res / "alpha.png").read_bytes())
    assert rgba[..., 3].min() == 0 and 0 < (rgba[..., 3] == 128).mean() < 1
    large, _ = decode((res / "large.png").read_bytes())
    assert large.shape[1] >= 1000 and large.shape[0] != large.shape[1]
    assert golden["topOneAsserted"] == sum(s[c]["top"]["top1"] for s in golden["samples"] for c in ("upright", "rotated"))
    data = checks["golden-samples"].data
    assert data["cases"] == 2 * len(golden["samples"]) and data["top1_asserted"] == golden["topOneAsserted"]
    assert checks["golden-samples"].status == PASS and "upside down" in checks["golden-samples"].detail
    tests = _read(root, "Tests/TinyNetTests/TinyNetTests.swift")
    assert "check(.cpuOnly)" in tests and "check(.all)" in tests
    assert "classifier.classify(contentsOf: url" in tests and "result.top.map(\\.label)" in tests
    assert "XCTAssertEqual(asserted, golden.topOneAsserted" in tests and "top.top1" in tests


def _golden_again(packages, **extra):
    """golden.json's data computed again for the .mlmodel with the artifact's validation record changed by extra."""
    from packager.targets.ios.convert import read_features
    from packager.targets.ios.pixels import pixel_view

    spec, source, samp, ref = packages["build"]
    art = packages["neuralnetwork"][2]
    source, spec = pixel_view(source, spec)
    saved = dict(art.extra)
    art.extra.update(extra)
    try:
        return ios_render.golden_samples(spec, source, art, samp, ref, read_features(art.path))
    finally:
        art.extra.clear()
        art.extra.update(saved)


def test_golden_cases_reuse_validation_runs_of_the_same_inputs_and_measure_the_same(packages):
    """A golden case whose input is a sample as validation fed it takes validation's outputs instead of running the
    shipped model again: the measured error and every expectation equal those of running every case."""
    reused = _golden_again(packages)
    fresh = _golden_again(packages, predicted_inputs=[])
    originals = [s for s in reused["samples"] if s["image"].startswith("sample_")]
    count = int(re.search(r"(\d+) case\(s\) are inputs run already", reused["toleranceBasis"]).group(1))
    again = int(re.search(r"(\d+) case\(s\) are inputs run already", fresh["toleranceBasis"]).group(1))
    assert count == again + len(originals) and len(originals) >= 2  # the samples' upright cases, as given
    assert "not executed" not in reused["toleranceBasis"]
    assert reused["measuredError"] == pytest.approx(fresh["measuredError"], rel=0, abs=1e-7)
    assert reused["topOneAsserted"] == fresh["topOneAsserted"]
    assert [s.get("upright", {}).get("top") for s in reused["samples"]] == [s.get("upright", {}).get("top")
                                                                           for s in fresh["samples"]]


def test_golden_runs_are_bounded_by_the_measured_cost_and_say_so(packages):
    """A model whose every run costs 2 s here: two golden cases run (the floor), the rest are not executed; the
    tolerance basis says so and their top-1 is not asserted (no case is taken as agreeing unmeasured)."""
    full = _golden_again(packages, predicted_inputs=[])
    bounded = _golden_again(packages, predicted_inputs=[], seconds_per_run=2.0)
    cases, basis = bounded["cases"], bounded["toleranceBasis"]
    reused = int((re.search(r"(\d+) case\(s\) are inputs run already", basis) or [0, 0])[1])
    skipped = int(re.search(r"(\d+) case\(s\) not executed here", basis).group(1))
    assert "2000 ms a run here; 2 run within the 5 s budget" in basis and skipped == cases - 2 - reused > 0, basis
    assert bounded["measuredError"] <= full["measuredError"]
    first = bounded["samples"][0]["image"]  # its two cases ran (upright, rotated); the others were not executed

    def asserted(golden):
        return {(x["image"], c) for x in golden["samples"] for c in ("upright", "rotated") if x[c]["top"]["top1"]}

    assert {a for a in asserted(full) if a[0] != first}, "the fixture's model must assert some top-1 here"
    assert not {a for a in asserted(bounded) if a[0] != first}


def test_readme_and_license_match_the_package(packages):
    root, _, art = packages["mlprogram"]
    readme = _read(root, "README.md")
    assert 'cp -R dist/ios ../TinyNet' in readme
    assert '.package(path: "../TinyNet")' in readme and '.product(name: "TinyNet", package: "TinyNet")' in readme
    assert "struct ContentView: View" in readme
    # Xcode 26 (default main-actor isolation): the delegate is nonisolated, one frame in flight, Sendable frames
    camera = readme[readme.index("### Camera"):readme.index("struct ContentView")]
    assert "nonisolated final class Camera: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate" in camera
    assert "@MainActor @Observable final class Recognizer" in camera and "Task {" not in camera
    assert "guard claimed else { return }" in camera and ".bufferingNewest(1)" in camera
    assert "TinyNetFrame(sampleBuffer, orientation: .right)" in camera and "defer { camera.frameDone() }" in camera
    # set up once (a second input raises an exception), a new stream per run, the camera stopped when it ends
    assert "if session.inputs.isEmpty {" in camera and "session.canAddInput(input)" in camera
    assert "for await frame in camera.frames() {" in camera and "session.stopRunning()" in camera
    assert "continuation.onTermination = { [weak self] _ in self?.stop() }" in camera
    for kind in ("`Recognizer`: `@MainActor`", "`Camera`: `nonisolated`", "`TinyNetFrame` (this package): `Sendable`",
                 "`TinyNetClassifier` (this package): an `actor`"):
        assert kind in camera, kind
    assert "ML Program or NeuralNetwork?" in readme and "**center-crop**" not in readme and "**stretch**" in readme
    assert ".copy" in readme and "flat" in readme  # why the .mlpackage is copied
    from packager.targets.ios import swift_syntax

    blocks = [b for b in re.findall(r"```swift\n(.*?)```", readme, re.S) if b.startswith("import ")]
    assert len(blocks) == 2 and all(swift_syntax.parse_errors(b) == [] for b in blocks)  # usage, camera sample
    license_text = _read(root, "LICENSE")
    meta = ct.utils.load_spec(str(root / "Sources/TinyNet/TinyNetModel.mlpackage")).description.metadata
    assert meta.license == "CC-BY-4.0 (test)" and meta.license in license_text and "UNKNOWN" not in license_text


@pytest.mark.slow
def test_cli_report_and_console_say_swift_build_was_not_run(tmp_path):
    from conftest import run_cli

    if shutil.which("swift") or shutil.which("xcodebuild"):
        pytest.skip("a Swift toolchain is on PATH")
    inp = keras.Input((6,))
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(inp)).save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32))
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "m.keras", "--samples", tmp_path / "x.npy", "--targets", "ios", "--out", out,
                "--quantize", "ios=fp32")
    ios = json.loads((out / "report.json").read_text())["targets"]["ios"]
    check = next(c for c in ios["checks"] if c["name"] == "swift-build")
    assert check["status"] == UNVERIFIED and check["detail"].startswith("not run: no Swift toolchain"), check
    assert ios["status"] == PASS, ios  # the model itself was verified
    line = next(x for x in r.stdout.splitlines() if x.startswith("ios "))
    assert "PASS (UNVERIFIED here: swift-build)" in line, r.stdout  # the status line names what did not run
    assert ios["status_line"] == "PASS (UNVERIFIED here: swift-build)", ios
    assert "ios check swift-build: UNVERIFIED - not run: no Swift toolchain" in r.stdout, r.stdout
