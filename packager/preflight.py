"""Op preflight: before converting, say per target which ops will not convert, and why.

The op types (and counts) of the ``serving_default`` graph, function bodies included, are checked against
what each target's converter knows:

- web:     TF.js's own supported-op list, shipped in the ``tensorflowjs`` package (``op_list/*.json``,
           ``tfOpName``). Its converter refuses a model against the same list ("Unsupported Ops in the model
           before optimization"), so for op types this check is exact.
- ios:     the translators coremltools' TensorFlow frontend registers (``_TF_OPS_REGISTRY``, filled by
           ``@register_tf_op`` in ``frontend/tensorflow/ops.py`` and ``frontend/tensorflow2/ops.py``). No
           translator -> the conversion fails. Having one does not prove success (attributes, deployment target,
           converter bugs), which only the conversion shows.
- android: TensorFlow publishes no list of TF ops that lower to TFLite builtins, and the converter fuses
           patterns (Keras' exact GELU: Erfc -> GELU), so a list alone is not honest. Ops on a curated list of
           ops seen to lower give no finding; any other op triggers the real verdict: an fp32 conversion with
           ``TFLITE_BUILTINS`` only, the same converter call the android target makes, and the ops its errors
           name (``ERROR_NEEDS_FLEX_OPS``, failed legalizations).

A finding is ``{"op", "count", "severity", "why", "fix"}``: ``error`` = the target's converter is expected to refuse
the model, ``warning`` = it may fail or the result may not be what was meant.

Preflight is advice until a converter confirms it: the build converts every target whatever preflight says. Then
:func:`settle` records the outcome in each finding (``"conversion": "failed"`` or ``"succeeded"``); a finding the
conversion proved wrong becomes a warning, and :func:`explain_failure` attaches the errors to a failed conversion
as its explanation (op + fix). Debug ops are not counted (packager strips them for every target), and variable
ops count as the op freezing turns them into (:func:`converter_ops`).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from packager.recurrent import LOOP_FIX, LOOP_OPS, LOOP_WHY

TARGETS = ("android", "ios", "web")

# Call, variable and placeholder nodes the converters freeze, inline or drop before they look at ops:
# counted by graph_ops(), never reported.
PLUMBING = frozenset({
    "Placeholder", "PlaceholderWithDefault", "Identity", "IdentityN", "NoOp", "Const",
    "ReadVariableOp", "VarHandleOp", "StatefulPartitionedCall", "PartitionedCall",
})
# Debug ops: packager strips them from the export every target converts (packager.debug_ops), as
# tensorflowjs_converter does by default; never counted here.
DEBUG_OPS = frozenset({"Assert", "CheckNumerics", "CheckNumericsV2", "Print", "PrintV2"})
# Variable ops that freezing (every converter freezes the variables first) turns into their plain op: a tf_keras
# Embedding's ResourceGather is a GatherV2 by the time a converter looks at it.
FROZEN_AS = {"ResourceGather": "GatherV2", "ResourceGatherNd": "GatherNd"}
# Ops that write variables: an inference graph has none. Seen when a Keras 3 model is exported with a layer
# running in training mode (e.g. BatchNormalization after a Resizing layer uses batch statistics).
STATEFUL = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})

FIX = {
    "web": "replace the op or use a different target",
    "ios": "replace the op (or register a translator with coremltools' @register_tf_op), or use a different target",
    "android": ("replace the op with ones TFLite has builtin kernels for, or use a different target "
                "(packager converts with TFLite builtins only; Select TF ops would need SELECT_TF_OPS and the "
                "'org.tensorflow:tensorflow-lite-select-tf-ops' dependency)"),
}
STATEFUL_WHY = ("the serving graph updates a variable, so the model was exported with a layer in training mode "
                "(e.g. BatchNormalization using batch statistics)")
STATEFUL_FIX = "re-export the model for inference (training=False)"
# Causes verified here that say more than "no kernel"; appended to the target's finding.
HINTS = {
    "Erfc": ("Keras' exact GELU (activation='gelu') computes Erfc",
             "use the approximate GELU (keras.activations.gelu(x, approximate=True))"),
    **{op: (STATEFUL_WHY, STATEFUL_FIX) for op in STATEFUL},
    **{op: (LOOP_WHY, LOOP_FIX) for op in LOOP_OPS},
}


def count_ops(graph_def) -> dict[str, int]:
    """TF op type -> node count in a GraphDef, the bodies of its function library included."""
    counts = Counter(node.op for node in graph_def.node)
    for function in graph_def.library.function:
        counts.update(node.op for node in function.node_def)
    return dict(sorted(counts.items()))


def converter_ops(ops: dict[str, int]) -> dict[str, int]:
    """The op counts a converter sees: debug ops gone (stripped), variable reads frozen into plain ops."""
    seen: Counter[str] = Counter()
    for op, n in ops.items():
        if op not in DEBUG_OPS:
            seen[FROZEN_AS.get(op, op)] += n
    return dict(sorted(seen.items()))


def graph_ops(saved_model_dir: Path) -> dict[str, int]:
    """TF op type -> node count in the SavedModel's ``serving_default`` graph, function bodies included."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    return count_ops(loaded.signatures["serving_default"].graph.as_graph_def())


