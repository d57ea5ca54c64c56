"""A headless Chromium launched ahead of its use, in a thread of its own that then runs the browser work handed to it.

The web target starts one when the build starts to load the model (its ``prepare``): Playwright's driver and the
browser start while the model loads and converts (4-5 s under a build's load, which otherwise waited after the
conversion), and the page checks run in this thread later (Playwright's sync API works only in the thread that
started it), where the first ``browser.chromium_profile()`` is the browser launched ahead. If it could not be
launched (no Chromium here, say), the work runs all the same and meets the error itself.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future


class BrowserHost:
    def __init__(self):
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="packager-browser", daemon=True)
        self._thread.start()

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` run in the host's thread (in the caller's once the host is closed); its result
        (or its exception, raised here)."""
        future: Future = Future()
        with self._lock:
            queued = not self._closed
            if queued:  # before the end-of-work mark: the thread runs it
                self._jobs.put((future, fn, args, kwargs))
        return future.result() if queued else fn(*args, **kwargs)

    def close(self) -> None:
        """Close the browser if no work used it; wait for the thread (after the work handed to it)."""
        with self._lock:
            self._closed = True
            self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        from packager.targets.web.browser import chromium as browser

        try:
            with browser.launched_ahead():
                self._run_jobs()
        except BaseException:  # not launched (or not closed cleanly): the jobs run without it and report it
            self._run_jobs()

    def _run_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._jobs.put(None)  # seen again by the outer loop after a failed launch
                return
            future, fn, args, kwargs = job
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:
                future.set_exception(e)
