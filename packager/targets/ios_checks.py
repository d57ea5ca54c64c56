"""iOS checks on the rendered Swift package: Swift syntax (tree-sitter), the feature names the Swift code uses vs
the bundled model, and the golden values of the XCTest vs the reference."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from ..checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from .ios_convert import read_features
from .ios_inputs import sample_to_pixels
from .ios_render import template_manifest


def _swift_files(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.rglob("*.swift") if p.is_file())


def check_swift_syntax(outdir: Path) -> Check:
    from ..runtimes import swift_syntax

    t0 = time.perf_counter()
    files = _swift_files(outdir)
    if not files:
        return Check("swift-syntax", FAIL, "no .swift files were rendered")
    try:
        bad = swift_syntax.check_files(files)
    except swift_syntax.SwiftParserMissing as e:
        return Check("swift-syntax", SKIPPED, str(e))
    if bad:
        detail = "; ".join(f"{Path(f).relative_to(outdir)}:{errs[0]}" + (f" (+{len(errs) - 1})" if len(errs) > 1 else "")
                           for f, errs in bad.items())
        return Check("swift-syntax", FAIL, detail, time.perf_counter() - t0)
    return Check("swift-syntax", PASS, f"{len(files)} Swift files parse (tree-sitter-swift; syntax only, "
                                       "no type checking)", time.perf_counter() - t0)


# Swift constant in `enum <Name>Features` -> the Core ML feature type it must name.
FEATURE_KINDS = {
    "imageInput": ("input", "imageType"),
    "arrayInputs": ("input", "multiArrayType"),
    "arrayOutputs": ("output", "multiArrayType"),
    "probabilities": ("output", "dictionaryType"),
    "classLabel": ("output", "stringType"),
}


def check_feature_names(spec, outdir: Path) -> Check:
    """Every feature name the Swift code uses exists in the bundled model with the expected type."""
    import coremltools as ct

    from ..runtimes import swift_syntax

    name = spec.identifier
    manifest = template_manifest()
    model_path = outdir / manifest["model"].replace("__name__", name)
    if not model_path.exists():
        model_path = model_path.with_suffix(".mlpackage")
    wrapper = outdir / manifest["wrapper"].replace("__name__", name)
    if not model_path.exists() or not wrapper.exists():
        return Check("feature-names", FAIL, f"missing {model_path.name if not model_path.exists() else wrapper.name}")
    mlspec = ct.utils.load_spec(str(model_path))
    kinds = {("input", f.name): f.type.WhichOneof("Type") for f in mlspec.description.input}
    kinds.update({("output", f.name): f.type.WhichOneof("Type") for f in mlspec.description.output})
    constants = swift_syntax.string_constants(wrapper.read_bytes(), f"{name}Features")
    problems, used = [], []
    for const, value in constants.items():
        if const not in FEATURE_KINDS:
            continue
        side, want = FEATURE_KINDS[const]
        for feat in value if isinstance(value, list) else [value]:
            if not feat:
                continue
            used.append(feat)
            got = kinds.get((side, feat))
            if got is None:
                problems.append(f"{const}: {feat!r} is not an {side} of {model_path.name}")
            elif got != want:
                problems.append(f"{const}: {feat!r} is {got}, the Swift code treats it as {want}")
    all_inputs = {f for (s, f) in kinds if s == "input"}
    missing = all_inputs - set(used)
    if missing:
        problems.append(f"model inputs never fed by the Swift code: {sorted(missing)}")
    if problems:
        return Check("feature-names", FAIL, "; ".join(problems))
    return Check("feature-names", PASS, f"{len(used)} feature names in {wrapper.name} match {model_path.name}: "
                                        + ", ".join(used))


def check_golden(spec, source, samples, outdir: Path, reference) -> Check:
    """The XCTest's golden values are the reference outputs (and images decode to the samples)."""
    name = spec.identifier
    manifest = template_manifest()
    gdir = outdir / manifest["golden"].replace("__name__", name)
    gfile = gdir / "golden.json"
    test_file = outdir / manifest["test"].replace("__name__", name)
    if not spec.bundle_samples:
        return _check_no_golden(gdir, test_file, outdir)
    if not gfile.exists() or not test_file.exists():
        return Check("golden-samples", FAIL, f"missing {gfile.name if not gfile.exists() else test_file.name}")
    golden = json.loads(gfile.read_text(encoding="utf-8"))
    if "golden.json" not in test_file.read_text(encoding="utf-8"):
        return Check("golden-samples", FAIL, f"{test_file.name} does not read golden.json")
    features = None
    with contextlib.suppress(Exception):
        features = read_features(next((outdir / "Sources" / name).glob(f"{name}.ml*")))
    if features is None:
        return Check("golden-samples", FAIL, "cannot read the feature mapping of the bundled model")
    problems, compared = [], 0
    for item in golden["samples"]:
        i = item["index"]
        for tensor in source.outputs:
            exp = item["expected"].get(features["outputs"][tensor.name])
            if exp is None:
                problems.append(f"sample {i}: no expected {tensor.name}")
                continue
            ref = np.asarray(reference[tensor.name][i], np.float32).reshape(-1)
            got = np.asarray(exp["values"], np.float32)
            if got.shape != ref.shape or not np.allclose(got, ref, rtol=0, atol=1e-6):
                problems.append(f"sample {i}: expected {tensor.name} differs from the reference")
            compared += 1
        if "image" in item:
            from PIL import Image

            with Image.open(gdir / item["image"]) as im:
                pix = np.asarray(im, np.float32).reshape(np.asarray(im).shape[:2] + (-1,))
            want = sample_to_pixels(np.asarray(samples[i][source.inputs[0].name], np.float32), spec)
            if pix.shape != want.shape:
                problems.append(f"sample {i}: {item['image']} has shape {pix.shape}, the model input {want.shape}")
            elif item.get("image_exact") and np.max(np.abs(pix - want)) > 0.5:
                problems.append(f"sample {i}: {item['image']} does not hold the sample's pixels")
    if problems:
        return Check("golden-samples", FAIL, "; ".join(problems[:5]))
    return Check("golden-samples", PASS, f"{len(golden['samples'])} golden samples ({compared} outputs) in "
                                         f"{gfile.relative_to(outdir)} equal the reference; tolerance "
                                         f"{golden['tolerance']:.3g}")


def _check_no_golden(gdir: Path, test_file: Path, outdir: Path) -> Check:
    """--no-bundled-samples: nothing from the samples in the package, and the XCTest does not expect any. The golden
    values are not there to be checked: UNVERIFIED (a deliberate opt-out, not a missing tool: not SKIPPED)."""
    if gdir.exists():
        return Check("golden-samples", FAIL, f"{gdir.relative_to(outdir)} was written despite --no-bundled-samples")
    if not test_file.exists():
        return Check("golden-samples", FAIL, f"missing {test_file.name}")
    if "golden.json" in test_file.read_text(encoding="utf-8"):
        return Check("golden-samples", FAIL, f"{test_file.name} reads golden.json, which --no-bundled-samples leaves out")
    return Check("golden-samples", UNVERIFIED,
                 f"no bundled samples (--no-bundled-samples): {test_file.relative_to(outdir)} has no golden cases, so "
                 "`swift test` does not compare Core ML's outputs with the original model's (the build's predictions "
                 "check is unaffected)")
