"""Bias correction of a full-integer .tflite: each conv / fully-connected op's int32 bias is moved so that, on the
samples, the mean of its quantized output per channel equals the float model's (empirical bias correction,
Nagel et al. 2019, "Data-Free Quantization", section 4.2, measured rather than derived).

Rounding int8 weights and activations shifts an op's output per channel by a mean the bias can absorb; a shift left
in class logits moves every sample's scores one way, which flips near-ties (fer: the face whose two best classes
differ by 0.015). Nothing else changes: the same ops, the same bytes (only bias values, patched in place), the same
kernels. Ops are corrected in graph order, each measured after the ones before it were corrected (the error an op
sees includes what its inputs still carry), so the shifts do not add up downstream.

The corrected model is kept only when it agrees with the float model at least as well on the samples (top-1 where
the outputs are class-shaped, then the mean output error); else the converter's model is returned as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from packager.checks import PASS, Check

# TFLite builtin codes (schema.fbs) of the ops with an int32 bias input (inputs[2]) and their fused activations
_BIASED = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED"}
_NONE, _RELU, _RELU_N1_TO_1, _RELU6 = 0, 1, 2, 3
# What the correction may cost, in activation values computed (samples x the model's activation values a run x runs):
# ops are corrected in consecutive groups, two passes over the samples a group, as many groups as the budget allows
# (at most one an op); a model whose float pass, two agreement passes and one group exceed it is not corrected.
# fer (64 samples x 0.5 M values a run): 4 groups, 0.9 s on a loaded host; the demo (64 x 32x32): one an op, 0.2 s;
# MobileNetV2 224 (16 samples x 7.2 M): not corrected (one group would be 80 runs without XNNPACK, seconds: P1).
ELEMENT_BUDGET = 400_000_000


@dataclass
class Correction:
    data: bytes  # the model returned (corrected or as converted)
    corrected: bytes = b""  # the corrected model, kept or not
    applied: bool = False
    ops: int = 0  # ops whose bias was corrected
    before: dict = field(default_factory=dict)  # {"top1": ..., "mean_abs_error": ...} against the float model
    after: dict = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""

    def note(self) -> str:
        def fmt(m: dict) -> str:
            top1 = f"top-1 {m['top1']:.3f}, " if m.get("top1") is not None else ""
            return f"{top1}mean error {m.get('mean_abs_error', float('nan')):.4g}"

        if not self.before:
            return f"bias correction: not done ({self.reason})"
        what = (f"bias correction: {self.ops} op(s) corrected on the samples; against the float model "
                f"{fmt(self.before)} -> {fmt(self.after)}")
        # no wall-clock time in the text: two identical builds write the same report (the time is the check's seconds)
        return what + ("" if self.applied else f"; not kept ({self.reason})")

    def check(self) -> Check:
        """What the report shows beside the int8 try (informational: the predictions check judges the model)."""
        return Check("bias correction", PASS, self.note(), round(self.seconds, 2),
                     {"applied": self.applied, "ops": self.ops, "before": self.before, "after": self.after})


@dataclass
class _Op:
    index: int
    output: str  # output tensor name (the float model's twin has the same name)
    bias_offset: int  # byte offset of the int32 bias data in the flatbuffer
    bias_scale: np.ndarray  # per channel
    out_scale: float
    out_zero: int
    activation: int


def correct_biases(quantized: bytes, float_model: bytes, samples, chunks: int | None = None) -> Correction:
    """``quantized`` with its biases corrected on ``samples`` (a SampleSet, or a list of {input name: array}) against
    ``float_model`` (the float .tflite it was quantized from, whose tensors carry the same names)."""
    t0 = time.perf_counter()
    result = Correction(quantized)
    rows = [dict(s) for s in samples]
    ops = _biased_ops(quantized)
    if not rows or not ops:
        result.reason = "no samples" if not rows else "no conv or fully-connected op with an int32 bias"
        return result
    per_pass = len(rows) * activation_elements(quantized)
    # a group of ops costs two passes (the float model and the int8 one); three more: the float outputs, and the int8
    # model's agreement with them before and after
    passes = min(len(ops), (ELEMENT_BUDGET // max(per_pass, 1) - 3) // 2) if chunks is None else chunks
    if passes < 1:
        result.reason = (f"{len(rows)} samples x {per_pass // len(rows):,} activation values a run: the passes it "
                         f"needs exceed its budget ({ELEMENT_BUDGET:,} values)")
        return result
    floats = _Runner(float_model)
    names = set(floats.by_name)
    named = [o for o in ops if o.output in names]
    target = []
    for i, row in enumerate(rows):
        floats.run(row, [])
        target.append(floats.outputs(i))
    buf = bytearray(quantized)
    before = _agreement(_Runner(bytes(buf)), rows, target)
    for group in _groups(named, passes):
        runner = _Runner(bytes(buf))
        diff = {op.output: 0.0 for op in group}
        count = {op.output: 0 for op in group}
        for row in rows:
            got = runner.run(row, [op.output for op in group])
            want = floats.run(row, [op.output for op in group])
            for op in group:
                f = want[op.output]
                mask = _linear_region(f, op)
                diff[op.output] = diff[op.output] + ((got[op.output] - f) * mask).reshape(-1, f.shape[-1]).sum(axis=0)
                count[op.output] = count[op.output] + mask.reshape(-1, f.shape[-1]).sum(axis=0)
        for op in group:
            mean = np.where(count[op.output] > 0, diff[op.output] / np.maximum(count[op.output], 1), 0.0)
            bias = np.frombuffer(buf, dtype="<i4", count=len(op.bias_scale), offset=op.bias_offset).copy()
            if np.shape(mean) != bias.shape:
                continue
            step = np.rint(-mean / op.bias_scale).astype(np.int64)
            new = np.clip(bias.astype(np.int64) + step, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
            buf[op.bias_offset:op.bias_offset + 4 * len(bias)] = new.astype("<i4").tobytes()
            result.ops += 1
    result.corrected = bytes(buf)
    after = _agreement(_Runner(result.corrected), rows, target)
    result.before, result.after = before, after
    better = (after.get("top1") or 0, -after["mean_abs_error"]) >= (before.get("top1") or 0, -before["mean_abs_error"])
    if better and result.ops:
        result.data, result.applied = result.corrected, True
    else:
        result.reason = "it agrees with the float model less well on the samples"
    result.seconds = time.perf_counter() - t0
    return result


def activation_elements(data: bytes) -> int:
    """Values a run of the model computes: the sizes of its tensors that hold no constant data."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    total = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = model.Buffers(tensor.Buffer())
            if buffer.DataLength() == 0 and not (hasattr(buffer, "Size") and buffer.Size()):  # Size: data outside
                total += int(np.prod(np.maximum(tensor.ShapeAsNumpy(), 1))) if tensor.ShapeLength() else 1
    return total


