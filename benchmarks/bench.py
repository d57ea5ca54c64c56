"""Speed and size benchmark of packager (issue 7, part 3): P1, P2, P6, P7, P8, P9.

    .venv/bin/python benchmarks/bench.py            # MobileNetV2 224x224, alpha 1.0 (the real figures)
    .venv/bin/python benchmarks/bench.py --quick    # MobileNetV2 96x96, alpha 0.35 (smoke run)

Prints one table and writes the same figures to benchmarks/results.json (--json elsewhere).
Every step is a separate process, run one after another (never in parallel); the command lines are
printed as they run. Work files go to a temporary folder (kept with --keep).

The packager code (packager/ and the *_template/ folders of the working tree) is copied once at the start
and every build runs that copy (PYTHONPATH=<copy>, PACKAGER_TOOLS=<repo>/.tools): the cache key hashes
packager's own code, so an edit made to the working tree mid-benchmark would otherwise turn the P7 re-run
into a cache miss and mix two code versions in one table. --live runs the working tree directly.

P1  wall time of `packager build` (3 targets, validation, --no-cache) / sum of the three official
    converters run alone (TFLite int8 full-integer, tensorflowjs_converter uint8, coremltools fp16 .mlmodel).
    --p1-rounds rounds (default 3) of: the three converters, then packager; the medians are compared (a
    single run varies by +-15 % here). P9 comes from the packager run with the median time. Each round also
    builds with packager's default, --quantize auto (several modes tried per target), against the same official
    sum: the second P1 row.
P2  size / fp32 size: packager (report.json bytes / float_bytes; int8, 8bit, uint8) vs the official
    converters' own fp32 and quantized files.
P6  .tflite latency on ONE thread with ai-edge-litert (median of N invokes after warm-up) for packager's own
    model.tflite of each Android mode; goal int8 <= 0.7 x fp32.
P7  unchanged re-run with the cache on (fresh PACKAGER_CACHE_DIR) / first run; goal <= 0.1.
P8  Core ML validation per image on Linux: targets.ios.latency_ms (NumPy executor, one BLAS thread) of an
    ios-only build, so that the other targets' work does not run beside it; the P1 build's figure is printed
    too. Goal <= 50 ms.
P9  TF.js per image in headless Chromium: targets.web.latency_ms + backend; goal <= 60 ms with wasm.

The random-weight MobileNetV2 (weights=None) has vanishing activations: its softmax is uniform (every
class 0.001), so int8's fixed 1/256 softmax output scale rounds it to all zeros (cosine 0). Gates are
relaxed for the quantized modes (packager.toml written below, printed) so builds run to the end; the table
keeps each build's status and agreement. Builds pass a 1000-line labels file (class_000...), as an ImageNet
classifier would (packager 04874a4 also failed its tflite-metadata check without labels, fixed in 1dc0e86).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python")
PACKAGER = str(BIN / "packager")
TFJS = str(BIN / "tensorflowjs_converter")
OFFICIAL = str(ROOT / "benchmarks" / "official.py")

MEAN = STD = "127.5"  # MobileNetV2 preprocessing: (pixel - 127.5) / 127.5
RELAXED_TOML = """\
# benchmark only: random-weight models (MobileNetV2, ResNet50, ...) have a uniform softmax (see benchmarks/bench.py)
[tolerances.int8]
min_top1 = 0.0
min_cosine = 0.0

[tolerances.8bit]
min_top1 = 0.0
min_cosine = 0.0

