"""AndroidHostRunner: the JVM program that drives the module's own JNI class on this host (the samples run,
``--stress`` for threads and close(), ``--nan`` for NaN inputs), how it is compiled once and cached, and how it
is run with the host build of the JNI core on ``java.library.path``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from packager.targets.android.host.tools import (
    QUICK_JVM,
    Run,
    android_stubs_jar,
    java_tools,
    kotlin_stdlib,
    kotlinx_coroutines,
    run,
    tools_dir,
)

RUNNER_JAVA = r"""
import java.io.*;
import java.lang.reflect.Method;
import java.nio.*;
import java.nio.file.*;

/** Feeds samples through the module's own JNI class (and its Kotlin preprocessing for images). */
public final class AndroidHostRunner {
    // args: nativeClass preprocessingClass|- model.tflite inputs.bin outputs.bin samples threads mode(float|argb) [names]
    //   or: --stress nativeClass model.tflite threads iterations
    public static void main(String[] args) throws Exception {
        if (args[0].equals("--stress")) {
            stress(args);
            return;
        }
        if (args[0].equals("--nan")) {
            nanInput(args);
            return;
        }
        Class<?> nat = Class.forName(args[0]);
        Method inputCount = nat.getMethod("inputCount", long.class);
        Method outputCount = nat.getMethod("outputCount", long.class);
        Method inputShape = nat.getMethod("inputShape", long.class, int.class);
        Method outputShape = nat.getMethod("outputShape", long.class, int.class);
        Method inputType = nat.getMethod("inputType", long.class, int.class);
        Method outputType = nat.getMethod("outputType", long.class, int.class);
        Method inputName = nat.getMethod("inputName", long.class, int.class);
        Method outputName = nat.getMethod("outputName", long.class, int.class);
        Method run = nat.getMethod("run", long.class, float[][].class);
        Method runTyped = nat.getMethod("runTyped", long.class, Object[].class);
        Method close = nat.getMethod("close", long.class);
        Object pre = null;
        Method fromArgb = null;
        if (!args[1].equals("-")) {
            Class<?> p = Class.forName(args[1]);
            pre = p.getField("INSTANCE").get(null);
            fromArgb = p.getMethod("fromArgb", int[].class);
        }
        int samples = Integer.parseInt(args[5]);
        int threads = Integer.parseInt(args[6]);
        boolean argb = args[7].equals("argb");
        // args[8]: the file naming the inputs in the order inputs.bin holds them (readNames; "#i": by index)
        long handle = openMapped(nat, args[2], threads);
        try {  // the module's load-time check of the runtime, as its Classifier runs it (bundled runtime only)
            nat.getMethod("checkRuntime", long.class).invoke(null, handle);
        } catch (NoSuchMethodException e) {
            // the play-services variant has none
        } catch (java.lang.reflect.InvocationTargetException e) {
            System.out.println("checkRuntime failed: " + e.getCause());
            System.exit(3);
        }
        try {
            int nIn = (Integer) inputCount.invoke(null, handle);
            java.util.List<String> names = new java.util.ArrayList<>();
            if (args.length > 8) names = readNames(Paths.get(args[8]));
            else for (int i = 0; i < nIn; i++) names.add("#" + i);
            int nOut = (Integer) outputCount.invoke(null, handle);
            if (names.size() != nIn) throw new IllegalStateException("the model has " + nIn + " inputs, the samples " + names.size());
            int[] order = new int[nIn];  // the i-th input in inputs.bin is the model's order[i]-th
            for (int k = 0; k < nIn; k++) {
                String name = names.get(k);
                order[k] = -1;
                if (name.startsWith("#")) order[k] = Integer.parseInt(name.substring(1));
                for (int i = 0; i < nIn && order[k] < 0; i++) if (name.equals(inputName.invoke(null, handle, i))) order[k] = i;
                if (order[k] < 0) throw new IllegalStateException("the module has no input named '" + name + "'");
            }
            ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(Paths.get(args[3]))).order(ByteOrder.LITTLE_ENDIAN);
            long nanos = 0;
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(args[4])))) {
                for (int s = 0; s < samples; s++) {
                    Object[] inputs = new Object[nIn];
                    for (int k = 0; k < nIn; k++) {
                        int i = order[k];
                        int n = product((int[]) inputShape.invoke(null, handle, i));
                        int type = (Integer) inputType.invoke(null, handle, i);
                        if (argb) {
                            int[] pixels = new int[in.getInt()];
                            for (int j = 0; j < pixels.length; j++) pixels[j] = in.getInt();
                            inputs[i] = fromArgb.invoke(pre, (Object) pixels);
                        } else if (type == 2) {
                            int[] v = new int[n]; for (int j = 0; j < n; j++) v[j] = in.getInt(); inputs[i] = v;
                        } else if (type == 4) {
                            long[] v = new long[n]; for (int j = 0; j < n; j++) v[j] = in.getLong(); inputs[i] = v;
                        } else if (type == 6) {
                            boolean[] v = new boolean[n]; for (int j = 0; j < n; j++) v[j] = in.get() != 0; inputs[i] = v;
                        } else {
                            float[] v = new float[n]; for (int j = 0; j < n; j++) v[j] = in.getFloat(); inputs[i] = v;
                        }
                    }
                    long t0 = System.nanoTime();
                    Object[] outputs = (Object[]) runTyped.invoke(null, handle, (Object) inputs);
                    nanos += System.nanoTime() - t0;
                    if (outputs.length != nOut) throw new IllegalStateException("output count " + outputs.length);
                    for (Object o : outputs) out.write(bytesOf(o));
                }
            }
            StringBuilder shapes = new StringBuilder();
            // args[4] + ".names": per output its type code and its name as the module reports them (binary: any name)
            try (DataOutputStream meta = new DataOutputStream(new FileOutputStream(args[4] + ".names"))) {
                for (int i = 0; i < nOut; i++) {
                    shapes.append(java.util.Arrays.toString((int[]) outputShape.invoke(null, handle, i))).append(';');
                    meta.writeInt((Integer) outputType.invoke(null, handle, i));
                    byte[] name = ((String) outputName.invoke(null, handle, i)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    meta.writeInt(name.length);
                    meta.write(name);
                }
            }
            System.out.println("outputs=" + shapes + " mean_ms=" + (samples > 0 ? nanos / 1e6 / samples : 0));
        } finally {
            close.invoke(null, handle);
        }
        // A closed handle must raise, not crash.
        try {
            run.invoke(null, 0L, (Object) new float[0][]);
            System.out.println("closed-handle: no exception");
        } catch (java.lang.reflect.InvocationTargetException e) {
            System.out.println("closed-handle: " + e.getCause().getClass().getName() + ": " + e.getCause().getMessage());
        }
    }

    /**
     * Many threads on one handle, each with its own input: every result must equal the one computed alone (calls
     * are serialized). Then the same while another thread closes the handle: each call returns a correct result
     * or throws IllegalStateException, and nothing crashes.
     */
    static void stress(String[] args) throws Exception {
        Class<?> nat = Class.forName(args[1]);
        Method inputCount = nat.getMethod("inputCount", long.class);
        Method inputShape = nat.getMethod("inputShape", long.class, int.class);
        Method run = nat.getMethod("run", long.class, float[][].class);
        Method close = nat.getMethod("close", long.class);
        int threads = Integer.parseInt(args[3]);
        int iterations = Integer.parseInt(args[4]);
        long probe = openMapped(nat, args[2], 1);
        int nIn = (Integer) inputCount.invoke(null, probe);
        float[][][] inputs = new float[threads][nIn][];
        float[][][] expected = new float[threads][][];
        for (int t = 0; t < threads; t++) {
            for (int i = 0; i < nIn; i++) {
                inputs[t][i] = new float[product((int[]) inputShape.invoke(null, probe, i))];
                for (int k = 0; k < inputs[t][i].length; k++) inputs[t][i][k] = ((k * 31 + t * 97) % 256) / 255f;
            }
            expected[t] = (float[][]) run.invoke(null, probe, (Object) inputs[t]);
        }
        close.invoke(null, probe);
        for (int phase = 0; phase < 2; phase++) {
            final boolean closing = phase == 1;
            final long handle = openMapped(nat, args[2], 1);
            java.util.concurrent.atomic.AtomicInteger ok = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger wrong = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger closed = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.ConcurrentLinkedQueue<String> errors = new java.util.concurrent.ConcurrentLinkedQueue<>();
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(threads);
            Thread[] workers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                final int me = t;
                workers[t] = new Thread(() -> {
                    try {
                        start.await();
                        for (int i = 0; closing || i < iterations; i++) {
                            try {
                                float[][] out = (float[][]) run.invoke(null, handle, (Object) inputs[me]);
                                (java.util.Arrays.deepEquals(out, expected[me]) ? ok : wrong).incrementAndGet();
                            } catch (java.lang.reflect.InvocationTargetException e) {
                                if (closing && e.getCause() instanceof IllegalStateException) {
                                    closed.incrementAndGet();
                                    return;
                                }
                                errors.add(String.valueOf(e.getCause()));
                                return;
                            }
                        }
                    } catch (Exception e) {
                        errors.add(String.valueOf(e));
                    }
                });
                workers[t].setDaemon(true);
                workers[t].start();
            }
            if (closing) {
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (ok.get() + wrong.get() < threads * iterations / 2 && errors.isEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                close.invoke(null, handle);
            }
            int alive = 0;
            for (Thread w : workers) {
                w.join(120_000);
                if (w.isAlive()) alive++;
            }
            if (!closing) close.invoke(null, handle);
            System.out.println((closing ? "close-during-runs" : "concurrent-runs") + ": threads=" + threads
                    + " hung=" + alive
                    + " ok=" + ok.get() + " wrong=" + wrong.get() + " closed=" + closed.get()
                    + " errors=" + errors.size() + (errors.isEmpty() ? "" : " first=" + errors.peek()));
        }
    }

    /** args: --nan nativeClass model.tflite — runs inputs of NaN; prints "nan-input: ok" or the exception. */
    static void nanInput(String[] args) throws Exception {
        Class<?> nat = Class.forName(args[1]);
        long handle = openMapped(nat, args[2], 1);
        Method inputShape = nat.getMethod("inputShape", long.class, int.class);
        int nIn = (Integer) nat.getMethod("inputCount", long.class).invoke(null, handle);
        float[][] inputs = new float[nIn][];
        for (int i = 0; i < nIn; i++) {
            inputs[i] = new float[product((int[]) inputShape.invoke(null, handle, i))];
            java.util.Arrays.fill(inputs[i], Float.NaN);
        }
        try {
            nat.getMethod("run", long.class, float[][].class).invoke(null, handle, (Object) inputs);
            System.out.println("nan-input: ok");
        } catch (java.lang.reflect.InvocationTargetException e) {
            System.out.println("nan-input: " + e.getCause().getClass().getName() + ": " + e.getCause().getMessage());
        } finally {
            nat.getMethod("close", long.class).invoke(null, handle);
        }
    }

    /** Little-endian bytes of a primitive array as runTyped returns it: float32, int32, int64 or bool (1 byte). */
    static byte[] bytesOf(Object o) {
        if (o instanceof float[]) { float[] a = (float[]) o; ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN); for (float v : a) b.putFloat(v); return b.array(); }
        if (o instanceof int[]) { int[] a = (int[]) o; ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN); for (int v : a) b.putInt(v); return b.array(); }
        if (o instanceof long[]) { long[] a = (long[]) o; ByteBuffer b = ByteBuffer.allocate(8 * a.length).order(ByteOrder.LITTLE_ENDIAN); for (long v : a) b.putLong(v); return b.array(); }
        if (o instanceof boolean[]) { boolean[] a = (boolean[]) o; byte[] b = new byte[a.length]; for (int j = 0; j < a.length; j++) b[j] = (byte) (a[j] ? 1 : 0); return b; }
        throw new IllegalStateException("unexpected output array " + o.getClass());
    }

    /** Names written as int32 length + UTF-8 bytes each (big-endian), so a name may hold any character. */
    static java.util.List<String> readNames(Path file) throws IOException {
        java.util.List<String> names = new java.util.ArrayList<>();
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file)))) {
            while (in.available() > 0) {
                byte[] b = new byte[in.readInt()];
                in.readFully(b);
                names.add(new String(b, java.nio.charset.StandardCharsets.UTF_8));
            }
        }
        return names;
    }

