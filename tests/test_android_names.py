"""Two models both called model.keras in one app (issue 27): each module's namespace is set per model (by default
from the model's name, else [android] package / --android-package), and its JNI library is named after that namespace,
so two modules' libraries cannot collide in the APK. No TensorFlow here."""

from __future__ import annotations

from pathlib import Path

from packager.spec import PackageSpec
from packager.targets.android import render


def test_jni_library_named_after_the_namespace():
    a = PackageSpec(model=Path("shop/model.keras"), samples=Path("s"), android_package="com.shop.classifier")
    b = PackageSpec(model=Path("plants/model.keras"), samples=Path("s"), android_package="com.plants.classifier")
    assert a.identifier == b.identifier == "Model"  # the same class name: each lives in its own package
    assert render.lib_name(a) == "com_shop_classifier_jni"
    assert render.lib_name(b) == "com_plants_classifier_jni"
    default = PackageSpec(model=Path("m/model.keras"), samples=Path("s"))
    assert render.lib_name(default) == render.android_package(default).replace(".", "_") + "_jni"
