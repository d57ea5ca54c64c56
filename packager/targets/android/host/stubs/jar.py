"""The stub jar: AOSP's current.txt plus the extra API families, as class files in one jar."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from packager.targets.android.host.stubs.classfile import class_file
from packager.targets.android.host.stubs.extra_apis import CAMERAX_API, EXTRA_APIS, TEST_APIS
from packager.targets.android.host.stubs.signatures import _jdk_package, parse_api


def write_stub_jar(current_txt: Path, jar: Path) -> int:
    """Generate ``jar`` from ``current_txt``; returns the number of classes written."""
    api = parse_api(current_txt.read_text(encoding="utf-8") + "".join(EXTRA_APIS))
    tmp = jar.with_suffix(".tmp")
    n = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: packager android_stubs\n\n")
        for binary, decl in sorted(api.classes.items()):
            if _jdk_package(decl.package):
                continue
            info = zipfile.ZipInfo(binary + ".class", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, class_file(api, decl))
            n += 1
    tmp.replace(jar)
    return n


def write_test_stub_jar(jar: Path) -> int:
    """The instrumented tests' own API (JUnit 4, AndroidX Test) as a small stub jar, generated on demand (a few
    milliseconds) so the shared android-stubs.jar keeps to what app code may call. Returns the classes written."""
    return write_api_jar(TEST_APIS, jar)


def write_camerax_stub_jar(jar: Path) -> int:
    """The CameraX classes the module's camera entry point and README use (androidx.camera:camera-core, a
    compileOnly dependency of the module), as a small stub jar generated on demand. Returns the classes written."""
    return write_api_jar((CAMERAX_API,), jar)


def write_api_jar(apis, jar: Path) -> int:
    """The API families ``apis`` (signature-file text) as class files in ``jar``."""
    api = parse_api("".join(apis))
    jar.parent.mkdir(parents=True, exist_ok=True)
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for binary, decl in sorted(api.classes.items()):
            info = zipfile.ZipInfo(binary + ".class", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, class_file(api, decl))
    tmp.replace(jar)
    return len(api.classes)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m packager.targets.android.host.stubs current.txt out.jar", file=sys.stderr)
        return 2
    n = write_stub_jar(Path(argv[0]), Path(argv[1]))
    print(f"android_stubs: wrote {n} classes to {argv[1]}")
    return 0


