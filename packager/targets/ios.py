"""iOS target: a Core ML ``.mlmodel`` (NeuralNetwork) inside a drop-in Swift package.

convert  coremltools, from the source's ``serving_default`` ConcreteFunction (works the same for
         Keras, SavedModel and frozen-graph ``.pb`` sources), wrapped so the batch is 1 and the
         outputs come in the reference order. Image models get an ``ImageType`` input carrying the
         preprocessing; classifiers a ``ClassifierConfig``. Weight modes: fp32, fp16 (default),
         8bit (per-channel linear). ``spec.ios_format == "mlprogram"`` gives an ``.mlpackage``.
predict  Core ML through coremltools on macOS; elsewhere the NumPy executor of the saved spec
         (``packager.runtimes.coreml_numpy``). Unknown layers -> ``Unverified`` naming every unknown type.
render   ``ios_template/`` -> Swift package with the model, the wrapper and an XCTest with golden
         samples.
checks   Swift syntax (tree-sitter), feature names used by the Swift code vs the model spec,
         golden values vs the reference.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import re
import shutil
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..checks import FAIL, PASS, SKIPPED, UNVERIFIED, Check
from ..errors import ConversionError, UsageError
from ..kinds import primary_name
from ..render import render_tree, template_dir
from .base import Artifact, Prediction, Unverified

META_KEY = "packager.features"  # user-defined metadata: reference names <-> Core ML feature names
GOLDEN_COUNT = 3
DEPLOYMENT = "iOS14"  # NeuralNetwork .mlmodel needs a target below iOS 15


def feature_name(name: str, taken: set[str]) -> str:
    """A Core ML feature name that is also a plain identifier: ``serving:0`` -> ``serving_0``."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "feature"
    if base[0].isdigit():
        base = "f_" + base
    out, n = base, 2
    while out in taken or out == "classLabel":
        out, n = f"{base}_{n}", n + 1
    taken.add(out)
    return out


def is_classifier(source, spec) -> bool:
    """Labels given and the model's single output is one score per label."""
    if not spec.labels or len(source.outputs) != 1:
        return False
    shape = source.outputs[0].shape
    return len(shape) == 2 and shape[-1] == len(spec.labels)


def image_preprocessing(source, spec) -> tuple[float, list[float], list[float] | None]:
    """Core ML's ``scale * pixel + bias[c]`` for the spec's ``(pixel - mean[c]) / std[c]``.

    Core ML has one scale for all channels. When the stds differ, the image is scaled by
    ``1/std[0]`` and a per-channel factor ``std[0]/std[c]`` is multiplied in the graph (returned).
    """
    channels = int(source.inputs[0].shape[-1])
    mean, std = spec.preprocessing.per_channel(channels)
    scale = 1.0 / std[0]
    bias = [-m / std[0] for m in mean]
    factor = None if len(set(std)) == 1 else [std[0] / s for s in std]
    return scale, bias, factor


def _fixed_function(source, factor):
    """The serving_default function with batch 1, inputs in ``source.inputs`` order and outputs as a
    list in ``source.outputs`` order (so Core ML's outputs map to the reference by position)."""
    import tensorflow as tf

    cf = source.concrete_function()
    args_sig, kwargs_sig = cf.structured_input_signature
    in_names = [i.name for i in source.inputs]
    out_names = [o.name for o in source.outputs]
    taken: set[str] = set()
    specs = [
        tf.TensorSpec(i.sample_shape, tf.as_dtype(i.dtype), name=feature_name(i.name, taken))
        for i in source.inputs
    ]

    def body(*args):
        args = list(args)
        if factor is not None:
            args[0] = args[0] * tf.constant(np.asarray(factor, np.float32))
        out = cf(**dict(zip(in_names, args))) if kwargs_sig else cf(*args)
        if isinstance(out, dict):
            return [out[n] for n in out_names]
        if isinstance(out, (list, tuple)):
            return list(out)
        return [out]

    fn = tf.function(body, input_signature=specs)
    return fn.get_concrete_function(), [s.name for s in specs]


def _quiet():
    """coremltools prints a line per quantized layer to stdout."""
    return contextlib.redirect_stdout(io.StringIO())


