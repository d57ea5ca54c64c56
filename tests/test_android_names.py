"""Two models both called model.keras in one app (issue 27): each module's namespace is set per model (by default
from the model's name, else [android] package / --android-package), and its JNI library is named after that namespace,
so two modules' libraries cannot collide in the APK. A generic model file name (model.keras, saved_model, a version
folder) gives way to its folder's name, or a hash of its path when that is generic too; the build says which package
it chose and how to set another."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from packager.names import android_package_choice, android_package_note, default_android_package
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


def _spec(model: Path, **kw) -> PackageSpec:
    return PackageSpec(model=model, samples=Path("s"), **kw)


def test_generic_model_names_take_the_folder_name_or_a_hash_of_the_path(tmp_path):
    assert default_android_package(_spec(tmp_path / "shop" / "model.keras")) == "com.example.shop"
    assert default_android_package(_spec(tmp_path / "plant-doctor" / "saved_model")) == "com.example.plant_doctor"
    # a TF Serving layout: the version folder is generic, so is "export": the path's hash tells them apart
    a = default_android_package(_spec(tmp_path / "a" / "export" / "1"))
    b = default_android_package(_spec(tmp_path / "b" / "export" / "1"))
    assert a != b and re.fullmatch(r"com\.example\.model_[0-9a-f]{6}", a), (a, b)
    assert a == default_android_package(_spec(tmp_path / "a" / "export" / "1")), "the hash must be stable"
    c = default_android_package(_spec(tmp_path / "a" / "models" / "model.keras"))
    d = default_android_package(_spec(tmp_path / "b" / "models" / "model.keras"))
    assert c != d and re.fullmatch(r"com\.example\.model_[0-9a-f]{6}", c), (c, d)
    package, how = android_package_choice(_spec(tmp_path / "a" / "models" / "model.keras"))
    assert "generic" in how and "hash" in how, how
    # names that say something stay as they were; --name wins over the file name
    assert default_android_package(_spec(tmp_path / "models" / "flowers.keras")) == "com.example.flowers"
    assert default_android_package(_spec(tmp_path / "shop" / "model.keras", name="Cat Dog")) == "com.example.cat_dog"
    # the note says where the package came from, also when an explicit one equals the default
    assert "as set with --android-package" in android_package_note(
        _spec(tmp_path / "shapes.keras", android_package="com.example.shapes", android_package_explicit=True))
    assert "from the model's folder 'shop'" in android_package_note(_spec(tmp_path / "shop" / "model.keras"))


TINY = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
i = keras.Input((6,), name="feat")
keras.Model(i, keras.layers.Dense(3, activation="softmax", name="probs")(i)).save(sys.argv[1])
np.save(sys.argv[1] + ".npy", np.random.default_rng(0).normal(size=(8, 6)).astype("float32"))
"""


@pytest.mark.slow
def test_two_models_named_model_keras_build_modules_that_do_not_collide(tmp_path):
    """Through the CLI: shop/model.keras and plants/model.keras build modules with different namespaces and JNI
    libraries (each loaded by its own module in the native host run), and the build names the package it chose."""
    seen = {}
    for folder in ("shop", "plants"):
        model = tmp_path / folder / "model.keras"
        model.parent.mkdir()
        subprocess.run([sys.executable, "-c", TINY, str(model)], check=True, capture_output=True)
        out = tmp_path / f"out_{folder}"
        r = run_cli("build", model, "--samples", f"{model}.npy", "--targets", "android", "--quantize",
                    "android=fp32", "--out", out)
        android = json.loads((out / "report.json").read_text())["targets"]["android"]
        assert r.returncode == 0 and android["status"] == "PASS", r.stdout[-2000:] + r.stderr[-2000:]
        checks = {c["name"]: c for c in android["checks"]}
        assert checks["jni-runs-shipped-model"]["status"] == "PASS", checks["jni-runs-shipped-model"]["detail"]
        package = f"com.example.{folder}"
        native = next(out.glob("android/src/main/java/**/*Native.kt"))
        assert native.parent.relative_to(out / "android/src/main/java").as_posix() == package.replace(".", "/")
        lib = re.search(r'System\.loadLibrary\("([a-z0-9_]+_jni)"\)', native.read_text()).group(1)
        assert f"add_library({lib} SHARED" in (out / "android/CMakeLists.txt").read_text()
        note = next(n for n in android.get("notes", []) if n.startswith("Android package"))
        assert package in note and f"lib{lib}.so" in note and f"folder '{folder}'" in note, note
        assert "--android-package" in note and "[android] package" in note, note
        assert f"Android package {package}" in r.stdout + r.stderr, "the console does not name the package"
        seen[folder] = (package, lib)
    assert seen["shop"][0] != seen["plants"][0] and seen["shop"][1] != seen["plants"][1], seen
