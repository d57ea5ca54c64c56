"""What is wrong with an input path, said precisely: missing, a symbolic link loop (named), unreadable, a folder
where a file is wanted, or not a regular file (a device such as /dev/zero, a pipe such as /dev/stdin, a socket),
which would block or never end. Used for the model, samples, labels and config before anything reads them."""

from __future__ import annotations

import errno
import os
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


def check_input_path(path: Path, what: str, hint: str, *, error: type[PackagerError] = InputError,
                     folder: bool | None = None) -> None:
    """Raise ``error`` naming ``what`` (e.g. "model", "labels file") when ``path`` cannot be read as one.
    ``folder``: True = must be a folder, False = must be a file, None = either."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{what} {path} is a symbolic link loop: {_loop(Path(path))}", where=str(path),
                        hint="point the link at the real file or folder") from e
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise error(f"{what} not found: {path}", where=str(path), hint=hint) from e
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
