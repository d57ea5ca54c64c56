"""What a failed tool run (a JVM running the module's native code, a compiler, a browser) printed, cause first.

Native runtimes log on stderr whatever they like before the failure itself: LiteRT's ``WARNING: npu_registry...``
and ``INFO: Created TensorFlow Lite XNNPACK delegate``, absl/glog's ``W0000 00:00:1733... 123 file.cc:45] ...``,
TensorFlow's ``2026-12-07 03:30:00.000000: I tensorflow/...``, the JVM's ``[0.010s][warning][cds] ...``. A reason
built from the first lines of that output would show the noise, not the cause. ``cause_first`` orders the lines:
the innermost Java ``Caused by:`` (the exception the code threw, not the reflection wrapper around it), then every
other line the tool itself printed, then the runtime's error log lines, then its warnings. Info, verbose and debug
log lines and Java stack frames are left out.
"""

from __future__ import annotations

import re

# One log line of a native runtime, its severity captured: TFLite/LiteRT's minimal logger ("WARNING: ..."),
# bracketed levels ("[WARNING] ..."), absl/glog ("W1207 03:30:00.123456   4242 file.cc:45] ...", before absl is
# initialised "W0000 00:00:1733542200.123456   4242 file.cc:45] ..."), TensorFlow's
# tsl logger ("2026-12-07 03:30:00.123456: W tensorflow/..."), the JVM's unified logging ("[0.010s][warning][cds]").
_LOG_LINE = re.compile(
    r"^\s*(?:"
    r"(?P<word>VERBOSE|DEBUG|INFO|WARNING|WARN|ERROR|FATAL)\s*:\s"
    r"|\[(?P<bracket>VERBOSE|DEBUG|INFO|WARNING|WARN|ERROR|FATAL)\]"
    r"|(?P<glog>[VDIWEF])\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+\s+[^\s\]]+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tsl>[VDIWEF]) "
    r"|\[\d+\.\d+s\]\[(?P<jvm>trace|debug|info|warning|error)\]"
    r")"
)
_JAVA_FRAME = re.compile(r"^\s+(?:at \S|\.\.\. \d+ more\b)")
_QUIET, _WARNING, _ERROR = 0, 1, 2


def log_severity(line: str) -> int | None:
    """None when ``line`` is not a runtime log line; else 0 (info, verbose, debug), 1 (warning), 2 (error, fatal)."""
    m = _LOG_LINE.match(line)
    if not m:
        return None
    level = next(g for g in m.groups() if g).upper()
    if level[0] in "EF":
        return _ERROR
    return _WARNING if level[0] == "W" else _QUIET


def cause_first(text: str, n: int = 12) -> str:
    """At most ``n`` non-blank lines of ``text``, cause first (see the module doc); "... (k more lines)" after."""
    tool, errors, warnings = [], [], []
    for line in text.splitlines():
        if not line.strip() or _JAVA_FRAME.match(line):
            continue
        severity = log_severity(line)
        if severity is None:
            tool.append(line.rstrip())
        elif severity == _ERROR:
            errors.append(line.strip())
        elif severity == _WARNING:
            warnings.append(line.strip())
    causes = [i for i, line in enumerate(tool) if line.lstrip().startswith("Caused by: ")]
    if causes:
        tool.insert(0, tool.pop(causes[-1]).lstrip().removeprefix("Caused by: "))
    lines = tool + errors + warnings
    return "\n".join(lines[:n]) + (f"\n... ({len(lines) - n} more lines)" if len(lines) > n else "")
