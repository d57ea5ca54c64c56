"""iOS checks on the rendered Swift package: Swift syntax (tree-sitter), the feature names the Swift code uses vs
the bundled model, and the golden values of the XCTest vs the reference."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from packager.checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from packager.targets.ios.convert import read_features
from packager.targets.ios.render import template_manifest


def _swift_files(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.rglob("*.swift") if p.is_file())


def check_swift_syntax(outdir: Path) -> Check:
    from packager.targets.ios import swift_syntax

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

    from packager.targets.ios import swift_syntax

    name = spec.identifier
    manifest = template_manifest()
    model_path = bundled_model(outdir, name)
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
    """The XCTest's golden values are the original model's outputs (upright: the reference; upside down: the
    original model on the turned input), the images decode to the samples, and the tolerances are set."""
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
        features = read_features(bundled_model(outdir, name))
    if features is None:
        return Check("golden-samples", FAIL, "cannot read the feature mapping of the bundled model")
    problems, compared, turned_effect = [], 0, 0.0
    tolerance = golden.get("tolerance", {})
    if not all(isinstance(tolerance.get(k), (int, float)) and tolerance[k] > 0 for k in ("cpuOnly", "all")):
        problems.append(f"tolerance {tolerance!r} is not a positive cpuOnly / all pair")
    image_name = source.inputs[0].name
    originals = list(getattr(samples, "image_paths", None) or [])
    for item in golden["samples"]:
        i = item["index"]
        if source.is_image:
            cases = _image_cases(item, gdir, spec, source, originals, image_name, problems)
        else:
            cases = {"upright": {t.name: np.asarray(reference[t.name][i], np.float32) for t in source.outputs}}
        for case, want in cases.items():
            for tensor in source.outputs:
                exp = item.get(case, {}).get("expected", {}).get(features["outputs"][tensor.name])
                if exp is None:
                    problems.append(f"sample {i}: no expected {tensor.name} ({case})")
                    continue
                ref = want[tensor.name].reshape(-1)
                got = np.asarray(exp["values"], np.float32)
                if got.shape != ref.shape or not np.allclose(got, ref, rtol=0, atol=1e-5):
                    problems.append(f"{item.get('image', i)}: expected {tensor.name} ({case}) differs from the "
                                    "original model's on the file preprocessed by packager.preprocessing")
                compared += 1
        if "rotated" in cases and "upright" in cases:
            turned_effect = max(turned_effect, max(float(np.max(np.abs(cases["rotated"][t.name].reshape(-1)
                                                                         - cases["upright"][t.name].reshape(-1))))
                                                   for t in source.outputs))
    n_cases = sum(c in item for item in golden["samples"] for c in ("upright", "rotated"))
    asserted = sum(bool(item.get(c, {}).get("top", {}).get("top1")) for item in golden["samples"]
                   for c in ("upright", "rotated"))
    if golden.get("topOneAsserted") != asserted:
        problems.append(f"topOneAsserted {golden.get('topOneAsserted')} is not the {asserted} cases marked top1")
    if problems:
        return Check("golden-samples", FAIL, "; ".join(problems[:5]))
    bite = (f"; turning an image upside down moves the original model's outputs by up to {turned_effect:.3g}"
            if source.is_image else "")
    top1 = (f"; the XCTest asserts the top-1 of {asserted}/{n_cases} cases ({asserted / n_cases:.0%}: margin over the "
            f"second > 2 x {tolerance['all']:.3g})" if golden.get("topK") and n_cases else "")
    files = (f"{len(golden['samples'])} golden files (" + ", ".join(s["image"] for s in golden["samples"]) + ")"
             if source.is_image else f"{len(golden['samples'])} golden samples")
    return Check("golden-samples", PASS,
                 f"{files} ({compared} outputs, {golden.get('topK', 0)} top labels) in "
                 f"{gfile.relative_to(outdir)} equal the original model's; tolerance {tolerance['cpuOnly']:.3g} "
                 f"(.cpuOnly) / {tolerance['all']:.3g} (.all): {golden.get('toleranceBasis', '')}{top1}{bite}",
                 data={"cases": n_cases, "top1_asserted": asserted,
                       "top1_asserted_fraction": round(asserted / n_cases, 4) if n_cases else None})


def _image_cases(item, gdir, spec, source, originals, image_name, problems) -> dict:
    """The original model's outputs on one golden file, recomputed here from the file (packager.preprocessing),
    upright and upside down; the file is the sample's own when it is named after one."""
    from packager.targets.ios.golden_images import model_inputs

    path = gdir / item.get("image", "")
    if not item.get("image") or not path.is_file():
        problems.append(f"sample {item['index']}: golden image {item.get('image')!r} missing")
        return {}
    data = path.read_bytes()
    if item["image"].startswith("sample_") and originals and data != originals[item["index"]].read_bytes():
        problems.append(f"{item['image']} is not the original file of sample {item['index']}")
    cases = {}
    for case, (x, _, orientation) in model_inputs(data, spec, source).items():
        if item.get(case, {}).get("orientation") != orientation:
            problems.append(f"{item['image']}: {case} orientation {item.get(case, {}).get('orientation')} is not "
                            f"{orientation}")
        out = source.predict({image_name: x})
        cases[case] = {t.name: np.asarray(out[t.name], np.float32) for t in source.outputs}
    return cases


def bundled_model(outdir: Path, name: str) -> Path:
    """The model file (``.mlmodel``) or folder (``.mlpackage``) inside the rendered package."""
    model_path = outdir / template_manifest()["model"].replace("__name__", name)
    return model_path if model_path.exists() else model_path.with_suffix(".mlpackage")


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
