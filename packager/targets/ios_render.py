"""iOS rendering: ``ios_template/`` -> a Swift package holding the model, the Swift wrapper and an XCTest whose
golden cases are some of the user's samples with the original model's outputs."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from ..kinds import primary_name
from ..render import render_tree, template_dir
from .base import Artifact
from .ios_convert import is_classifier, read_features
from .ios_inputs import feed, sample_to_pixels

GOLDEN_COUNT = 3


def render(spec, source, artifact: Artifact, samples, reference, outdir: Path) -> Path:
    name = spec.identifier
    features = read_features(artifact.path)
    manifest = template_manifest()
    classifier = artifact.extra.get("classifier", is_classifier(source, spec))
    if spec.bundle_samples:
        golden = golden_samples(spec, source, artifact, samples, reference, features)
        artifact.extra["bundled_samples"] = (
            f"bundles {len(golden['samples'])} of your samples (inputs and the original model's outputs) in "
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
            _write_png(gdir / sample["image"], sample.pop("_pixels"))
    (gdir / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return model_rel


def template_manifest() -> dict:
    import tomllib

    return tomllib.loads((template_dir("ios") / "template.toml").read_text(encoding="utf-8"))



def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    arr = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path, format="PNG")


def _flat(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, np.float32).reshape(-1)]


def golden_samples(spec, source, artifact, samples, reference, features) -> dict:
    """The first few samples with the original model's outputs, for the XCTest."""
    n = min(GOLDEN_COUNT, len(samples))
    tol_base = 1e-3 if artifact.mode == "fp32" else 2e-2
    observed = 0.0
    items = []
    program = None
    with contextlib.suppress(Exception):  # tolerance from the executor's own error when it can run here
        from ..runtimes import coreml_numpy

        program = coreml_numpy.Program(artifact.path)
    for i in range(n):
        sample = samples[i]
        item: dict = {"index": i, "inputs": {}, "expected": {}}
        if source.is_image:
            pixels = sample_to_pixels(np.asarray(sample[source.inputs[0].name]), spec)
            integral = bool(np.all(np.abs(pixels - np.rint(pixels)) < 1e-3) and pixels.min() > -0.5
                            and pixels.max() < 255.5)
            item["image"] = f"sample_{i}.png"
            item["image_exact"] = integral
            item["_pixels"] = pixels
        else:
            for tensor in source.inputs:
                x = np.asarray(sample[tensor.name], np.float32)
                item["inputs"][features["inputs"][tensor.name]] = {"shape": list(x.shape), "values": _flat(x)}
        for tensor in source.outputs:
            ref = np.asarray(reference[tensor.name][i: i + 1], np.float32)
            item["expected"][features["outputs"][tensor.name]] = {"shape": list(ref.shape), "values": _flat(ref)}
            if spec.labels and len(source.outputs) == 1 and ref.shape[-1] == len(spec.labels):
                row = ref.reshape(-1)
                order = np.argsort(-row)
                item["top1"] = {"index": int(order[0]), "label": spec.labels[int(order[0])],
                                "margin": float(row[order[0]] - row[order[1]]) if row.size > 1 else 1.0}
        if program is not None:
            with contextlib.suppress(Exception):
                out = program(feed(sample, source, spec, features))
                for tensor in source.outputs:
                    got = np.asarray(out[features["outputs"][tensor.name]], np.float32).reshape(-1)
                    ref = np.asarray(reference[tensor.name][i], np.float32).reshape(-1)
                    observed = max(observed, float(np.max(np.abs(got - ref))))
        items.append(item)
    tolerance = float(max(tol_base, 4 * observed))
    for item in items:
        if "top1" in item:
            item["top1"]["check"] = item["top1"]["margin"] > 2 * tolerance
    return {"model": spec.identifier, "weights": artifact.mode, "tolerance": tolerance,
            "source": "reference outputs of the original model", "samples": items}


def swift_context(spec, source, artifact, features, classifier: bool, golden: dict) -> dict:
    name = spec.identifier
    outputs = [features["outputs"][o.name] for o in source.outputs]
    return {
        "name": name,
        "display_name": spec.display_name,
        "description": spec.description or f"{spec.display_name}, packaged for Core ML by packager {__version__}",
        "version": spec.version,
        "packager_version": __version__,
        "model_file": f"{name}{artifact.path.suffix}",
        "model_ext": artifact.path.suffix.lstrip("."),
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
        "weights": artifact.mode,
        "golden_count": len(golden["samples"]),
        "paths": {"name": name},
    }