def preflight(saved_model_dir: Path, targets: tuple[str, ...] = TARGETS, *,
              ops: dict[str, int] | None = None, android_convert: bool | None = None,
              coreml_ops: frozenset[str] | None = None) -> dict[str, list[dict]]:
    """Per target, the findings on what will not convert; an empty list means none found.

    ``ops``: :func:`graph_ops` / :func:`count_ops` of the same model, if already at hand (skips a reload).
    ``android_convert``: see :func:`check_android`.
    ``coreml_ops``: :func:`coreml_tf_ops` as read by another process (the worker, which imports coremltools
    anyway), so that this one does not import coremltools only for the list.
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; preflight knows {', '.join(TARGETS)}")
    saved_model_dir = Path(saved_model_dir)
    ops = converter_ops(graph_ops(saved_model_dir) if ops is None else ops)
    checks = {
        "android": lambda: check_android(saved_model_dir, ops, convert=android_convert),
        "ios": lambda: check_ios(ops, coreml_ops),
        "web": lambda: check_web(ops),
    }
    return {t: checks[t]() for t in targets}


def has_errors(findings: list[dict]) -> bool:
    return any(f["severity"] == "error" for f in findings)


def format_findings(findings: dict[str, list[dict]] | list[dict], target: str | None = None) -> str:
    """One console line per finding; takes preflight()'s dict, or one target's list (named by ``target``)."""
    if isinstance(findings, dict):
        return "\n".join(format_findings(fs, t) for t, fs in findings.items() if fs)
    prefix = f"{target}: " if target else ""
    return "\n".join(
        f"{prefix}{f['severity']}: {f['op']} (x{f['count']}): {f['why']} — fix: {f['fix']}" for f in findings
    )


def settle(findings: list[dict], conversion: str) -> list[dict]:
    """The findings once the real conversion ran: each records ``conversion`` ("failed", "succeeded" or
    "not run"); after a successful conversion an ``error`` was a false alarm and is kept as a ``warning``."""
    if conversion not in ("failed", "succeeded", "not run"):
        raise ValueError(f"unknown conversion outcome {conversion!r}")
    settled = []
    for f in findings:
        f = {**f, "conversion": conversion}
        if conversion == "succeeded" and f["severity"] == "error":
            f["severity"] = "warning"
            f["why"] += " (preflight expected the conversion to fail; it succeeded)"
        settled.append(f)
    return settled


def explain_failure(reason: str, findings: list[dict]) -> str:
    """A failed conversion's reason with the preflight errors that explain it (op + fix) in front; the
    converter's own message (without its generic hint, after " — ") follows as the confirmation. With no error
    but warnings (ops the converter has a translator for but was seen failing on), the converter's message comes
    first and the warnings follow as the likely cause."""
    errors = [f for f in findings if f["severity"] == "error"]
    # a warning was a guess: after a failed conversion it is the likely cause, said as such (not as confirmed)
    guesses = [f for f in findings if f["severity"] == "warning"]
    if not errors and not guesses:
        return reason
    said = reason.split(" — ", 1)[0].strip()
    if not errors:
        ops = "; ".join(f"{f['op']} (x{f['count']}): {f['why']} — fix: {f['fix']}" for f in guesses)
        return f"{said} — likely cause (op preflight): {ops}"
    ops = "; ".join(f"{f['op']} (x{f['count']}): {f['why']} — fix: {f['fix']}" for f in errors)
    return f"op preflight: {ops} (confirmed by the conversion: {said})" if said else f"op preflight: {ops}"


def preflight_warnings(findings: list[dict]) -> list[str]:
    """One line per settled finding of a target that converted, for the result's warnings."""
    return [f"op preflight: {f['op']} (x{f['count']}): {f['why']} — {f['fix']}" for f in findings]


def _finding(op: str, count: int, severity: str, why: str, fix: str) -> dict:
    return {"op": op, "count": int(count), "severity": severity, "why": why, "fix": fix}


def _unsupported(op: str, count: int, why: str, fix: str) -> dict:
    if op in HINTS:
        cause, better = HINTS[op]
        why, fix = f"{why}; {cause}", f"{better}; or {fix}"
    return _finding(op, count, "error", why, fix)


