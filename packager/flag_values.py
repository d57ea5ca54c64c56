"""The values of CLI flags that take a small syntax of their own: ``--labels [OUTPUT=]FILE``, ``--mean``/``--std``
lists, ``--input-shape NAME=D0,D1,...``."""

from __future__ import annotations

from pathlib import Path

from packager.errors import UsageError
from packager.values import check_preprocessing


def parse_labels_flags(items: list[str]) -> tuple[str | None, dict[str, str]]:
    """``--labels FILE`` (the primary output's labels) and ``--labels OUTPUT=FILE`` (repeatable)."""
    plain: str | None = None
    named: dict[str, str] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not item.strip() or (sep and not Path(item).exists() and not (name.strip() and file.strip())):
            raise UsageError(f"--labels {item!r} names no " + ("file" if item.strip() and name.strip() else
                                                               "output" if item.strip() else "file: it is empty"),
                             hint="--labels FILE (the primary output's labels) or --labels OUTPUT=FILE")
        if sep and name and file and "/" not in name and "\\" not in name and not Path(item).exists():
            named[name] = file
        elif plain is None:
            plain = item
        else:
            raise UsageError(f"--labels given twice without an output name ({plain!r}, {item!r})",
                             hint="name the output of the second: --labels OUTPUT=FILE")
    return plain, named



def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError as e:
        raise UsageError(f"{flag} takes numbers separated by commas, got {text!r}", hint=f"e.g. {flag} 127.5,127.5,127.5") from e
    if flag == "--std" and any(v == 0 for v in values):
        raise UsageError("--std values must be non-zero", hint="e.g. --std 255")
    check_preprocessing(values if flag == "--mean" else (0.0,), values if flag == "--std" else (1.0,))
    return values


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = str(text).partition("=")
    try:
        shape = tuple(int(d.strip()) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape takes NAME=D0,D1,..., got {text!r}", hint="e.g. --input-shape input=1,224,224,3")
    return name, shape
