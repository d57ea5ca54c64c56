"""Labels file: one label per line, UTF-8 (a BOM is accepted and dropped)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError


def read_labels(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise InputError(f"labels file not found: {path}", where=str(path), hint="--labels takes a text file, one label per line")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"labels file is not UTF-8 (byte {e.start})", where=str(path), hint="save it as UTF-8") from e
    # only \n, \r\n and \r end a line: str.splitlines() would also split at U+2028, NEL, form feed...
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are harmless
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise InputError(f"empty label on line {n}", where=f"{path}:{n}",
                             hint="every line must name one class; remove the blank line or name the class")
    labels = tuple(line.strip() for line in lines)
    if not labels:
        raise InputError("labels file is empty", where=str(path), hint="one label per line")
    seen: dict[str, int] = {}
    for n, label in enumerate(labels, 1):
        if label in seen:
            raise InputError(f"duplicate label {label!r} on lines {seen[label]} and {n}", where=f"{path}:{n}",
                             hint="labels must be unique")
        seen[label] = n
    return labels


def check_labels_fit(labels: tuple[str, ...], outputs, where: str) -> None:
    """Labels must match the class dimension of the (first) class-shaped output."""
    if not labels:
        return
    class_outputs = [o for o in outputs if len(o.shape) == 2 and o.shape[1] and o.shape[1] >= 2]
    if not class_outputs:
        raise InputError(
            "labels were given but the model has no class-shaped output (N, classes)",
            where=where,
            hint="drop --labels for non-classifier models",
        )
    n = class_outputs[0].shape[1]
    if len(labels) != n:
        raise InputError(
            f"the labels file has {len(labels)} labels but the model's output {class_outputs[0].name!r} has {n} classes",
            where=where,
            hint=f"give exactly {n} labels, one per line, in class-index order",
        )
