"""Fetch pinned PyPI archives once and unpack them in the corpus cache.

`pip download --no-deps NAME==VERSION` (the venv's own pip, so CI fetches from PyPI like any install) into
`${PACKAGER_CORPUS_CACHE:-~/.cache/packager-corpus}/archives/NAME==VERSION/`, then unpacked (wheel = zip,
sdist = tar.gz) into `.../unpacked/NAME==VERSION/`. Nothing is installed: a package's code is imported by path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path


def cache_root() -> Path:
    root = Path(os.environ.get("PACKAGER_CORPUS_CACHE") or Path.home() / ".cache" / "packager-corpus")
    root.mkdir(parents=True, exist_ok=True)
    return root


def download(spec: str) -> tuple[Path, dict]:
    """The archive of `spec` (NAME==VERSION), downloaded unless cached; with {bytes, seconds, cached}."""
    folder = cache_root() / "archives" / spec
    found = _archives(folder)
    if found:
        return found[0], {"bytes": found[0].stat().st_size, "seconds": 0.0, "cached": True}
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # --no-build-isolation: an sdist only needs its metadata read; an isolated build env would be
    # fetched first (and some old setup.py files import pkg_resources, absent from fresh isolated envs).
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
           "-q", "-d", str(folder), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _archives(folder)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"pip download {spec} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return found[0], {"bytes": found[0].stat().st_size, "seconds": round(time.perf_counter() - t0, 2), "cached": False}


def _archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))


def unpacked(spec: str) -> tuple[Path, dict]:
    """Folder holding the unpacked archive of `spec` (an sdist's single top folder is stepped into)."""
    archive, info = download(spec)
    dest = cache_root() / "unpacked" / spec
    done = dest / ".complete"
    if not done.exists():
        dest.mkdir(parents=True, exist_ok=True)
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as z:
                z.extractall(dest)
        else:
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
        done.write_text(archive.name)
    tops = [p for p in dest.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".egg-info"))]
    if archive.name.endswith(".tar.gz") and len(tops) == 1:
        return tops[0], {**info, "archive": archive.name}
    return dest, {**info, "archive": archive.name}


def member(spec: str, name: str) -> bytes:
    """One file's bytes from the archive of `spec`, read without unpacking the rest."""
    archive, _ = download(spec)
    with zipfile.ZipFile(archive) as z:
        return z.read(name)


def import_path(path: Path, module_name: str):
    """Import one source file by path under `module_name` (its package's __init__ is not run)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
