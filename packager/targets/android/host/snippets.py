"""The code blocks of the Android module's README, as source files the compile checks build with the module.

Every fenced ```kotlin and ```java block of ``README.md`` is a complete source file (imports included), so it is
compiled exactly as a developer would paste it: Kotlin blocks by the same kotlinc run as the module's sources
(against the Android API stubs), Java blocks by javac against the compiled module.
"""

from __future__ import annotations

import re
from pathlib import Path

from packager.targets.android.host import tools as host

_FENCE = re.compile(r"^```(kotlin|java)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def readme_snippets(readme: Path) -> list[tuple[str, str]]:
    """(language, code) of each ```kotlin / ```java block, in README order."""
    if not readme.is_file():
        return []
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(readme.read_text(encoding="utf-8"))]


def write_snippets(readme: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """Write the README's blocks as ``README_<n>.kt`` / ``README_<n>.java`` (n = its place in the README);
    returns (Kotlin files, Java files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kotlin, java = [], []
    for n, (lang, code) in enumerate(readme_snippets(readme), 1):
        path = out_dir / f"README_{n}.{'kt' if lang == 'kotlin' else 'java'}"
        path.write_text(code, encoding="utf-8")
        (kotlin if lang == "kotlin" else java).append(path)
    return kotlin, java


def compile_java(sources: list[Path], classes_dir: Path, out_dir: Path) -> host.Run:
    """javac the Java blocks against the compiled module, the Kotlin stdlib and the Android API stubs."""
    import os

    out_dir.mkdir(parents=True, exist_ok=True)
    cp = os.pathsep.join(str(p) for p in (classes_dir, host.kotlin_stdlib(), host.kotlinx_coroutines(),
                                          host.android_stubs_jar()))
    return host.run([host.java_tools()["javac"], *(f"-J{o}" for o in host.QUICK_JVM), "-Xlint:all", "-Werror",
                     "-cp", cp, "-d", out_dir, *sources])
