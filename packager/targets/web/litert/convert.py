"""The LiteRT.js "conversion": none. The web bundle ships the Android target's chosen ``.tflite`` byte for byte
(handed over by the build session as ``spec.upstream["android"]``), after checking that LiteRT.js's JS API can run
it: static shapes (it has no resize call: a dynamic batch is refused when the first tensor is bound) and float32 /
int32 input and output tensors (its wrapper refuses int8 tensors; quantized I/O would need the scale arithmetic the
Kotlin wrapper does)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from packager.errors import ConversionError
from packager.targets.base import Artifact
from packager.targets.web.litert.runtime import MODE

SUPPORTED_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}


def android_tflite(spec) -> tuple[Path, object]:
    """(the Android target's shipped .tflite, its TargetResult); ConversionError saying why there is none."""
    handed = (getattr(spec, "upstream", None) or {}).get("android")
    if handed is None:
        raise ConversionError(
            "--web-runtime litert ships the Android target's .tflite, and the android target is not being built",
            hint="add android to --targets (e.g. --targets android,web), or use --web-runtime tfjs")
    result, root = handed["result"], Path(handed["root"])
    if not result.artifact or not (root / result.artifact).is_file():
        raise ConversionError(f"the android target produced no .tflite to ship on the web ({result.status}: "
                              f"{result.reason or 'no model'})", hint="fix the android target first (its reason "
                              "above), or use --web-runtime tfjs")
    if result.status == "FAIL":
        raise ConversionError(f"the android .tflite failed its own validation ({result.reason}); the web bundle would "
                              "ship the same file", hint="fix the android target first, or use --web-runtime tfjs")
    return root / result.artifact, result


def tensor_table(path: Path, source) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs): per model tensor of the spec, in the spec's order, {name, tensor (signature name LiteRT.js
    keys it by), dtype, shape}. ConversionError naming the tensor LiteRT.js cannot run."""
    from ai_edge_litert.interpreter import Interpreter

    runner = _signature_runner(Interpreter(model_path=str(path)), path)
    tables = []
    for side, wanted, details in (("input", source.inputs, runner.get_input_details()),
                                  ("output", source.outputs, runner.get_output_details())):
        names = list(details)
        rows = []
        for i, t in enumerate(wanted):
            sig = t.name if t.name in details else (names[i] if i < len(names) else None)
            if sig is None:
                raise ConversionError(f"the android .tflite has no {side} for {t.name!r}", where=str(path))
            d = details[sig]
            shape = [int(v) for v in d["shape_signature"]] if len(d.get("shape_signature", ())) else \
                [int(v) for v in d["shape"]]
            if any(v < 0 for v in shape):
                raise ConversionError(
                    f"LiteRT.js cannot run the android .tflite: its {side} {sig!r} has a dynamic shape {shape} "
                    "(LiteRT.js's JS API has no resize call; it refuses a tensor of another shape)", where=str(path),
                    hint="the android model must be converted at batch 1 with static shapes (fix the other "
                         "dimensions with --input-shape NAME=1,H,W,C), or use --web-runtime tfjs")
            dtype = np.dtype(d["dtype"])
            if dtype not in SUPPORTED_DTYPES:
                hint = ("build android without --int8-io (float I/O, the int8 model inside is the same)"
                        if dtype in (np.dtype(np.int8), np.dtype(np.uint8)) else "use --web-runtime tfjs")
                raise ConversionError(
                    f"LiteRT.js cannot run the android .tflite: its {side} {sig!r} is {dtype.name} (LiteRT.js "
                    f"{'refuses int8 tensors' if dtype == np.int8 else 'would need quantized I/O arithmetic'}; "
                    "this bundle passes float32 and int32 tensors)", where=str(path), hint=hint)
            rows.append({"name": t.name, "tensor": sig, "dtype": SUPPORTED_DTYPES[dtype], "shape": shape})
        tables.append(rows)
    return tables[0], tables[1]


def _signature_runner(interpreter, path: Path):
    """The model's serving signature (the one LiteRT.js's ``run`` takes: its first): ``serving_default`` as the
    android target writes it, else the only one."""
    names = list(interpreter.get_signature_list())
    if not names:
        raise ConversionError("the android .tflite has no signature (LiteRT.js runs a model by its signature)",
                              where=str(path))
    if "serving_default" not in names and len(names) > 1:
        raise ConversionError(f"the android .tflite has {len(names)} signatures and no serving_default",
                              where=str(path))
    return interpreter.get_signature_runner("serving_default" if "serving_default" in names else names[0])


def convert(source, spec, workdir: Path) -> Artifact:
    """The Android .tflite, copied into ``workdir/litert/`` (same bytes), as the web target's Artifact; its
    fp32 size (for the report's size ratio) is the android target's."""
    path, result = android_tflite(spec)
    inputs, outputs = tensor_table(path, source)
    out = Path(workdir) / "litert"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(path, out / "model.tflite")
    data = (out / "model.tflite").read_bytes()
    extra = {"format": "tflite", "tflite": out / "model.tflite", "sha256": hashlib.sha256(data).hexdigest(),
             "android_mode": result.quantization, "gates_mode": result.quantization, "android_file": result.artifact,
             "inputs": inputs, "outputs": outputs}
    if result.gates:  # the gates android judged this very file by (auto's, when auto kept it): the web's too
        extra["gates"] = dict(result.gates)
    artifact = Artifact(target="web", mode=MODE, path=out, bytes=len(data), extra=extra)
    fp32 = Artifact(target="web", mode="fp32", path=out, bytes=int(result.float_bytes or len(data)),
                    extra={"format": "tflite"})
    artifact.extra["by_products"] = {"fp32": fp32}
    return artifact


def host_run(path: Path, source, samples) -> tuple[dict[str, np.ndarray], str]:
    """The same file on the host with ai-edge-litert (what the android target's predictions run on): outputs keyed
    by the spec's output names, and the runtime's name."""
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    inputs, outputs = tensor_table(path, source)
    runner = _signature_runner(Interpreter(model_path=str(path), num_threads=1), path)
    rows: dict[str, list] = {o["name"]: [] for o in outputs}
    for sample in samples:
        out = runner(**{i["tensor"]: np.asarray(sample[i["name"]]).astype(i["dtype"]) for i in inputs})
        for o in outputs:
            rows[o["name"]].append(np.asarray(out[o["tensor"]], np.float32))
    version = getattr(ai_edge_litert, "__version__", "") or "?"
    return {k: np.concatenate(v) for k, v in rows.items()}, f"ai-edge-litert {version}"
