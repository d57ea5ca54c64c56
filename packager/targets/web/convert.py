"""The web target's conversion: ``tensorflowjs`` in process, as ``tensorflowjs_converter`` runs it, and which
nodes of the converted model.json feed and give the spec's tensors.

- A SavedModel (every format but a frozen graph) goes through ``convert_tf_saved_model``; a frozen GraphDef
  ``.pb`` through ``convert_tf_frozen_model`` on the original file (the ``--input_format=tf_frozen_model`` path:
  a SavedModel wrapping of a graph with TF1 control flow keeps a ``PartitionedCall`` TF.js cannot run).
  Both strip debug ops, as the command line does by default (``--strip_debug_ops``; the Python API does not).
- ``io_nodes``: the converter names a signature entry after the SavedModel's key only when the tensor's dtype
  and shape identify it; two inputs of the same shape and dtype (``input_ids`` + ``attention_mask``) are keyed
  by their tensor names (``input_ids:0``). The spec's tensors are matched by those tensor names, read from the
  same serving function the converter converts, never by position or shape.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

from packager.errors import ConversionError
from packager.frameworks import reusing, tfjs_saved_model_converter

SHARD_GLOB = "group*-shard*of*.bin"  # the weight files tensorflowjs writes next to model.json
# Weight modes -> tensorflowjs quantization_dtype_map (a boolean value = "every weight").
QUANTIZATION = {
    "fp32": None,
    "fp16": {"float16": True},
    "uint16": {"uint16": True},
    "uint8": {"uint8": True},
    "mixed": "per-weight",  # uint8 + float16 for the weights uint8 damages, chosen while writing (tfjs_mixed.py)
}
# TF.js dtypes of the converter's signature dtypes (tfjs-converter's own mapping): every integer type runs as int32
# (TF.js has no 8-, 16- or 64-bit integer tensors), every float type as float32. A model taking uint8 images
# (normalising inside) is fed int32 pixels: a float32 tensor there is refused by model.execute.
_DTYPES = {"DT_FLOAT": "float32", "DT_HALF": "float32", "DT_DOUBLE": "float32", "DT_BFLOAT16": "float32",
           "DT_INT32": "int32", "DT_INT64": "int32", "DT_INT16": "int32", "DT_INT8": "int32", "DT_UINT8": "int32",
           "DT_UINT16": "int32", "DT_UINT32": "int32", "DT_UINT64": "int32", "DT_BOOL": "bool"}

_TFJS_PATCH = threading.Lock()


def convert_saved_model(saved_model_dir: Path, out: Path, mode: str, shard_bytes: int,
                        float_out: Path | None = None, loaded=None) -> None:
    """tensorflowjs_converter's conversion, in process. With ``float_out`` the same optimized graph and
    weights are also written unquantized there (the fp32 model), instead of converting the model twice.
    ``loaded``: the SavedModel already loaded (``tf.saved_model.load``), used instead of loading it again
    (1.3 s on MobileNetV2; the converter only reads it)."""
    tfjs_convert = _converter()
    load_model = tfjs_convert._load_model
    with _writing(tfjs_convert, out, float_out):
        tfjs_convert._load_model = reusing(load_model, saved_model_dir, loaded)
        try:
            tfjs_convert.convert_tf_saved_model(
                str(saved_model_dir),
                str(out),
                signature_def="serving_default",
                saved_model_tags="serve",
                quantization_dtype_map=QUANTIZATION[mode],
                weight_shard_size_bytes=int(shard_bytes),
                strip_debug_ops=True,
            )
        finally:
            tfjs_convert._load_model = load_model


def convert_frozen_graph(pb_path: Path, output_nodes: list[str], out: Path, mode: str, shard_bytes: int,
                         float_out: Path | None = None) -> None:
    """``tensorflowjs_converter --input_format=tf_frozen_model`` in process, on the original ``.pb``."""
    tfjs_convert = _converter()
    with _writing(tfjs_convert, out, float_out):
        tfjs_convert.convert_tf_frozen_model(
            str(pb_path),
            ",".join(n.split(":")[0] for n in output_nodes),
            str(out),
            quantization_dtype_map=QUANTIZATION[mode],
            weight_shard_size_bytes=int(shard_bytes),
            strip_debug_ops=True,
        )


def mixed_note(out: Path) -> Path:
    """Where a ``mixed`` conversion records the weights it kept float16 (beside the model folder, not in it)."""
    return out.parent / f"{out.name}.mixed.json"


def _converter():
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")  # tensorflowjs imports TF-DF, which prints a banner
    return tfjs_saved_model_converter()


@contextmanager
def _writing(tfjs_convert, out: Path, float_out: Path | None):
    """Fresh output folders; while converting, ``write_artifacts`` also writes the unquantized weights to
    ``float_out``; afterwards model.json with sorted keys in both."""
    folders = [out] + ([float_out] if float_out is not None else [])
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    write = tfjs_convert.write_artifacts

    def write_also_float(topology, weights, output_graph, *args, **kwargs):
        if kwargs.get("quantization_dtype_map") == "per-weight":
            from packager.targets.web.mixed import choose_dtype_map

            chosen = choose_dtype_map(weights)
            kwargs["quantization_dtype_map"] = chosen.dtype_map
            mixed_note(out).write_text(json.dumps(chosen.check().to_json()), encoding="utf-8")
        write(topology, weights, output_graph, *args, **kwargs)
        if float_out is not None:  # write_weights quantizes copies: ``weights`` still holds the float values
            write(topology, weights, str(float_out / Path(output_graph).name), *args,
                  **{**kwargs, "quantization_dtype_map": None})

    with _TFJS_PATCH:
        tfjs_convert.write_artifacts = write_also_float
        try:
            yield
        finally:
            tfjs_convert.write_artifacts = write
    if float_out is not None:  # files the converter copies itself (assets of lookup tables), not the weights
        for extra in out.iterdir():
            if extra.name != "model.json" and not extra.match(SHARD_GLOB):
                (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, float_out / extra.name)
    # The converter writes protobuf maps in varying key order; sorted keys make a rebuild of the same
    # model byte-identical (and so keep the service worker's content-hash cache name stable).
    for folder in folders:
        model_json = folder / "model.json"
        data = json.loads(model_json.read_text(encoding="utf-8"))
        model_json.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def signature_nodes(model_json: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """(inputs, outputs): signature key -> {node, dtype} from a model.json."""
    sig = model_json.get("signature") or model_json.get("userDefinedMetadata", {}).get("signature") or {}

    def side(key: str) -> dict[str, dict]:
        return {k: {"node": v["name"], "dtype": _DTYPES.get(v.get("dtype", "DT_FLOAT"), "float32")}
                for k, v in sig.get(key, {}).items()}

    return side("inputs"), side("outputs")


def tensor_names(source) -> tuple[dict[str, str], dict[str, str]]:
    """(inputs, outputs): the spec's tensor name -> the graph tensor the converter sees for it.

    A SavedModel: the serving function's own placeholders and outputs (``concrete_func.inputs`` /
    ``.outputs``, what tensorflowjs names ambiguous signature entries after), in the flattening order of its
    structured signature. A frozen graph: the node names given with --input-shape / --output-names."""
    if getattr(source, "format", "") == "frozen_pb":  # packager.source names them: inputs sanitised, outputs output_<i>
        from packager.frozen_graph import frozen_input_name

        spec = source.spec
        return ({frozen_input_name(n): n for n in spec.input_shapes},
                {f"output_{i}": n for i, n in enumerate(spec.output_names)})
    import tensorflow as tf

    if hasattr(source, "concrete_function"):
        fn = source.concrete_function()
    else:  # any object with a SavedModel export (the target's own tests)
        loaded = tf.saved_model.load(str(source.saved_model_dir))
        fn = loaded.signatures["serving_default"]
    kwargs = fn.structured_input_signature[1]
    in_keys = tf.nest.flatten({k: k for k in kwargs})
    out_keys = tf.nest.flatten({k: k for k in fn.structured_outputs})
    return ({k: t.name for k, t in zip(in_keys, fn.inputs)},
            {k: t.name for k, t in zip(out_keys, fn.outputs)})


def tfjs_dtype(dtype: str) -> str:
    """The TF.js dtype a tensor of this (NumPy/TF) dtype runs as."""
    if dtype == "bool":
        return "bool"
    return "int32" if dtype.startswith(("int", "uint")) else "float32"


def io_nodes(model_json: dict, source, where: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """(inputs, outputs): each of the spec's tensor names -> {node, dtype} in the converted model.

    Matched by the signature key when the converter used the spec's name, else by the tensor name it used
    (as key or as node), else, for a graph without an input signature (a frozen graph), by the node itself.
    ConversionError naming every tensor that has no node."""
    sig_in, sig_out = signature_nodes(model_json)
    graph = {n.get("name"): n for n in model_json.get("modelTopology", {}).get("node", [])}
    tensors_in, tensors_out = tensor_names(source)
    dtypes = {i.name: i.dtype for i in source.inputs}
    missing: list[str] = []

    def match(name: str, tensor: str, sig: dict[str, dict], dtype: str) -> dict | None:
        node = tensor[:-2] if tensor.endswith(":0") else tensor
        for key in (name, tensor, node):
            if key in sig:
                return sig[key]
        for entry in sig.values():
            if entry["node"] in (tensor, node):
                return entry
        if node in graph:
            found = graph[node].get("attr", {}).get("dtype", {}).get("type")
            return {"node": node, "dtype": _DTYPES.get(found, "float32") if found else tfjs_dtype(dtype)}
        missing.append(name)
        return None

    inputs = {t.name: match(t.name, tensors_in.get(t.name, t.name), sig_in, dtypes[t.name]) for t in source.inputs}
    outputs = {t.name: match(t.name, tensors_out.get(t.name, t.name), sig_out, "float32") for t in source.outputs}
    if missing:
        raise ConversionError(f"the TF.js model has no node for {missing} (signature inputs "
                              f"{sorted(sig_in)}, outputs {sorted(sig_out)})", where=where)
    taken = [v["node"] for v in inputs.values()]
    if len(set(taken)) != len(taken):
        raise ConversionError(f"two inputs map to the same TF.js node: {inputs}", where=where)
    return inputs, outputs


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
