"""What is wrong with an input path, said precisely: missing, a symbolic link loop (named), unreadable, a folder
where a file is wanted, or not a regular file (a device such as /dev/zero, a pipe such as /dev/stdin, a socket),
which would block or never end. Used for the model, samples, labels and config before anything reads them."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from packager.errors import InputError, PackagerError


def _loop(path: Path) -> str:
    """The chain of links that comes back on itself, e.g. ``a -> b -> a`` (or the path itself)."""
    chain: list[str] = []
    p = str(path)
    for _ in range(12):
        if p in chain or not os.path.islink(p):
            chain.append(p)
            break
        chain.append(p)
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return " -> ".join(chain)


_FD_LINK = re.compile(r"^/(?:proc/(?:self|\d+)|dev)/fd/(\d+)$")  # /dev/stdin -> /proc/self/fd/0
_STREAMS = {0: "standard input", 1: "standard output", 2: "standard error"}
_CLOSED_STREAMS: set[int] = set()


def reserve_std_streams() -> None:
    """Standard input, output or error that the caller left closed (``0<&-``): noted (``/dev/stdin`` then says it
    is closed), and held open on /dev/null, so that no file packager opens later becomes "standard input"."""
    for fd in _STREAMS:
        try:
            os.fstat(fd)
        except OSError:
            _CLOSED_STREAMS.add(fd)
    for fd in sorted(_CLOSED_STREAMS):
        try:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            pass


def _stream(path: Path) -> int | None:
    """The file descriptor ``path`` names (``/dev/stdin``, ``/dev/fd/N``, ``/proc/self/fd/N``, through links)."""
    p = str(path)
    for _ in range(12):
        fd = _FD_LINK.match(os.path.normpath(p))
        if fd:
            return int(fd.group(1))
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def _not_open(path: Path, what: str, fd: int) -> str:
    stream = f"{_STREAMS[fd]} (file descriptor {fd})" if fd in _STREAMS else f"file descriptor {fd}"
    return f"{what} {path} is {stream}, which is not open: {what} must be a regular file"


def _missing(path: Path, what: str) -> str:
    """Why ``path`` cannot be found: it names a file descriptor that is not open, it is a link whose target does
    not exist, or it does not exist."""
    fd = _stream(path)
    if fd is not None:
        return _not_open(path, what, fd)
    if os.path.islink(path):
        return f"{what} {path} is a symbolic link to {os.path.realpath(path)}, which does not exist"
    return f"{what} not found: {path}"


def check_input_path(path: Path, what: str, hint: str, *, error: type[PackagerError] = InputError,
                     folder: bool | None = None) -> None:
    """Raise ``error`` naming ``what`` (e.g. "model", "labels file") when ``path`` cannot be read as one.
    ``folder``: True = must be a folder, False = must be a file, None = either."""
    fd = _stream(Path(path)) if _CLOSED_STREAMS else None
    if fd in _CLOSED_STREAMS:  # held open on /dev/null since (reserve_std_streams): what the caller gave is closed
        raise error(_not_open(path, what, fd), where=str(path), hint=hint)
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{what} {path} is a symbolic link loop: {_loop(Path(path))}", where=str(path),
                        hint="point the link at the real file or folder") from e
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise error(_missing(Path(path), what), where=str(path), hint=hint) from e
        raise error(f"{what} {path} cannot be read: {e.strerror}", where=str(path), hint=hint) from e
    if stat.S_ISDIR(st.st_mode):
        if folder is False:
            raise error(f"{what} {path} is a folder, not a file", where=str(path), hint=hint)
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        want = "regular file" if folder is False else "folder" if folder else "regular file or folder"
        raise error(f"{what} {path} is not a {want} ({kind}: reading it would block or never end)",
                    where=str(path), hint=hint)
    if folder is True:
        raise error(f"{what} {path} is a file, not a folder", where=str(path), hint=hint)