[tolerances.uint8]
min_top1 = 0.0
min_cosine = 0.0
"""
GOALS = {"P1": 1.0, "P6": 0.7, "P7": 0.1, "P8": 50.0, "P9": 60.0}
P2_SLACK = 1.02  # packager's files also carry labels + TFLite metadata / Core ML classifier; allow 2 % over official
CODE_DIRS = ("packager", "android_template", "ios_template", "web_template")
ISSUE_P2 = {"android": 0.283, "ios": 0.263, "web": 0.255}


class Runner:
    """Runs one process at a time, prints its command line, logs its output, times it."""

    def __init__(self, work: Path, env: dict):
        self.work, self.env = work, env
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.commands: list[dict] = []

    def __call__(self, label: str, argv: list[str], *, env: dict | None = None) -> tuple[float, int]:
        extra = {k: v for k, v in (env or {}).items()}
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in extra.items())
        line = (shown + " " if shown else "") + " ".join(shlex.quote(a) for a in argv)
        print(f"  $ {line}", flush=True)
        log = self.logs / f"{label}.log"
        t0 = time.perf_counter()
        with open(log, "wb") as f:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env={**self.env, **extra}, cwd=ROOT).returncode
        seconds = time.perf_counter() - t0
        print(f"    -> {seconds:.1f} s, exit {rc}" + (f" (log {log})" if rc else ""), flush=True)
        if rc not in (0, 5, 6):  # a crash or a conversion failure: show why (the work folder may be deleted)
            tail = log.read_text(errors="replace").splitlines()[-12:]
            print("".join(f"       | {line}\n" for line in tail), end="", flush=True)
        self.commands.append({"label": label, "command": line, "seconds": round(seconds, 2), "exit_code": rc})
        return seconds, rc


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def load_report(out: Path) -> dict | None:
    p = out / "report.json"
    return json.loads(p.read_text()) if p.is_file() else None


def first_sample(samples: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(sorted(samples.glob("*.png"))[0]) as im:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR) if im.size != (size, size) else im.convert("RGB")
        x = (np.asarray(im, np.float32) - float(MEAN)) / float(STD)
    return x[None]


def snapshot_code(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in CODE_DIRS:
        if (ROOT / d).is_dir():
            shutil.copytree(ROOT / d, dest / d, ignore=ignore, symlinks=True)


def use_snapshot(work: Path, env: dict) -> None:
    """Copy the code to ``work/code`` and point ``env`` at it (PYTHONPATH, PACKAGER_TOOLS): edits made to the
    working tree while a benchmark runs do not reach its builds. Exits if the copy is not what Python imports."""
    snapshot_code(work / "code")
    env["PYTHONPATH"] = str(work / "code") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PACKAGER_TOOLS", str(ROOT / ".tools"))
    where = subprocess.run([PY, "-c", "import packager; print(packager.__file__)"], env=env, cwd=work,
                           capture_output=True, text=True).stdout.strip()  # cwd: not the repo (sys.path[0])
    if not where.startswith(str(work / "code")):
        sys.exit(f"the packager copy is not the one imported ({where}); run with --live")


def git_state() -> dict:
    """Read-only: HEAD and the working-tree changes the measured code carries."""
    def git(*args):
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.rstrip("\n") if r.returncode == 0 else None

    status = git("status", "--porcelain", "--", *CODE_DIRS)
    return {"head": git("rev-parse", "HEAD"), "uncommitted": status.splitlines() if status else []}


def cache_entries(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")} if root.is_dir() else set()


def tflite_median_ms(path: Path, x: np.ndarray, n: int, warmup: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    d = interp.get_input_details()[0]
    if d["dtype"] in (np.int8, np.uint8):
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        feed = np.clip(np.round(x / scale + zero), info.min, info.max).astype(d["dtype"])
    else:
        feed = x.astype(d["dtype"])
    interp.set_tensor(d["index"], feed)
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="96x96 MobileNetV2 alpha 0.35 (smoke run)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"), help="where to write the results")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--strict", action="store_true", help="packager's default gates (no relaxed packager.toml)")
    ap.add_argument("--live", action="store_true", help="run the working tree's packager, not a copy taken at the start")
    ap.add_argument("--p1-rounds", type=int, default=3, help="P1 rounds (official converters, then packager); "
                                                               "P1 compares the medians (default 3)")
    a = ap.parse_args()

    size, alpha = (96, 0.35) if a.quick else (224, 1.0)
    n_invokes, warmup = (30, 5) if a.quick else (100, 10)
    t_start = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="packager-bench-"))
    env = dict(os.environ)
    env.pop("PACKAGER_NO_CACHE", None)
    cache_dir = work / "cache"
    env["PACKAGER_CACHE_DIR"] = str(cache_dir)  # fresh cache for the whole benchmark
    code = git_state()
    if not a.live:
        use_snapshot(work, env)
    run = Runner(work, env)
    print(f"packager benchmark ({'quick: ' if a.quick else ''}MobileNetV2 {size}x{size}, alpha {alpha}); work {work}")
    print(f"  git HEAD {code['head']}; uncommitted changes in the measured code: {len(code['uncommitted'])}"
          + "".join(f"\n    {line}" for line in code["uncommitted"]))
    for k in ("PACKAGER_CACHE_DIR", "PYTHONPATH", "PACKAGER_TOOLS"):
        if k in env and (k != "PYTHONPATH" or not a.live):
            print(f"  env {k}={env[k]}")

    # ---- inputs --------------------------------------------------------------------------------
    print("\n[setup] model, SavedModel export (for the official converters), 16 noise PNGs (seed 0), labels")
    data = work / "data"
    _, rc = run("prepare", [PY, OFFICIAL, "prepare", str(data), "--size", str(size), "--alpha", str(alpha),
                            "--count", "16", "--seed", "0"])
    if rc:
        sys.exit(f"prepare failed, see {run.logs / 'prepare.log'}")
    prep = json.loads((data / "prepare.json").read_text())
    model, saved_model, samples = data / "MobileNetV2.keras", data / "saved_model", data / "samples"
    labels = data / "labels.txt"
    labels.write_text("".join(f"class_{i:03d}\n" for i in range(1000)))
    toml = data / "packager.toml"
    base = [PACKAGER, "build", str(model), "--samples", str(samples), "--labels", str(labels),
            "--mean", MEAN, "--std", STD, "--name", "MobileNetV2"]
    if not a.strict:
        toml.write_text(RELAXED_TOML)
        base += ["--config", str(toml)]
        print(f"  relaxed gates for random weights ({toml}):\n" + "".join(f"    {line}\n" for line in RELAXED_TOML.splitlines()))

    # ---- P1: official converters alone, then packager, in rounds ----------------------------------
    # Timings on this machine vary by +-15 % from run to run: each round runs the three official converters and
    # then packager, one after the other; P1 compares the medians (of packager's times, of the official sums).
    off = work / "official"
    off.mkdir()
    rounds = []
    for i in range(1, a.p1_rounds + 1):
        print(f"[P1] round {i}/{a.p1_rounds}: official converters, each alone in its own process")
        for stale in (off / "int8.tflite", off / "tfjs_uint8", off / "coreml"):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        t_tfl, rc_tfl = run(f"official_tflite_int8_r{i}", [PY, OFFICIAL, "tflite", str(saved_model), str(samples),
                                                           str(off / "int8.tflite"), "--mode", "int8", "--size",
                                                           str(size)])
        t_js, rc_js = run(f"official_tfjs_uint8_r{i}", [TFJS, "--input_format=tf_saved_model",
                                                        "--signature_name=serving_default", "--saved_model_tags=serve",
                                                        "--quantize_uint8", "*", str(saved_model),
                                                        str(off / "tfjs_uint8")])
        t_cml, rc_cml = run(f"official_coreml_fp16_r{i}", [PY, OFFICIAL, "coreml", str(saved_model),
                                                           str(off / "coreml"), "--modes", "fp16"])
        print(f"[P1] round {i}/{a.p1_rounds}: packager build, all three targets with validation, --no-cache")
        out_p1 = work / f"out_p1_r{i}"
        # the same modes as the official converters above, explicitly (packager's default is auto)
        p1_modes = ["--quantize", "android=int8", "--quantize", "ios=fp16", "--quantize", "web=uint8"]
        t_pkg, rc_pkg = run(f"packager_p1_r{i}", [*base, *p1_modes, "--out", str(out_p1), "--no-cache"])
        # and packager's default, --quantize auto (issue 18: P1 holds with auto too), against the same official sum
        print(f"[P1] round {i}/{a.p1_rounds}: packager build with its default --quantize auto, --no-cache")
        out_auto = work / f"out_p1_auto_r{i}"
        t_auto, rc_auto = run(f"packager_p1_auto_r{i}", [*base, "--out", str(out_auto), "--no-cache"])
        rounds.append({"auto_seconds": t_auto, "auto_exit_code": rc_auto, "auto_out": out_auto,
"official_seconds": {"tflite_int8": t_tfl, "tfjs_uint8": t_js, "coreml_fp16": t_cml},
                       "official_exit_codes": {"tflite_int8": rc_tfl, "tfjs_uint8": rc_js, "coreml_fp16": rc_cml},
                       "official_sum": t_tfl + t_js + t_cml, "packager_seconds": t_pkg, "packager_exit_code": rc_pkg,
                       "out": out_p1})
    official_sum = statistics.median(r["official_sum"] for r in rounds)
    t_pkg = statistics.median(r["packager_seconds"] for r in rounds)
    # The packager run whose time is the median (its report gives P8, P9 and the statuses); the official
    # converters' per-tool figures are their own medians.
    median_run = sorted(rounds, key=lambda r: r["packager_seconds"])[(len(rounds) - 1) // 2]
    rc_pkg = median_run["packager_exit_code"]
    rep_p1 = load_report(median_run["out"])
    t_auto = statistics.median(r["auto_seconds"] for r in rounds)
    median_auto = sorted(rounds, key=lambda r: r["auto_seconds"])[(len(rounds) - 1) // 2]
    rep_auto = load_report(median_auto["auto_out"])
    p1_auto_ratio = t_auto / official_sum if official_sum else None
    t_tfl, t_js, t_cml = (statistics.median(r["official_seconds"][k] for r in rounds)
                          for k in ("tflite_int8", "tfjs_uint8", "coreml_fp16"))
    rc_tfl, rc_js, rc_cml = (max(r["official_exit_codes"][k] for r in rounds)
                             for k in ("tflite_int8", "tfjs_uint8", "coreml_fp16"))

    # ---- P7 (+ P2 packager sizes): cached re-run -------------------------------------------------
    print("[P7/P2] packager build --quantize android=int8 ios=8bit web=uint8, cache on, twice (same inputs)")
    q = ["--quantize", "android=int8", "--quantize", "ios=8bit", "--quantize", "web=uint8"]
    out_a, out_b = work / "out_cache_1", work / "out_cache_2"
    t_first, rc_first = run("packager_p7_first", [*base, *q, "--out", str(out_a)])
    stored = cache_entries(cache_dir)
    t_again, rc_again = run("packager_p7_rerun", [*base, *q, "--out", str(out_b)])
    rep_p2 = load_report(out_a)
    rep_again = load_report(out_b)
    said_hit = "reused the cached build" in (run.logs / "packager_p7_rerun.log").read_text(errors="replace")
    cache_hit = bool(stored) and said_hit and cache_entries(cache_dir) == stored
    if not cache_hit:
        print(f"    re-run was NOT served from the cache (entries after first run: {len(stored)}, "
              f"after re-run: {len(cache_entries(cache_dir))}; first run exit {rc_first})")

    # ---- P2: official fp32 + quantized files -----------------------------------------------------
    print("[P2] official converters: fp32 references and Core ML 8-bit")
    run("official_tflite_fp32", [PY, OFFICIAL, "tflite", str(saved_model), str(samples), str(off / "fp32.tflite"),
                                 "--mode", "fp32", "--size", str(size)])
    run("official_tfjs_fp32", [TFJS, "--input_format=tf_saved_model", "--signature_name=serving_default",
                               "--saved_model_tags=serve", str(saved_model), str(off / "tfjs_fp32")])
    run("official_coreml_fp32_8bit", [PY, OFFICIAL, "coreml", str(saved_model), str(off / "coreml"),
                                      "--modes", "fp32,8bit"])

    def official_ratio(q_path: Path, f_path: Path):
        if q_path.exists() and f_path.exists():
            return size_of(q_path), size_of(f_path), size_of(q_path) / size_of(f_path)
        return None, None, None

    official_p2 = {
        "android": official_ratio(off / "int8.tflite", off / "fp32.tflite"),
        "ios": official_ratio(off / "coreml" / "MobileNetV2_8bit.mlmodel", off / "coreml" / "MobileNetV2_fp32.mlmodel"),
        "web": official_ratio(off / "tfjs_uint8", off / "tfjs_fp32"),
    }
    official_p1_fp16 = off / "coreml" / "MobileNetV2_fp16.mlmodel"

    # ---- P6: packager's .tflite per Android mode -------------------------------------------------
    print("[P6] packager build --targets android per mode (int8 comes from the P1 build)")
    android_out = {"int8": median_run["out"]}
    android_reports = {"int8": rep_p1}
    for mode in ("fp32", "fp16", "dynamic"):
        out = work / f"out_android_{mode}"
        run(f"packager_android_{mode}", [*base, "--targets", "android", "--quantize", f"android={mode}",
                                         "--out", str(out), "--no-cache"])
        android_out[mode], android_reports[mode] = out, load_report(out)
    # ---- P8: Core ML validation alone -----------------------------------------------------------
    # In the P1 build the executor shares the 2 CPUs with two conversions, kotlinc and Chromium, so its per-image
    # time there measures the contention as much as the executor; P8 is read from an ios-only build.
    print("[P8] packager build --targets ios (the Core ML executor without the other targets' work beside it)")
    out_ios = work / "out_ios_fp16"
    run("packager_ios_fp16", [*base, "--targets", "ios", "--quantize", "ios=fp16", "--out", str(out_ios), "--no-cache"])
    rep_ios = load_report(out_ios)

    x = first_sample(samples, size)
    latency = {}
    print(f"[P6] ai-edge-litert, num_threads=1, median of {n_invokes} invokes after {warmup} warm-up")
    for mode in ("fp32", "fp16", "dynamic", "int8"):
        # the module's assets sit in a folder named after its namespace
        path = next((android_out[mode] / "android" / "src" / "main" / "assets").glob("*/model.tflite"),
                    android_out[mode] / "android" / "src" / "main" / "assets" / "model.tflite")
        rep = android_reports[mode]
        entry = {"path": str(path), "median_ms": None,
                 "report_latency_ms": rep["targets"]["android"]["latency_ms"] if rep else None,
                 "status": rep["targets"]["android"]["status"] if rep else "no report",
                 "bytes": path.stat().st_size if path.is_file() else None}
        if path.is_file():
            entry["median_ms"] = tflite_median_ms(path, x, n_invokes, warmup)
        latency[mode] = entry
        print(f"    {mode:8s} median {entry['median_ms'] if entry['median_ms'] is None else round(entry['median_ms'], 2)} ms"
              f"  (report.json mean {entry['report_latency_ms']} ms)")

    total_s = time.perf_counter() - t_start

    # ---- results ---------------------------------------------------------------------------------
    def tgt(rep, name, key):
        return rep["targets"][name].get(key) if rep and name in rep["targets"] else None

    p1_ratio = t_pkg / official_sum if official_sum else None
    p6_ratio = (latency["int8"]["median_ms"] / latency["fp32"]["median_ms"]
                if latency["int8"]["median_ms"] and latency["fp32"]["median_ms"] else None)
    p7_ratio = t_again / t_first if t_first else None
    p8 = tgt(rep_ios, "ios", "latency_ms")
    p9 = tgt(rep_p1, "web", "latency_ms")
    p9_runtime = tgt(rep_p1, "web", "runtime") or ""
    p9_backend = next((b for b in ("wasm", "webgl", "cpu") if f" {b} backend" in p9_runtime), None)

    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if a.quick else "default",
        "model": {"name": "MobileNetV2", "input": [size, size, 3], "alpha": alpha, "weights": None,
                  "params": prep["params"], "samples": 16, "labels": 1000},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_start": load_start, "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
        "relaxed_gates": None if a.strict else RELAXED_TOML,
        "savedmodel_export_seconds": round(prep["export_seconds"], 2),
        "code": {**code, "ran": "working tree (--live)" if a.live else "copy of the working tree taken at the start"},
        "P1": {"packager_seconds": round(t_pkg, 2), "packager_exit_code": rc_pkg,
               "statuses": {t: tgt(rep_p1, t, "status") for t in ("android", "ios", "web")},
               "modes": {t: tgt(rep_p1, t, "quantization") for t in ("android", "ios", "web")},
               "target_seconds": {t: tgt(rep_p1, t, "seconds") for t in ("android", "ios", "web")},
               "timings": rep_p1.get("timings") if rep_p1 else None,
               "check_seconds": {t: {c["name"]: c.get("seconds") for c in rep_p1["targets"][t]["checks"]
                                     if c.get("seconds") is not None}
                                 for t in rep_p1["targets"]} if rep_p1 else None,
               "official_seconds": {"tflite_int8": round(t_tfl, 2), "tfjs_uint8": round(t_js, 2),
                                    "coreml_fp16": round(t_cml, 2)},
               "official_exit_codes": {"tflite_int8": rc_tfl, "tfjs_uint8": rc_js, "coreml_fp16": rc_cml},
               "official_sum_seconds": round(official_sum, 2),
               "rounds": [{"packager_seconds": round(r["packager_seconds"], 2),
                           "official_sum_seconds": round(r["official_sum"], 2),
                           "official_seconds": {k: round(v, 2) for k, v in r["official_seconds"].items()}}
                          for r in rounds],
               "ratio": _r(p1_ratio), "goal": f"<= {GOALS['P1']}", "met": _met(p1_ratio, GOALS["P1"])},
        "P1_auto": {"packager_seconds": round(t_auto, 2), "packager_exit_code": median_auto["auto_exit_code"],
                    "statuses": {t: tgt(rep_auto, t, "status") for t in ("android", "ios", "web")},
                    "modes": {t: tgt(rep_auto, t, "quantization") for t in ("android", "ios", "web")},
                    "tries": {t: [f"{x['mode']}={x['status']}" for x in (tgt(rep_auto, t, "tries") or [])]
                              for t in ("android", "ios", "web")},
                    "rounds": [round(r["auto_seconds"], 2) for r in rounds],
                    "official_sum_seconds": round(official_sum, 2),
                    "ratio": _r(p1_auto_ratio), "goal": f"<= {GOALS['P1']}", "met": _met(p1_auto_ratio, GOALS["P1"])},
        "P2": {},
        "P6": {"threads": 1, "invokes": n_invokes, "warmup": warmup,
               "per_mode": {m: {k: (_r(v, 3) if isinstance(v, float) else v) for k, v in e.items()}
                            for m, e in latency.items()},
               "ratio_int8_fp32": _r(p6_ratio), "goal": f"<= {GOALS['P6']}", "met": _met(p6_ratio, GOALS["P6"])},
        "P7": {"first_seconds": round(t_first, 2), "rerun_seconds": round(t_again, 2),
               "first_exit_code": rc_first, "rerun_exit_code": rc_again, "cache_hit": cache_hit,
               "rerun_report_status": rep_again.get("status") if rep_again else None,
               "ratio": _r(p7_ratio), "goal": f"<= {GOALS['P7']}", "met": _met(p7_ratio, GOALS["P7"]) and cache_hit},
        "P8": {"latency_ms": p8, "build": "--targets ios --quantize ios=fp16", "status": tgt(rep_ios, "ios", "status"),
               "runtime": tgt(rep_ios, "ios", "runtime"), "mode": tgt(rep_ios, "ios", "quantization"),
               "latency_ms_p1_build": tgt(rep_p1, "ios", "latency_ms"),
               "latency_ms_8bit_build": tgt(rep_p2, "ios", "latency_ms"),
               "goal": f"<= {GOALS['P8']} ms", "met": _met(p8, GOALS["P8"])},
        "P9": {"latency_ms": p9, "backend": p9_backend, "runtime": p9_runtime,
               "latency_ms_cache_build": tgt(rep_p2, "web", "latency_ms"),
               "goal": f"<= {GOALS['P9']} ms with wasm", "met": _met(p9, GOALS["P9"]) and p9_backend == "wasm"},
        "commands": run.commands,
        "total_seconds": round(total_s, 1),
    }
    for t, mode in (("android", "int8"), ("ios", "8bit"), ("web", "uint8")):
        pb, pf = tgt(rep_p2, t, "bytes"), tgt(rep_p2, t, "float_bytes")
        ob, of, orat = official_p2[t]
        prat = pb / pf if pb and pf else None
        results["P2"][t] = {"mode": mode, "status": tgt(rep_p2, t, "status"),
                            "packager_bytes": pb, "packager_float_bytes": pf, "packager_ratio": _r(prat, 4),
                            "official_bytes": ob, "official_float_bytes": of, "official_ratio": _r(orat, 4),
                            "issue_reference": ISSUE_P2[t],
                            "packager_vs_official": _r(prat / orat if prat and orat else None, 4),
                            "goal": f"<= official ratio x {P2_SLACK}",
                            "met": _met(prat, orat * P2_SLACK if orat else None)}
    results["P1"]["official_coreml_fp16_bytes"] = size_of(official_p1_fp16) if official_p1_fp16.exists() else None

    table = render_table(results)
    print("\n" + table)
    results["table"] = table
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {a.json}   total benchmark time {total_s / 60:.1f} min")
    if a.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _r(v, nd=3):
    return None if v is None else round(v, nd)


def _met(value, goal):
    return None if value is None or goal is None else bool(value <= goal)


def _verdict(met) -> str:
    return {True: "met", False: "NOT met", None: "n/a"}[met]


def render_table(r: dict) -> str:
    p1, p6, p7, p8, p9 = r["P1"], r["P6"], r["P7"], r["P8"], r["P9"]
    o = p1["official_seconds"]
    st = p1["statuses"]
    rows = [("id", "measure", "packager", "compared with", "ratio", "goal", "verdict")]
    n = len(p1.get("rounds") or []) or 1
    rows.append(("P1", f"build wall time, 3 targets + validation, --no-cache (median of {n})",
                 f"{p1['packager_seconds']:.1f} s (exit {p1['packager_exit_code']})",
                 f"{p1['official_sum_seconds']:.1f} s (tools' medians: tflite {o['tflite_int8']:.1f}, "
                 f"tfjs {o['tfjs_uint8']:.1f}, coreml {o['coreml_fp16']:.1f})",
                 _fmt(p1["ratio"], 2), "<= 1.00", _verdict(p1["met"])))
    pa = r.get("P1_auto")
    if pa:
        rows.append(("P1", f"the same with packager's default --quantize auto (median of {len(pa['rounds'])})",
                     f"{pa['packager_seconds']:.1f} s (exit {pa['packager_exit_code']}; "
                     + ", ".join(f"{t} {m}" for t, m in pa["modes"].items()) + ")",
                     f"{pa['official_sum_seconds']:.1f} s (the same official sum)",
                     _fmt(pa["ratio"], 2), "<= 1.00", _verdict(pa["met"])))
    for t, label in (("android", "int8 .tflite"), ("ios", "8-bit .mlmodel"), ("web", "uint8 TF.js")):
        e = r["P2"][t]
        rows.append(("P2", f"size / fp32, {label}",
                     f"{_fmt(e['packager_ratio'], 3)} ({_mb(e['packager_bytes'])} / {_mb(e['packager_float_bytes'])})",
                     f"official {_fmt(e['official_ratio'], 3)} ({_mb(e['official_bytes'])} / {_mb(e['official_float_bytes'])});"
                     f" issue {e['issue_reference']}",
                     _fmt(e["packager_vs_official"], 3), "<= official +2%",
                     _verdict(e["met"]) + (f" ({(e['packager_vs_official'] - 1) * 100:+.1f}%)"
                                           if e["packager_vs_official"] else "")))
    pm = p6["per_mode"]
    rows.append(("P6", f"int8 / fp32 latency, 1 thread, median of {p6['invokes']}",
                 f"int8 {_fmt(pm['int8']['median_ms'], 2)} ms", f"fp32 {_fmt(pm['fp32']['median_ms'], 2)} ms",
                 _fmt(p6["ratio_int8_fp32"], 2), "<= 0.70", _verdict(p6["met"])))
    for m in ("fp32", "fp16", "dynamic", "int8"):
        e = pm[m]
        rows.append(("P6", f"  android {m} .tflite latency ({e['status']})", f"{_fmt(e['median_ms'], 2)} ms",
                     f"report.json latency_ms {_fmt(e['report_latency_ms'], 2)} ms", "", "", ""))
    rows.append(("P7", "unchanged re-run (cache on) / first run",
                 f"{p7['rerun_seconds']:.1f} s" + ("" if p7["cache_hit"] else " (NO cache hit)"),
                 f"first run {p7['first_seconds']:.1f} s (exit {p7['first_exit_code']})",
                 _fmt(p7["ratio"], 3), "<= 0.10", _verdict(p7["met"])))
    rows.append(("P8", f"Core ML validation per image ({p8['mode']}, Linux, ios-only build)",
                 f"{_fmt(p8['latency_ms'], 1)} ms",
                 f"in the P1 build (3 targets at once) {_fmt(p8.get('latency_ms_p1_build'), 1)} ms; P7 8bit build "
                 f"{_fmt(p8['latency_ms_8bit_build'], 1)} ms", "", "<= 50 ms", _verdict(p8["met"])))
    rows.append(("P9", "TF.js in-browser inference per image", f"{_fmt(p9['latency_ms'], 1)} ms",
                 f"backend {p9['backend']}; P7 build {_fmt(p9['latency_ms_cache_build'], 1)} ms", "",
                 "<= 60 ms, wasm", _verdict(p9["met"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = r["model"]
    lines.insert(0, f"MobileNetV2 {m['input'][0]}x{m['input'][1]} alpha {m['alpha']} ({m['params']:,} params, "
                    f"weights=None), 16 noise PNGs, {r['machine']['cpus']} CPUs, {r['date']}")
    if p1.get("rounds"):
        lines.append("P1 rounds (packager s / official sum s): " + ", ".join(
            f"{x['packager_seconds']:.1f}/{x['official_sum_seconds']:.1f}" for x in p1["rounds"]))
    if r.get("P1_auto"):
        lines.append("P1 auto rounds (packager s): " + ", ".join(f"{x:.1f}" for x in r["P1_auto"]["rounds"])
                     + "; tried: " + "; ".join(f"{t} {', '.join(v)}" for t, v in r["P1_auto"]["tries"].items()))
    lines.append("P1 packager statuses: " + ", ".join(f"{t} {s} ({p1['modes'][t]})" for t, s in st.items())
                 + "; packager target seconds: " + ", ".join(f"{t} {s}" for t, s in p1["target_seconds"].items())
                 + f"; official SavedModel export (not in the sum) {r['savedmodel_export_seconds']} s")
    lines.append(f"load average (1 min) at start {r['machine']['loadavg_start'][0]}, at end "
                 f"{r['machine']['loadavg_end'][0]} on {r['machine']['cpus']} CPUs (other work shares the machine)")
    lines.append("P2 statuses: " + ", ".join(f"{t} {e['status']}" for t, e in r["P2"].items()))
    if r["relaxed_gates"]:
        lines.append("gates relaxed for int8/8bit/uint8 (min_top1 = min_cosine = 0): random weights give a uniform softmax")
    return "\n".join(lines)


def _fmt(v, nd) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _mb(n) -> str:
    return "-" if not n else f"{n / 1e6:.2f} MB"


if __name__ == "__main__":
    sys.exit(main())
