"""The real-model corpus (tests/real_models) through packager's CLI, beside the official converters.

    python benchmarks/real_models.py [--models fer,deepcut] [--targets android,ios,web] [--json out.json]
                                     [--no-official] [--keep DIR] [--extra-flags "--web-runtime litert"]

For every corpus model: `python -m packager build MODEL --samples S <the model's flags> --out OUT --force
--no-cache` (default quantization, all targets, one build), then OUT/report.json is read. One table: model x
target -> status, quantization mode, size vs fp32, agreement (top-1, or cosine where no top-1 was computed),
seconds; beside it, per target, the official converter on the same model (benchmarks/official.py corpus:
TFLiteConverter, coremltools.convert, tensorflowjs_converter, run in this script): converted / ran / FAILED and its
seconds (conversion, plus running the samples where it can: every .npz sample on ai-edge-litert, the first one on
tf.js in Node; coremltools has no runtime here). For every target that is not PASS: packager's reason and the
official converter's own result. Last: per target, op preflight's verdict against the real conversion (a preflight error where the
official converter converted = a false rejection).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from real_models import CORPUS, packager_flags, prepare  # noqa: E402

TARGETS = ("android", "ios", "web")


def supported_flags(py: str, env: dict) -> set[str]:
    text = subprocess.run([py, "-m", "packager", "build", "--help"], capture_output=True, text=True, env=env).stdout
    return set(re.findall(r"(--[a-z0-9-]+)", text))


def _env(extra: dict) -> dict:
    env = dict(os.environ)
    paths = [p for p in (extra.get("PYTHONPATH"), str(ROOT), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_packager(py: str, m: dict, flags: list[str], targets: tuple[str, ...], out: Path) -> dict:
    cmd = [py, "-m", "packager", "build", m["model"], "--samples", m["samples"], *flags,
           "--targets", ",".join(targets), "--out", str(out), "--force", "--no-cache", "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(m.get("env", {})))
    seconds = time.perf_counter() - t0
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
    return {"cmd": cmd, "exit": proc.returncode, "seconds": round(seconds, 1), "report": report, "stderr": tail}


def run_official(py: str, m: dict, target: str, workdir: Path) -> dict:
    flags = m.get("flags", [])
    cmd = [py, str(ROOT / "benchmarks" / "official.py"), "corpus", m["model"], "--target", target,
           str(workdir / f"official_{target}")]
    for i, f in enumerate(flags[:-1]):
        if f in ("--input-shape", "--output-names"):
            cmd += [f, flags[i + 1]]
    pending = m.get("pending_flags", [])
    if "--custom-objects" in pending:
        cmd += ["--custom-objects", pending[pending.index("--custom-objects") + 1]]
    if m["samples"].endswith(".npz"):
        cmd += ["--samples", m["samples"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(m.get("env", {})))
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"ok": False, "error": f"official.py exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}


def agreement(t: dict) -> str:
    metrics = t.get("metrics") or {}
    if metrics.get("top1_agreement") is not None:
        return f"top1 {metrics['top1_agreement']:.3f}"
    if metrics.get("cosine") is not None:
        return f"cos {metrics['cosine']:.4f}"
    return "-"


def rows_for(name: str, result: dict, targets: tuple[str, ...]) -> list[dict]:
    report = result["report"]
    rows = []
    for target in targets:
        t = (report or {}).get("targets", {}).get(target)
        if t is None:
            rows.append({"model": name, "target": target, "status": "NO REPORT", "mode": "-", "size": "-",
                         "agreement": "-", "seconds": result["seconds"],
                         "reason": f"exit {result['exit']}: {result['stderr']}", "preflight_errors": []})
            continue
        ratio = t.get("size_ratio")
        rows.append({
            "model": name, "target": target, "status": t["status"], "mode": t.get("quantization") or "-",
            "size": f"{ratio:.2f}x" if ratio else "-", "agreement": agreement(t),
            "seconds": t.get("seconds") if t.get("seconds") is not None else "-",
            "reason": t.get("reason") or "",
            "preflight_errors": [f["op"] for f in t.get("preflight", []) if f.get("severity") == "error"],
            "failed_checks": [f"{c['name']}: {c['status']} {c.get('detail', '')}"[:300] for c in t.get("checks", [])
                              if c.get("status") not in ("PASS", "SKIPPED")],
        })
    return rows


def publisher_columns(name: str, m: dict, result: dict, work: Path) -> dict:
    """Where the publisher ships its own .tflite of the model: its bytes and agreement, run here on the same samples
    against the same reference as packager's (benchmarks/size_fidelity.py), beside packager's android artifact."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import size_fidelity as sf

    t = ((result.get("report") or {}).get("targets") or {}).get("android")
    if name not in sf.PUBLISHER_FILES or not t:
        return {}
    spec, source, samples, reference = sf.load(m, work / "publisher-load")
    pub = sf.publisher_row(name, "android", spec, source, samples, reference, work)
    ours, theirs = (t.get("metrics") or {}).get("top1_agreement"), pub.get("top1")
    n = len(samples)

    def top1(v):
        return f"top-1 {v:.3f} ({round(v * n)}/{n})" if v is not None else "top-1 -"

    return {"publisher_bytes": pub["bytes"], "publisher_top1": theirs,
            "publisher": (f"packager {t.get('quantization')} {t.get('bytes'):,} B "
                          f"({t.get('bytes') / pub['bytes']:.3f}x the publisher's), {top1(ours)}; "
                          f"publisher {pub['mode'].split(' ', 1)[1]} "
                          f"({pub['publisher_kind']}) {pub['bytes']:,} B, {top1(theirs)}; same {n} samples")}


