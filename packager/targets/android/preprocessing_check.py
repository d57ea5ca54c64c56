"""The android target's ``preprocessing`` check: the module's Kotlin ``<Class>Preprocessing`` core (EXIF orientation
from the file's bytes, alpha, crop, resampler) on the host JVM; the decode is the JVM's ImageIO standing in for
BitmapFactory (no Android runtime here)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from packager.checks import FAIL, Check
from packager.preprocessing import file_pixels
from packager.preprocessing_checks import NAME, _geometry, _verdict, image_files, input_diff, not_run_data
from packager.targets.android.host import tools as host
from packager.targets.android.host.jvm_runner import compiled_java

# The JVM stand-in for BitmapFactory (ImageIO into unpremultiplied 8-bit ARGB): methods of a Java class.
DECODE_JAVA = r"""
    static int to8(int v, int bits) {
        if (bits == 8) return v;
        if (bits == 16) return v >> 8;  // the high byte, as the definition says
        if (bits < 8) return v * 255 / ((1 << bits) - 1);
        return Math.min(255, v >> (bits - 8));
    }

    static int[] decode(byte[] bytes, int[] size) throws IOException {
        ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes));
        Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
        if (!readers.hasNext()) throw new IOException("no ImageIO reader for this format");
        ImageReader reader = readers.next();
        reader.setInput(in);
        BufferedImage image = null;
        Raster raster;
        boolean jpeg = reader.getFormatName().equalsIgnoreCase("jpeg");
        try {
            image = reader.read(0);
            raster = image.getRaster();
            if (jpeg && raster.getNumBands() == 4) {  // CMYK read as if RGBA: take its raw samples instead
                image = null;
                raster = reader.readRaster(0, null);
            }
        } catch (IIOException e) {  // e.g. a CMYK JPEG: ImageIO has no colour conversion for it, read its samples
            raster = reader.readRaster(0, null);
        }
        int w = raster.getWidth(), h = raster.getHeight();
        size[0] = w;
        size[1] = h;
        int[] out = new int[w * h];
        if (image != null && image.getColorModel() instanceof IndexColorModel) {
            image.getRGB(0, 0, w, h, out, 0, w);  // palette entries (and tRNS alpha), exact
            return out;
        }
        int bands = raster.getNumBands();
        int[] bits = raster.getSampleModel().getSampleSize();
        int[] s = new int[bands];
        boolean cmyk = image == null && bands == 4;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                raster.getPixel(x, y, s);
                int a = 255, r, g, b;
                if (cmyk) {  // Adobe (inverted) CMYK, as Android's decoder reads it: R = (255-C)(255-K)/255
                    int k = s[3];
                    r = (s[0] * k + 127) / 255;
                    g = (s[1] * k + 127) / 255;
                    b = (s[2] * k + 127) / 255;
                } else if (bands <= 2) {
                    r = g = b = to8(s[0], bits[0]);
                    if (bands == 2) a = to8(s[1], bits[1]);
                } else {
                    r = to8(s[0], bits[0]);
                    g = to8(s[1], bits[1]);
                    b = to8(s[2], bits[2]);
                    if (bands == 4) a = to8(s[3], bits[3]);
                }
                out[y * w + x] = (a << 24) | (r << 16) | (g << 8) | b;
            }
        }
        return out;
    }
"""

RUNNER_JAVA = r"""
import java.awt.image.*;
import java.io.*;
import java.lang.reflect.Method;
import java.nio.*;
import java.nio.file.*;
import java.util.*;
import javax.imageio.*;
import javax.imageio.stream.ImageInputStream;

/** args: preprocessingClass folder count out.bin. Reads the files folder/0 .. folder/(count-1) (links to the
 *  sample files, so no file name reaches this program: any name works), decodes each without its colour profile (the
 *  module's Kotlin withoutColourProfile) with ImageIO (standing in for BitmapFactory: unpremultiplied 8-bit ARGB),
 *  then runs the module's Kotlin exifOrientation + modelPixels on it. out.bin, per file in order: int32 n and n
 *  float32 (little-endian) model pixels then n float32 model
 *  inputs (normalised), or int32 -1, int32 length and the UTF-8 reason it could not be decoded. */
