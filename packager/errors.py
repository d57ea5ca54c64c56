"""The one error hierarchy. Each class carries the process exit code the CLI uses for it."""

from __future__ import annotations


class PackagerError(Exception):
    """Base error: a message saying what is wrong, where, and a hint saying how to fix it."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        lines = [f"{self.kind}: {self.message}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.hint:
            lines.append(f"  fix:   {self.hint}")
        return "\n".join(lines)


class UsageError(PackagerError):
    """Bad command line or config file (flag, key, value)."""

    exit_code = 2
    kind = "usage error"


class InputError(PackagerError):
    """Bad input data: model file, sample set, labels."""

    exit_code = 3
    kind = "input error"


class OutputError(PackagerError):
    """The output folder cannot be written (exists, is a file, not writable)."""

    exit_code = 3
    kind = "output error"


class ConversionError(PackagerError):
    """A converter rejected the model for a target. ``by_products``: the other modes' models converted on the way
    before it failed ({mode: the target's artifact}; android's mixed converts dynamic and fp16 for its bound), so
    that ``auto`` does not convert them again (``modes.convert_once``)."""

    exit_code = 4
    kind = "conversion error"
    by_products: dict | None = None


class ToolMissing(PackagerError):
    """An external tool (JDK, Chromium, kotlinc...) is not available; dependent checks are SKIPPED."""

    exit_code = 7
    kind = "tool missing"


class MemoryShortage(PackagerError):
    """The machine's free memory cannot hold the build (estimated from the weights, before converting)."""

    exit_code = 8
    kind = "not enough memory"


def short_reason(e: BaseException | None) -> str:
    """The first line of an exception's message (or its type), at most 300 characters."""
    text = str(e).strip().splitlines()[0] if e and str(e).strip() else type(e).__name__
    return text[:300]


class DiskFull(OutputError):
    """A write failed with ENOSPC/EDQUOT: the message names the full device."""


def _mount_of(path: str) -> str:
    import os

    mount = os.path.abspath(path)
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    return mount


def disk_full(e: BaseException, candidates: tuple = ()) -> DiskFull | None:
    """A DiskFull naming the full device for an ``ENOSPC``/``EDQUOT`` OSError (else None). Without a file name in
    the error, the fullest device among ``candidates`` (e.g. --out, TMPDIR) is named."""
    import errno
    import os

    if isinstance(e, DiskFull):
        e = e.__cause__ or e
    if not isinstance(e, OSError) or e.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    # shutil's copies set filename = the source and filename2 = the destination being written (the full device)
    path = e.filename2 or e.filename
    if not path:
        existing = []
        for c in candidates:
            p = os.path.abspath(str(c))
            while not os.path.exists(p):
                p = os.path.dirname(p)
            existing.append((os.statvfs(p).f_bavail, str(c), p))
        if existing:
            _, path, probe = min(existing)
            mount = _mount_of(probe)
        else:
            mount = None
    else:
        mount = _mount_of(str(path))
    where = f"the device mounted at {mount} (holding {path})" if mount else "the device"
    what = "no space left on" if e.errno == errno.ENOSPC else "disk quota exceeded on"
    err = DiskFull(f"{what} {where}", where=str(path) if path else None,
                   hint="free some space there (or point TMPDIR / --out at a bigger disk) and run again; "
                        "nothing was written to --out")
    err.__cause__ = e
    return err


# Exit codes of a finished build (no exception): documented in --help and README.
EXIT_OK = 0
EXIT_VALIDATION_FAILED = 5  # at least one target FAIL
EXIT_UNVERIFIED = 6  # no target failed, but at least one could not be verified here
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "every built target passed",
    UsageError.exit_code: "usage error: bad flag, config key or value",
    InputError.exit_code: "input error: bad model, samples, labels or output folder",
    ConversionError.exit_code: "a target failed to convert (other targets are still built and reported)",
    EXIT_VALIDATION_FAILED: "a target's predictions drifted past its gates (FAIL)",
    EXIT_UNVERIFIED: "no target failed, but a target could not be executed here (UNVERIFIED)",
    MemoryShortage.exit_code: "not enough free memory for the build (estimated before converting)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); no output folder was written",
}