{MAPPED}
    private static int product(int[] shape) { int n = 1; for (int d : shape) n *= d; return n; }
    private static int total(float[][] a) { int n = 0; for (float[] x : a) n += x.length; return n; }
}
"""


# The module's own load path, as its Classifier takes it on Android: the model file mapped read-only by the module's
# Kotlin (<Class>Native.mapModel: FileChannel.map of an open file at an offset, as of the APK at the asset's offset)
# and handed to its JNI core as that direct ByteBuffer (createFromBuffer), which the runtime reads in place.
MAPPED_OPEN_JAVA = r"""
    static long openMapped(Class<?> nat, String path, int threads) throws Exception {
        java.nio.ByteBuffer model;
        try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(path, "r")) {
            model = (java.nio.ByteBuffer) nat.getMethod("mapModel", java.io.FileDescriptor.class, long.class, long.class)
                    .invoke(null, file.getFD(), 0L, file.length());
        }
        // a direct copy is a MappedByteBuffer too (OpenJDK's DirectByteBuffer): the kernel's list says what is mapped
        String file = new java.io.File(path).getCanonicalPath();
        boolean mapped = false;
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get("/proc/self/maps"))) {
            mapped |= line.endsWith(" " + file);
        }
        if (!mapped) throw new IllegalStateException("mapModel did not memory-map " + file);
        return (Long) nat.getMethod("createFromBuffer", java.nio.ByteBuffer.class, int.class).invoke(null, model, threads);
    }