public final class PreprocessRunner {
    public static void main(String[] args) throws Exception {
        Class<?> p = Class.forName(args[0]);
        Method exif = p.getMethod("exifOrientation", byte[].class);
        Method plain = p.getMethod("withoutColourProfile", byte[].class);
        Method model = p.getMethod("modelPixels", int[].class, int.class, int.class, int.class);
        Method normalise = p.getMethod("normalise", float[].class);
        int count = Integer.parseInt(args[2]);
        try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(args[3])))) {
            for (int index = 0; index < count; index++) {
                byte[] bytes = Files.readAllBytes(Paths.get(args[1], Integer.toString(index)));
                int[] size = new int[2];
                int[] argb;
                try {
                    argb = decode((byte[]) plain.invoke(null, (Object) bytes), size);  // as fromEncoded does
                } catch (Exception e) {
                    byte[] why = String.valueOf(e).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    out.writeInt(-1);
                    out.writeInt(why.length);
                    out.write(why);
                    continue;
                }
                int orientation = (Integer) exif.invoke(null, (Object) bytes);
                float[] px = (float[]) model.invoke(null, argb, size[0], size[1], orientation);
                float[] x = (float[]) normalise.invoke(null, (Object) px);
                ByteBuffer b = ByteBuffer.allocate(8 * px.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : px) b.putFloat(v);
                for (float v : x) b.putFloat(v);  // the model input: pixels then normalised, px.length each
                out.writeInt(px.length);
                out.write(b.array());
            }
        }
    }

""" + DECODE_JAVA + "}\n"

JVM_PATH = ("the module's Kotlin {cls} core (withoutColourProfile + exifOrientation + modelPixels + normalise) on the "
            "host JVM; "
            "decode by the JVM's "
            "ImageIO standing in for BitmapFactory (no Android runtime here)")


def android_check(spec, samples, classes: Path, preprocessing_class: str,
                  geometry: tuple[int, int, int] | None = None, pixels: bool = False) -> Check | None:
    """The compiled module Kotlin (``classes``) run on every sample file on this JVM. ``pixels``: the model takes
    uint8 pixels and normalises them itself (the module's step 7 is no mean/std, as rendered)."""
    files = image_files(samples)
    if not files:
        return None
    t0 = time.perf_counter()
    w, h, c = _geometry(samples, geometry)
    path = JVM_PATH.format(cls=preprocessing_class.rsplit(".", 1)[-1])
    with tempfile.TemporaryDirectory(prefix="packager-preprocess-") as tmp:
        work = Path(tmp)
        tools = host.java_tools()
        res, runner = compiled_java("PreprocessRunner", RUNNER_JAVA, work)  # compiled once, kept in the tools folder
        if res.returncode != 0:
            return Check(NAME, FAIL, "javac of the preprocessing runner failed: " + host.first_lines(res.output),
                         time.perf_counter() - t0, data=not_run_data(spec, path))
        folder = work / "files"  # the samples by index: links, so no file name reaches the JVM (any name works)
        folder.mkdir()
        for i, f in enumerate(files):
            os.symlink(os.path.abspath(f), folder / str(i))
        cp = os.pathsep.join(str(p) for p in (runner, classes, host.kotlin_stdlib(), host.android_stubs_jar()))
        res = host.run([tools["java"], "-Xmx2g", "-XX:+UseSerialGC", "-Djava.awt.headless=true", "-cp", cp,
                        "PreprocessRunner", preprocessing_class, folder, str(len(files)), work / "out.bin"],
                       timeout=1200)
        if res.returncode != 0:
            return Check(NAME, FAIL, "the Kotlin preprocessing failed on the JVM: " + host.first_lines(res.output),
                         time.perf_counter() - t0, data=not_run_data(spec, path))
        blob = (work / "out.bin").read_bytes()
    diffs, skipped, done = [], [], []
    step7 = replace(spec.preprocessing, mean=(0.0,), std=(1.0,), normalize="mean-std") if pixels else spec.preprocessing
    offset = 0
    for f in files:
        n = int.from_bytes(blob[offset:offset + 4], "big", signed=True)
        offset += 4
        if n < 0:
            size = int.from_bytes(blob[offset:offset + 4], "big")
            why = blob[offset + 4:offset + 4 + size].decode("utf-8", "replace")
            offset += 4 + size
            skipped.append(f"{Path(f).name}: ImageIO (the JVM stand-in decoder) cannot read it ({why})")
            continue
        got = np.frombuffer(blob[offset:offset + 4 * n], "<f4")
        got_input = np.frombuffer(blob[offset + 4 * n:offset + 8 * n], "<f4")
        offset += 8 * n
        diffs.append(input_diff(got, got_input, file_pixels(f, w, h, c, spec.preprocessing), step7))
        done.append(Path(f))
    return _verdict(spec, done, diffs, path, t0, skipped)
