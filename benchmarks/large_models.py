"""Large-model benchmark (issue 19): wall time and peak memory of packager and of each official converter.

    .venv/bin/python benchmarks/large_models.py [--models resnet50,vgg16,corpus:hed_edges_image_to_image] [--json FILE] [--keep]
                                                [--packager-flag=--low-memory ...]

For each model (``keras.applications.<Model>(weights=None)``, seed 0, 224x224, 16 noise PNGs, a 1000-line labels
file): the three official converters, each alone in its own process (TFLite int8 full-integer calibrated on the
samples, ``tensorflowjs_converter --quantize_uint8``, coremltools neuralnetwork 8-bit), then
``packager build`` with the same modes, all three targets, validation, ``--no-cache``. Every command runs to the
end before the next starts (never two at once), and each is measured over its WHOLE process tree
(``benchmarks/peak_memory.py``: the sum of PSS over every descendant process, sampled every 0.1 s; RSS sum and the
largest single process beside it).

The goal (issue 19): packager's peak <= 1.5 x the largest official converter's peak in the same run.
Gates are relaxed for the quantized modes (random weights: see benchmarks/bench.py); statuses are reported.
Results: benchmarks/large_models_results.json (every command line, figure and the processes at each peak).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_memory import describe, measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python")
PACKAGER = str(BIN / "packager")
TFJS = str(BIN / "tensorflowjs_converter")
OFFICIAL = str(ROOT / "benchmarks" / "official.py")
GOAL = 1.5
MODELS = {"resnet50": "ResNet50", "vgg16": "VGG16", "vgg19": "VGG19", "efficientnetb7": "EfficientNetB7",
          "mobilenetv2": "MobileNetV2"}
from bench import RELAXED_TOML, git_state, use_snapshot  # noqa: E402  (the same relaxed gates as bench.py)

PREPARE = """\
import contextlib, io, json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
import keras
out, arch, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
(out / "samples").mkdir(parents=True, exist_ok=True)
for i in range(16):
    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8), "RGB").save(out / "samples" / f"noise_{i:02d}.png")
(out / "labels.txt").write_text("".join(f"class_{i:03d}\\n" for i in range(1000)))
keras.utils.set_random_seed(0)
model = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3))
model.save(out / f"{arch}.keras")
with contextlib.redirect_stdout(io.StringIO()):
    model.export(str(out / "saved_model"), verbose=False)
(out / "prepare.json").write_text(json.dumps({"params": int(model.count_params()),
                                              "fp32_bytes": int(model.count_params()) * 4}))
