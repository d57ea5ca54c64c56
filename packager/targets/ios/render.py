"""iOS rendering: ``ios_template/`` -> a Swift package holding the model, the Swift wrapper and an XCTest whose
golden cases are some of the user's samples with the original model's outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from packager.errors import UsageError
from packager.kinds import image_outputs, primary_name
from packager.render import render_tree, template_dir
from packager.targets.base import Artifact
from packager.targets.ios.convert import is_classifier, read_features
from packager.targets.ios.golden_images import frame_levels, golden_images, model_inputs
from packager.targets.ios.golden_runs import GoldenRuns, validation_outputs
from packager.targets.ios.inputs import feed, sample_to_pixels
from packager.version import __version__


def render(spec, source, artifact: Artifact, samples, reference, outdir: Path) -> Path:
    name = spec.identifier
    features = read_features(artifact.path)
    manifest = template_manifest()
    classifier = artifact.extra.get("classifier", is_classifier(source, spec))
    if spec.bundle_samples:
        golden = golden_samples(spec, source, artifact, samples, reference, features)
        n, used = len(golden["samples"]), len({item.get("index") for item in golden["samples"]})
        what = (f"{n} images made from {used} of your samples (as given, EXIF-rotated, with transparency, enlarged;"
                if source.is_image else f"{n} of your sample inputs (as given;")  # arrays: no image is made
        artifact.extra["bundled_samples"] = (
            f"bundles {what} with the original model's outputs) in "
            f"ios/{manifest['golden'].replace('__name__', name)}/ for the XCTest golden cases "
            "(--no-bundled-samples leaves them out)")
    else:  # --no-bundled-samples: no input, image or output computed from them; the XCTest has no golden cases
        golden = {"samples": []}
        artifact.extra["bundled_samples"] = "no sample data bundled in ios/ (--no-bundled-samples)"
    context = swift_context(spec, source, artifact, features, classifier, golden)
    outdir.mkdir(parents=True, exist_ok=True)
    render_tree(template_dir("ios"), outdir, context)
    model_rel = Path(manifest["model"].replace("__name__", name))
    if artifact.path.suffix == ".mlpackage":
        model_rel = model_rel.with_suffix(".mlpackage")
        shutil.copytree(artifact.path, outdir / model_rel, dirs_exist_ok=True)
    else:
        (outdir / model_rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact.path, outdir / model_rel)
    if not spec.bundle_samples:
        return model_rel
    gdir = outdir / manifest["golden"].replace("__name__", name)
    gdir.mkdir(parents=True, exist_ok=True)
    for sample in golden["samples"]:
        if "image" in sample:
            (gdir / sample["image"]).write_bytes(sample.pop("_data"))
    (gdir / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return model_rel


def _year() -> int:
    """The year for the copyright line: ``SOURCE_DATE_EPOCH``'s when set (reproducible builds), else this one."""
    import datetime
    import os

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch.isdigit()
            else datetime.datetime.now(datetime.UTC))
    return when.year


def template_manifest() -> dict:
    import tomllib

    return tomllib.loads((template_dir("ios") / "template.toml").read_text(encoding="utf-8"))



def _flat(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, np.float32).reshape(-1)]


# The XCTest's golden cases: the hardest samples (where the shipped model disagreed with the original, then the
# lowest top-1 margins), then the first. Tolerances: MEASURED_FACTOR x the largest error of the shipped model as
# executed here on exactly the bundled inputs, at least a floor. `.cpuOnly` computes in float32 like the executor;
# `.all` may run on the GPU / Neural Engine in float16, hence its higher floor.
GOLDEN_COUNT = 4
TOP_K = 3
MEASURED_FACTOR = 3.0
CPU_FLOOR = {"fp32": 2e-4}
CPU_FLOOR_QUANTIZED = 1e-3
ALL_FLOOR = 1e-2


