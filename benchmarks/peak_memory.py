"""Peak memory of a build on a large image sample set (issue 6: samples are decoded lazily).

    .venv/bin/python benchmarks/peak_memory.py [--count 5000] [--targets android,ios,web]

Draws COUNT demo-shape PNGs into a temporary folder, runs `packager build` on the bundled demo model
with them, and prints the build's wall time and peak resident memory (the packager process itself,
from getrusage of the child; the browser's own processes are not included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packager.demo import HERE as DEMO
from packager.demo.shapes import dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--targets", default="android,ios,web")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        imgs = Path(tmp) / "samples"
        imgs.mkdir()
        images, labels = dataset(args.count // 4 + 1, seed=11)
        for i, im in enumerate(images[: args.count]):
            im.save(imgs / f"{i:05d}.png")
        decoded_mb = args.count * 32 * 32 * 3 * 4 / 1e6
        cmd = [sys.executable, "-m", "packager", "build", str(DEMO / "model.keras"), "--samples", str(imgs),
               "--labels", str(DEMO / "labels.txt"), "--mean", "127.5", "--std", "127.5", "--targets", args.targets,
               "--out", str(Path(tmp) / "out"), "--no-cache", "-q"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report = json.loads((Path(tmp) / "out" / "report.json").read_text()) if r.returncode in (0, 5, 6) else {}
    print(f"samples: {args.count} images ({decoded_mb:.0f} MB if all were decoded as float32 at once)")
    print(f"command: {' '.join(cmd[2:])}")
    print(f"exit code: {r.returncode}; wall time: {wall:.1f} s; peak RSS of the packager process: {peak_mb:.0f} MB")
    for name, t in report.get("targets", {}).items():
        print(f"  {name}: {t['status']} top-1 {t['metrics'].get('top1_agreement')}")
    if r.returncode not in (0, 5, 6):
        print(r.stderr[-2000:])


if __name__ == "__main__":
    main()