"""
RUNNER_JAVA = RUNNER_JAVA.replace("{MAPPED}\n", MAPPED_OPEN_JAVA)


def compile_runner(work: Path) -> tuple[Run, Path]:
    """(javac's run, the folder holding AndroidHostRunner.class): ``compiled_java`` of the runner."""
    return compiled_java("AndroidHostRunner", RUNNER_JAVA, work)


def compiled_java(class_name: str, source: str, work: Path, classpath: tuple[Path, ...] = ()) -> tuple[Run, Path]:
    """(javac's run, the folder holding ``class_name``.class) of a Java source of packager's own that reaches the
    module's classes by reflection only: one compile per source serves every build. It is kept under the tools
    folder (named by the source's hash; written to a temporary folder and renamed, so concurrent builds never see
    half a class), or compiled into ``work`` when the tools folder is read-only."""
    import hashlib

    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    kept = tools_dir() / "host-runner" / digest
    if (kept / f"{class_name}.class").is_file():
        return Run(0, ""), kept
    src = work / f"{class_name}.java"
    src.write_text(source, encoding="utf-8")
    out = work / "runner"
    cp = ["-cp", os.pathsep.join(map(str, classpath))] if classpath else []
    res = run([java_tools()["javac"], *(f"-J{o}" for o in QUICK_JVM), *cp, "-d", out, src])
    if res.returncode != 0:
        return res, out
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(shutil.copytree(out, kept.parent / f".{digest}.{os.getpid()}"))
        try:
            staging.rename(kept)
        except OSError:  # another build got there first
            shutil.rmtree(staging, ignore_errors=True)
        return res, kept if (kept / f"{class_name}.class").is_file() else out
    except OSError:
        return res, out


def stress_on_host(runner_dir: Path, classes_dir: Path, lib_dir: Path, native_class: str, model: Path,
                   threads: int, iterations: int) -> tuple[Run, dict[str, dict[str, int]]]:
    """The runner's ``--stress`` mode: ``threads`` threads calling ``run`` on one handle (``iterations`` each), then
    the same with the handle closed mid-way. Returns the run and, per phase ("concurrent-runs",
    "close-during-runs"), its counts: ok, wrong, closed, errors, hung."""
    res = run_on_host(runner_dir, classes_dir, lib_dir, ["--stress", native_class, str(model), str(threads),
                                                          str(iterations)])
    phases = {}
    for line in res.output.splitlines():
        name, _, rest = line.partition(": threads=")
        if rest:
            phases[name] = {k: int(v) for k, v in (kv.split("=", 1) for kv in rest.split()[1:] if "=" in kv)
                            if v.lstrip("-").isdigit()}
    return res, phases


def run_on_host(runner_dir: Path, classes_dir: Path, lib_dir: Path, args: list[str], timeout: float = 600,
                main: str = "AndroidHostRunner", jvm_args: tuple[str, ...] | list[str] = ()) -> Run:
    cp = os.pathsep.join(str(p) for p in (runner_dir, classes_dir, kotlin_stdlib(), kotlinx_coroutines(),
                                          android_stubs_jar()))
    return run([java_tools()["java"], *QUICK_JVM, *jvm_args, f"-Djava.library.path={lib_dir}", "-cp", cp, main,
                *args],
               timeout=timeout)


