"""The output folder: validated up front, built in a staging folder beside it, moved into place
at the very end. On any error or Ctrl-C the staging folder is removed and --out is untouched."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import interrupt
from .errors import OutputError


def check_out(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder", where=str(out), hint="choose another --out path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"--out {out} is not empty", where=str(out),
                          hint="pass --force to replace it, or choose an empty/new folder")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {probe}", where=str(out), hint="choose a writable --out folder")


@contextmanager
def staged_output(out: Path, *, force: bool):
    check_out(out, force=force)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot create the output folder beside {out}: {e.strerror}", where=str(out),
                          hint="choose a writable --out folder") from e
    try:
        yield staging
        interrupt.check()  # a Ctrl-C that some library swallowed still leaves --out untouched
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
