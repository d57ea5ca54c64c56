"""A second Python process that builds whole targets, so that two targets convert at the same time.

TensorFlow's converters, coremltools and the TF.js converter hold the GIL for most of their work, so threads
do not overlap them; a process does. The worker is started when the build starts, imports the converters
while the main process loads and exports the model, and then builds the targets handed to it (convert,
validate, render, checks) from the shared SavedModel export.

On Linux, once this process has imported TensorFlow (and started no thread but OpenBLAS's, which handles a fork),
it is a fork of this process: it starts with TensorFlow loaded (importing it again cost ~3.4 CPU s of the P1
build) and runs no code of the caller's ``__main__``. Elsewhere (or before TensorFlow is loaded) it is a plain
``python -c`` child (not multiprocessing, which would re-import the caller's ``__main__``). Either way it runs the
same packager code as the parent and talks over two pipes with pickled messages:

    parent -> worker   ("job", id, function name, args) ... ("exit",)
    worker -> parent   ("line", level, text) | ("done", id, result) | ("error", id, text)

Progress lines come back and are printed by the main process. The worker ignores Ctrl-C; the main process
kills it on any early exit, and it exits by itself when the main process's end of the pipe closes.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

from packager.checks import FAIL
from packager.frameworks import import_tensorflow, tfjs_saved_model_converter
from packager.progress import Progress

ENV_SWITCH = "PACKAGER_WORKER"  # "0": build every target in the main process
WARM_UP_TIMEOUT = 300  # seconds; importing TensorFlow and coremltools takes about 4 here
# The worker's NumPy (the Core ML executor) runs while the main process converts on the other core: one BLAS
# thread, or two BLAS threads spin against the converter and an image takes about 3x longer.
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_targets(order: list[str]) -> list[str]:
    """The targets the worker builds: the first in processing order, when there are two or more targets
    and two or more CPUs (on one CPU a second process only adds its start-up)."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or len(order) < 2 or (os.cpu_count() or 1) < 2:
        return []
    return order[:1]


class WorkerFailed(Exception):
    """The worker process died, or a job could not be sent to it or run in it."""


class TargetWorker:
    def __init__(self, names: list[str], progress: Progress):
        self._progress = progress
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            if can_fork():
                self._proc = _Forked(to_child_r, from_child_w, to_child_w, from_child_r, bool(progress.verbose))
            else:
                code_root = str(Path(__file__).resolve().parents[1])  # the parent's packager, whatever sys.path says
                boot = (f"import sys; sys.path.insert(0, {code_root!r}); from packager.worker import serve; "
                        f"serve({to_child_r}, {from_child_w}, {bool(progress.verbose)}, {os.getpid()})")
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", boot], pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                    stdout=None if progress.verbose else subprocess.DEVNULL,  # stray prints of the converters
                    env={**os.environ, **BLAS_THREADS}, start_new_session=False)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send_conn = Connection(to_child_w, readable=False)
        self._recv_conn = Connection(from_child_r, writable=False)
        self._reader = threading.Thread(target=self._read, name="packager-worker", daemon=True)
        self._reader.start()
        self._warm = self._call("_warm_up", tuple(names))

    def warm_facts(self) -> dict:
        """What the warm-up read in the worker ({} if it failed)."""
        try:
            return self._warm.result(timeout=WARM_UP_TIMEOUT)
        except Exception:  # failed or stuck: the caller reads what it needs itself
            return {}

    def build(self, name: str, spec, source, samples, reference: dict, workdir: Path, staging: Path) -> Future:
        """A Future of the finished TargetResult. Raises WorkerFailed if the job cannot be handed over."""
        state = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)
                 if f.name not in ("keras_model", "samples")}
        remote = self._call("_build_target", name, spec, state, samples, reference, workdir, staging)
        done: Future = Future()

        def finish(f: Future) -> None:
            try:
                done.set_result(f.result())
            except Exception as e:  # the worker died while building: the target fails, the others go on
                from packager.report import TargetResult

                done.set_result(TargetResult(name, FAIL, quantization=spec.quantization.get(name, ""),
                                             reason=f"the worker process building {name} failed: {e}"))

        remote.add_done_callback(finish)
        return done

    def no_more_jobs(self) -> None:
        """The worker exits once its queued jobs are done, while the main process finishes its own work."""
        try:
            self._send_conn.send(("exit",))
        except OSError:
            pass

    def close(self, *, kill: bool = False) -> None:
        if kill:  # an error or Ctrl-C in the main process: do not wait for a conversion to finish
            self._proc.kill()
        else:
            self.no_more_jobs()
        try:
            self._proc.wait(timeout=None if not kill else 10)
        finally:
            self._send_conn.close()
            self._reader.join(timeout=5)
            self._recv_conn.close()

    def _call(self, function: str, *args) -> Future:
        future: Future = Future()
        with self._lock:
            job = self._next_id
            self._next_id += 1
            self._futures[job] = future
            try:
                self._send_conn.send(("job", job, function, args))
            except (OSError, ValueError) as e:  # the worker is gone, or an argument cannot be pickled
                del self._futures[job]
                raise WorkerFailed(f"cannot hand {function} to the worker process: {type(e).__name__}: {e}") from e
        return future

    def _read(self) -> None:
        while True:
            try:
                msg = self._recv_conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "line":
                (self._progress.debug if msg[1] == "debug" else self._progress.info)(msg[2])
                continue
            with self._lock:
                future = self._futures.pop(msg[1], None)
            if future is None:
                continue
            if msg[0] == "done":
                future.set_result(msg[2])
            else:
                future.set_exception(WorkerFailed(msg[2]))
        code = self._proc.poll()
        with self._lock:
            left, self._futures = list(self._futures.values()), {}
        for future in left:
            future.set_exception(WorkerFailed(f"it exited (code {code})" if code is not None else "it stopped"))


