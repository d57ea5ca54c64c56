"""Dynamic-range .tflite with the few weight tensors whose int8 rounding flips samples kept float32.

A dynamic-range model stores each large conv / fully-connected weight tensor in int8 and runs hybrid kernels (the
op quantizes its float input on the fly). On a model with near-ties among the classes that rounding alone moves
samples to another class (fer: faces whose two best classes differ by 0.004-0.015 in the float model). Which ops
move them is measured, never guessed from names: each candidate op's weights are put back to the float model's
float32 values (the op then runs float kernels: the same op, float weights; no new ops) and the model is run on the
samples against the float model. Ops that raise top-1 agreement are kept float, best first, each kept only if the
model with it agrees better than without, while the added bytes stay within ``BYTE_SHARE`` of the model's.

Nothing is changed when the model already agrees on every sample, when its outputs are not class-shaped (top-1 is
the measure), or when the float model's ops do not line up with the dynamic-range one's (the float twin of a
weight is taken from the same op).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from packager.checks import PASS, Check

BYTE_SHARE = 0.10  # float weights may add at most this share of the dynamic-range model's bytes
_WEIGHTED = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED"}  # weights are inputs[1]
# what measuring may cost, in activation values computed (samples x values a run x runs), as bias correction
ELEMENT_BUDGET = 400_000_000


@dataclass
class FloatWeights:
    data: bytes  # the model returned (with float weights, or as converted)
    kept: list[str] = field(default_factory=list)  # "CONV_2D #13 (1,024 weights, +2,680 B)"
    before: dict = field(default_factory=dict)  # {"top1", "mean_abs_error"} against the float model
    after: dict = field(default_factory=dict)
    added: int = 0
    budget: int = 0
    tried: int = 0
    seconds: float = 0.0
    reason: str = ""

    def note(self) -> str:
        def fmt(m: dict) -> str:
            return f"top-1 {m['top1']:.3f}, mean error {m['mean_abs_error']:.4g}"

        if not self.kept:
            return f"float weights: none kept ({self.reason})"
        return (f"float weights: {len(self.kept)} op(s) of {self.tried} measured keep float32 weights "
                f"({'; '.join(self.kept)}), +{self.added:,} B of a {self.budget:,} B budget; against the float model "
                f"{fmt(self.before)} -> {fmt(self.after)}")

    def check(self) -> Check:
        """Informational, beside the dynamic try (the predictions check judges the model)."""
        return Check("float weights", PASS, self.note(), round(self.seconds, 2),
                     {"kept": self.kept, "added_bytes": self.added, "before": self.before, "after": self.after})


@dataclass
class _Candidate:
    op: int
    name: str
    tensor: int
    float_data: bytes
    cost: int  # weight bytes added (the file grows a little less: the int8 scales go)
    score: dict = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.name} #{self.op} ({len(self.float_data) // 4:,} weights, +{self.cost:,} B)"


def keep_float_weights(dynamic: bytes, float_model: bytes, samples) -> FloatWeights:
    """``dynamic`` with the weights of the ops that flip samples kept float32 (see the module's text); as converted,
    with the reason, when that cannot be measured here (a refinement never fails the conversion)."""
    t0 = time.perf_counter()
    result = FloatWeights(dynamic, budget=int(BYTE_SHARE * len(dynamic)))
    try:
        _choose(result, dynamic, float_model, samples)
    except Exception as e:  # e.g. a model the interpreter's signature runner cannot feed: leave it as converted
        result.data, result.kept, result.added, result.after = dynamic, [], 0, result.before
        result.reason = f"not measured ({type(e).__name__}: {str(e)[:160]})"
    result.seconds = time.perf_counter() - t0
    return result


def _choose(result: FloatWeights, dynamic: bytes, float_model: bytes, samples) -> None:
    from packager.targets.android.bias_correction import _agreement, _Runner, activation_elements

    rows = [dict(s) for s in samples] if samples is not None else []
    candidates = _candidates(dynamic, float_model)
    candidates = [c for c in candidates if c.cost <= result.budget]
    if not rows or not candidates:
        result.reason = "no samples" if not rows else "no int8 weights whose float32 values fit the byte budget"
        return
    floats = _Runner(float_model)
    target = []
    for i, row in enumerate(rows):
        floats.run(row, [])
        target.append(floats.outputs(i))
    result.before = result.after = _agreement(_Runner(dynamic), rows, target)
    if result.before["top1"] is None or result.before["top1"] >= 1.0:
        result.reason = ("the outputs are not class-shaped" if result.before["top1"] is None
                         else "it agrees with the float model on every sample")
        return
    runs = ELEMENT_BUDGET // max(len(rows) * activation_elements(dynamic), 1) - 2
    if runs < 1:
        result.reason = "the samples' runs exceed the measuring budget"
        return
    candidates = sorted(candidates, key=lambda c: c.cost)[:max(runs // 2, 1)]  # one run each, then the greedy ones
    for c in candidates:
        c.score = _agreement(_Runner(_with_float(dynamic, [c])), rows, target)
    result.tried = len(candidates)
    helpful = sorted((c for c in candidates if c.score["top1"] > result.before["top1"]),
                     key=lambda c: (-c.score["top1"], c.score["mean_abs_error"], c.cost))
    chosen: list[_Candidate] = []
    best, best_data = result.before, dynamic
    for c in helpful:
        if sum(k.cost for k in chosen) + c.cost > result.budget:
            continue
        data = _with_float(dynamic, chosen + [c])
        score = c.score if not chosen else _agreement(_Runner(data), rows, target)
        if score["top1"] > best["top1"]:
            chosen, best, best_data = chosen + [c], score, data
    if not chosen:
        result.reason = f"no op's float32 weights within the budget raise top-1 agreement ({len(candidates)} measured)"
        return
    if len(best_data) - len(dynamic) > result.budget:  # the weights' estimate missed the file's growth
        result.reason = f"the file grew {len(best_data) - len(dynamic):,} B, over its budget"
        return
    result.data, result.after = best_data, best
    result.kept = [c.label() for c in chosen]
    result.added = len(best_data) - len(dynamic)


def _ops(model) -> list[tuple[int, object]]:
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [(codes[op.opcodeIndex], op) for op in model.subgraphs[0].operators]


def _candidates(dynamic: bytes, float_model: bytes) -> list[_Candidate]:
    """Ops of ``dynamic`` with a constant int8 weight tensor used by that op alone, and the float model's twin of it
    (the same op, by position: the two conversions of one graph list the same ops in the same order)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    dyn = flatbuffer_utils.read_model_from_bytearray(bytearray(dynamic))
    flo = flatbuffer_utils.read_model_from_bytearray(bytearray(float_model))
    if len(dyn.subgraphs) != 1 or len(flo.subgraphs) != 1:
        return []
    d_ops, f_ops = _ops(dyn), _ops(flo)
    if [c for c, _ in d_ops] != [c for c, _ in f_ops]:
        return []
    graph, fgraph = dyn.subgraphs[0], flo.subgraphs[0]
    uses: dict[int, int] = {}
    for _, op in d_ops:
        for t in op.inputs:
            uses[int(t)] = uses.get(int(t), 0) + 1
    buffers: dict[int, int] = {}
    for tensor in graph.tensors:
        buffers[tensor.buffer] = buffers.get(tensor.buffer, 0) + 1
    found = []
    for i, ((code, op), (_, fop)) in enumerate(zip(d_ops, f_ops)):
        if code not in _WEIGHTED or len(op.inputs) < 2 or len(fop.inputs) < 2 or op.inputs[1] < 0:
            continue
        t = int(op.inputs[1])
        tensor, ftensor = graph.tensors[t], fgraph.tensors[int(fop.inputs[1])]
        data, fdata = dyn.buffers[tensor.buffer].data, flo.buffers[ftensor.buffer].data
        if (tensor.type != schema.TensorType.INT8 or ftensor.type != schema.TensorType.FLOAT32 or data is None
                or fdata is None or uses.get(t) != 1 or buffers.get(tensor.buffer) != 1
                or list(tensor.shape) != list(ftensor.shape) or len(fdata) != 4 * len(data)):
            continue
        found.append(_Candidate(i, _WEIGHTED[code], t, bytes(np.asarray(fdata, np.uint8)), len(fdata) - len(data)))
    return found


def _with_float(dynamic: bytes, chosen: list[_Candidate]) -> bytes:
    """``dynamic`` with the weight tensors of ``chosen`` float32 (their float model's values, no quantization)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(dynamic))
    graph = model.subgraphs[0]
    for c in chosen:
        tensor = graph.tensors[c.tensor]
        model.buffers[tensor.buffer].data = np.frombuffer(c.float_data, np.uint8)
        tensor.type, tensor.quantization = schema.TensorType.FLOAT32, None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
