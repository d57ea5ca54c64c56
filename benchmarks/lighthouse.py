"""Lighthouse mobile (performance category) on the web demo, N runs (issue 26: performance >= 95, CLS < 0.1).

    .venv/bin/python benchmarks/lighthouse.py --lighthouse DIR/node_modules/.bin/lighthouse            # builds the demo
    .venv/bin/python benchmarks/lighthouse.py --lighthouse ... --web dist/web --runs 3 --json out.json

Lighthouse comes from the npm registry (``npm install lighthouse@13.5.0`` in a folder of your choice; not a
packager dependency) and drives Debian's Chromium (``CHROME_PATH``, default /usr/bin/chromium) with its default
mobile settings (simulated Moto G-class device and 4x CPU / slow 4G throttling). The folder is served
gzip-compressed under /demo/ by packager's StaticServer, as web_first_visit.py does. Simulated timings scale what
the host measured: on a loaded host TBT especially is the host's, not a phone's; the 1-min load average is printed
with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from web_first_visit import build_demo  # noqa: E402

FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update " \
        "--disable-sync"
AUDITS = {"cls": "cumulative-layout-shift", "tbt_ms": "total-blocking-time", "fcp_ms": "first-contentful-paint",
          "lcp_ms": "largest-contentful-paint", "si_ms": "speed-index", "bytes": "total-byte-weight"}


def run_once(lighthouse: str, url: str, out: Path) -> dict:
    cmd = [lighthouse, url, "--only-categories=performance", f"--chrome-flags={FLAGS}", "--output=json",
           f"--output-path={out}", "--quiet"]
    subprocess.run(cmd, check=True, env={**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH",
                                                                                      "/usr/bin/chromium")})
    report = json.loads(out.read_text())
    row = {"performance": round(report["categories"]["performance"]["score"] * 100),
           "lighthouse": report["lighthouseVersion"], "load_average_1min": round(os.getloadavg()[0], 2)}
    for key, audit in AUDITS.items():
        value = report["audits"][audit]["numericValue"]
        row[key] = round(value, 3) if key == "cls" else round(value)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lighthouse", required=True, help="the lighthouse executable (node_modules/.bin/lighthouse)")
    ap.add_argument("--web", type=Path, help="a built web/ folder (default: build the bundled demo)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the runs here")
    ap.add_argument("--keep", type=Path, help="keep each run's whole Lighthouse report here (run-N.json)")
    args = ap.parse_args(argv)
    from packager.targets.web.browser.static_server import StaticServer

    rows = []
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as tmp:
        web = args.web or build_demo(Path(tmp))
        with StaticServer(web, prefix="/demo/", compress=True) as server:
            for i in range(args.runs):
                out = (args.keep or Path(tmp)) / f"run-{i}.json"
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                row = run_once(args.lighthouse, server.url, out)
                rows.append(row)
                print(f"run {i + 1}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    met = all(r["performance"] >= 95 and r["cls"] < 0.1 for r in rows)
    print(f"performance >= 95 and CLS < 0.1 in every run: {'MET' if met else 'NOT MET'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
