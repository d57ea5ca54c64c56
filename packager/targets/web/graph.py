"""A rewrite of the converted TF.js graph so that tf.js' wasm backend (the page's fast one) runs it.

The converter (and grappler before it) folds ``Conv2D -> Add(t) -> activation`` into one ``_FusedConv2D`` whose
"bias" is ``t``. When ``t`` is a whole feature map, not a per-channel vector -- the residual add of a ResNet block
whose convolution and BatchNorm carry no bias of their own (``ResNet50(weights=None)``: zero-initialised) --
tf.js' wasm kernel refuses the graph ("FusedConv2D only supports rank-1 bias but got rank 4"); cpu and webgl
broadcast it. The same for ``_FusedMatMul`` with a rank-3 "bias" (an unrolled Keras LSTM). ``unfuse_tensor_bias``
splits each such node back into ``Conv2D`` (``DepthwiseConv2dNative``, ``MatMul``),
``AddV2`` and the activation, under the fused node's name, so every consumer reads the same tensor: the same
arithmetic on every backend, and wasm accepts it. A bias that is a rank-1 weight is left fused (wasm's fast path).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

_UNFUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative", "_FusedMatMul": "MatMul"}
_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu"}
_KEPT_ATTRS = ("T", "data_format", "strides", "padding", "dilations", "explicit_paddings", "transpose_a", "transpose_b")


def _fused_ops(node: dict) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])]


def _rank1_weight(name: str, shapes: dict[str, list[int]]) -> bool:
    shape = shapes.get(name.split(":")[0].lstrip("^"))
    return shape is not None and len(shape) == 1


def unfuse_tensor_bias(model_json: Path) -> int:
    """Rewrite ``model_json`` in place; returns how many fused nodes were split (0: file untouched)."""
    model = json.loads(Path(model_json).read_text(encoding="utf-8"))
    shapes = {w["name"]: w["shape"] for group in model.get("weightsManifest", []) for w in group["weights"]}
    nodes = model.get("modelTopology", {}).get("node", [])
    rewritten, count = [], 0
    for node in nodes:
        ops = _fused_ops(node) if node.get("op") in _UNFUSED else []
        data = [i for i in node.get("input", []) if not i.startswith("^")]
        control = [i for i in node.get("input", []) if i.startswith("^")]
        num_args = int(node.get("attr", {}).get("num_args", {}).get("i", 0))
        if (not ops or ops[0] != "BiasAdd" or len(ops) > 2 or (len(ops) == 2 and ops[1] not in _ACTIVATIONS)
                or num_args != 1 or len(data) != 3 or _rank1_weight(data[2], shapes)):
            rewritten.append(node)
            continue
        name, attr = node["name"], node["attr"]
        conv = {"name": name + "/packager_conv", "op": _UNFUSED[node["op"]], "input": data[:2] + control,
                "attr": {k: attr[k] for k in _KEPT_ATTRS if k in attr}}
        activation = ops[1] if len(ops) == 2 else None
        add = {"name": name if activation is None else name + "/packager_add", "op": "AddV2",
               "input": [conv["name"], data[2]], "attr": {"T": attr["T"]}}
        rewritten += [conv, add]
        if activation is not None:
            act = {"name": name, "op": activation, "input": [add["name"]], "attr": {"T": attr["T"]}}
            if activation == "LeakyRelu" and "leakyrelu_alpha" in attr:
                act["attr"]["alpha"] = attr["leakyrelu_alpha"]
            rewritten.append(act)
        count += 1
    if count:
        model["modelTopology"]["node"] = rewritten
        Path(model_json).write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")
    return count
