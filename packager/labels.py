"""Labels file: one label per line, UTF-8 (a BOM is accepted and dropped)."""

from __future__ import annotations

from pathlib import Path

from packager.errors import InputError, UsageError
from packager.paths import check_input_path


def read_labels(path: Path) -> tuple[str, ...]:
    check_input_path(path, "labels file", "--labels takes a text file, one label per line", folder=False)
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
    """Labels given without an output name label the primary output, which is only known once the outputs'
    kinds are (after the reference outputs): here, some class-shaped output (N, classes) must have as many
    classes as there are labels; :func:`check_primary_labels` checks the primary output itself."""
    if not labels:
        return
    class_outputs = [o for o in outputs if len(o.shape) == 2 and o.shape[1] and o.shape[1] >= 2]
    if not class_outputs:
        raise InputError(
            "labels were given but the model has no class-shaped output (N, classes)",
            where=where,
            hint="drop --labels for non-classifier models",
        )
    if any(o.shape[1] == len(labels) for o in class_outputs):
        return
    _count_error(labels, class_outputs[0], where)


def check_output_labels(output_labels: dict, outputs, where: str) -> None:
    """Labels given per output (``--labels NAME=FILE``, ``[labels]``): the output exists and has one column
    per label."""
    from packager.targets import did_you_mean

    by_name = {o.name: o for o in outputs}
    for name, labels in output_labels.items():
        if name not in by_name:
            raise UsageError(f"labels given for output {name!r}, which the model does not have", where=where,
                             hint=f"{did_you_mean(name, by_name)}outputs: {', '.join(by_name)}")
        o = by_name[name]
        if len(o.shape) != 2 or not o.shape[1]:
            raise InputError(f"labels given for output {name!r}, whose shape {list(o.shape)} is not (N, classes)",
                             where=where, hint="labels name the columns of a 2-D output")
        if o.shape[1] != len(labels):
            _count_error(labels, o, where)


def check_primary_labels(labels: tuple[str, ...], output, where: str) -> None:
    if labels and (len(output.shape) != 2 or output.shape[1] != len(labels)):
        _count_error(labels, output, where, primary=True)


def _count_error(labels, output, where: str, primary: bool = False) -> None:
    n = output.shape[1] if len(output.shape) == 2 else None
    what = "the primary output" if primary else "the model's output"
    raise InputError(
        f"the labels file has {len(labels)} labels but {what} {output.name!r} has {n} classes"
        if n else f"the labels file has {len(labels)} labels but {what} {output.name!r} is shaped "
                  f"{list(output.shape)}, not (N, classes)",
        where=where,
        hint=(f"give exactly {n} labels, one per line, in class-index order" if n else "")
        + "; or name the output the labels are for: --labels OUTPUT=FILE",
    )
