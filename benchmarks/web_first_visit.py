"""First-visit download cost of the web demo, as a static host serves it (issue 15): bytes on the wire.

    .venv/bin/python benchmarks/web_first_visit.py              # builds the bundled demo (packager demo --targets web)
    .venv/bin/python benchmarks/web_first_visit.py --web DIR    # an already built web/ folder

Serves the folder gzip-compressed (text, JSON, JavaScript, wasm; not images or weight shards: what GitHub Pages,
Netlify or nginx with gzip_types do) under a sub-path, opens it in a fresh headless Chromium profile (empty HTTP
cache, no service worker), waits until the model is loaded AND the service worker has precached the page's files
and controls the page, then prints every byte the server wrote (headers included) and the requests it answered.
Goal: <= 1.0 MB (1,000,000 bytes). Writes the figures to benchmarks/web_first_visit.json (--json elsewhere).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GOAL_BYTES = 1_000_000


def build_demo(work: Path) -> Path:
    cmd = [sys.executable, "-m", "packager", "demo", "--targets", "web", "--out", str(work / "dist"), "--no-cache",
           "--quiet"]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if r.returncode != 0:
        raise SystemExit(f"the demo build failed (exit {r.returncode})")
    return work / "dist" / "web"


def first_visit(web: Path) -> dict:
    from packager.targets.web.browser.chromium import StaticServer, chromium_profile
    from packager.targets.web.browser.static_server import COMPRESSIBLE

    requests: list[str] = []
    with StaticServer(web, prefix="/demo/", compress=True) as server, chromium_profile() as context:
        page = context.new_page()
        context.on("request", lambda r: requests.append(r.url.replace(server.url, "")))
        t0 = time.perf_counter()
        page.goto(server.url, wait_until="load")
        backend = page.evaluate("() => window.packager.ready")
        page.evaluate("() => window.packager.serviceWorker")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        page.wait_for_load_state("networkidle")
        seconds = time.perf_counter() - t0
        sent = server.bytes_sent
        sw_cached = page.evaluate("""async () => {
            const keys = (await caches.keys()).filter((k) => k.startsWith("packager-web:"));
            return keys.length ? (await (await caches.open(keys[0])).keys()).length : 0;
        }""")
    files = sorted(p for p in web.rglob("*") if p.is_file())
    raw = sum(p.stat().st_size for p in files)
    as_served = {p.relative_to(web).as_posix(): (len(gzip.compress(p.read_bytes(), 6, mtime=0))
                                                 if p.suffix in COMPRESSIBLE else p.stat().st_size) for p in files}
    return {"bytes_on_wire": sent, "goal_bytes": GOAL_BYTES, "backend": backend, "seconds": round(seconds, 2),
            "files_in_bundle": len(files), "bundle_bytes_uncompressed": raw, "service_worker_cached": sw_cached,
            "page_requests": len(requests), "requests": sorted(requests), "as_served_per_file": as_served}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--web", type=Path, help="a built web/ folder (default: build the bundled demo)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "web_first_visit.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="web-first-visit-") as tmp:
        web = args.web or build_demo(Path(tmp))
        result = first_visit(web)
    biggest = sorted(result["as_served_per_file"].items(), key=lambda kv: -kv[1])[:6]
    print(f"bundle: {result['files_in_bundle']} files, {result['bundle_bytes_uncompressed']:,} B uncompressed")
    print("largest as served (gzip where a static host compresses): " +
          ", ".join(f"{k} {v:,} B" for k, v in biggest))
    print(f"first visit: {result['bytes_on_wire']:,} B on the wire (headers included; {result['page_requests']} "
          f"requests incl. the service worker's; backend {result['backend']}; {result['service_worker_cached']} "
          f"files precached) -- goal <= {GOAL_BYTES:,} B: "
          f"{'MET' if result['bytes_on_wire'] <= GOAL_BYTES else 'NOT MET'}")
    args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0 if result["bytes_on_wire"] <= GOAL_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
