"""Names that land in generated code: Java/Kotlin packages (Gradle namespace)."""

from __future__ import annotations

import re

from .errors import UsageError

JAVA_KEYWORDS = frozenset("""
abstract assert boolean break byte case catch char class const continue default do double else enum extends final
finally float for goto if implements import instanceof int interface long native new package private protected public
return short static strictfp super switch synchronized this throw throws transient try void volatile while true false
null var record yield sealed permits
""".split())
KOTLIN_HARD_KEYWORDS = frozenset("as break class continue do else false for fun if in interface is null object package "
                                 "return super this throw true try typealias typeof val var when while".split())
_SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")


def validate_android_package(name: str) -> str:
    """A Java package usable as Gradle namespace and Kotlin package: lower-case dotted segments."""
    problem = None
    segments = name.split(".")
    if len(segments) < 2:
        problem = "it needs at least two dot-separated parts"
    for seg in segments:
        if problem:
            break
        if not seg:
            problem = "it has an empty part (two dots in a row, or a dot at an end)"
        elif not _SEGMENT.match(seg):
            problem = f"part {seg!r} must start with a lower-case letter and hold only a-z, 0-9 and _"
        elif seg in JAVA_KEYWORDS or seg in KOTLIN_HARD_KEYWORDS:
            problem = f"part {seg!r} is a reserved word in Java/Kotlin"
    if problem:
        raise UsageError(f"invalid Android package name {name!r}: {problem}", where="--android-package",
                         hint="use a reverse-domain name such as com.example.mymodel")
    return name


def default_android_package(spec) -> str:
    """``com.example.<model name in lower case>`` (a valid package for any model name)."""
    seg = re.sub(r"[^a-z0-9_]", "", spec.display_name.lower().replace("-", "_").replace(" ", "_")) or "model"
    if not seg[0].isalpha():
        seg = "m" + seg
    if seg in JAVA_KEYWORDS or seg in KOTLIN_HARD_KEYWORDS:
        seg += "_model"
    return f"com.example.{seg}"
