"""`python -m real_models [NAME ...]`: prepare corpus models (all by default) and print their manifests."""

from __future__ import annotations

import json
import sys

from . import CORPUS, prepare

names = sys.argv[1:] or [e.name for e in CORPUS]
for n in names:
    try:
        m = prepare(n)
        print(json.dumps({k: m[k] for k in ("name", "package", "model", "samples", "flags", "signature", "fetch",
                                            "build_seconds") if k in m}))
    except Exception as e:
        print(f"{n}: FAILED {e}", file=sys.stderr)