"""


def run(label: str, argv: list[str], logs: Path, env: dict) -> dict:
    shown = " ".join(shlex.quote(a) if a != PREPARE else "<the PREPARE script of large_models.py>" for a in argv)
    print(f"  $ {shown}", flush=True)
    load = round(os.getloadavg()[0], 2)
    code, wall, peak = measure(argv, env=env, cwd=ROOT, log=logs / f"{label}.log")
    print(f"    -> {wall:.1f} s, exit {code}; {describe(peak)}", flush=True)
    if code not in (0, 5, 6):
        tail = (logs / f"{label}.log").read_text(errors="replace").splitlines()[-12:]
        print("".join(f"       | {line}\n" for line in tail), end="", flush=True)
    return {"label": label, "command": shown, "exit_code": code,
            "seconds": round(wall, 1), "loadavg_1min_at_start": load, **peak.as_dict()}


def bench_model(key: str, work: Path, logs: Path, env: dict, packager_flags: list[str]) -> dict:
    arch = MODELS[key]
    data = work / key
    data.mkdir(parents=True)
    print(f"\n[{arch}] set-up: model (weights=None, seed 0), SavedModel export for the official converters, "
          "16 noise PNGs, labels", flush=True)
    prep = run(f"{key}_prepare", [PY, "-c", PREPARE, str(data), arch, "224"], logs, env)
    if prep["exit_code"]:
        return {"model": arch, "error": "prepare failed", "prepare": prep}
    info = json.loads((data / "prepare.json").read_text())
    saved, samples, off = data / "saved_model", data / "samples", data / "official"
    off.mkdir()
    (data / "packager.toml").write_text(RELAXED_TOML)
    official = {
        "tflite_int8": run(f"{key}_official_tflite_int8", [PY, OFFICIAL, "tflite", str(saved), str(samples),
                                                           str(off / "int8.tflite"), "--mode", "int8", "--size", "224"],
                           logs, env),
        "tfjs_uint8": run(f"{key}_official_tfjs_uint8", [TFJS, "--input_format=tf_saved_model",
                                                         "--signature_name=serving_default", "--saved_model_tags=serve",
                                                         "--quantize_uint8", "*", str(saved), str(off / "tfjs_uint8")],
                          logs, env),
        "coreml_8bit": run(f"{key}_official_coreml_8bit", [PY, OFFICIAL, "coreml", str(saved), str(off / "coreml"),
                                                           "--modes", "8bit"], logs, env),
    }
    out = data / "out"
    pkg = run(f"{key}_packager", [PACKAGER, "build", str(data / f"{arch}.keras"), "--samples", str(samples),
                                  "--labels", str(data / "labels.txt"), "--mean", "127.5", "--std", "127.5",
                                  "--name", arch, "--config", str(data / "packager.toml"),
                                  "--quantize", "android=int8", "--quantize", "ios=8bit", "--quantize", "web=uint8",
                                  *packager_flags, "--out", str(out), "--no-cache"], logs, env)
    return _summary(arch, info["params"], info["fp32_bytes"], official, pkg, out)


def _summary(model: str, params: int, fp32_bytes: int, official: dict, pkg: dict, out: Path) -> dict:
    """One row: packager's run (statuses, modes, reasons, seconds per target from its report) beside the official
    converters' (their summed seconds, the largest one's peak memory) and the ratios the goal is judged by."""
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    targets = report.get("targets", {})
    pkg["statuses"] = {t: r.get("status") for t, r in targets.items()}
    pkg["modes"] = {t: r.get("quantization") for t, r in targets.items()}
    pkg["reasons"] = {t: r.get("reason") for t, r in targets.items() if r.get("reason")}
    pkg["target_seconds"] = {t: r.get("seconds") for t, r in targets.items()}
    largest = max(official.values(), key=lambda r: r["peak_pss_gib"])
    ratio = pkg["peak_pss_gib"] / largest["peak_pss_gib"] if largest["peak_pss_gib"] else None
    official_sum = sum(r["seconds"] for r in official.values())
    return {"model": model, "params": params, "fp32_mb": round(fp32_bytes / 1e6, 1),
            "official": official, "packager": pkg,
            "official_sum_seconds": round(official_sum, 1),
            "wall_ratio": round(pkg["seconds"] / official_sum, 2) if official_sum else None,
            "largest_official": largest["label"], "largest_official_peak_gib": largest["peak_pss_gib"],
            "memory_ratio": round(ratio, 2) if ratio else None, "goal": f"<= {GOAL}",
            "met": bool(ratio is not None and ratio <= GOAL)}


CORPUS = Path.home() / ".cache" / "packager-corpus" / "models"


def bench_corpus_model(name: str, work: Path, logs: Path, env: dict, packager_flags: list[str]) -> dict:
    """A corpus model (``corpus:NAME``, cached by ``tests/real_models``: its manifest names the model, samples and
    flags): the official converters as ``official.py corpus`` (conversion plus running the samples where a runtime
    exists, as benchmarks/real_models.py does), each alone; then packager's default build (``--quantize auto``)."""
    manifest = json.loads((CORPUS / name / "manifest.json").read_text())
    model, samples, flags = manifest["model"], manifest["samples"], manifest.get("flags", [])
    shapes = [a for f, v in zip(flags, flags[1:]) if f == "--input-shape" for a in ("--input-shape", v)]
    off = work / name / "official"
    off.mkdir(parents=True)
    official = {t: run(f"{name}_official_{t}", [PY, OFFICIAL, "corpus", model, "--target", t, str(off / t),
                                                "--samples", samples, *shapes], logs, env)
                for t in ("android", "ios", "web")}
    out = work / name / "out"
    pkg = run(f"{name}_packager", [PACKAGER, "build", model, "--samples", samples, *flags, *packager_flags,
                                   "--out", str(out), "--no-cache"], logs, env)
    params = manifest.get("params") or 0
    return _summary(name, params, params * 4, official, pkg, out)