class IOSTarget:
    name = "ios"
    modes = ("fp32", "fp16", "8bit", "palette6", "palette4")
    default_mode = "fp16"

    # ------------------------------------------------------------------ convert

    def convert(self, source, spec, mode: str, workdir: Path) -> Artifact:
        if mode not in self.modes:
            raise UsageError(f"unknown iOS weight mode {mode!r}", hint=f"iOS modes: {', '.join(self.modes)}")
        import coremltools as ct

        mlprogram = spec.ios_format == "mlprogram"
        if spec.ios_format not in ("neuralnetwork", "mlprogram"):
            raise UsageError(f"unknown iOS model format {spec.ios_format!r}", hint="use neuralnetwork or mlprogram")
        image = source.is_image
        factor = None
        if image:
            scale, bias, factor = image_preprocessing(source, spec)
        fn, tf_names = _fixed_function(source, factor)
        ct_inputs = []
        for tensor, tf_name in zip(source.inputs, tf_names):
            if image:
                color = {1: ct.colorlayout.GRAYSCALE}.get(int(tensor.shape[-1])) or (
                    ct.colorlayout.BGR if spec.preprocessing.color == "bgr" else ct.colorlayout.RGB)
                ct_inputs.append(ct.ImageType(name=tf_name, shape=tensor.sample_shape, scale=scale,
                                              bias=bias if len(bias) > 1 else bias[0], color_layout=color))
            else:
                ct_inputs.append(ct.TensorType(name=tf_name, shape=tensor.sample_shape, dtype=np.dtype(tensor.dtype)))
        kwargs = {}
        classifier = is_classifier(source, spec)
        if classifier:
            kwargs["classifier_config"] = ct.ClassifierConfig(list(spec.labels))
        if mlprogram:
            kwargs["compute_precision"] = ct.precision.FLOAT32 if mode == "fp32" else ct.precision.FLOAT16
        try:
            with _quiet():
                model = ct.convert(
                    [fn], source="tensorflow", inputs=ct_inputs,
                    convert_to="mlprogram" if mlprogram else "neuralnetwork",
                    minimum_deployment_target=ct.target.iOS15 if mlprogram else getattr(ct.target, DEPLOYMENT),
                    **kwargs,
                )
                quantized = self._quantize(model, mode, mlprogram)
        except Exception as e:
            raise ConversionError(f"coremltools could not convert the model: {type(e).__name__}: {str(e)[:400]}",
                                  hint="the converter's message names what it failed on; unsupported TF ops need a model change") from e
        artifact = self._save(ct, quantized, mode, source, spec, classifier, workdir)
        if not mlprogram and mode != "fp32":
            # neuralnetwork weight modes are quantized from the fp32 conversion: that model is the fp32
            # artifact too (float_bytes), so fp32 is never converted a second time
            artifact.extra["by_products"] = {"fp32": self._save(ct, model, "fp32", source, spec, classifier, workdir)}
        return artifact

    def _save(self, ct, model, mode: str, source, spec, classifier: bool, workdir: Path) -> Artifact:
        mlprogram = spec.ios_format == "mlprogram"
        mlspec = model.get_spec()
        features = self._rename(ct, mlspec, source, classifier)
        self._describe(mlspec, source, spec, features, classifier, mode)
        path = workdir / f"{spec.identifier}{'_' + mode if mode != 'fp32' else ''}.{'mlpackage' if mlprogram else 'mlmodel'}"
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        if mlprogram:
            ct.models.MLModel(mlspec, weights_dir=model.weights_dir).save(str(path))
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        else:
            ct.utils.save_spec(mlspec, str(path))
            size = path.stat().st_size
        return Artifact(self.name, mode, path, size, extra={"features": features, "classifier": classifier,
                                                              "format": spec.ios_format})

    @staticmethod
    def _quantize(model, mode: str, mlprogram: bool):
        if mode == "fp32":
            return model
        if mode.startswith("palette"):  # k-means look-up tables: packager/targets/coreml_quantize.py
            from .coreml_quantize import palettize

            return palettize(model, mode, mlprogram)
        if mlprogram:
            if mode == "fp16":
                return model  # compute_precision already FLOAT16
            import coremltools.optimize.coreml as cto

            config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
            return cto.linear_quantize_weights(model, config=config)
        from coremltools.models.neural_network import quantization_utils

        if mode == "fp16":
            return quantization_utils.quantize_weights(model, nbits=16)
        return quantization_utils.quantize_weights(model, nbits=8, quantization_mode="linear")

    @staticmethod
    def _rename(ct, mlspec, source, classifier: bool) -> dict:
        """Core ML features named after the reference tensors (sanitised); returns the mapping."""
        taken: set[str] = set()
        inputs = {}
        for tensor, feat in zip(source.inputs, list(mlspec.description.input)):
            new = feature_name(tensor.name, taken)
            if feat.name != new:
                ct.utils.rename_feature(mlspec, feat.name, new)
            inputs[tensor.name] = new
        outputs = {}
        if classifier:
            current = [mlspec.description.predictedProbabilitiesName]
        else:
            current = [f.name for f in mlspec.description.output]
        for tensor, cur in zip(source.outputs, current):
            new = feature_name(tensor.name, taken)
            if cur != new:
                ct.utils.rename_feature(mlspec, cur, new)
            outputs[tensor.name] = new
        result = {"inputs": inputs, "outputs": outputs}
        if classifier:
            result["class_label"] = mlspec.description.predictedFeatureName
        return result

    @staticmethod
    def _describe(mlspec, source, spec, features: dict, classifier: bool, mode: str) -> None:
        meta = mlspec.description.metadata
        meta.author = spec.author or "packager"
        meta.license = spec.license or "unspecified"
        meta.shortDescription = spec.description or f"{spec.display_name} (converted by packager {__version__})"
        meta.versionString = spec.version
        channels = int(source.inputs[0].shape[-1]) if source.is_image else 0
        descriptions = {}
        for tensor in source.inputs:
            text = f"{tensor.name}: {tensor.dtype} {shape_text(tensor.shape)}"
            if source.is_image:
                mean, std = spec.preprocessing.per_channel(channels)
                text = (f"{spec.preprocessing.color if channels == 3 else 'grayscale'} image "
                        f"{tensor.shape[2]}x{tensor.shape[1]}; model sees (pixel - {list(mean)}) / {list(std)}")
            descriptions[features["inputs"][tensor.name]] = text
        for tensor in source.outputs:
            text = f"{tensor.name}: {shape_text(tensor.shape)}"
            if classifier:
                text = f"probability of each of the {len(spec.labels)} labels"
            descriptions[features["outputs"][tensor.name]] = text
        if classifier:
            descriptions[features["class_label"]] = "the most probable label"
        for feat in list(mlspec.description.input) + list(mlspec.description.output):
            if feat.name in descriptions:
                feat.shortDescription = descriptions[feat.name]
        ud = meta.userDefined
        ud["packager.version"] = __version__
        ud["packager.weights"] = mode
        ud["packager.source_model"] = spec.model.name
        mean, std = spec.preprocessing.per_channel(channels or 1)
        ud["packager.preprocessing"] = json.dumps(
            {"color": spec.preprocessing.color, "mean": list(mean), "std": list(std),
             "formula": "(pixel - mean) / std"} if source.is_image else {"note": "inputs are used as given"})
        ud[META_KEY] = json.dumps(features, sort_keys=True)

    # ------------------------------------------------------------------ predict

    @staticmethod
    def coreml_runtime_available() -> bool:
        if platform.system() != "Darwin":
            return False
        try:
            import coremltools.libcoremlpython  # noqa: F401
        except ImportError:
            return False
        return True

    def predict(self, artifact: Artifact, source, spec, samples) -> Prediction:
        from ..runtimes import coreml_numpy

        if self.coreml_runtime_available():
            import coremltools as ct

            runner = _CoreMLRunner(ct.models.MLModel(str(artifact.path)))
            runtime = f"coreml (coremltools {ct.__version__})"
        else:
            if artifact.path.suffix == ".mlpackage":
                raise Unverified("an mlprogram (.mlpackage) runs only on macOS's Core ML; the NumPy executor "
                                 "implements the NeuralNetwork (.mlmodel) format")
            try:
                runner = coreml_numpy.Program(artifact.path)
            except coreml_numpy.UnsupportedLayer as e:
                raise Unverified(unsupported_reason(e)) from e
            runtime = f"numpy-nn-executor (packager {__version__})"
        features = read_features(artifact.path)
        rows: dict[str, list[np.ndarray]] = {o.name: [] for o in source.outputs}
        seconds = []
        labels = list(spec.labels)
        # One BLAS thread: the executor's results then do not depend on the machine's core count (OpenBLAS
        # splits sums differently per thread count), and it does not spin against a converter running at the
        # same time in the other process.
        with one_blas_thread():
            for sample in samples:
                feed = self.feed(sample, source, spec, features, exact_pixels=runner.__class__ is not _CoreMLRunner)
                t0 = time.perf_counter()
                out = runner(feed)
                seconds.append(time.perf_counter() - t0)
                for tensor in source.outputs:
                    value = out[features["outputs"][tensor.name]]
                    if isinstance(value, dict):  # Core ML classifier probabilities: label -> p
                        value = np.asarray([value[label] for label in labels], np.float32)
                    rows[tensor.name].append(_one_row(np.asarray(value, np.float32), tensor.shape))
        outputs = {name: np.concatenate(v) for name, v in rows.items()}
        latency = 1000 * float(np.mean(seconds)) if seconds else None
        return Prediction(outputs, runtime, latency)

    @staticmethod
    def feed(sample: dict, source, spec, features: dict, *, exact_pixels: bool = True) -> dict:
        """One sample -> Core ML inputs. Image samples (preprocessed, model channel order) become
        RGB pixel arrays 0..255 again — what a camera frame gives Core ML."""
        feed = {}
        for tensor in source.inputs:
            x = np.asarray(sample[tensor.name], np.float32)
            name = features["inputs"][tensor.name]
            if source.is_image:
                feed[name] = sample_to_pixels(x, spec, exact=exact_pixels)
            else:
                feed[name] = x.reshape(tensor.sample_shape)
        return feed

    # ------------------------------------------------------------------ render

    def render(self, spec, source, artifact: Artifact, samples, reference, outdir: Path):
        name = spec.identifier
        features = read_features(artifact.path)
        manifest = template_manifest()
        classifier = artifact.extra.get("classifier", is_classifier(source, spec))
        if spec.bundle_samples:
            golden = golden_samples(self, spec, source, artifact, samples, reference, features)
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

    # ------------------------------------------------------------------ checks

    def checks(self, spec, source, artifact: Artifact, samples, reference, outdir: Path) -> list[Check]:
        return [
            check_swift_syntax(outdir),
            check_feature_names(spec, outdir),
            check_golden(spec, source, samples, outdir, reference),
        ]


