"""Ctrl-C that cannot get lost.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a callback that C code
calls (TensorFlow's calibration generator, a garbage-collection hook of jax) it is printed as "Exception ignored"
and dropped, and the build would go on, with a model calibrated on part of the samples. The handler installed
here also records the interrupt; ``check()`` raises it again at stage boundaries and before the output folder is
moved into place, so an interrupted build never writes its output and exits with the interrupt's code.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

_seen = threading.Event()


def install() -> None:
    """Record every SIGINT (and SIGTERM) of this process (main thread only; elsewhere Python cannot install handlers)."""
    _seen.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigint)  # CI cancel, `timeout`: cleaned up like Ctrl-C
    if getattr(sys.unraisablehook, "__module__", None) != __name__:
        _previous_hook[0] = sys.unraisablehook
        sys.unraisablehook = _unraisable


_previous_hook = [sys.unraisablehook]


def _unraisable(info) -> None:
    """An interrupt raised where Python can only print it ("Exception ignored in ..."): not printed, since
    ``check()`` raises it again; anything else as Python prints it."""
    if isinstance(info.exc_value, KeyboardInterrupt) and _seen.is_set():
        return
    _previous_hook[0](info)


def _on_sigint(signum, frame) -> None:
    _seen.set()
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if one arrived, even if it was swallowed where it was first raised."""
    if _seen.is_set():
        raise KeyboardInterrupt


def seen() -> bool:
    """Whether this process is being interrupted: a SIGINT/SIGTERM arrived, or a KeyboardInterrupt is propagating
    through the caller (call it from a ``finally`` block)."""
    return _seen.is_set() or isinstance(sys.exc_info()[1], KeyboardInterrupt)


@contextmanager
def deferred():
    """SIGINT and SIGTERM held back while the block runs, then raised (KeyboardInterrupt) right after it: for steps
    that must happen all or none, such as moving the output into place and recording that it was. A handler that
    only records the signal, not a blocked signal mask: the kernel may hand a process-directed signal to any thread
    (TensorFlow's, a pool's), and Python runs its handlers in the main thread whichever caught it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum, frame) -> None:
        arrived.append(signum)
        _seen.set()

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if arrived and sys.exc_info()[1] is None:
            raise KeyboardInterrupt