def _groups(ops: list, n: int) -> list[list]:
    """``ops`` in graph order, cut into ``n`` consecutive groups (each group is measured in one pass)."""
    n = max(1, min(n, len(ops)))
    bounds = np.linspace(0, len(ops), n + 1).round().astype(int)
    return [ops[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _linear_region(f: np.ndarray, op: _Op) -> np.ndarray:
    """Where the op's fused activation passes its input through (a clipped value carries no bias error): away
    from the clip points by two quantization steps, so rounding does not decide whether a value was clipped."""
    margin = 2 * op.out_scale
    if op.activation == _NONE:
        return np.ones_like(f, dtype=bool)
    if op.activation == _RELU:
        return f > margin
    if op.activation == _RELU6:
        return (f > margin) & (f < 6 - margin)
    if op.activation == _RELU_N1_TO_1:
        return (f > -1 + margin) & (f < 1 - margin)
    return np.zeros_like(f, dtype=bool)


def _biased_ops(data: bytes) -> list[_Op]:
    """The quantized model's conv / depthwise / fully-connected ops with an int32 bias of its own buffer, in order."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() != 1:
        return []
    graph = model.Subgraphs(0)
    users: dict[int, int] = {}
    for t in range(graph.TensorsLength()):
        users[graph.Tensors(t).Buffer()] = users.get(graph.Tensors(t).Buffer(), 0) + 1
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in _BIASED or op.InputsLength() < 3 or op.Inputs(2) < 0 or op.OutputsLength() != 1:
            continue
        bias, out = graph.Tensors(op.Inputs(2)), graph.Tensors(op.Outputs(0))
        if bias.Type() != schema.TensorType.INT32 or out.Type() != schema.TensorType.INT8:
            continue
        buffer = model.Buffers(bias.Buffer())
        bq, oq = bias.Quantization(), out.Quantization()
        if users.get(bias.Buffer()) != 1 or not buffer.DataLength() or bq is None or oq is None:
            continue
        scale = bq.ScaleAsNumpy()
        if not isinstance(scale, np.ndarray) or oq.ScaleLength() != 1:
            continue
        n = buffer.DataLength() // 4
        scale = np.broadcast_to(scale.astype(np.float64), (n,)).copy()
        found.append(_Op(i, out.Name().decode(), _data_offset(buffer), scale, float(oq.Scale(0)),
                         int(oq.ZeroPoint(0)), _activation(op, builtin, schema)))
    return found


def _data_offset(buffer) -> int:
    """Byte offset in the flatbuffer of a Buffer's data vector (its first element)."""
    o = buffer._tab.Offset(4)  # Buffer.data is field 0 (vtable slot 4)
    return buffer._tab.Vector(o)


def _activation(op, builtin: int, schema) -> int:
    options = {3: schema.Conv2DOptions, 4: schema.DepthwiseConv2DOptions, 9: schema.FullyConnectedOptions}[builtin]
    table = op.BuiltinOptions()
    if table is None:
        return _NONE
    parsed = options()
    parsed.Init(table.Bytes, table.Pos)
    return int(parsed.FusedActivationFunction())


class _Runner:
    """A .tflite on ai-edge-litert keeping every intermediate tensor, fed through its serving signature."""

    def __init__(self, data: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_content=data, num_threads=1, experimental_preserve_all_tensors=True)
        self.runner = self.interp.get_signature_runner("serving_default")
        self.ins = self.runner.get_input_details()
        self.outs = self.runner.get_output_details()
        self.by_name = {d["name"]: d for d in self.interp.get_tensor_details()}
        self._last: list[dict] = []

    def run(self, row: dict, names: list[str]) -> dict[str, np.ndarray]:
        """{tensor name: float value} of ``names`` (dequantized) after running one sample; also keeps its outputs."""
        from packager.targets.android.tflite import _dequantize, _quantize

        out = self.runner(**{n: _quantize(np.asarray(row[n]), d) for n, d in self.ins.items()})
        self._last.append({n: _dequantize(v, self.outs[n]) for n, v in out.items()})
        found = {}
        for name in names:
            d = self.by_name.get(name)
            if d is not None:
                found[name] = _dequantize(self.interp.get_tensor(d["index"]), d).astype(np.float64)
        return found

    def outputs(self, i: int) -> dict[str, np.ndarray]:
        return self._last[i]


def _agreement(runner: _Runner, rows: list[dict], target: list[dict]) -> dict:
    """Top-1 agreement (class-shaped outputs) and mean abs error of ``runner``'s outputs against ``target``'s."""
    agree, total, err, n = 0, 0, 0.0, 0
    for row, want in zip(rows, target):
        runner.run(row, [])
        got = runner._last[-1]
        for name, ref in want.items():
            ref, cand = np.asarray(ref, np.float64), np.asarray(got[name], np.float64)
            err, n = err + float(np.abs(ref - cand).sum()), n + ref.size
            if ref.ndim == 2 and ref.shape[1] >= 2:
                agree += int((ref.argmax(1) == cand.argmax(1)).sum())
                total += ref.shape[0]
    return {"top1": agree / total if total else None, "mean_abs_error": err / max(n, 1)}
