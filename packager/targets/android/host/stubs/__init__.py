"""Compile-only Android API stubs generated from AOSP's public API signature file (``api/current.txt``).

No ``android.jar`` can be downloaded here, but Debian's source package ``android-platform-frameworks-base``
ships AOSP's signature file (format 2.0, API 29). This module turns it into class files directly (no Java
source, so no compiler to satisfy about inherited abstract methods): every class, interface, enum and
annotation type of the Android packages, with their constructors, methods and fields, generic signatures and
nested-class attributes. Every method body is ``aconst_null; athrow``: the jar is for ``kotlinc``/``javac`` to
compile against — a misspelt or post-API-29 call fails to compile — never to run.

Packages the JDK already provides (``java.*``, most ``javax.*``, ``org.w3c``/``org.xml``) are parsed (their
interface-ness matters for generic bounds) but not emitted.

Usage: ``python -m packager.targets.android.host.stubs current.txt android-stubs.jar``
"""

from packager.targets.android.host.stubs.classfile import class_file  # noqa: F401
from packager.targets.android.host.stubs.extra_apis import CAMERAX_API, EXTRA_APIS, PLAY_SERVICES_TFLITE_API, TEST_APIS  # noqa: F401
from packager.targets.android.host.stubs.jar import main, write_camerax_stub_jar, write_stub_jar, write_test_stub_jar  # noqa: F401
from packager.targets.android.host.stubs.signatures import Api, parse_api  # noqa: F401