# ---------------------------------------------------------------------------------------------
# web


@lru_cache(maxsize=1)
def tfjs_supported_ops() -> frozenset[str]:
    """``tfOpName`` of every entry in the installed tensorflowjs package's ``op_list/*.json``.

    Found without importing tensorflowjs (its import pulls in tensorflow_decision_forests: seconds, and an
    IPython import when stdout is not a terminal)."""
    from importlib.util import find_spec

    spec = find_spec("tensorflowjs")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tensorflowjs is not installed: the web target's op list is unavailable")
    names = set()
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location, "op_list").glob("*.json")):
            names.update(op["tfOpName"] for op in json.loads(path.read_text(encoding="utf-8")))
    if not names:
        raise RuntimeError(f"no op_list/*.json in tensorflowjs at {list(spec.submodule_search_locations)}")
    return frozenset(names)


def check_web(ops: dict[str, int]) -> list[dict]:
    supported = tfjs_supported_ops()
    return [
        _unsupported(op, n, f"TF.js has no kernel for op {op}", FIX["web"])
        for op, n in ops.items() if op not in supported and op not in PLUMBING
    ]


# ---------------------------------------------------------------------------------------------
# ios

# Ops with a translator that coremltools 9.0 still fails on here (TF 2.19, Keras 3): the while loop of a
# Keras LSTM/GRU/SimpleRNN export ends in "IndexError: list index out of range" in the loop condition.
IOS_FRAGILE = {
    "While": ("coremltools fails on the while loops of Keras 3 RNN exports (IndexError in the loop condition)",
              f"{LOOP_FIX}; or use a different target"),
}
IOS_FRAGILE["StatelessWhile"] = IOS_FRAGILE["While"]


@lru_cache(maxsize=1)
def coreml_tf_ops() -> frozenset[str]:
    """TF op names coremltools' TensorFlow frontend has a translator for (TF1 and TF2 registrations)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import coremltools.converters.mil.frontend.tensorflow.ops  # noqa: F401  (registers the TF1 ops)
        import coremltools.converters.mil.frontend.tensorflow2.ops  # noqa: F401  (registers the TF2 ops)
        from coremltools.converters.mil.frontend.tensorflow.tf_op_registry import _TF_OPS_REGISTRY
    return frozenset(_TF_OPS_REGISTRY)


def check_ios(ops: dict[str, int], supported: frozenset[str] | None = None) -> list[dict]:
    supported = coreml_tf_ops() if supported is None else supported
    findings = [
        _unsupported(op, n, f"coremltools has no TensorFlow translator for op {op}", FIX["ios"])
        for op, n in ops.items() if op not in supported and op not in PLUMBING
    ]
    findings += [
        _finding(op, n, "warning", f"op {op}: {IOS_FRAGILE[op][0]}", IOS_FRAGILE[op][1])
        for op, n in ops.items() if op in IOS_FRAGILE and op in supported
    ]
    return findings


# ---------------------------------------------------------------------------------------------
# android

# TF op types the TFLite converter of TF 2.19 lowered to builtins in the models tried here (Keras layers and
# activations, MobileNetV2). Curated, not authoritative: TensorFlow publishes no TF-op -> builtin list
# (tensorflow/tensorflow#57561), it fuses patterns, and it can refuse a listed op for its shapes or
# attributes. An op outside the list is not reported from the list: it makes check_android() ask the converter.
TFLITE_BUILTIN_OPS = frozenset({
    "Abs", "Add", "AddN", "AddV2", "All", "Any", "ArgMax", "ArgMin", "Atan2", "AvgPool", "AvgPool3D",
    "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "BatchToSpaceND", "BiasAdd", "BroadcastArgs", "BroadcastTo",
    "Bucketize", "Cast", "Ceil", "Concat", "ConcatV2", "Conv2D", "Conv2DBackpropInput", "Conv3D",
    "Conv3DBackpropInputV2", "Cos", "Cumsum", "DepthToSpace", "DepthwiseConv2dNative", "Div", "DivNoNan",
    "Einsum", "Elu", "Equal", "Exp", "ExpandDims", "Expm1", "Fill", "Floor", "FloorDiv", "FloorMod",
    "FusedBatchNorm", "FusedBatchNormV3", "Gather", "GatherNd", "GatherV2", "Greater", "GreaterEqual", "If",
    "LeakyRelu", "Less", "LessEqual", "Log", "Log1p", "LogSoftmax", "LogicalAnd", "LogicalNot", "LogicalOr",
    "MatMul", "MatrixBandPart", "Max", "MaxPool", "MaxPool3D", "Maximum", "Mean", "Min", "Minimum", "MirrorPad",
    "Mul", "Neg", "NonMaxSuppressionV4", "NonMaxSuppressionV5", "NotEqual", "OneHot", "OnesLike", "Pack", "Pad",
    "PadV2", "Pow", "Prod", "Range", "Rank", "RealDiv", "Reciprocal", "Relu", "Relu6", "Reshape",
    "ResizeBilinear", "ResizeNearestNeighbor", "ReverseSequence", "ReverseV2", "Round", "Rsqrt", "ScatterNd",
    "Select", "SelectV2", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Softplus",
    "SpaceToBatchND", "SpaceToDepth", "Split", "SplitV", "Sqrt", "Square", "SquaredDifference", "Squeeze",
    "StatelessIf", "StatelessWhile", "StopGradient", "StridedSlice", "Sub", "Sum", "Tanh", "Tile", "TopKV2",
    "Transpose", "Unpack", "Where", "While", "ZerosLike",
})

_FLEX_OP = re.compile(r"'tf\.([A-Za-z0-9_]+)' op is neither a custom op nor a flex op")


def check_android(saved_model_dir: Path, ops: dict[str, int], convert: bool | None = None) -> list[dict]:
    """TFLite builtins verdict. ``convert``: None (default) converts only when an op is outside
    TFLITE_BUILTIN_OPS, so common models cost nothing; True always converts (exact for the fp32 conversion,
    costs one conversion); False never converts and reports unlisted ops as warnings."""
    unlisted = {op: n for op, n in ops.items() if op not in PLUMBING and op not in TFLITE_BUILTIN_OPS}
    if convert is False:
        findings = [
            _finding(op, n, "warning", f"op {op} is not on packager's list of TF ops TFLite lowers to builtins "
                     "(the converter may still lower or fuse it)", FIX["android"])
            for op, n in unlisted.items() if op not in STATEFUL
        ]
    elif convert or unlisted:
        findings = tflite_builtins_findings(saved_model_dir, ops)
    else:
        findings = []
    reported = {f["op"] for f in findings}
    findings += [  # TFLite converts variable writes (resource variables), but the result computes the wrong thing
        _finding(op, n, "warning", f"op {op}: {STATEFUL_WHY}; TFLite converts it, and its predictions depend on "
                 "the batch", STATEFUL_FIX)
        for op, n in ops.items() if op in STATEFUL and op not in reported
    ]
    return findings


def tflite_builtins_findings(saved_model_dir: Path, ops: dict[str, int]) -> list[dict]:
    """Convert fp32 with TFLite builtins only (as the android target does) and report what it refuses."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        converter.convert()
    except Exception as e:  # ConverterError: structured .errors, and the same in its text
        return tflite_failure_findings(e, ops)
    return []


