"""The ``androidtest-golden-images`` check: the instrumented test's golden-image assertions (``<Class>GoldenImages``,
compiled from src/androidTest by kotlin-compiles) run on this machine's JVM with the module's own code: each encoded
golden image decoded by ImageIO (standing in for BitmapFactory: no Android runtime here) into the module's Kotlin
preprocessing (withoutColourProfile, exifOrientation, fromArgb: what fromEncoded does after decoding), its top class
by the module's JNI core on LiteRT's C API (the host build of jni-runs-shipped-model)."""

from __future__ import annotations

import os
from pathlib import Path

from packager.targets.android.host import tools as host
from packager.targets.android.host.jvm_runner import MAPPED_OPEN_JAVA, compiled_java
from packager.targets.android.preprocessing_check import DECODE_JAVA

RUNNER_JAVA = r"""
import java.awt.image.*;
import java.io.*;
import java.lang.reflect.Method;
import java.nio.file.*;
import java.util.*;
import javax.imageio.*;
import javax.imageio.stream.ImageInputStream;
import kotlin.jvm.functions.Function1;

/** args: goldenClass preprocessingClass nativeClass model.tflite testAssetsDir labels.txt primaryIndex */
public final class GoldenImagesRunner {
    public static void main(String[] args) throws Exception {
        Object golden = Class.forName(args[0]).getField("INSTANCE").get(null);
        Class<?> p = Class.forName(args[1]);
        Method plain = p.getMethod("withoutColourProfile", byte[].class);
        Method exif = p.getMethod("exifOrientation", byte[].class);
        Method fromArgb = p.getMethod("fromArgb", int[].class, int.class, int.class, int.class);
        Class<?> nat = Class.forName(args[2]);
        long handle = openMapped(nat, args[3], 1);  // the module's mapped load path, as on Android
        Method run = nat.getMethod("run", long.class, float[][].class);
        List<String> labels = Files.readAllLines(Paths.get(args[5]), java.nio.charset.StandardCharsets.UTF_8);
        int primary = Integer.parseInt(args[6]);
        Function1<String, byte[]> read = path -> call(() -> Files.readAllBytes(Paths.get(args[4], path)));
        Function1<byte[], float[]> modelInput = bytes -> call(() -> {
            int[] size = new int[2];
            int[] argb = decode((byte[]) plain.invoke(null, (Object) bytes), size);
            return (float[]) fromArgb.invoke(null, argb, size[0], size[1], exif.invoke(null, (Object) bytes));
        });
        Function1<Integer, String> labelOf = i -> i < labels.size() ? labels.get(i) : "class " + i;
        Function1<byte[], String> top1Label = bytes -> call(() -> {
            float[][] out = (float[][]) run.invoke(null, handle, (Object) new float[][] {modelInput.invoke(bytes)});
            float[] scores = out[primary];
            int best = 0;
            for (int k = 1; k < scores.length; k++) if (scores[k] > scores[best]) best = k;
            return labelOf.invoke(best);
        });
        try {
            Method check = golden.getClass().getMethod("check", Function1.class, Function1.class, Function1.class,
                                                       Function1.class);
            System.out.println("golden: " + check.invoke(golden, read, modelInput, top1Label, labelOf));
        } catch (java.lang.reflect.InvocationTargetException e) {
            Throwable cause = e.getCause();
            while (cause instanceof RuntimeException && cause.getCause() != null && !(cause instanceof AssertionError)) {
                cause = cause.getCause();
            }
            System.out.println("assertion: " + cause);
            System.exit(4);
        } finally {
            nat.getMethod("close", long.class).invoke(null, handle);
        }
    }

    interface Body<T> { T get() throws Exception; }

    static <T> T call(Body<T> body) {
        try {
            return body.get();
        } catch (RuntimeException e) {
            throw e;
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw new RuntimeException(e.getCause());
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }
""" + MAPPED_OPEN_JAVA + DECODE_JAVA + "}\n"


class GoldenFailed(Exception):
    pass


def run_on_host(ctx: dict, outdir: Path, manifest: dict, classes: Path, lib_dir: Path, work: Path) -> str:
    """Runs ``<Class>GoldenImages.check`` on the module's golden images; returns its summary, raises GoldenFailed
    with the assertion's message."""
    from packager.targets.android.host.jvm_runner import run_on_host as jvm_run

    res, runner = compiled_java("GoldenImagesRunner", RUNNER_JAVA, work, (host.kotlin_stdlib(),))
    if res.returncode != 0:
        raise GoldenFailed("javac of the golden-image runner failed:\n" + host.first_lines(res.output))
    pkg, cls = ctx["package"], ctx["class_name"]
    assets = (outdir / manifest["golden_properties"]).parent.parent  # src/androidTest/assets
    cp_args = ["-Djava.awt.headless=true"]
    res = jvm_run(runner, classes, lib_dir, [
        f"{pkg}.{cls}GoldenImages", f"{pkg}.{cls}Preprocessing", f"{pkg}.{cls}Native",
        str(outdir / manifest["model"]), str(assets), str(outdir / manifest["labels"]), str(ctx["primary_index"])],
        main="GoldenImagesRunner", jvm_args=cp_args)
    lines = [ln for ln in res.output.splitlines() if ln.startswith(("golden: ", "assertion: "))]
    if res.returncode != 0 or not lines or not lines[-1].startswith("golden: "):
        raise GoldenFailed("the androidTest's golden-image assertions failed on the host JVM: "
                           + (lines[-1].removeprefix("assertion: ") if lines else host.first_lines(res.output)))
    return lines[-1].removeprefix("golden: ") + (
        " (the androidTest's GoldenImages assertions on the host JVM: ImageIO decoding for BitmapFactory, the "
        "module's Kotlin preprocessing, top class by its JNI core on LiteRT's C API)")


def has_golden_images(outdir: Path, manifest: dict) -> bool:
    return os.path.isfile((outdir / manifest["golden_properties"]).parent / "golden_images.properties")
