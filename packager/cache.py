"""Content-hash cache of whole builds: an unchanged re-run copies the previous output instead of
loading TensorFlow, converting and validating again.

The key covers the model bytes, the sample set, the labels, every spec field that shapes the
output, and the packager code and templates themselves. Only clean builds are stored (exit code 0,
no SKIPPED check: a tool installed later must get its chance to run). ``--no-cache`` or
``PACKAGER_NO_CACHE=1`` turns it off; ``PACKAGER_CACHE_DIR`` moves it (default ~/.cache/packager).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from . import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
MAX_ENTRIES = 8


def cache_root() -> Path | None:
    if os.environ.get("PACKAGER_NO_CACHE"):
        return None
    base = os.environ.get("PACKAGER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "packager")
    return Path(base)


def _hash_path(h, path: Path) -> None:
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file() and "__pycache__" not in q.parts):
            h.update(p.relative_to(path).as_posix().encode())
            h.update(b"\0")
            _hash_file(h, p)
    elif path.is_file():
        _hash_file(h, path)


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def _code_paths() -> list[Path]:
    from .render import TEMPLATE_ROOTS, template_dir

    return [PACKAGE_DIR, *(template_dir(t) for t in TEMPLATE_ROOTS if _exists(t))]


def _exists(target: str) -> bool:
    from .render import template_dir

    try:
        template_dir(target)
        return True
    except Exception:
        return False


def build_key(spec) -> str:
    h = hashlib.sha256(f"packager {__version__}\n".encode())
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in ("out", "force")}
    h.update(json.dumps(fields, default=str, sort_keys=True).encode())
    for path in (spec.model, spec.samples, spec.labels_file, *_code_paths()):
        if path is not None:
            h.update(b"\x01" + str(path.name).encode())
            _hash_path(h, Path(path))
    return h.hexdigest()[:32]


def lookup(key: str) -> Path | None:
    root = cache_root()
    entry = root / key if root else None
    if entry and (entry / "out" / "report.json").is_file():
        os.utime(entry)
        return entry / "out"
    return None


def store(key: str, out: Path, report) -> None:
    root = cache_root()
    if root is None or report.exit_code != 0:
        return
    if any(c.status == "SKIPPED" for r in report.targets.values() for c in r.checks):
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".store-", dir=root))
        shutil.copytree(out, tmp / "out")
        final = root / key
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass  # a cache that cannot be written is not an error
