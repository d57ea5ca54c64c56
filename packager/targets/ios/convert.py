"""iOS conversion: one TF model -> a Core ML model (``.mlmodel`` NeuralNetwork, or ``.mlpackage`` ML Program).

coremltools converts the source's ``serving_default`` ConcreteFunction (the same for Keras, SavedModel and
frozen-graph ``.pb`` sources), wrapped so the batch is 1 and the outputs come in the reference order. Image
models get an ``ImageType`` input carrying the preprocessing; classifiers a ``ClassifierConfig``. Weight modes:
fp32, fp16, 8bit (per-channel linear), palette6 / palette4 (k-means look-up tables, coreml_quantize.py). The features are renamed after the reference tensors and the mapping is
stored in the model's metadata (``META_KEY``), with the author/licence/description the spec gives.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np

from packager.errors import ConversionError, UsageError
from packager.targets.base import Artifact, Unverified
from packager.version import __version__

META_KEY = "packager.features"  # user-defined metadata: reference names <-> Core ML feature names
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
    if spec.preprocessing.standardised:  # pixels 0..255 in: the graph standardises them (``_standardise``)
        return 1.0, [0.0] * channels, None
    mean, std = spec.preprocessing.per_channel(channels)
    scale = 1.0 / std[0]
    bias = [-m / std[0] for m in mean]
    factor = None if len(set(std)) == 1 else [std[0] / s for s in std]
    return scale, bias, factor


def core_ml_dtype(dtype: str) -> str:
    """The Core ML feature type for a model input of ``dtype``: Core ML multi-arrays hold float32/float64/int32
    only, so a uint8/int8/int16/uint16 input (an image model normalising inside) takes float32 values."""
    return dtype if dtype in ("float32", "float64", "int32") else "float32"


def _to_model_dtype(x, dtype: str):
    """A Core ML input of ``core_ml_dtype(dtype)`` as the model's own ``dtype`` (rounded and clipped to its range,
    as a real image's pixels are)."""
    import tensorflow as tf

    if core_ml_dtype(dtype) == dtype:
        return x
    info = np.iinfo(np.dtype(dtype))
    return tf.cast(tf.clip_by_value(tf.round(x), float(info.min), float(info.max)), tf.as_dtype(dtype))


_SMALL_INTS_CAST = []


def _allow_small_int_casts() -> None:
    """coremltools' TF frontend refuses a Cast to uint8/int8/int16/uint16 (Core ML has no such tensors). Such a
    cast (the one ``_to_model_dtype`` adds, or the model's own) becomes an int32 cast of the rounded values
    (``_to_model_dtype`` clipped them to the range); any drift this causes is caught by validation."""
    if _SMALL_INTS_CAST:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.tensorflow import ops
    from coremltools.converters.mil.frontend.tensorflow.tf_op_registry import register_tf_op
    from coremltools.converters.mil.mil import types

    original = ops.Cast
    small = {types.uint8, types.int8, types.int16, types.uint16}

    def Cast(context, node):  # noqa: N802 (the TF op's name)
        if node.attr["DstT"] not in small:
            return original(context, node)
        context.add(node.name, mb.cast(x=context[node.inputs[0]], dtype="int32", name=node.name))

    register_tf_op(Cast, override=True)
    _SMALL_INTS_CAST.append(Cast)


def _standardise(x, per_channel: bool):
    """packager.preprocessing.standardise in the Core ML graph (an image input's pixels 0..255 -> the model's input):
    (x - m) / max(s, 1 / sqrt(N)) with the image's own (or each channel's) mean m and population deviation s."""
    import tensorflow as tf

    axes = [1, 2] if per_channel else [1, 2, 3]
    n = int(np.prod([int(x.shape[a]) for a in axes]))
    centred = x - tf.reduce_mean(x, axis=axes, keepdims=True)
    s = tf.sqrt(tf.reduce_mean(centred * centred, axis=axes, keepdims=True))
    return centred / tf.maximum(s, tf.constant(1.0 / np.sqrt(n), tf.float32))


def _fixed_function(source, factor, normalize: str = "mean-std"):
    """The serving_default function with batch 1, inputs in ``source.inputs`` order and outputs as a
    list in ``source.outputs`` order (so Core ML's outputs map to the reference by position)."""
    import tensorflow as tf

    cf = source.concrete_function()
    args_sig, kwargs_sig = cf.structured_input_signature
    in_names = [i.name for i in source.inputs]
    out_names = [o.name for o in source.outputs]
    taken: set[str] = set()
    specs = [
        tf.TensorSpec(i.sample_shape, tf.as_dtype(core_ml_dtype(i.dtype)), name=feature_name(i.name, taken))
        for i in source.inputs
    ]

    def body(*args):
        args = [_to_model_dtype(a, i.dtype) for a, i in zip(args, source.inputs)]
        if factor is not None:
            args[0] = args[0] * tf.constant(np.asarray(factor, np.float32))
        if normalize in ("per-image", "per-channel") and source.is_image:
            args[0] = _standardise(args[0], normalize == "per-channel")
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

