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
    """``com.example.<name>``: see ``android_package_choice``."""
    return android_package_choice(spec)[0]


# file and folder names that say nothing about the model: two builds of them would get one package (and JNI library)
GENERIC_NAMES = frozenset("""
model models saved_model savedmodel saved_models keras_model tf_model tflite_model export exports exported
exported_model export_model final final_model best best_model checkpoint checkpoints ckpt weights frozen_graph
frozen_inference_graph frozen_model graph output outputs out latest serving serve tflite keras tf tmp temp default
my_model mymodel trained_model trained saved net network src assets data artifacts build dist main
""".split())
_VERSION = re.compile(r"^v?\d+(_\d+)*$")  # SavedModel version folders (model/1/saved_model.pb), v2, 2_1


def _segment(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def is_generic_name(name: str) -> bool:
    seg = _segment(name)
    return not seg or seg in GENERIC_NAMES or bool(_VERSION.match(seg))


def android_package_choice(spec) -> tuple[str, str]:
    """(the default package, how it was chosen): ``com.example.<name>`` from --name, else the model file's name;
    when that name is generic (``model.keras``, ``saved_model``, ``1``...) the model's folder name instead, and when
    that is generic too, the generic name with a short hash of the model's absolute path. So two builds of models both
    called ``model.keras`` in different folders get different packages (and JNI libraries, named after it)."""
    from pathlib import Path

    model = Path(spec.model)
    name = spec.display_name
    how = f"from the name {spec.name!r}" if spec.name else f"from the model's name {model.name!r}"
    if not spec.name and is_generic_name(name):
        folder = model.resolve().parent.name
        if not is_generic_name(folder):
            name, how = folder, f"from the model's folder {folder!r} ({model.name!r} is a generic name)"
        else:
            import hashlib

            digest = hashlib.sha256(str(model.resolve()).encode("utf-8")).hexdigest()[:6]
            seg = _segment(name)
            name = f"{seg if seg[:1].isalpha() else 'model'}_{digest}"
            how = f"{model.name!r} and its folder {folder!r} are generic names: a hash of the model's full path added"
    seg = _segment(name) or "model"
    if not seg[0].isalpha() or seg in JAVA_KEYWORDS or seg in KOTLIN_HARD_KEYWORDS:
        seg = "model_" + seg
    return f"com.example.{seg}", how


def android_package_note(spec) -> str:
    """What the console and report say about the module's package: which it is, where it came from, how to set it."""
    package = spec.android_package or default_android_package(spec)
    chosen, how = android_package_choice(spec)
    if getattr(spec, "android_package_explicit", False) or (spec.android_package and spec.android_package != chosen):
        how = "as set with --android-package / [android] package"
    return (f"Android package {package} (Gradle namespace; JNI library lib{jni_library_name(package)}.so), {how}; "
            f"set it with --android-package com.yourcompany.name or [android] package in packager.toml")


def jni_library_name(package: str) -> str:
    """The JNI library's name, from the module's namespace (``com.example.shapes`` -> ``com_example_shapes_jni``):
    two modules in one app have different namespaces (AGP requires it), so their libraries never collide in the APK,
    even when both models are called model.keras."""
    return re.sub(r"[^a-z0-9]+", "_", package.lower()).strip("_") + "_jni"