class _CoreMLRunner:
    def __init__(self, model):
        self.model = model

    def __call__(self, feed: dict) -> dict:
        from PIL import Image

        inputs = {}
        for k, v in feed.items():
            if v.ndim == 3 and v.dtype == np.uint8:
                inputs[k] = Image.fromarray(v[:, :, 0] if v.shape[2] == 1 else v)
            else:
                inputs[k] = v
        return self.model.predict(inputs)


# ---------------------------------------------------------------------- helpers


def shape_text(shape) -> str:
    """``[1, 224, 224, 3]``; a dynamic dimension (``None``, not the batch) shows as ``?``."""
    dims = ["1" if i == 0 else ("?" if d is None or int(d) < 0 else str(int(d))) for i, d in enumerate(shape)]
    text = f"[{', '.join(dims)}]"
    return text + " (? = dynamic, set by the input)" if "?" in dims else text


def _one_row(value: np.ndarray, shape) -> np.ndarray:
    """One sample's output with its batch axis: reshaped to the static shape, or, when some dimension is
    dynamic, kept as produced with a leading batch of 1."""
    if all(d is not None for d in shape[1:]):
        return value.reshape((1,) + tuple(int(d) for d in shape[1:]))
    rank = len(shape)
    while value.ndim > rank and value.shape[0] == 1:
        value = value[0]
    return value[None] if value.ndim == rank - 1 else value


