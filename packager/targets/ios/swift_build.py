"""The ``swift-build`` check: the rendered Swift package built (and its XCTest run) by a real Swift toolchain.

PASS only when a toolchain really built it here: on macOS, ``swift build`` and ``swift test`` (SwiftPM's native
build system, the one that copies resources as they are) and, when Xcode is there, ``xcodebuild test`` (Xcode's
build system, which compiles the model). The package imports CoreML and Vision, which exist only in Apple's
SDKs: with no toolchain, or a toolchain on another system (Linux), the check is UNVERIFIED and says why.
The build runs on a copy, so no ``.build`` folder lands in the output.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from packager.checks import FAIL, PASS, UNVERIFIED, Check

NAME = "swift-build"
TIMEOUT = 900  # seconds for each step (a first `swift build` resolves and compiles everything)


def toolchain_version(swift: str) -> str | None:
    """The ``Swift version ...`` line of ``swift --version`` (e.g. ``Swift version 6.0.3 (swift-6.0.3-RELEASE)``,
    ``Apple Swift version 6.0.3 ...``); None when that ``swift`` is something else (OpenStack's object-storage
    client installs a ``swift`` command too)."""
    try:
        done = subprocess.run([swift, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    return next((ln for ln in lines if "Swift version" in ln), None)


def how_to_run(name: str) -> str:
    return (f"on a Mac, in ios/: `swift build && swift test`, and `xcodebuild test -scheme {name} "
            "-destination 'platform=macOS'`")


def check_swift_build(outdir: Path, name: str) -> Check:
    t0 = time.perf_counter()
    swift, xcodebuild = shutil.which("swift"), shutil.which("xcodebuild")
    version = toolchain_version(swift) if swift else None
    not_swift = f" (the `swift` on PATH, {swift}, is not a Swift compiler)" if swift and version is None else ""
    if version is None:
        swift = None
    if not swift and not xcodebuild:
        return Check(NAME, UNVERIFIED, "not run: no Swift toolchain on this machine (`swift` and `xcodebuild` are "
                                       f"not on PATH{not_swift}; Debian, PyPI and npm ship none); {how_to_run(name)}")
    version = version or "xcodebuild"
    if platform.system() != "Darwin":
        return Check(NAME, UNVERIFIED, f"not run: {version} is here, but the package imports CoreML and Vision, "
                                       f"which only Apple's SDKs have ({platform.system()} has neither); "
                                       f"{how_to_run(name)}")
    with tempfile.TemporaryDirectory(prefix="packager-swift-") as tmp:
        pkg = Path(tmp) / name
        shutil.copytree(outdir, pkg)
        steps = []
        if swift:
            steps += [("swift build", [swift, "build"]), ("swift test", [swift, "test"])]
        if xcodebuild:
            scheme = _scheme(xcodebuild, pkg, name)
            steps.append(("xcodebuild test", [xcodebuild, "test", "-scheme", scheme, "-destination", "platform=macOS",
                                              "-derivedDataPath", str(Path(tmp) / "derived")]))
        ran = []
        for label, cmd in steps:
            try:
                done = subprocess.run(cmd, cwd=pkg, capture_output=True, text=True, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                return Check(NAME, UNVERIFIED, f"{label} did not finish in {TIMEOUT} s ({version}); "
                                               f"passed before it: {', '.join(ran) or 'nothing'}",
                             time.perf_counter() - t0)
            if done.returncode != 0:
                tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-8:])
                return Check(NAME, FAIL, f"{label} failed (exit {done.returncode}, {version}): {tail[-1500:]}",
                             time.perf_counter() - t0)
            ran.append(label)
    return Check(NAME, PASS, f"{', '.join(ran)} passed ({version})", time.perf_counter() - t0)


def _scheme(xcodebuild: str, pkg: Path, name: str) -> str:
    """``<name>-Package`` (the scheme with every target, tests included) when Xcode lists it, else ``<name>``."""
    try:
        done = subprocess.run([xcodebuild, "-list", "-json"], cwd=pkg, capture_output=True, text=True, timeout=300)
        schemes = json.loads(done.stdout).get("workspace", {}).get("schemes", [])
    except (OSError, subprocess.TimeoutExpired, ValueError):
        schemes = []
    return f"{name}-Package" if f"{name}-Package" in schemes else name
