"""The module's classifier loading (issue 27), run on this host's JVM from the module's own compiled Kotlin and its
JNI core on LiteRT's C API (libLiteRt.so of the ai-edge-litert wheel):

- ``create()`` is cancellable: it suspends through the module's ``loadCancellably``; a caller cancelled during a
  slow load gets CancellationException at once, and the native classifier the load then makes is closed, never
  left open; the same when the load finished but the caller was cancelled before it could take the result; a
  normal load returns an open classifier.
- The model is memory-mapped: the module's ``<Class>Native.mapModel`` maps the file (on Android the APK at the
  asset's offset) and ``createFromBuffer`` runs the model from that direct buffer; the compressed-asset fallback
  (a direct copy) runs too; a heap buffer is refused with a clear IllegalArgumentException.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_android_module import MODEL_ASSET, make_spec, needs_tools, render, tiny  # noqa: F401  (tiny: a fixture)

from packager.checks import PASS
from packager.targets.android import metadata as tflite_metadata
from packager.targets.android import module as am

pytestmark = [pytest.mark.slow, needs_tools]

PROBE = """
import com.example.tiny_net_q.TinyNetQNative
import com.example.tiny_net_q.loadCancellably
import java.io.File
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield

val closes = AtomicInteger()

/** A native classifier as the probe loads it: the handle and a close counter. */
class Loaded(val handle: Long) : AutoCloseable {
    override fun close() {
        closes.incrementAndGet()
        TinyNetQNative.close(handle)
    }
}

/** The module's load path: the model file mapped by its Kotlin, run from that buffer by its JNI core. */
fun openMapped(model: String): Long = RandomAccessFile(model, "r").use {
    TinyNetQNative.createFromBuffer(TinyNetQNative.mapModel(it.fd, 0L, it.length()), 1)
}

/** Whether the native registry still holds the handle (a closed one throws IllegalStateException). */
fun isOpen(handle: Long): Boolean = try {
    TinyNetQNative.inputCount(handle)
    true
} catch (e: IllegalStateException) {
    false
}

fun settle(made: Collection<Long>) {
    val deadline = System.nanoTime() + 20_000_000_000L
    while (made.any { isOpen(it) } && System.nanoTime() < deadline) Thread.sleep(10)
}