def table(results: list[dict]) -> str:
    rows = [("model", "tool", "wall s", "peak PSS GiB", "RSS sum GiB", "largest process GiB", "exit / statuses")]
    for r in results:
        if "error" in r:
            rows.append((r["model"], r["error"], "", "", "", "", ""))
            continue
        name = f"{r['model']} ({r['params'] / 1e6:.1f} M params, {r['fp32_mb']:.0f} MB fp32)" if r["params"] \
            else r["model"]
        for tool, e in r["official"].items():
            rows.append((name, f"official {tool}", f"{e['seconds']:.1f}", f"{e['peak_pss_gib']:.2f}",
                         f"{e['peak_rss_sum_gib']:.2f}", f"{e['largest_process_maxrss_gib']:.2f}",
                         f"exit {e['exit_code']}"))
            name = ""
        p = r["packager"]
        rows.append(("", "packager build (3 targets)", f"{p['seconds']:.1f}", f"{p['peak_pss_gib']:.2f}",
                     f"{p['peak_rss_sum_gib']:.2f}", f"{p['largest_process_maxrss_gib']:.2f}",
                     f"exit {p['exit_code']}; " + ", ".join(f"{t} {s}" for t, s in p["statuses"].items())))
        rows.append(("", "packager / official", f"{r['wall_ratio']} (of the sum)",
                     f"{r['memory_ratio']} (of the largest)", "", "", f"goal {r['goal']}: "
                     + ("met" if r["met"] else "NOT met")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet50,vgg16", help=f"comma-separated, of {', '.join(MODELS)}, or corpus:NAME (a cached corpus model, "
                    "e.g. corpus:hed_edges_image_to_image)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "large_models_results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--packager-flag", action="append", default=[], help="an extra flag for packager build")
    a = ap.parse_args()
    keys = [k.strip().lower() for k in a.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS and not (k.startswith("corpus:")
                                                          and (CORPUS / k[7:] / "manifest.json").is_file())]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}, or corpus:NAME for a model "
                 f"tests/real_models has cached in {CORPUS}")
    work = Path(tempfile.mkdtemp(prefix="packager-large-"))
    logs = work / "logs"
    logs.mkdir()
    env = {**os.environ, "PACKAGER_NO_CACHE": "1"}
    use_snapshot(work, env)  # packager runs a copy of the code: edits to the tree mid-run do not reach it
    code = git_state()
    print(f"git HEAD {code['head']}; uncommitted changes in the measured code: {len(code['uncommitted'])}")
    t0 = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    print(f"large-model benchmark; work {work}; load average {load_start}", flush=True)
    results = []
    for k in keys:  # the JSON is rewritten after each model: a long run stopped half-way keeps what it measured
        bench = bench_corpus_model if k.startswith("corpus:") else bench_model
        results.append(bench(k[7:] if k.startswith("corpus:") else k, work, logs, env, a.packager_flag))
        text = table(results)
        out = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "loadavg_start": load_start, "loadavg_end": [round(v, 2) for v in os.getloadavg()],
               "memory_measure": "sum of PSS over the whole process tree, sampled every 0.1 s "
                                 "(benchmarks/peak_memory.py)",
               "packager_flags": a.packager_flag, "git": code, "results": results, "table": text,
               "total_seconds": round(time.perf_counter() - t0, 1)}
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print("\n" + text)
    print(f"\nresults: {a.json}; {out['total_seconds'] / 60:.1f} min")
    if a.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
