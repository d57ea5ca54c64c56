"""A ``.keras`` file's signature read from its ``config.json`` alone (no TensorFlow, no Keras): what
``source.keras_preview`` gives once the model is loaded, known in the build's first milliseconds.

A guess, like ``keras_preview``: whoever uses it compares what it made from it with the real thing (the warm
kotlinc reuses its compile only for byte-identical sources). None whenever the config is not the plain case: one
Functional model whose inputs are InputLayers with fixed shapes.
"""

from __future__ import annotations

import json
import zipfile

from packager.source import Source, _apply_input_shapes, natural_key
from packager.spec import PackageSpec, TensorSpec

MAX_CONFIG_BYTES = 8 << 20


def config_preview(spec: PackageSpec) -> Source | None:
    try:
        if spec.model.suffix.lower() != ".keras" or not spec.model.is_file():
            return None
        with zipfile.ZipFile(spec.model) as zf:
            if zf.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                return None
            config = json.loads(zf.read("config.json"))
        inputs, outputs = _signature(config)
        inputs = _apply_input_shapes(sorted(inputs, key=lambda t: natural_key(t.name)), spec, spec.model)
    except Exception:  # anything unexpected: no guess
        return None
    if not inputs or not outputs or any(d is None for i in inputs for d in i.shape[1:]):
        return None
    return Source(spec, "keras", spec.model, None, inputs, sorted(outputs, key=lambda t: natural_key(t.name)))


def _signature(config: dict) -> tuple[list[TensorSpec], list[TensorSpec]]:
    kind, body = config["class_name"], config["config"]
    layers = {layer["name"]: layer for layer in body["layers"]}
    if kind != "Functional":  # a loaded Sequential model's input is named at load time (input_layer_<n>)
        raise ValueError(kind)
    if isinstance(body["input_layers"], dict):
        raise ValueError("inputs by name")
    input_names = [ref[0] for ref in _refs(body["input_layers"])]
    out = body["output_layers"]
    output_names = sorted(out) if isinstance(out, dict) else None
    n_outputs = len(out) if isinstance(out, dict) else len(_refs(out))
    inputs = []
    for name in input_names:
        layer = layers[name]
        if layer["class_name"] != "InputLayer":
            raise ValueError(name)
        shape = layer["config"]["batch_shape"]
        dtype = layer["config"].get("dtype") or "float32"
        if isinstance(dtype, dict):  # a dtype policy
            dtype = dtype["config"]["name"]
        inputs.append(TensorSpec(name, (None,) + tuple(None if d is None else int(d) for d in shape[1:]), str(dtype)))
    names = output_names or [f"output_{i}" for i in range(n_outputs)]
    return inputs, [TensorSpec(n, (None, 1)) for n in names]  # output shapes: not read (the module needs names)


def _refs(value) -> list[list]:
    """``input_layers`` / ``output_layers``: one [name, node, tensor] or a list of them."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    return list(value)