fun main(args: Array<String>) {
    val model = args[0]

    // 1. Cancelled while a slow load runs: the caller returns at once; the classifier made later is closed.
    val made = ConcurrentLinkedQueue<Long>()
    val started = CountDownLatch(1)
    val loaded = CountDownLatch(1)
    var delivered = false
    runBlocking {
        val job = launch(Dispatchers.Default) {
            loadCancellably("probe-load") {
                started.countDown()
                Thread.sleep(800)
                Loaded(openMapped(model)).also { made.add(it.handle); loaded.countDown() }
            }
            delivered = true
        }
        started.await()
        job.cancel()
        job.join()
    }
    println("slow-load: caller-returned-before-load-ended=" + made.isEmpty())
    loaded.await(30, TimeUnit.SECONDS)
    settle(made)
    println("slow-load: made=" + made.size + " delivered=" + delivered + " open=" + made.count { isOpen(it) })

    // 2. The load finished and resumed the caller, which is cancelled before it runs again (its thread is busy).
    val made2 = ConcurrentLinkedQueue<Long>()
    var delivered2 = false
    val go = CountDownLatch(1)
    runBlocking {
        val job = launch { // the same single-threaded event loop as runBlocking
            loadCancellably("probe-load") { go.await(); Loaded(openMapped(model)).also { made2.add(it.handle) } }
            delivered2 = true
        }
        yield() // the job starts and suspends in loadCancellably (its load cannot end before go: on a loaded host
        go.countDown() // a load that ended first would resume the job before it suspended, a normal delivery)
        val deadline = System.nanoTime() + 30_000_000_000L
        while (made2.isEmpty() && System.nanoTime() < deadline) Thread.sleep(5) // keeps the loop's thread busy
        Thread.sleep(100) // the loader has resumed the job; its dispatch waits for this thread
        job.cancel()
        job.join()
    }
    settle(made2)
    println("ready-then-cancelled: made=" + made2.size + " delivered=" + delivered2 + " open=" + made2.count { isOpen(it) })

    // 3. A normal load returns an open classifier.
    val normal = runBlocking { loadCancellably("probe-load") { Loaded(openMapped(model)) } }
    println("normal: open=" + isOpen(normal.handle) + " inputs=" + TinyNetQNative.inputCount(normal.handle))
    normal.close()
    println("normal-closed: open=" + isOpen(normal.handle) + " closes=" + closes.get())

    // 4. The compressed-asset fallback (a direct copy) runs; a heap buffer is refused.
    val bytes = File(model).readBytes()
    val copy = TinyNetQNative.createFromBuffer(ByteBuffer.allocateDirect(bytes.size).put(bytes).apply { flip() }, 1)
    println("direct-copy: inputs=" + TinyNetQNative.inputCount(copy))
    TinyNetQNative.close(copy)
    try {
        TinyNetQNative.createFromBuffer(ByteBuffer.wrap(bytes), 1)
        println("heap-buffer: accepted")
    } catch (e: IllegalArgumentException) {
        println("heap-buffer: " + e.message)
    }
}
"""


def _compiled(tiny, tmp_path: Path):  # noqa: F811
    source, artifact, _, _ = tiny
    out = render(tiny, tmp_path / "android")
    ctx = am.module_context(make_spec(), source, tflite_metadata.signature_io_names(Path(artifact.path)))
    compiled = am.compile_code(ctx, out, tmp_path / "work")
    assert compiled.checks[0].status == PASS, compiled.checks[0].detail
    assert compiled.host_error is None, compiled.host_error
    return out, compiled


def run_probe(out: Path, compiled, work: Path) -> str:
    """kotlinc the probe against the module's classes (a friend of its module: loadCancellably is internal) and run
    it on this JVM with the module's host JNI core."""
    from packager.targets.android.host import jvm_runner as jvm
    from packager.targets.android.host import tools as host

    work.mkdir(parents=True, exist_ok=True)
    (work / "Probe.kt").write_text(PROBE, encoding="utf-8")
    cp = ":".join(map(str, (compiled.classes, host.kotlinx_coroutines(), host.android_stubs_jar())))
    res = host.run([host.kotlinc(), "-jvm-target", "17", "-cp", cp, f"-Xfriend-paths={compiled.classes}",
                    "-d", work / "probe", work / "Probe.kt"])
    assert res.returncode == 0, res.output
    res = host.run([host.java_tools()["java"], *jvm.QUICK_JVM, f"-Djava.library.path={compiled.lib_dir}",
                    "-cp", f"{work / 'probe'}:{cp}:{host.kotlin_stdlib()}", "ProbeKt", out / MODEL_ASSET],
                   timeout=300)
    assert res.returncode == 0, res.output
    return res.output


def test_create_is_cancellable_and_the_model_is_mapped(tiny, tmp_path):  # noqa: F811
    out, compiled = _compiled(tiny, tmp_path)
    kt = next((out / "src/main/java").rglob("*Classifier.kt")).read_text(encoding="utf-8")
    assert 'return loadCancellably("TinyNetQClassifier.create") { TinyNetQClassifier(app, threads) }' in kt
    assert "createFromBuffer(modelBuffer(context), threads)" in kt and "openFd(MODEL_ASSET)" in kt

    lines = set(run_probe(out, compiled, tmp_path / "probe").splitlines())
    for want in ("slow-load: caller-returned-before-load-ended=true",
                 "slow-load: made=1 delivered=false open=0",  # the classifier made after the cancel was closed
                 "ready-then-cancelled: made=1 delivered=false open=0",
                 "normal: open=true inputs=1", "normal-closed: open=false closes=3",
                 "direct-copy: inputs=1"):
        assert want in lines, (want, sorted(ln for ln in lines if not ln.startswith("INFO")))  # the probe's own
    assert any(ln.startswith("heap-buffer: the model must be a non-empty direct ByteBuffer") for ln in lines), lines