def table(rows: list[dict]) -> str:
    head = ["model", "target", "status", "mode", "size", "agreement", "seconds", "official_status",
            "official_seconds"]
    widths = [max(len(str(r.get(h, "-"))) for r in rows + [dict(zip(head, head))]) for h in head]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(r.get(h, "-")).ljust(w) for h, w in zip(head, widths)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated corpus names (default: all)")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--json", help="write every row, manifest and official result here")
    p.add_argument("--no-official", action="store_true", help="skip the official converters")
    p.add_argument("--keep", help="keep packager's output folders under this directory")
    p.add_argument("--extra-flags", default="", help="more packager build flags for every model, one string "
                   "(e.g. \"--web-runtime litert\": the web target ships the android .tflite on LiteRT.js)")
    p.add_argument("--no-publisher", action="store_true",
                   help="skip the publisher's own .tflite (size_fidelity.PUBLISHER_FILES) beside the android row")
    a = p.parse_args()
    py = sys.executable
    names = a.models.split(",") if a.models else [e.name for e in CORPUS]
    targets = tuple(a.targets.split(","))
    supported = supported_flags(py, _env({}))
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="corpus-"))
    rows, models = [], {}
    for name in names:
        try:
            m = prepare(name)
        except Exception as e:
            print(f"[{name}] could not prepare: {e}", file=sys.stderr)
            rows += [{"model": name, "target": t, "status": "NOT PREPARED", "mode": "-", "size": "-",
                      "agreement": "-", "seconds": "-", "reason": str(e)[-300:], "preflight_errors": []}
                     for t in targets]
            continue
        flags, missing = packager_flags(m, supported)
        flags += shlex.split(a.extra_flags)
        print(f"[{name}] packager build ... {' '.join(flags)}", file=sys.stderr, flush=True)
        result = run_packager(py, m, flags, targets, work / name / "out")
        these = rows_for(name, result, targets)
        for r in these:
            if missing:
                r["missing_flags"] = missing
            if not a.no_official:  # every target: its time beside packager's, and its result where packager failed
                o = r["official"] = run_official(py, m, r["target"], work / name)
                r["official_status"] = ("ran" if "ran " in str(o.get("ran")) and "cannot" not in str(o.get("ran"))
                                        else "converted") if o.get("ok") else "FAILED"
                r["official_seconds"] = o.get("seconds", "-")
        for r in these:
            if r["target"] == "android" and not a.no_publisher:
                r.update(publisher_columns(name, m, result, work / name))
        rows += these
        models[name] = {k: m.get(k) for k in ("package", "model", "samples", "flags", "pending_flags", "signature",
                                               "file_used", "sample_source", "notes", "fetch", "covers")}
        models[name]["packager_exit"], models[name]["packager_seconds"] = result["exit"], result["seconds"]
        if a.json:  # after every model: a long run that is stopped keeps what it measured
            Path(a.json).write_text(json.dumps({"rows": rows, "models": models}, indent=1, default=str))
    print(table(rows))
    print()
    for r in rows:
        if r["status"] == "PASS":
            continue
        print(f"- {r['model']} / {r['target']}: {r['status']}: {r['reason'] or '(no reason given)'}")
        for c in r.get("failed_checks", []):
            print(f"    check {c}")
        if r.get("missing_flags"):
            print(f"    run without {', '.join(r['missing_flags'])} (this packager has no such flag)")
        o = r.get("official")
        if o:
            what = f"converted ({o.get('bytes')} bytes){'; ' + o['ran'] if o.get('ran') else ''}" if o["ok"] \
                else f"FAILED: {o['error']}"
            print(f"    official converter: {what}")
    for r in rows:
        if r.get("publisher"):
            print(f"- {r['model']} / android against the publisher's own file: {r['publisher']}")
    print()
    print("op preflight vs real conversion (error = preflight rejected the target):")
    for target in targets:
        these = [r for r in rows if r["target"] == target and r["status"] not in ("NOT PREPARED",)]
        rejected = [r for r in these if r.get("preflight_errors")]
        false = [r for r in rejected if (r.get("official") or {}).get("ok")]
        print(f"  {target}: {len(these)} models, preflight errors on {len(rejected)}, "
              f"false rejections (official converter converted): {len(false)}"
              + (f" [{', '.join(r['model'] + ': ' + ','.join(r['preflight_errors']) for r in false)}]" if false else ""))
    passed = sum(r["status"] == "PASS" for r in rows)
    print(f"\n{passed}/{len(rows)} model x target PASS; outputs in {work}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "models": models}, indent=1, default=str))


if __name__ == "__main__":
    main()
