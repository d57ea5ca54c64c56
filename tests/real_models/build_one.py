"""`python -m real_models.build_one NAME OUT_DIR`: build one corpus model file + samples, write OUT_DIR/manifest.json."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

from .registry import BY_NAME


def main() -> None:
    name, out = sys.argv[1], Path(sys.argv[2])
    entry = BY_NAME[name]
    module, func = entry.builder.split(":")
    t0 = time.perf_counter()
    data = getattr(importlib.import_module(f"real_models.{module}"), func)(out)
    data.update(name=name, package=entry.package, covers=list(entry.covers), build_seconds=round(time.perf_counter() - t0, 1))
    (out / "manifest.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