def choose_samples(spec, source, samples, reference, predicted: dict | None) -> list[tuple[int, str]]:
    """``(index, why)`` of the golden samples: disagreements of the shipped model, lowest margins, the first."""
    n = len(samples)
    primary = primary_name(spec, source)
    rows = np.asarray(reference[primary], np.float32).reshape(n, -1)
    chosen: dict[int, str] = {}
    want = min(GOLDEN_COUNT, n)
    if rows.shape[1] > 1:
        if predicted is not None and primary in predicted:
            got = np.asarray(predicted[primary], np.float32).reshape(n, -1)
            for i in np.flatnonzero(got.argmax(1) != rows.argmax(1))[: max(1, want // 2)]:
                chosen[int(i)] = "the converted model's top-1 differed from the original's at build time"
        top2 = -np.sort(-rows, axis=1)[:, :2]
        for i in np.argsort(top2[:, 0] - top2[:, 1], kind="stable"):
            if len(chosen) >= want - 1:
                break
            chosen.setdefault(int(i), "one of the lowest top-1 margins")
    elif predicted is not None and primary in predicted:
        err = np.abs(np.asarray(predicted[primary], np.float32).reshape(n, -1) - rows).max(1)
        for i in np.argsort(-err, kind="stable")[: want - 1]:
            chosen[int(i)] = "one of the largest errors of the converted model at build time"
    for i in range(n):
        if len(chosen) >= want:
            break
        chosen.setdefault(i, "first sample" if i == 0 else "next sample")
    return sorted(chosen.items())


def turned_reference(spec, source, samples, reference) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The original model's outputs on the golden images ``golden_samples`` will most likely make (all but those the
    shipped model's own disagreements add), upright and upside down, by file name: run where the model is loaded."""
    if not source.is_image:
        return {}
    chosen = choose_samples(spec, source, samples, reference, None)
    images = golden_images(spec, source, samples, chosen, _margins(spec, source, reference))
    name = source.inputs[0].name
    return {g.name: {case: source.predict({name: x}) for case, (x, _, _) in model_inputs(g.data, spec, source).items()}
            for g in images}


def _margins(spec, source, reference) -> dict[int, float]:
    rows = np.asarray(reference[primary_name(spec, source)], np.float32)
    rows = rows.reshape(rows.shape[0], -1)
    if rows.shape[1] < 2:
        return {}
    top2 = -np.sort(-rows, axis=1)[:, :2]
    return {i: float(m) for i, m in enumerate(top2[:, 0] - top2[:, 1])}


def _executor(artifact):
    """The shipped model as it runs here (``ios.local_runner``), or None when it cannot run here."""
    from packager.targets.base import Unverified
    from packager.targets.ios.runner import coreml_runtime_available, local_runner

    try:
        return local_runner(artifact.path, coreml=coreml_runtime_available())
    except Unverified:
        return None


def _shipped_outputs(case, i, inputs, predicted, runs, source, spec, features) -> dict | None:
    """The shipped model's outputs (reference output name -> array) on one golden case of an array model: the
    build's own predictions, else a run of the executor here; None when neither is possible."""
    if case == "upright" and predicted is not None:
        # only an image input goes through pixels (an array input of any rank is fed as it is)
        pixels = [sample_to_pixels(np.asarray(inputs[t.name], np.float32), spec)
                  for t in source.inputs] if source.is_image else []
        pixels_exact = all(np.all(np.abs(p - np.rint(p)) < 1e-3) for p in pixels)
        if pixels_exact and all(t.name in predicted for t in source.outputs):
            return {t.name: np.asarray(predicted[t.name])[i] for t in source.outputs}
    return runs(feed(inputs, source, spec, features, exact_pixels=False))


def _run_shipped(executor, fed: dict, source, features, labels) -> dict | None:
    """The shipped model's outputs by reference output name on Core ML inputs ``fed``; None when it cannot run."""
    from packager.targets.ios.runner import _CoreMLRunner, one_blas_thread

    if executor is None:
        return None
    runner, _ = executor
    if not isinstance(runner, _CoreMLRunner):
        fed = {k: v.astype(np.float32) for k, v in fed.items()}
    try:
        with one_blas_thread():
            out = runner(fed)
    except Exception:
        return None
    got = {}
    for t in source.outputs:
        value = out[features["outputs"][t.name]]
        if isinstance(value, dict):  # Core ML classifier probabilities: label -> p
            value = [value[label] for label in labels]
        got[t.name] = np.asarray(value, np.float32)
    return got


def golden_samples(spec, source, artifact, samples, reference, features) -> dict:
    """The golden cases of the XCTest: inputs, the original model's outputs (upright and, for images, upside
    down), the top-k order where it is decided, and tolerances measured on the shipped model."""
    primary = primary_name(spec, source)
    labels = list(spec.labels)
    width = int(np.asarray(reference[primary]).reshape(len(samples), -1).shape[1]) if len(samples) else 0
    top_k = min(TOP_K, width) if labels and width == len(labels) else 0
    executor = _executor(artifact)
    predicted = artifact.extra.get("predicted")
    runs = GoldenRuns(lambda fed: _run_shipped(executor, fed, source, features, labels),
                      validation_outputs(artifact, source), artifact.extra.get("seconds_per_run"),
                      pixels=source.is_image)
    errors: list[float] = []
    disagreed: set = set()  # golden cases (image name or sample index) whose top-1 the shipped model got wrong
    if source.is_image:
        items = _image_items(spec, source, samples, reference, predicted, runs, features, errors, disagreed, top_k)
    else:
        items = _array_items(spec, source, samples, reference, predicted, runs, features, errors, disagreed, top_k)
    measured = max(errors) if errors else None
    cpu_floor = CPU_FLOOR.get(artifact.mode, CPU_FLOOR_QUANTIZED)
    cpu = max(cpu_floor, MEASURED_FACTOR * (measured or 0.0))
    tolerance = {"cpuOnly": cpu, "all": max(ALL_FLOOR, cpu)}
    for item in items:
        for case in ("upright", "rotated"):
            if case in item and top_k:
                row = np.asarray(item[case]["expected"][features["outputs"][primary]]["values"], np.float32)
                order = np.argsort(-row, kind="stable")
                gaps = [float(row[order[j]] - row[order[j + 1]]) for j in range(min(top_k, row.size - 1))]
                agreed = item.get("image", item["index"]) not in disagreed
                item[case]["top"] = {"labels": [labels[int(j)] for j in order[:top_k]],
                                     "check": bool(gaps) and min(gaps) > 2 * tolerance["all"] and agreed,
                                     "top1": bool(gaps) and gaps[0] > 2 * tolerance["all"] and agreed}
    if measured is None:
        basis = (f"floors only ({cpu_floor:g} CPU, {ALL_FLOOR:g} all compute units): the shipped model could not "
                 "be executed here")
    else:
        basis = (f"{MEASURED_FACTOR:g} x the largest error of the shipped model on these inputs as executed here "
                 f"({measured:.3g}, {executor[1] if executor else 'the build predictions'}), at least {cpu_floor:g} (CPU) / {ALL_FLOOR:g} (all compute units)"
                 + runs.basis())
    asserted = sum(bool(item[c]["top"]["top1"]) for item in items for c in ("upright", "rotated")
                   if "top" in item.get(c, {}))
    return {"model": spec.identifier, "weights": artifact.mode, "labels": labels, "topK": top_k,
            "tolerance": tolerance, "topOneAsserted": asserted,
            "cases": sum(c in item for item in items for c in ("upright", "rotated")), "toleranceBasis": basis, "measuredError": measured,
            "source": ("the original model's outputs on each golden file as packager.preprocessing makes it the model's "
                       "input (upright and shown upside down)"), "samples": items}


def _image_items(spec, source, samples, reference, predicted, runs, features, errors, disagreed, top_k) -> list[dict]:
    """Golden cases of an image model: each golden file (golden_images), its expectations from the file by
    packager.preprocessing, and the shipped model's error on the 8-bit pixels the Swift code feeds it."""
    primary = primary_name(spec, source)
    chosen = choose_samples(spec, source, samples, reference, predicted)
    ahead = getattr(source, "turned_reference", None) or {}
    image_feature = features["inputs"][source.inputs[0].name]
    items = []
    for g in golden_images(spec, source, samples, chosen, _margins(spec, source, reference)):
        cases = model_inputs(g.data, spec, source)
        known = ahead.get(g.name) or {c: source.predict({source.inputs[0].name: x}) for c, (x, _, _) in cases.items()}
        item: dict = {"index": g.index, "why": g.why, "inputs": {}, "image": g.name, "_data": g.data}
        for case, (_, rgb, orientation) in cases.items():
            expected = {t.name: np.asarray(known[case][t.name], np.float32) for t in source.outputs}
            item[case] = {"orientation": orientation, "expected": _expected(expected, source, features)}
            skipped = runs.skipped
            got = runs({image_feature: frame_levels(rgb)})
            if runs.skipped > skipped:  # not measured (the budget): its top-1 is not asserted
                disagreed.add(g.name)
            _measure(got, expected, source, primary, top_k, g.name, errors, disagreed)
        items.append(item)
    return items


def _array_items(spec, source, samples, reference, predicted, runs, features, errors, disagreed, top_k) -> list[dict]:
    primary = primary_name(spec, source)
    items = []
    for i, why in choose_samples(spec, source, samples, reference, predicted):
        sample = samples[i]
        item: dict = {"index": i, "why": why, "inputs": {}}
        for tensor in source.inputs:
            x = np.asarray(sample[tensor.name], np.float32)
            item["inputs"][features["inputs"][tensor.name]] = {"shape": list(x.shape), "values": _flat(x)}
        expected = {n: np.asarray(v)[i: i + 1] for n, v in reference.items()}
        item["upright"] = {"expected": _expected(expected, source, features)}
        skipped = runs.skipped
        got = _shipped_outputs("upright", i, sample, predicted, runs, source, spec, features)
        if runs.skipped > skipped:
            disagreed.add(i)
        _measure(got, expected, source, primary, top_k, i, errors, disagreed)
        items.append(item)
    return items


def _expected(expected: dict, source, features) -> dict:
    return {features["outputs"][t.name]: {"shape": list(np.shape(expected[t.name])), "values": _flat(expected[t.name])}
            for t in source.outputs}


def _measure(got, expected, source, primary, top_k, key, errors, disagreed) -> None:
    for t in source.outputs:
        if got is None:
            return
        g = np.asarray(got[t.name], np.float32).reshape(-1)
        want = np.asarray(expected[t.name], np.float32).reshape(-1)
        errors.append(float(np.max(np.abs(g - want))) if g.size == want.size else float("inf"))
        if t.name == primary and top_k and g.size == want.size and g.argmax() != want.argmax():
            disagreed.add(key)


def model_digest(path: Path) -> str:
    """SHA-256 (16 hex digits) of a model file, or of an ``.mlpackage`` folder's paths and contents."""
    import hashlib

    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if f != path else b"")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


DEFAULT_CROP_POLICY = "stretch"  # until the spec has a crop policy: the whole image, aspect ratio not kept
VISION_CROP = {"stretch": "scaleFill", "center-crop": "centerCrop", "letterbox": "scaleFit"}


def crop_policy(spec) -> str:
    """The spec's crop policy (``stretch`` / ``center-crop`` / ``letterbox``), ``DEFAULT_CROP_POLICY`` when the spec
    has none."""
    pre = spec.preprocessing
    value = getattr(pre, "crop", None) or getattr(pre, "crop_policy", None) or DEFAULT_CROP_POLICY
    value = str(value).replace("_", "-").lower()
    if value not in VISION_CROP:
        raise UsageError(f"unknown crop policy {value!r} for the iOS package",
                         hint=f"use one of {', '.join(VISION_CROP)}")
    return value


def swift_context(spec, source, artifact, features, classifier: bool, golden: dict) -> dict:
    name = spec.identifier
    outputs = [features["outputs"][o.name] for o in source.outputs]
    return {
        "name": name,
        "display_name": spec.display_name,
        "description": spec.description or f"{spec.display_name}, packaged for Core ML by packager {__version__}",
        "version": spec.version,
        "packager_version": __version__,
        "model_file": f"{name}Model{artifact.path.suffix}",
        "model_name": f"{name}Model",
        "model_ext": artifact.path.suffix.lstrip("."),
        "model_digest": model_digest(artifact.path),
        "crop_policy": crop_policy(spec),
        "crop_and_scale": VISION_CROP[crop_policy(spec)],
        "labels": list(spec.labels),
        "is_image": bool(source.is_image),
        "classifier": classifier,
        "image_input": features["inputs"][source.inputs[0].name] if source.is_image else "",
        "array_inputs": [] if source.is_image else [features["inputs"][i.name] for i in source.inputs],
        "array_input_shapes": [] if source.is_image else [list(i.sample_shape) for i in source.inputs],
        "array_outputs": [] if classifier else outputs,
        "probabilities": outputs[0] if classifier else "",
        "primary_output": features["outputs"][primary_name(spec, source)],  # the same output on every target
        "class_label": features.get("class_label", ""),
        "image_size": [int(source.inputs[0].shape[2]), int(source.inputs[0].shape[1])] if source.is_image else [],
        "channels": int(source.inputs[0].shape[3]) if source.is_image else 0,
        "background": [int(v) for v in spec.preprocessing.background],
        "normalize": getattr(spec.preprocessing, "normalize", "mean-std"),
        "image_outputs": [{"name": o.name, "feature": features["outputs"][o.name],
                           "shape": [1, *(int(d) for d in o.shape[1:])]}
                          for o in image_outputs(spec, source) if not classifier],
        "weights": artifact.mode,
        "license": spec.license or "unspecified",  # what ios_convert.describe writes into the model's metadata
        "license_given": bool(spec.license),
        "author": spec.author or "packager",
        # MIT for the generated code: the year it was generated, held by the author the user named, else by
        # the package's authors (never a person packager invents)
        "copyright_year": _year(),
        "copyright_holder": spec.author or f"the authors of the {spec.display_name} package",
        "golden_count": len(golden["samples"]),
        "paths": {"name": name},
    }

