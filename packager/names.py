"""Names that land in generated code: Java/Kotlin packages (Gradle namespace)."""

from __future__ import annotations

import re

from packager.errors import UsageError

JAVA_KEYWORDS = frozenset("""
abstract assert boolean break byte case catch char class const continue default do double else enum extends final
finally float for goto if implements import instanceof int interface long native new package private protected public
return short static strictfp super switch synchronized this throw throws transient try void volatile while true false
null var record yield sealed permits _
""".split())
KOTLIN_HARD_KEYWORDS = frozenset("as break class continue do else false for fun if in interface is null object package "
                                 "return super this throw true try typealias typeof val var when while".split())
_SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")


def validate_android_package(name: str) -> str:
    """A Java package usable as Gradle namespace and Kotlin package: lower-case dotted segments."""
    problem = None
    segments = name.split(".")
    if len(segments) < 2:
        problem = "it needs at least two dot-separated segments"
    for seg in segments:
        if problem:
            break
        if not seg:
            problem = "it has an empty segment (two dots in a row, or a dot at an end)"
        elif not _SEGMENT.match(seg):
            problem = f"segment {seg!r} must start with a lower-case letter and hold only a-z, 0-9 and _"
        elif seg in JAVA_KEYWORDS or seg in KOTLIN_HARD_KEYWORDS:
            problem = f"segment {seg!r} is a Java/Kotlin keyword"
    if problem:
        raise UsageError(f"--android-package {name!r} is not a valid Android package name: {problem}",
                         where="--android-package / [android] package",
                         hint="use a reverse-domain name such as com.example.mymodel")
    return name


def default_android_package(spec) -> str:
    """``com.example.<model name>`` with the name made a valid package segment."""
    seg = re.sub(r"[^a-z0-9]+", "_", spec.display_name.lower()).strip("_") or "model"
    if not seg[0].isalpha() or seg in JAVA_KEYWORDS or seg in KOTLIN_HARD_KEYWORDS:
        seg = "model_" + seg
    return f"com.example.{seg}"