def convert(source, spec, mode: str, modes: tuple[str, ...], workdir: Path) -> Artifact:
    if mode not in modes:
        raise UsageError(f"unknown iOS weight mode {mode!r}", hint=f"iOS modes: {', '.join(modes)}")
    import coremltools as ct

    mlprogram = spec.ios_format == "mlprogram"
    if spec.ios_format not in ("neuralnetwork", "mlprogram"):
        raise UsageError(f"unknown iOS model format {spec.ios_format!r}", hint="use neuralnetwork or mlprogram")
    image = source.is_image
    factor = None
    if image:
        scale, bias, factor = image_preprocessing(source, spec)
    fn, tf_names = _fixed_function(source, factor, spec.preprocessing.normalize)
    if any(core_ml_dtype(i.dtype) != i.dtype for i in source.inputs):
        _allow_small_int_casts()
    ct_inputs = []
    for tensor, tf_name in zip(source.inputs, tf_names):
        if image:
            color = {1: ct.colorlayout.GRAYSCALE}.get(int(tensor.shape[-1])) or (
                ct.colorlayout.BGR if spec.preprocessing.color == "bgr" else ct.colorlayout.RGB)
            ct_inputs.append(ct.ImageType(name=tf_name, shape=tensor.sample_shape, scale=scale,
                                          bias=bias if len(bias) > 1 else bias[0], color_layout=color))
        else:
            ct_inputs.append(ct.TensorType(name=tf_name, shape=tensor.sample_shape,
                                           dtype=np.dtype(core_ml_dtype(tensor.dtype))))
    kwargs = {}
    classifier = is_classifier(source, spec)
    if classifier:
        kwargs["classifier_config"] = ct.ClassifierConfig(list(spec.labels))
    if mlprogram:
        kwargs["compute_precision"] = ct.precision.FLOAT32 if mode == "fp32" else ct.precision.FLOAT16
    key = _float_key(source, spec, mode)
    try:
        with _quiet():
            model = _kept_float(key, source)
            if model is None:
                from packager.targets.ios.mil_validation import validate_once_per_pipeline

                with validate_once_per_pipeline():
                    model = ct.convert(
                        [fn], source="tensorflow", inputs=ct_inputs,
                        convert_to="mlprogram" if mlprogram else "neuralnetwork",
                        minimum_deployment_target=ct.target.iOS15 if mlprogram else getattr(ct.target, DEPLOYMENT),
                        **kwargs,
                    )
                _keep_float(key, model, source, spec, workdir)
            quantized = quantize(model, mode, mlprogram)
    except Exception as e:
        raise ConversionError(f"coremltools could not convert the model: {type(e).__name__}: {str(e)[:400]}",
                              hint="the converter's message names what it failed on; unsupported TF ops need a model change") from e
    artifact = save(ct, quantized, mode, source, spec, classifier, workdir)
    if not mlprogram and mode != "fp32":
        # neuralnetwork weight modes are quantized from the fp32 conversion: that model is the fp32
        # artifact too (float_bytes), so fp32 is never converted a second time
        artifact.extra["by_products"] = {"fp32": save(ct, model, "fp32", source, spec, classifier, workdir)}
    return artifact


# auto tries several weight modes (palette4, palette6, 8bit, fp16): each is derived from the same float conversion,
# so it is kept instead of converting from TensorFlow again per mode: in memory for small models (one model), on disk
# (the float spec, read back per mode) from KEEP_FLOAT_BELOW on, so that no copy of a large model's weights is held
# between tries (memory over speed) and no try after the first pays the TensorFlow conversion again (hed, 117 MB:
# palette4, palette6 and 8bit were three conversions). Quantizers read the model through get_spec(), a copy: the
# kept model is never changed.
_FLOAT_MODEL: dict = {}
KEEP_FLOAT_BELOW = 64 * 1024 ** 2  # bytes of weights; larger models' float conversion is kept on disk
FLOAT_FILE = "float_conversion.mlmodel"


def _float_key(source, spec, mode: str) -> tuple:
    precision = "fp32" if spec.ios_format != "mlprogram" or mode == "fp32" else "fp16"
    return (id(source), precision, repr(spec))


def _kept_float(key: tuple, source):
    kept = _FLOAT_MODEL.get(key)
    if kept is None or kept[0]() is not source:  # another source at the same address: not this model
        return None
    if isinstance(kept[1], Path):  # a large model's, on disk
        import coremltools as ct

        if not kept[1].is_file():
            return None
        return ct.models.MLModel(str(kept[1]), skip_model_load=True)
    return kept[1]


