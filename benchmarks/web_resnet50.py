"""ResNet50 (weights=None) on the web target (issue 19): does the page load it, on which backend, with what figures.

    .venv/bin/python benchmarks/web_resnet50.py [--samples 16] [--keep DIR]

Builds keras.applications.ResNet50(weights=None) with `packager build --targets web --quantize web=uint8` (gates
relaxed for random weights: its softmax is nearly uniform, so uint8 weights reorder the top classes), then prints
the web result: status, the runtime the figures come from, and the `backends` check -- each backend the page may
pick (wasm, webgl on SwiftShader, cpu), run on every sample, with its top-1 / max |diff| / cosine and ms per sample.
Before the graph rewrite of packager/targets/web/graph.py, wasm refused this graph ("FusedConv2D only supports
rank-1 bias") and the page failed to load. Writes the figures to benchmarks/web_resnet50.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TOML = """\
model = "resnet50.keras"
samples = "samples"
labels = "labels.txt"
name = "ResNet50 random"

[preprocessing]
color = "rgb"
mean = [127.5]
std = [127.5]

# benchmark only: random weights give a nearly uniform softmax (see the docstring)
[tolerances.uint8]
min_top1 = 0.0
min_cosine = 0.0
"""


def prepare(work: Path, n: int) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from PIL import Image

    keras.utils.set_random_seed(0)
    keras.applications.ResNet50(weights=None).save(work / "resnet50.keras")
    (work / "samples").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(work / "samples" / f"{i:02d}.png")
    (work / "labels.txt").write_text("".join(f"class_{i:03d}\n" for i in range(1000)))
    (work / "packager.toml").write_text(TOML)
    return work / "packager.toml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "web_resnet50.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="web-resnet50-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        config = prepare(work, args.samples)
        cmd = [sys.executable, "-m", "packager", "build", "--config", str(config), "--targets", "web",
               "--quantize", "web=uint8", "--out", str(work / "dist"), "--no-cache"]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - t0
        report = json.loads((work / "dist" / "report.json").read_text())
    webr = report["targets"]["web"]
    checks = {c["name"]: c for c in webr.get("checks", [])}
    result = {"exit_code": r.returncode, "wall_s": round(wall, 1), "samples": args.samples,
              "status": webr["status"], "reason": webr.get("reason"), "runtime": webr.get("runtime"),
              "latency_ms": webr.get("latency_ms"), "metrics": webr.get("metrics"),
              "backends": checks.get("backends", {}).get("detail"),
              "console_errors": checks.get("console_errors", {}).get("status")}
    for k, v in result.items():
        print(f"{k}: {v}")
    args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0 if webr["status"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
