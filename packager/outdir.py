"""The output folder: validated up front, built in a staging folder beside it, moved into place
at the very end. On any error or Ctrl-C the staging folder is removed and --out is untouched.

packager only ever replaces a folder it wrote itself: every output holds a marker file (``MARKER``), and
``--force`` replaces a non-empty --out only when the marker is there. --out may not be, contain or lie inside
any input (model, samples, labels, config). While a build runs, --out is locked (a second build into it is
refused), and just before the swap it is checked again: whatever appeared in it meanwhile is not deleted, the
build is refused instead.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from packager import interrupt
from packager.errors import OutputError

MARKER = ".packager-output"
STAGING_MARKER = ".packager-staging"  # in a staging (or old-output) folder while a build owns it
WRITTEN: list[Path] = []  # the output folders this process has put in place (what an interrupt leaves behind)
MARKER_TEXT = "This folder was written by packager; `packager build --force` may replace it as a whole.\n"


def is_packager_output(out: Path) -> bool:
    return (out / MARKER).is_file() and not (out / MARKER).is_symlink()


def _snapshot(out: Path) -> list[tuple[str, int, int]] | None:
    """What --out holds (relative path, size, mtime of each entry), to notice changes during the build."""
    if not out.exists():
        return None
    entries = []
    for root, dirs, files in os.walk(out):
        for name in sorted(dirs + files):
            p = Path(root) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            entries.append((p.relative_to(out).as_posix(), st.st_size, st.st_mtime_ns))
    return sorted(entries)


def check_out(out: Path, *, force: bool) -> None:
    if out.is_symlink():
        raise OutputError(f"--out {out} is a symbolic link", where=str(out),
                          hint=f"pass the folder it points to ({os.path.realpath(out)}) or a new folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder", where=str(out), hint="choose another --out path")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputError(f"--out {out} is not empty", where=str(out),
                              hint="pass --force to replace an earlier packager output, or choose an empty/new folder")
        if not is_packager_output(out):
            raise OutputError(f"--out {out} is not empty and was not written by packager (no {MARKER} in it); "
                              "--force only replaces packager's own output", where=str(out),
                              hint="choose an empty or new --out folder, or empty this one yourself")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {probe}", where=str(out), hint="choose a writable --out folder")


def check_out_against_inputs(out: Path, inputs: list[Path | None], *, force: bool = False) -> None:
    """--out may not equal, contain, or lie inside an input: replacing it would delete the input (or, inside
    the samples folder, the next run would calibrate on its own output)."""
    o = Path(os.path.realpath(out))
    for given in inputs:
        if given is None:
            continue
        i = Path(os.path.realpath(given))
        if o == i or o in i.parents:
            what = "is" if o == i else "contains"
            raise OutputError(f"--out {out} {what} the input {given}: replacing it would delete it", where=str(out),
                              hint="choose an --out folder outside the folders of the model, samples, labels, "
                                   "config and --custom-objects modules (e.g. a new dist/ folder)")
        if i in o.parents:
            raise OutputError(f"--out {out} lies inside the input {given}", where=str(out),
                              hint="choose an --out folder outside the model and samples folders "
                                   "(e.g. a new dist/ folder beside them)")


@contextmanager
def _locked(out: Path):
    """An exclusive lock on --out for the whole build (a lock file beside it)."""
    lock_path = out.resolve().parent / f".{out.name}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot create the lock file beside {out}: {e.strerror}", where=str(lock_path),
                          hint="choose a writable --out folder") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"another packager build is writing --out {out}", where=str(out),
                                  hint="wait for it to finish, or choose another --out folder") from e
            raise
        try:
            if os.stat(lock_path).st_ino != os.fstat(fd).st_ino:  # the holder removed it as we opened it
                raise OutputError(f"another packager build is writing --out {out}", where=str(out),
                                  hint="wait for it to finish, or choose another --out folder")
        except FileNotFoundError as e:
            raise OutputError(f"another packager build is writing --out {out}", where=str(out),
                              hint="wait for it to finish, or choose another --out folder") from e
        try:
            yield
        finally:
            try:
                os.unlink(lock_path)
            except OSError:
                pass
    finally:
        os.close(fd)


@contextmanager
def staged_output(out: Path, *, force: bool):
    check_out(out, force=force)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder beside {out}: {e.strerror}", where=str(out),
                          hint="choose a writable --out folder") from e
    with _locked(out):
        check_out(out, force=force)  # again, under the lock
        _remove_stale(out)  # under the lock: no build into --out is running, what a killed one left goes
        before = _snapshot(out)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=parent))
            (staging / STAGING_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"cannot create the output folder beside {out}: {e.strerror}", where=str(out),
                              hint="choose a writable --out folder") from e
        try:
            yield staging
            interrupt.check()  # a Ctrl-C that some library swallowed still leaves --out untouched
            (staging / STAGING_MARKER).unlink()
            (staging / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
            _swap(out, staging, before)  # records --out in WRITTEN the moment it is in place
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _swap(out: Path, staging: Path, before) -> None:
    if out.is_symlink() or _snapshot(out) != before:
        raise OutputError(f"--out {out} changed while packager was building (another program wrote to it); "
                          "nothing in it was replaced or deleted", where=str(out),
                          hint="run the build again once nothing else writes to that folder")
    if not out.exists():
        with interrupt.deferred():  # a Ctrl-C now comes after --out is in place and recorded as written
            os.replace(staging, out)
            WRITTEN.append(out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.resolve().parent))
    (trash / STAGING_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
    # The old output out of the way, the new one in, recorded, the old one deleted: a Ctrl-C (SIGTERM) in between
    # would leave no --out at all, or a complete one reported as "not written" and the old one beside it.
    with interrupt.deferred():
        try:
            os.replace(out, trash / "out")
            renamed = True
        except OSError as e:  # a mount point (EBUSY), a folder on another device: replaced in place below
            shutil.rmtree(trash, ignore_errors=True)
            if e.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EINVAL):
                raise
            renamed = False
        if renamed:
            os.replace(staging, out)
            WRITTEN.append(out)
            shutil.rmtree(trash, ignore_errors=True)
    if not renamed:
        _replace_contents(out, staging)


def _replace_contents(out: Path, staging: Path) -> None:
    """--out cannot be renamed (it is a mount point): its entries (packager's earlier output, checked) move into
    a hidden folder inside it, the new output is copied in, then the old entries are deleted. If the copy fails,
    what was copied goes and the old entries come back."""
    old = Path(tempfile.mkdtemp(prefix=".packager-old-", dir=out))
    (old / STAGING_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
    previous = [p for p in out.iterdir() if p != old]
    for p in previous:
        os.replace(p, old / p.name)
    copied = []
    try:
        for p in staging.iterdir():
            copied.append(out / p.name)
            if p.is_dir() and not p.is_symlink():
                shutil.copytree(p, out / p.name, symlinks=True)
            else:
                shutil.copy2(p, out / p.name, follow_symlinks=False)
    except BaseException:
        for p in copied:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink()
        for p in previous:
            os.replace(old / p.name, p)
        shutil.rmtree(old, ignore_errors=True)
        raise
    with interrupt.deferred():
        WRITTEN.append(out)
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _remove_stale(out: Path) -> None:
    """Staging and old-output folders of earlier builds into --out that were killed (SIGKILL, power loss): only
    folders holding packager's ``STAGING_MARKER``, and only while this build holds --out's lock."""
    parent = out.resolve().parent
    for pattern in (f".{out.name}.building-*", f".{out.name}.old-*"):
        for folder in parent.glob(pattern):
            if not folder.is_symlink() and folder.is_dir() and (folder / STAGING_MARKER).is_file():
                if not out.exists() and (folder / "out").is_dir():  # killed mid-swap: the old output comes back
                    os.replace(folder / "out", out)
                shutil.rmtree(folder, ignore_errors=True)
    if out.is_dir() and not out.is_symlink():
        for folder in out.glob(".packager-old-*"):
            if not folder.is_symlink() and folder.is_dir() and (folder / STAGING_MARKER).is_file():
                shutil.rmtree(folder, ignore_errors=True)