def can_fork() -> bool:
    """Fork the worker: Linux, TensorFlow imported here (the worker then has it), and no thread of this process
    but the main one and OpenBLAS's pool (pthread_atfork-safe), so that no lock is held by a thread the child lacks."""
    if not sys.platform.startswith("linux") or "tensorflow" not in sys.modules or os.environ.get(ENV_FORK, "1") == "0":
        return False
    if threading.active_count() != 1:
        return False
    try:
        names = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    except OSError:
        return False
    main = Path("/proc/self/comm").read_text().strip()
    return names.count(main) == len(names)  # OpenBLAS's threads carry the process's name; TF's have their own


ENV_FORK = "PACKAGER_WORKER_FORK"  # "0": start the worker as a new Python process even where it could be forked


class _Forked:
    """The worker as a fork of this process, with the Popen methods TargetWorker uses."""

    def __init__(self, read_fd: int, write_fd: int, parent_write: int, parent_read: int, verbose: bool):
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller's code (its finally blocks, atexit)
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (interrupt.install)
                os.close(parent_write)
                os.close(parent_read)
                if not verbose:  # stray prints of the converters
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 1)
                from threadpoolctl import threadpool_limits

                threadpool_limits(limits=1, user_api="blas")  # BLAS_THREADS, for a process already started
                serve(read_fd, write_fd, verbose, parent)
                code = 0
            finally:
                os._exit(code)
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---- in the worker process ------------------------------------------------------------------------------


class _PipeProgress(Progress):
    def __init__(self, conn: Connection, lock: threading.Lock, verbose: bool):
        super().__init__(verbose=verbose)
        self._conn, self._lock = conn, lock

    def info(self, msg: str) -> None:
        with self._lock:
            self._conn.send(("line", "info", msg))

    def debug(self, msg: str) -> None:
        if self.verbose:
            with self._lock:
                self._conn.send(("line", "debug", msg))


def _die_with_parent(parent: int) -> None:
    """Linux: be killed when the main process dies, even in the middle of a job (it may be killed itself)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def serve(read_fd: int, write_fd: int, verbose: bool, parent: int) -> None:
    """The worker's loop: run jobs one at a time until "exit" or the end of the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and kills this one
    _die_with_parent(parent)
    if not verbose:
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
    recv, send = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    lock = threading.Lock()
    progress = _PipeProgress(send, lock, verbose)
    jobs = {"_warm_up": _warm_up, "_build_target": _build_target}
    while True:
        try:
            msg = recv.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "job":
            return
        _, job, function, args = msg
        try:
            reply = ("done", job, jobs[function](progress, *args))
        except BaseException as e:
            progress.debug(traceback.format_exc())
            reply = ("error", job, f"{type(e).__name__}: {str(e)[:400]}")
        with lock:
            try:
                send.send(reply)
            except Exception as e:  # a result that does not pickle
                send.send(("error", job, f"cannot return the result: {type(e).__name__}: {e}"))


def _coremltools() -> None:
    import coremltools  # noqa: F401


_IMPORTS = {"android": (import_tensorflow,), "ios": (import_tensorflow, _coremltools),
            "web": (tfjs_saved_model_converter,)}


def _warm_up(progress: Progress, names: tuple[str, ...]) -> dict:
    """Import the converters now, while the main process is still loading and exporting the model.
    Returns what the main process's op preflight needs from them (coremltools' TF op list)."""
    from packager import target_build  # noqa: F401  (what a job runs, imported before the first job)

    for name in names:
        for load in _IMPORTS.get(name, ()):
            try:
                load()
            except Exception:  # the target's own conversion reports a missing converter properly
                pass
    found = {}
    if "ios" in names:
        from packager.preflight import coreml_tf_ops

        try:
            found["coreml_ops"] = coreml_tf_ops()
        except Exception:  # preflight in the main process reads it (and reports the error) itself
            pass
    return found


class _Inline:
    """An executor that runs the job at once (the worker has nothing else to overlap its checks with)."""

    def submit(self, fn, *args, **kwargs) -> Future:
        f: Future = Future()
        f.set_result(fn(*args, **kwargs))
        return f


def _build_target(progress: Progress, name: str, spec, state: dict, samples, reference: dict, workdir: Path,
                  staging: Path):
    from packager.source import Source
    from packager.target_build import build_target, finish

    source = Source(**state, keras_model=None, samples=samples)
    return finish(build_target(name, spec, source, samples, reference, workdir, staging, progress, _Inline()))
