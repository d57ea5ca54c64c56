"""The .tflite itself: TFLiteConverter on the SavedModel export traced at batch 1 (static shapes), in each quantization
mode, and ai-edge-litert (the Android kernels) running a converted file on the sample set."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from packager.errors import ConversionError
from packager.frameworks import reusing
from packager.targets import MODES as TARGET_MODES

MODES = TARGET_MODES["android"]


def convert_tflite(source, spec, mode: str, samples=None) -> dict[str, bytes]:
    """{mode: .tflite bytes}; int8 also returns "fp32": the float model the converter calibrates and quantizes,
    which is byte for byte what an fp32 conversion gives (see ``_float_model``), so fp32 is not converted again."""
    import tensorflow as tf

    conv, loaded = _saved_model_converter(source)
    floats: list[bytes] = []
    if mode == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if samples is None:
            raise ConversionError("int8 quantization needs a sample set for calibration")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (  # in the model's input dtypes (uint8 pixels, int32 ids, floats)
            {k: np.asarray(v) for k, v in s.items()} for s in samples
        )
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if spec.int8_io:
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        floats = _capture_float_model(conv)
    elif mode != "fp32":
        raise ConversionError(f"unknown TFLite mode {mode!r}", hint=f"choose one of {', '.join(MODES)}")
    try:
        with _reusing_loaded(source, loaded):
            models = {mode: conv.convert()}
    except Exception as e:  # the converter raises ConverterError / RuntimeError with op lists in the text
        message, hint = _explain_tflite_failure(str(e), mode)
        raise ConversionError(message, hint=hint) from e
    if len(floats) == 1:
        models["fp32"] = _float_model(floats[0], conv)
    return models


def _saved_model_converter(source):
    """(converter, the loaded batch-1 SavedModel or None): ``TFLiteConverter.from_saved_model(dir,
    signature_keys=["serving_default"])`` of ``batch_one_saved_model(source)``, minus the SavedModel loads it makes
    only to list the signatures and, in ``convert()``, to read debug info (1.0 s + 1.2 s on MobileNetV2, holding the
    GIL): that SavedModel is loaded already, and ``_reusing_loaded`` hands it over. The same converter class and
    metadata, so the same bytes (tests/test_derived_fp32.py compares with from_saved_model)."""
    import tensorflow as tf
    from tensorflow.lite.python import lite

    saved_model_dir, loaded = batch_one_saved_model(source)
    cls = getattr(lite, "TFLiteSavedModelConverterV2", None)
    base = getattr(lite, "TFLiteConverterBase", None)
    if loaded is None or cls is None or not hasattr(base, "_set_original_model_type") or not hasattr(lite, "_load"):
        return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                        signature_keys=["serving_default"]), None
    base._set_original_model_type(lite.conversion_metadata_fb.ModelType.TF_SAVED_MODEL)  # as from_saved_model
    return cls(str(saved_model_dir), {tf.saved_model.SERVING}, ["serving_default"]), loaded


def batch_one_saved_model(source) -> tuple[Path, object | None]:
    """(folder, its loaded SavedModel) that every Android model is converted from: the serving function traced at
    batch 1 with the model's other dimensions (those fixed with --input-shape included), signature names kept, saved
    once per Source in the build's temporary folder. The module always runs batch 1, and with static shapes the
    converter folds shape ops away (``tf.shape(x)[0]`` into a Reshape), so every output has a shape known when the
    model is compiled: LiteRT's CompiledModel (the module) cannot allocate a dynamic output ("Failed to set custom
    allocation for output tensor"), and LiteRT.js (the web target's litert runtime ships this file) has no resize
    call. Everything that runs the .tflite in Python feeds one sample at a time. An object that is not a packager
    Source (no signature to trace): its own SavedModel, as it is."""
    if not getattr(source, "inputs", None) or not hasattr(source, "concrete_function"):
        return Path(source.saved_model_dir), getattr(source, "_loaded", None)
    with _BATCH_ONE_LOCK:
        cached = source.__dict__.get("_batch_one")
        if cached is None:
            cached = source.__dict__["_batch_one"] = _export_batch_one(source)
    return cached[0], cached[1]


_BATCH_ONE_LOCK = threading.Lock()


def _export_batch_one(source) -> tuple[Path, object, tempfile.TemporaryDirectory]:
    import tensorflow as tf

    fn = source.concrete_function()
    names = [i.name for i in source.inputs]
    specs = [tf.TensorSpec([1, *i.shape[1:]], tf.as_dtype(i.dtype), name=i.name) for i in source.inputs]

    @tf.function(input_signature=specs)
    def serve(*args):
        return fn(**dict(zip(names, args)))

    folder = tempfile.TemporaryDirectory(prefix="batch1-")  # under the build's private temporary folder
    path = Path(folder.name) / "saved_model"
    try:
        _save_batch_one(source._loaded, serve.get_concrete_function(), path)
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        folder.cleanup()
        raise ConversionError(f"TFLite: the model could not be traced at batch 1 with static shapes: "
                              f"{type(e).__name__}: {str(e)[:300]}",
                              hint="the Android module runs one sample at a time: the serving function must run "
                                   "at batch 1 (fix other dynamic dimensions with --input-shape NAME=1,...)") from e
    return path, loaded, folder  # the folder lives (and is removed) with the Source


def _save_batch_one(loaded, serve, path: Path) -> None:
    """The batch-1 signature ``serve`` (a concrete function) saved with what it captures: the variables it reads
    alone when they are all it captures (the loaded SavedModel's other functions are not serialized again: fer's
    save + load 0.71-1.5 s -> 0.41-0.46 s wall, 0.53-0.84 -> 0.31-0.32 CPU s; the same .tflite bytes), else the
    whole loaded object (a lookup table or another resource it reads is tracked there)."""
    import tensorflow as tf

    variables = list(getattr(serve, "variables", ()))
    handles = {id(v.handle) for v in variables if hasattr(v, "handle")}
    if len(handles) == len(variables) and all(id(t) in handles for t in serve.captured_inputs):
        module = tf.Module()
        module.weights = variables
    else:
        module = tf.Module()
        module.inner = loaded  # its variables and resources, saved with the batch-1 signature
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


@contextmanager
def _reusing_loaded(source, loaded):
    """While converting: TFLite's ``_load`` of the batch-1 SavedModel returns the one already loaded."""
    if loaded is None:
        yield
        return
    from tensorflow.lite.python import lite

    load = lite._load
    with _TFLITE_PATCH:
        lite._load = reusing(load, batch_one_saved_model(source)[0], loaded)
        try:
            yield
        finally:
            lite._load = load


