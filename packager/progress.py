"""Console progress on stderr: one line per stage with its duration; --quiet and --verbose."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from packager import interrupt


class Progress:
    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream=None):
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.timings: dict[str, float] = {}

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=self.stream, flush=True)

    def debug(self, msg: str) -> None:
        if self.verbose and not self.quiet:
            print(f"  . {msg}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str):
        self.info(f"==> {name} ...")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.timings[name] = dt
            if not self.quiet:
                print(f"    {name}: {dt:.1f}s", file=self.stream, flush=True)
        interrupt.check()  # one that a library swallowed during the stage


SILENT = Progress(quiet=True)
