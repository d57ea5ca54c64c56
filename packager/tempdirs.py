"""One temporary folder per command, owned by packager: everything a build writes outside --out goes in it.

``private_temp()`` makes ``$TMPDIR/packager-XXXXXXXX`` and points this process and every tool it starts at it:
``TMPDIR`` (Python's tempfile, TensorFlow's autograph modules, coremltools' tmp*.mlmodel, kotlinc, Chromium and
Playwright profiles), ``KERAS_HOME`` (keras.json), ``XDG_CONFIG_HOME`` / ``XDG_CACHE_HOME`` / ``XDG_DATA_HOME`` /
``XDG_STATE_HOME`` (Chromium's crash reports, dconf, fontconfig), so a build with a fresh ``HOME`` leaves it as
it was. The folder is removed when the command ends, also on an error, Ctrl-C or SIGTERM (to the process or its
whole group), whatever its children (a forked worker leaving with ``os._exit``) left in it.

A build killed with SIGKILL cannot clean up: the folder holds a lock (``flock`` on ``LOCK``) for as long as its
build runs, and the next command removes every ``packager-*`` folder beside its own whose lock is free (only
folders with that lock file: packager's own).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

LOCK = ".packager-temp"
PREFIX = "packager-"
# tool state that would otherwise go under HOME: redirected into the private folder
STATE_VARIABLES = ("KERAS_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")


def remove_stale(parent: Path) -> list[Path]:
    """Remove the private folders of packager commands that are no longer running (their lock is free)."""
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return removed
    for folder in candidates:
        lock = folder / LOCK
        try:
            if folder.is_symlink() or not lock.is_file() or lock.is_symlink():
                continue
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its build is still running
            os.close(fd)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


@contextmanager
def private_temp():
    """The command's private temporary folder (see the module docstring), removed on exit."""
    parent = Path(tempfile.gettempdir())
    remove_stale(parent)
    # a short name: Chromium's sockets live under TMPDIR, and a socket path may not exceed 107 bytes
    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    # locked under another name, then renamed: another command's remove_stale never sees LOCK unlocked
    fd = os.open(root / (LOCK + ".new"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(root / (LOCK + ".new"), root / LOCK)
    saved = {name: os.environ.get(name) for name in ("TMPDIR", *STATE_VARIABLES, "PACKAGER_CACHE_DIR")}
    saved_tempdir = tempfile.tempdir
    try:
        from packager.cache import cache_root

        cache = cache_root()  # where the user's cache is, before XDG_CACHE_HOME points elsewhere
        if cache is not None:
            os.environ["PACKAGER_CACHE_DIR"] = str(cache)
        os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = str(root)
        for name in STATE_VARIABLES:
            os.environ[name] = str(root / name.lower())
        yield root
    finally:
        tempfile.tempdir = saved_tempdir
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)
        os.close(fd)