_TFLITE_PATCH = threading.Lock()


def _capture_float_model(conv) -> list[bytes]:
    """Make ``conv`` keep the float flatbuffer it converts before calibrating and quantizing it
    (TF 2.19: ``_optimize_tflite_model`` receives it). Returns the list it is appended to."""
    captured: list[bytes] = []
    optimize = getattr(conv, "_optimize_tflite_model", None)
    if optimize is None:  # another TF: no by-product, fp32 is converted on its own
        return captured

    def keep(model, *args, **kwargs):
        captured.append(bytes(model))
        return optimize(model, *args, **kwargs)

    conv._optimize_tflite_model = keep
    return captured


def _float_model(data: bytes, conv) -> bytes:
    """The captured float model with the conversion metadata an fp32 conversion writes: the same options
    without the optimization mode, and the hash of this model (what ``_convert_and_export_metrics`` does)."""
    import copy

    from tensorflow.lite.python import lite
    from tensorflow.lite.tools import flatbuffer_utils

    meta = copy.deepcopy(conv._metadata)
    meta.options.modelOptimizationModes = []
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    meta.environment.modelHash = lite._get_model_hash(model)
    model = lite._populate_conversion_metadata(model, meta)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _explain_tflite_failure(text: str, mode: str) -> tuple[str, str]:
    ops = sorted(set(re.findall(r"'(?:tf|tfl)\.([A-Za-z0-9_]+)'", text)))
    if ops and "not supported" in text.lower():
        msg = f"TFLite ({mode}) cannot convert op(s): {', '.join(ops)}"
        hint = (
            "these ops need TensorFlow select ops (SELECT_TF_OPS), which this build does not enable; the app would "
            "also need the 'org.tensorflow:tensorflow-lite-select-tf-ops' dependency. Replace the ops with builtin "
            "ones, or use another quantization mode"
        )
        return msg, hint
    first = next((line.strip() for line in text.splitlines() if "error" in line.lower()), text.strip()[:300])
    return f"TFLite ({mode}) conversion failed: {first[:500]}", "run with --verbose for the converter's full log"


