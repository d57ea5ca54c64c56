"""Mixed-precision int8 for Android: full int8 except the ops that hurt the outputs most, which stay float.

``--quantize auto`` tries this mode after full int8 misses the gates and before dynamic-range:

1. calibrate on the samples and measure each quantized op's error against its float twin with TFLite's
   quantization debugger (``tf.lite.experimental.QuantizationDebugger``): the NumericVerify op it inserts gives
   the quantized and float values of each op's output; the score is the error of a typical output channel
   relative to its own signal (``median_channel_error``), then RMSE in quantization steps;
2. keep the worst ops float (``denylisted_nodes``), adding 1, 1, 2, 4, ... in rank order until the model
   passes the gates on the samples (an op whose float weights alone break the size bound is skipped), then
   bisect down to the fewest;
3. give up (a ConversionError, so ``auto`` goes on) when the model grows past the bytes of the mode ``auto``
   would keep next: dynamic-range if it passes its gates on the samples, else fp16. A larger mixed model is no
   better a choice than that mode.

The fallback models converted for that bound are returned too (on a failure, as the ConversionError's
``by_products``), so ``auto`` does not convert them again.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from packager.checks import PASS, Check
from packager.errors import ConversionError

MAX_TRIES = 14  # quantize + run on the samples; doubling then bisection needs ~2 log2(ops)
MAX_TOO_LARGE = 4  # give up after this many sets found larger than the bound


@dataclass
class OpError:
    tensor: str  # the op's output tensor name (what denylisted_nodes takes)
    op: str  # TFLite builtin name, e.g. CONV_2D
    rmse_over_scale: float
    max_abs_error: float
    channel_error: float = 0.0  # median over channels of mean |quantized - float| / mean |float|


@dataclass
class MixedResult:
    data: bytes  # the chosen .tflite
    kept_float: list[OpError]
    ranked: list[OpError]
    tries: list[dict] = field(default_factory=list)  # {k, bytes, ok, reason}
    bound_mode: str = "dynamic"  # the next mode auto would keep: the mixed model must be smaller
    bound_bytes: int = 0
    seconds: float = 0.0

    def check(self) -> Check:
        ops = "; ".join(f"{o.op} {o.tensor!r} (typical channel loses {o.channel_error:.1%} of its signal, RMSE "
                        f"{o.rmse_over_scale:.2f} quantization steps, max error {o.max_abs_error:.3g})"
                        for o in self.kept_float)
        tried = ", ".join(f"{t['k']} float: {t['bytes']} B {'pass' if t['ok'] else 'fail'}" for t in self.tries)
        return Check("mixed precision", PASS,
                     f"{len(self.kept_float)} of {len(self.ranked)} quantized ops kept float (the worst by error against "
                     f"float on the samples, until the gates pass): {ops}. "
                     f"Tried {tried}; bound: {self.bound_mode} {self.bound_bytes} B")


def convert_mixed(source, spec, samples) -> tuple[dict[str, bytes], MixedResult]:
    """({"mixed": bytes, and the fallback modes converted for the bound}, details), or a ConversionError when no
    mix smaller than the next mode auto would keep passes the gates."""
    from packager.source import reference_outputs

    if samples is None or len(samples) == 0:
        raise ConversionError("mixed-precision int8 needs a sample set (calibration and per-op error)")
    t0 = time.perf_counter()
    reference = reference_outputs(source, samples)
    models, bound_mode = _fallbacks(source, spec, samples, reference)
    try:
        return _search(source, spec, samples, reference, models, bound_mode, t0)
    except ConversionError as e:  # the fallbacks are converted: auto takes them as they are, not again
        e.by_products = {**models, **(e.by_products or {})}
        raise


def _search(source, spec, samples, reference, models: dict[str, bytes], bound_mode: str,
            t0: float) -> tuple[dict[str, bytes], MixedResult]:
    """The deny-list search below ``bound_mode``'s bytes (the module docstring's steps 1-3)."""
    from packager.compare import compare, gates_for
    from packager.targets.android.tflite import run_tflite

    bound = len(models[bound_mode])
    debugger, measured = _debugger(source, samples)
    ranked = rank_ops(measured)
    if not ranked:
        raise ConversionError("mixed-precision int8: the quantization debugger found no quantized op to keep float")
    gates = gates_for("android", "mixed", spec.tolerances)
    result = MixedResult(b"", [], ranked, bound_mode=bound_mode, bound_bytes=bound)
    found: dict[int, bytes] = {}

    def attempt(ops: list[OpError]) -> str:
        """'pass', 'fail' or 'too large' with ``ops`` float."""
        data = quantize_keeping_float(debugger, [o.tensor for o in ops])
        if len(data) > bound:
            result.tries.append({"k": len(ops), "bytes": len(data), "ok": False, "reason": f"larger than {bound_mode}"})
            return "too large"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mixed.tflite"
            path.write_bytes(data)
            outputs, _, _ = run_tflite(path, source, samples)
        cmp = compare(reference, outputs, gates, spec.output_kinds)
        result.tries.append({"k": len(ops), "bytes": len(data), "ok": cmp.ok, "reason": cmp.reason})
        if cmp.ok:
            found[len(ops)] = data
        return "pass" if cmp.ok else "fail"

    # Grow the float set in rank order, 1, 1, 2, 4, ... ops at a time; an op whose weights alone would push
    # the model past the bound is skipped (the next worst may be cheap: an activation, an add).
    base = len(quantize_keeping_float(debugger, []))
    if base > bound:  # e.g. deepcut: dynamic-range (0.318 of fp32) is smaller than full int8 (0.335)
        raise ConversionError(f"mixed-precision int8: full int8 ({base} bytes) is already larger than {bound_mode} "
                              f"({bound} bytes), which passes; no mix can be smaller",
                              hint=f"auto goes on to {bound_mode}")
    kept: list[OpError] = []
    before, pos, batch, passed, too_large = 0, 0, 1, False, 0
    while len(result.tries) < MAX_TRIES and pos < len(ranked) and too_large < MAX_TOO_LARGE:
        trial = kept + ranked[pos:pos + batch]
        outcome = attempt(trial)
        if outcome == "too large":
            too_large += 1
            if batch > 1:
                batch = 1
            else:
                pos += 1
            continue
        before, kept, pos = len(kept), trial, pos + batch
        if outcome == "pass":
            passed = True
            break
        batch *= 2
    if not passed:
        last = result.tries[-1]
        raise ConversionError(
            f"mixed-precision int8: no set of the worst ops kept float passes the gates below {bound_mode}'s "
            f"{bound} bytes ({len(result.tries)} tries; last: {last['k']} ops float, {last['bytes']} bytes, "
            f"{last['reason'] or 'passes'})",
            hint="auto goes on to the next mode (dynamic, fp16); --quantize android=dynamic or fp16 asks for one")
    lo, hi = before, len(kept)  # kept[:lo] failed, kept[:hi] passes: the fewest float ops that still pass
    while hi - lo > 1 and len(result.tries) < MAX_TRIES:
        mid = (lo + hi) // 2
        if attempt(kept[:mid]) == "pass":
            hi = mid
        else:
            lo = mid
    result.data, result.kept_float = found[hi], kept[:hi]
    result.seconds = time.perf_counter() - t0
    return {"mixed": result.data, **models}, result


def _fallbacks(source, spec, samples, reference) -> tuple[dict[str, bytes], str]:
    """The modes auto would take next, converted: ({mode: bytes}, the one a mixed model must be smaller than).
    dynamic-range when it passes auto's gates on the samples, else fp16 (auto's next choice; its gates are not
    checked here: were it to fail, fp32 would be an even larger bound)."""
    from packager.compare import compare
    from packager.modes import auto_gates
    from packager.targets.android.tflite import convert_tflite, run_tflite

    models = convert_tflite(source, spec, "dynamic")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dynamic.tflite"
        path.write_bytes(models["dynamic"])
        outputs, _, _ = run_tflite(path, source, samples)
    # judged as auto judges dynamic beside mixed: by the gates of auto's first mode (modes.auto_gates)
    if compare(reference, outputs, auto_gates("android", "int8", "dynamic", spec.tolerances), spec.output_kinds).ok:
        return models, "dynamic"
    models.update(convert_tflite(source, spec, "fp16"))
    return models, "fp16"


def _debugger(source, samples):
    """(the calibrated debugger, which quantizes with a deny-list; a debugger over its instrumented model that
    keeps every tensor, so the float and quantized values of each op can be compared), both run on the samples."""
    import tensorflow as tf

    from packager.targets.android.tflite import _reusing_loaded, _saved_model_converter

    conv, loaded = _saved_model_converter(source)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ({k: np.asarray(v) for k, v in s.items()} for s in samples)  # model dtypes
    order: list[str] = []  # signature input names in the interpreter's input order, known once calibrated

    def dataset():
        return ([np.asarray(s[name]) for name in order] for s in samples)

    try:
        with _reusing_loaded(source, loaded):
            calibrated = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=dataset)
        order.extend(_input_order(calibrated.calibrated_model))
        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"channel_error": median_channel_error})
        measured = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=calibrated.get_debug_quantized_model(), debug_dataset=dataset,
            debug_options=options)
        measured.run()
    except Exception as e:
        raise ConversionError(f"mixed-precision int8: the quantization debugger failed: {type(e).__name__}: "
                              f"{str(e)[:300]}", hint="auto goes on to the next mode (dynamic, fp16)") from e
    return calibrated, measured


def median_channel_error(float_values, quantized, scale, zero_point) -> float:
    """Median over output channels (last axis) of mean |dequantized - float| / mean |float|: how much of a
    typical channel's signal int8 loses. RMSE in quantization steps misses the worst case, one channel whose
    range sets the tensor's scale so that the other channels round to a few steps (they err by under one step,
    yet lose most of their signal)."""
    f = np.asarray(float_values, np.float32)
    q = (np.asarray(quantized).astype(np.float32) - zero_point) * scale
    if f.shape != q.shape or f.size == 0:
        return float("nan")
    f, q = f.reshape(-1, f.shape[-1] if f.ndim else 1), q.reshape(-1, q.shape[-1] if q.ndim else 1)
    signal = np.abs(f).mean(axis=0)
    live = signal > 1e-6 * max(float(signal.max()), 1e-30)
    if not live.any():
        return 0.0
    return float(np.median(np.abs(q - f).mean(axis=0)[live] / signal[live]))


def _input_order(model: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    by_index = {d["index"]: name for name, d in
                interp.get_signature_runner("serving_default").get_input_details().items()}
    return [by_index[d["index"]] for d in interp.get_input_details()]


def rank_ops(debugger) -> list[OpError]:
    """Quantized ops, worst first: by the median channel's relative error, then RMSE in quantization steps."""
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    ops = []
    for row in csv.DictReader(buf):
        scale = float(row["scale"] or 0)
        mse = float(row["mean_squared_error"] or 0)
        if scale <= 0 or not np.isfinite(mse):
            continue
        channel = float(row.get("channel_error") or 0)
        ops.append(OpError(row["tensor_name"], row["op_name"], float(np.sqrt(mse)) / scale,
                           float(row["max_abs_error"] or 0), channel if np.isfinite(channel) else 0.0))
    return sorted(ops, key=lambda o: (-o.channel_error, -o.rmse_over_scale))


def quantize_keeping_float(debugger, tensors: list[str]) -> bytes:
    """The calibrated model quantized to int8 except the ops writing ``tensors`` (float inputs/outputs)."""
    from tensorflow.lite.python import convert

    # what the debugger's get_nondebug_quantized_model() runs, without re-instrumenting a debug model per try
    return bytes(convert.mlir_quantize(
        debugger.calibrated_model,
        disable_per_channel=debugger.converter._experimental_disable_per_channel,
        fully_quantize=False, enable_numeric_verify=False, denylisted_nodes=list(tensors)))