def tflite_failure_findings(error: Exception, ops: dict[str, int]) -> list[dict]:
    """Findings from a failed TFLite conversion: one per TF op it names, else one for the whole model."""
    flex: Counter[str] = Counter()
    refused: dict[str, list[str]] = {}  # op -> converter messages, for ops it failed to lower in another way
    general: list[str] = []
    for err in getattr(error, "errors", None) or []:
        op = err.operator.name.removeprefix("tf.") if err.HasField("operator") else ""
        message = " ".join(err.error_message.replace("\\n", " ").split()) if err.error_message else ""
        if op and err.error_code == err.ERROR_NEEDS_FLEX_OPS:
            flex[op] += 1
        elif op in ops and op not in PLUMBING:
            msgs = refused.setdefault(op, [])
            if message and message not in msgs:
                msgs.append(message)
        elif message:
            general.append(message)
    if not flex and not refused:
        flex.update(_FLEX_OP.findall(str(error)))
    findings = [
        _unsupported(op, ops.get(op, n), f"TFLite has no builtin kernel for op {op}", FIX["android"])
        for op, n in sorted(flex.items())
    ]
    findings += [
        _finding(op, ops[op], "error", f"TFLite cannot lower op {op}: {'; '.join(reversed(msgs))[:300]}",
                 f"replace the op (recurrent layers: {LOOP_FIX}), or use a different target")
        for op, msgs in sorted(refused.items())
    ]
    if not findings:  # refused for a reason that names no op: the android target's fp32 conversion fails too
        text = general[0] if general else _first_error_line(str(error))
        findings.append(_finding("(model)", 1, "error", f"TFLite fp32 conversion failed: {text[:300]}",
                                 "run packager with --verbose for the converter's full log"))
    return findings


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    lines = text.strip().splitlines()
    return lines[0] if lines else "unknown error"
