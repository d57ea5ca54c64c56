"""kotlinc kept warm: one JVM per build that compiles the build's Android module before the model is even
loaded, then serves the build's compiles in the same JVM.

kotlinc spends most of a small compile starting up and JIT-compiling itself: on MobileNetV2's module a fresh run
takes ~7 CPU s, a second compile in the same JVM ~1.9. The build's first seconds (importing TensorFlow) run on one
core; ``start_ahead`` uses the other: a child Python renders the module from the build's settings and the signature
in the ``.keras`` file's config.json (``keras_config``; else a guess: one image in, one vector out), then becomes
the JVM (``exec``), which compiles that module (the warm-up) and then serves ``compile`` requests on its stdin. A
request for byte-identical sources takes the warm-up's result. ``compile_kotlin`` (here) uses the build's
server when there is one and the plain ``kotlinc`` when there is none or it broke.

Protocol (bytes): a request is the compiler's arguments, each ended by NUL, then an empty argument (one more NUL);
the reply is ``<exit code> <byte count>\\n`` then the compiler's messages (UTF-8).
"""

from __future__ import annotations

import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from packager.targets.android.host import tools as host
from packager.targets.android.host.jvm_runner import compiled_java

SERVER_JAVA = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** packager's warm kotlinc: compiles the arguments it is started with (the warm-up), then one request at a time
 *  from stdin (arguments ended by NUL, the request by an empty one); replies "<exit code> <bytes>\n" + messages
 *  to each, the warm-up included. */
public class KotlincServer {
    public static void main(String[] warmup) throws Exception {
        OutputStream reply = new BufferedOutputStream(new FileOutputStream(FileDescriptor.out));
        InputStream in = new BufferedInputStream(new FileInputStream(FileDescriptor.in));
        List<String> args = List.of(warmup);  // answered like a request (the build may reuse its result)
        while (args != null) {
            ByteArrayOutputStream messages = new ByteArrayOutputStream();
            int code = compile(args.toArray(new String[0]), messages);
            reply.write((code + " " + messages.size() + "\n").getBytes(StandardCharsets.UTF_8));
            messages.writeTo(reply);
            reply.flush();
            args = request(in);
        }
    }