def _keep_float(key: tuple, model, source, spec, workdir: Path | None = None) -> None:
    import weakref

    from packager.memory import weights_bytes

    _FLOAT_MODEL.clear()
    try:
        small = weights_bytes(spec.model) < KEEP_FLOAT_BELOW
    except OSError:
        small = False
    if small:
        _FLOAT_MODEL[key] = (weakref.ref(source), model)
    elif workdir is not None and spec.ios_format != "mlprogram":  # an .mlpackage keeps its weights in a folder
        import coremltools as ct

        path = Path(workdir) / FLOAT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        ct.utils.save_spec(model.get_spec(), str(path))
        _FLOAT_MODEL[key] = (weakref.ref(source), path)


def save(ct, model, mode: str, source, spec, classifier: bool, workdir: Path) -> Artifact:
    mlprogram = spec.ios_format == "mlprogram"
    mlspec = model.get_spec()
    features = rename(ct, mlspec, source, classifier)
    describe(mlspec, source, spec, features, classifier, mode)
    path = workdir / f"{spec.identifier}{'_' + mode if mode != 'fp32' else ''}.{'mlpackage' if mlprogram else 'mlmodel'}"
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if mlprogram:
        ct.models.MLModel(mlspec, weights_dir=model.weights_dir).save(str(path))
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        ct.utils.save_spec(mlspec, str(path))
        size = path.stat().st_size
    return Artifact("ios", mode, path, size, extra={"features": features, "classifier": classifier,
                                                     "format": spec.ios_format})


def quantize(model, mode: str, mlprogram: bool):
    if mode == "fp32":
        return model
    if mode.startswith("palette"):  # k-means look-up tables: packager/targets/ios/quantize.py
        from packager.targets.ios.quantize import palettize

        return palettize(model, mode, mlprogram)
    if mlprogram:
        if mode == "fp16":
            return model  # compute_precision already FLOAT16
        import coremltools.optimize.coreml as cto

        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
        return cto.linear_quantize_weights(model, config=config)
    from coremltools.models.neural_network import quantization_utils

    from packager.targets.ios.quantize import linear_layer_maps

    if mode == "fp16":
        return quantization_utils.quantize_weights(model, nbits=16)
    with linear_layer_maps():
        return quantization_utils.quantize_weights(model, nbits=8, quantization_mode="linear")


def rename(ct, mlspec, source, classifier: bool) -> dict:
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


def describe(mlspec, source, spec, features: dict, classifier: bool, mode: str) -> None:
    meta = mlspec.description.metadata
    meta.author = spec.author or "packager"
    meta.license = spec.license or "unspecified"
    meta.shortDescription = spec.description or f"{spec.display_name} (converted by packager {__version__})"
    meta.versionString = spec.version
    channels = int(source.inputs[0].shape[-1]) if source.is_image else 0
    descriptions = {}
    for tensor in source.inputs:
        text = f"{tensor.name}: {tensor.dtype} {shape_text(tensor.shape)}"
        if source.is_image and spec.preprocessing.standardised:
            text = (f"{spec.preprocessing.color if channels == 3 else 'grayscale'} image "
                    f"{tensor.shape[2]}x{tensor.shape[1]}; the model standardises it {spec.preprocessing.normalize}: "
                    "(pixel - mean) / max(std, 1/sqrt(N)) with the image's own statistics")
        elif source.is_image:
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
    image_meta = {"color": spec.preprocessing.color, "mean": list(mean), "std": list(std),
                  "formula": "(pixel - mean) / std"}
    if spec.preprocessing.standardised:
        image_meta = {"color": spec.preprocessing.color, "normalize": spec.preprocessing.normalize,
                      "formula": "(pixel - mean(pixel)) / max(std(pixel), 1/sqrt(N)), in the model"}
    ud["packager.preprocessing"] = json.dumps(image_meta if source.is_image else {"note": "inputs are used as given"})
    ud[META_KEY] = json.dumps(features, sort_keys=True)
    if spec.labels and not classifier:  # a classifier's labels are its classLabels; the Swift code reads either
        ud["packager.labels"] = json.dumps(list(spec.labels), ensure_ascii=False)

# ------------------------------------------------------------------ predict


def shape_text(shape) -> str:
    """``[1, 224, 224, 3]``; a dynamic dimension (``None``, not the batch) shows as ``?``."""
    dims = ["1" if i == 0 else ("?" if d is None or int(d) < 0 else str(int(d))) for i, d in enumerate(shape)]
    text = f"[{', '.join(dims)}]"
    return text + " (? = dynamic, set by the input)" if "?" in dims else text


def read_features(path: Path) -> dict:
    """The reference-name -> Core ML feature-name mapping stored in the model's metadata."""
    import coremltools as ct

    p = Path(path)
    mlspec = ct.utils.load_spec(str(p))
    raw = mlspec.description.metadata.userDefined.get(META_KEY)
    if not raw:
        raise Unverified(f"{p.name} has no {META_KEY} metadata (not written by packager)")
    return json.loads(raw)