def run_tflite(path: Path, source, samples) -> tuple[dict[str, np.ndarray], float, str]:
    """Execute a .tflite on every sample with ai-edge-litert; outputs keyed by signature output names."""
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    runner = interp.get_signature_runner("serving_default")
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    rows: dict[str, list[np.ndarray]] = {name: [] for name in out_details}
    total = 0.0
    for sample in samples:
        feed = {name: _quantize(sample[name], in_details[name]) for name in in_details}
        t0 = time.perf_counter()
        out = runner(**feed)
        total += time.perf_counter() - t0
        for name, value in out.items():
            rows[name].append(_dequantize(value, out_details[name]))
    n = max(len(samples), 1)
    outputs = {name: np.concatenate(v) for name, v in rows.items()}
    version = getattr(ai_edge_litert, "__version__", None) or _dist_version("ai-edge-litert")
    return outputs, total / n * 1000.0, version


def xnnpack_coverage(path: Path) -> dict[str, int]:
    """{"delegated": ops of the main graph XNNPACK runs, "ops": all its ops}, from ai-edge-litert's interpreter
    with its default delegate (what run_tflite and the module's LiteRT CPU path use). The delegate's partitions
    appear as DELEGATE nodes whose inputs and outputs bound the ops they replace: those ops are found by walking
    back from each partition's outputs to its inputs. An op left out runs on reference kernels, slow everywhere."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    core = interp._interpreter
    nodes = [(core.NodeName(i), list(core.NodeInputs(i)), list(core.NodeOutputs(i))) for i in range(core.NumNodes())]
    ops = [n for n in nodes if n[0] != "DELEGATE"]
    producer = {t: i for i, (_, _, outs) in enumerate(ops) for t in outs}
    delegated: set[int] = set()
    for name, inputs, outputs in nodes:
        if name != "DELEGATE":
            continue
        bound, stack = set(inputs), [t for t in outputs]
        while stack:
            t = stack.pop()
            i = producer.get(t)
            if t in bound or i is None or i in delegated:
                continue
            delegated.add(i)
            stack.extend(ops[i][1])
    return {"delegated": len(delegated), "ops": len(ops)}


def buffer_bytes(path: Path) -> int:
    """Bytes of the .tflite's buffers (weights, biases, metadata), without the graph around them (``dynamic_floor``
    builds on them)."""
    return sum(_buffer_sizes(_flatbuffer(path)))


def _flatbuffer(path: Path):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.Model.GetRootAs(Path(path).read_bytes(), 0)


def _buffer_sizes(model) -> list[int]:
    """Each buffer's bytes, in the model's buffer order."""
    return [model.Buffers(i).DataLength() or model.Buffers(i).Size() for i in range(model.BuffersLength())]


DYNAMIC_MIN_ELEMENTS = 1024  # TFLite's dynamic-range quantizer leaves a weight of fewer elements float32


def dynamic_floor(path: Path) -> int:
    """A floor of the dynamic-range model's bytes, from the int8 model of the same graph: its buffers
    (``buffer_bytes``), with each int8 constant of fewer than DYNAMIC_MIN_ELEMENTS elements counted at four bytes,
    as the dynamic-range model stores it float32 (on the demo: 20,264 B where the buffers alone say 16,424 B of
    int8's 23,875 B; dynamic-range writes 24,563 B). Each buffer once, however many tensors read it."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = _flatbuffer(path)
    sizes = _buffer_sizes(model)
    small: set[int] = set()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            b = tensor.Buffer()
            if tensor.Type() == schema.TensorType.INT8 and 0 < sizes[b] < DYNAMIC_MIN_ELEMENTS:
                small.add(b)
    return sum(sizes) + 3 * sum(sizes[b] for b in small)


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        if not scale:  # not a quantized tensor: its values as they are (e.g. uint8 pixels)
            scale, zero = 1.0, 0
        info = np.iinfo(dtype)
        # float32 arithmetic rounded half to even, as the module's C++ does (quantization.h)
        q = np.round(np.asarray(x, np.float32) / np.float32(scale)) + np.float32(zero)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8) and detail["quantization"][0]:
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)