    static List<String> request(InputStream in) throws IOException {
        List<String> args = new ArrayList<>();
        ByteArrayOutputStream arg = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) != -1) {
            if (b != 0) { arg.write(b); continue; }
            if (arg.size() == 0) return args;
            args.add(arg.toString(StandardCharsets.UTF_8));
            arg.reset();
        }
        return null;
    }

    static int compile(String[] args, ByteArrayOutputStream messages) {
        PrintStream sink = new PrintStream(messages, true, StandardCharsets.UTF_8);
        PrintStream out = System.out, err = System.err;
        System.setOut(sink);
        System.setErr(sink);
        try {
            Class<?> k = Class.forName("org.jetbrains.kotlin.cli.jvm.K2JVMCompiler");
            Object compiler = k.getConstructor().newInstance();
            Object code = k.getMethod("exec", PrintStream.class, String[].class).invoke(compiler, sink, (Object) args);
            return (Integer) code.getClass().getMethod("getCode").invoke(code);
        } catch (Throwable t) {
            t.printStackTrace(sink);
            return 3;
        } finally {
            sink.flush();
            System.setOut(out);
            System.setErr(err);
        }
    }
}
"""

REUSED = ("compiled ahead, while TensorFlow was imported, from sources rendered before the model was loaded and "
          "byte-identical to these")
_lock = threading.Lock()
_ahead: KotlincServer | None = None


class KotlincServer:
    def __init__(self, proc: subprocess.Popen, folder: Path):
        self._proc, self._folder, self._owner = proc, folder, os.getpid()
        self._lock = threading.Lock()
        self._warm: tuple[host.Run, list[str]] | None = None  # the warm-up's answer and arguments, once read
        self.broken = False

    def compile(self, args: list, timeout: float = 600) -> host.Run | None:
        """kotlinc ``args`` in the warm JVM; None if the server is not usable (the caller runs kotlinc). When
        the warm-up compiled the same sources (same names, same bytes, same class path), its classes and
        messages are the answer (``-d``'s folder gets a copy)."""
        args = [str(a) for a in args]
        with self._lock:
            if self.broken or self._proc.poll() is not None and self._warm is None:
                return None
            try:
                if self._warm is None:
                    self._warm = (self._reply(timeout),
                                  (self._folder / "warmup.args").read_text(encoding="utf-8").split("\0")[:-1])
                (warm_run, warm_args) = self._warm
                swaps = same_inputs(warm_args, args)
                if swaps is not None:
                    shutil.copytree(self._folder / "classes", args[args.index("-d") + 1], dirs_exist_ok=True)
                    return host.Run(warm_run.returncode, _swapped(warm_run.output, swaps), REUSED)
                self._proc.stdin.write(b"".join(a.encode() + b"\0" for a in args) + b"\0")
                self._proc.stdin.flush()
                return self._reply(timeout)
            except (OSError, ValueError, TimeoutError):
                self.broken = True
                return None

    def _reply(self, timeout: float) -> host.Run:
        code, count = (int(v) for v in _read_line(self._proc.stdout, timeout).split())
        return host.Run(code, _read_exact(self._proc.stdout, count, timeout).decode(errors="replace").strip())

    def close(self) -> None:
        if os.getpid() != self._owner:  # a forked worker's copy: the JVM is its parent's
            return
        _close_pipes(self._proc)
        self._proc.kill()  # not left to finish what it is compiling
        self._proc.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def same_inputs(warm: list[str], real: list[str]) -> dict[str, str] | None:
    """{warm-up path: real path} when ``real`` compiles what ``warm`` compiled: argument for argument the same
    text, or files of the same name and bytes (class path entries one by one); the output folder may differ."""
    if len(warm) != len(real):
        return None
    swaps: dict[str, str] = {}
    for i, (w, r) in enumerate(zip(warm, real)):
        if w == r or (i and real[i - 1] == "-d"):
            continue
        ws, rs = (w.split(os.pathsep), r.split(os.pathsep)) if i and real[i - 1] == "-cp" else ([w], [r])
        if len(ws) != len(rs):
            return None
        for a, b in zip(ws, rs):
            if a == b:
                continue
            if not _same_file(Path(a), Path(b)):
                return None
            swaps[a] = b
    return swaps


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.name == b.name and a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _swapped(text: str, swaps: dict[str, str]) -> str:
    for warm in sorted(swaps, key=len, reverse=True):
        text = text.replace(warm, swaps[warm])
    return text


def _read_line(stream, timeout: float) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += _read_exact(stream, 1, timeout)
    return line


def _read_exact(stream, count: int, timeout: float) -> bytes:
    data = b""
    fd = stream.fileno()
    while len(data) < count:
        if not select.select([fd], [], [], timeout)[0]:
            raise TimeoutError("kotlinc server did not answer")
        chunk = os.read(fd, count - len(data))
        if not chunk:
            raise OSError("kotlinc server ended")
        data += chunk
    return data


def compile_kotlin(sources: list[Path], classes_dir: Path, extra_classpath: tuple[Path, ...] = ()) -> host.Run:
    """kotlinc the module's Kotlin sources against the Android API stubs (compile-only classpath) and
    ``extra_classpath`` (e.g. the compiled module and test API stubs, for src/androidTest)."""
    classes_dir.mkdir(parents=True, exist_ok=True)
    args = host.kotlinc_args(sources, classes_dir, extra_classpath)
    server = current()  # the build's warm kotlinc, if it started one
    done = server.compile(args) if server is not None else None
    return done or host.run([host.kotlinc(), *args], env={"JAVA_OPTS": os.environ.get("JAVA_OPTS") or host.kotlinc_jvm_options()})


# the child that renders the module, then becomes the JVM (it imports the module checks, which import this)
CHILD = "packager.targets.android.warm_kotlinc"


def start_ahead(spec):
    """Start this build's warm kotlinc (see the module's docstring); returns what closes it (``close_ahead``), or
    None when the tools are missing. A server that fails later is simply not used."""
    global _ahead
    try:
        host.kotlinc(), host.android_stubs_jar(), host.java_tools()
    except Exception:
        return None
    folder = Path(tempfile.mkdtemp(prefix="packager-kotlinc-"))
    try:
        (folder / "spec.pickle").write_bytes(pickle.dumps(spec))
        root = str(Path(__file__).resolve().parents[4])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.Popen(host.lower_priority([sys.executable, "-m", CHILD, str(folder)]), env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    with _lock:
        _ahead = KotlincServer(proc, folder)
    return close_ahead


def current() -> KotlincServer | None:
    """This build's warm kotlinc, in the process that started it."""
    with _lock:
        return _ahead if _ahead is not None and _ahead._owner == os.getpid() else None


def _forget_in_child() -> None:
    """A fork of the build (its worker) drops its copy of the server's pipes: the JVM then sees its stdin end
    when the build does, not when the last fork does."""
    global _ahead, _lock
    server, _ahead, _lock = _ahead, None, threading.Lock()
    if server is not None:
        _close_pipes(server._proc)


def _close_pipes(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def close_ahead() -> None:
    global _ahead
    with _lock:
        server, _ahead = _ahead, None
    if server is not None:
        server.close()


def _server_command(server_dir: Path, compile_args: list[str]) -> tuple[str, list[str]]:
    """(java, its argv): the server JVM, which compiles ``compile_args`` first."""
    kotlin_home = host.kotlinc().parent.parent
    java = host.java_tools()["java"]
    return java, [java, *host.kotlinc_jvm_options(class_archive(server_dir)).split(), f"-Dkotlin.home={kotlin_home}",
                  "-cp", os.pathsep.join([str(_jar(server_dir)), str(kotlin_home / "lib" / "kotlin-compiler.jar")]),
                  "KotlincServer", *compile_args]


def _jar(server_dir: Path) -> Path:
    """The server's class in a jar beside it: a class-data-sharing archive takes no folder on the class path."""
    jar = server_dir / "KotlincServer.jar"
    if not jar.is_file():
        part = server_dir / f".KotlincServer.{os.getpid()}.jar"
        with zipfile.ZipFile(part, "w") as zf:
            zf.writestr(zipfile.ZipInfo("KotlincServer.class", date_time=(1980, 1, 1, 0, 0, 0)),
                        (server_dir / "KotlincServer.class").read_bytes())
        part.replace(jar)
    return jar


def class_archive(server_dir: Path) -> Path:
    """The server JVM's class-data-sharing archive (its class path names the server's folder, hence the name)."""
    return host.tools_dir() / "kotlin-compiler" / f"kotlinc-server-{server_dir.name}.jsa"


def write_class_archive(kotlin_file: Path) -> Path:
    """Written by .ci/setup-android.sh: one warm-up compile of ``kotlin_file``, the classes loaded then archived
    at the JVM's exit. A missing or stale archive only costs start-up time."""
    with tempfile.TemporaryDirectory() as tmp:
        res, server_dir = compiled_java("KotlincServer", SERVER_JAVA, Path(tmp))
        if res.returncode != 0:
            raise RuntimeError(f"javac of the kotlinc server failed: {res.output}")
        archive = class_archive(server_dir)
        if archive.is_file() and all(archive.stat().st_mtime > Path(p).resolve().stat().st_mtime
                                     for p in (host.kotlinc(), host.java_tools()["java"])):
            return archive
        _, argv = _server_command(server_dir, host.kotlinc_args([kotlin_file], Path(tmp) / "out"))
        part = archive.with_suffix(".tmp")
        argv.insert(1, f"-XX:ArchiveClassesAtExit={part}")
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not part.is_file():
            raise RuntimeError(f"the kotlinc server's class archive was not written: {done.stdout}{done.stderr}")
        part.replace(archive)
    return archive