def unsupported_reason(e) -> str:
    """The UNVERIFIED reason for a model with layer types the executor lacks: every one of them."""
    pairs = [f"{t!r} (layer {n!r})" if n else repr(t) for t, n in zip(e.layer_types, e.layer_names)]
    many = len(pairs) > 1
    return (f"Core ML layer type{'s' if many else ''} {', '.join(pairs)} {'are' if many else 'is'} not implemented "
            "by the NumPy executor, so the .mlmodel could not be run here")


def one_blas_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def template_manifest() -> dict:
    import tomllib

    return tomllib.loads((template_dir("ios") / "template.toml").read_text(encoding="utf-8"))


def read_features(path: Path) -> dict:
    """The reference-name -> Core ML feature-name mapping stored in the model's metadata."""
    import coremltools as ct

    p = Path(path)
    mlspec = ct.utils.load_spec(str(p))
    raw = mlspec.description.metadata.userDefined.get(META_KEY)
    if not raw:
        raise Unverified(f"{p.name} has no {META_KEY} metadata (not written by packager)")
    return json.loads(raw)


def sample_to_pixels(x: np.ndarray, spec, *, exact: bool = True) -> np.ndarray:
    """Preprocessed ``(1, H, W, C)`` in model channel order -> ``(H, W, C)`` RGB/gray pixels.

    ``exact=False`` rounds to uint8 (what an image file holds; needed by Core ML on macOS)."""
    x = x.reshape(x.shape[-3:])
    c = x.shape[-1]
    mean, std = spec.preprocessing.per_channel(c)
    pixels = x * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    if c == 3 and spec.preprocessing.color == "bgr":
        pixels = pixels[..., ::-1]
    if not exact:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    arr = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path, format="PNG")


def _flat(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, np.float32).reshape(-1)]


def golden_samples(target: IOSTarget, spec, source, artifact, samples, reference, features) -> dict:
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
                out = program(target.feed(sample, source, spec, features))
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


# ---------------------------------------------------------------------- checks


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
