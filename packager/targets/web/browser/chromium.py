"""Run web bundles for real: a static server confined to one folder (``static_server``), and headless Chromium.

``chromium()`` launches Debian's Chromium through Playwright with the flags that
work on a machine without network or GPU, in a fresh profile; both clean up on any exit, including
exceptions and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator

from packager import interrupt
from packager.errors import ToolMissing
from packager.targets.web.browser.static_server import (  # noqa: F401  (re-exported: part of this module's API)
    ISOLATION_HEADERS,
    LOOPBACK_HOSTS,
    MIME_TYPES,
    StaticServer,
    _Handler,
    resolve_inside,
)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    # WebGL without a GPU: ANGLE on SwiftShader (the web target validates tf.js' webgl backend too). Chromium's
    # automatic fallback to software WebGL is deprecated; these ask for it explicitly.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_executable() -> str:
    """Path of the Chromium to drive: $PACKAGER_CHROMIUM, else Debian's package."""
    env = os.environ.get("PACKAGER_CHROMIUM")
    candidates = (env,) if env else CHROMIUM_CANDIDATES
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    found = shutil.which("chromium")
    if found and not env:
        return found
    raise ToolMissing(
        "Chromium was not found" + (f" at $PACKAGER_CHROMIUM={env}" if env else ""),
        hint="install Debian's `chromium` package (apt-get install chromium) or set PACKAGER_CHROMIUM",
    )


def close(obj) -> None:
    """``obj.close()`` (a Playwright page, context or browser), skipped while an interrupt is on its way: after a
    KeyboardInterrupt every Playwright call can hang for ever (playwright-python #1150); ``_playwright`` then
    kills the driver and its browsers without talking to them."""
    if not interrupt.seen():
        obj.close()


# Per thread (Playwright's sync API is bound to the thread that started it): the Playwright this thread has started,
# which nested launches reuse, and a browser profile launched ahead of its use (``launched_ahead``).
_local = threading.local()


@contextlib.contextmanager
def _playwright() -> Iterator[object]:
    """A started Playwright (sync API), stopped on exit; on Ctrl-C its driver and browsers are killed instead.
    Inside another ``_playwright()`` of the same thread: that one (a second cannot start in the thread)."""
    if getattr(_local, "pw", None) is not None:
        yield _local.pw
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # pragma: no cover - playwright is a declared dependency
        raise ToolMissing("the Python package `playwright` is not installed", hint="pip install playwright") from e
    pw = sync_playwright().start()
    _local.pw = pw
    try:
        yield pw
    finally:
        _local.pw = None
        if interrupt.seen():
            _kill_drivers()
        else:
            pw.stop()


def process_parents() -> dict[int, int]:
    """{pid: parent pid} of every process /proc lists now."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    parents[int(d)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def _kill_drivers() -> None:
    """SIGKILL every Playwright driver this process started, with everything it started (Chromium)."""
    parents = process_parents()

    def children(pid: int) -> list[int]:
        return [c for c, p in parents.items() if p == pid]

    def is_driver(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"/playwright/driver/" in f.read()
        except OSError:
            return False

    doomed, todo = [], [c for c in children(os.getpid()) if is_driver(c)]
    while todo:
        pid = todo.pop()
        doomed.append(pid)
        todo.extend(children(pid))
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# Chromium makes its sockets under TMPDIR (a profile's SingletonSocket links there), and a socket's path is limited to
# 107 bytes: under a deep TMPDIR (a build's private folder inside a long $TMPDIR) Chromium closes as it starts
# ("Target page, context or browser has been closed"). Its folders then go under /tmp, still removed on close.
SOCKET_PATH_MAX = 107
# what follows the root: /pkc-XXXXXXXX/t/.org.chromium.Chromium.XXXXXX/SingletonSocket
_SOCKET_SUFFIX = len("/pkc-XXXXXXXX/t") + len("/.org.chromium.Chromium.XXXXXX/SingletonSocket")
PROFILE = "packager-chromium-profile"  # the profile folder inside a browser's folder (its path is not a socket's)


def _browser_folder() -> str:
    """A fresh folder for one browser (its profile, and ``t/``: the browser's TMPDIR), under a short enough root: the
    build's private temp folder, else /tmp."""
    root = tempfile.gettempdir()
    fits = len(os.fsencode(root)) + _SOCKET_SUFFIX < SOCKET_PATH_MAX - 4  # a margin for Chromium's own naming
    folder = tempfile.mkdtemp(prefix="pkc-", dir=root if fits else "/tmp")
    os.mkdir(os.path.join(folder, "t"))
    return folder


def _browser_env(folder: str) -> dict[str, str]:
    return {**os.environ, "TMPDIR": os.path.join(folder, "t")}


@contextlib.contextmanager
def chromium(*, extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``) in a fresh profile; closed on any exit."""
    executable = chromium_executable()
    # Playwright gives every launch a fresh temporary profile and deletes it on close.
    folder = _browser_folder()
    try:
        with _playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=executable,
                headless=True,
                args=[*CHROMIUM_FLAGS, *extra_args],
                env=_browser_env(folder),
                timeout=60_000,
            )
            try:
                yield browser
            finally:
                close(browser)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def chromium_profile(*, extra_args: tuple[str, ...] = (), service_workers: str = "allow") -> Iterator[object]:
    """A headless Chromium ``BrowserContext`` in a fresh on-disk profile (not incognito, so the
    browser's PWA installability checks apply); the profile is deleted on any exit. The first one with the
    default options inside ``launched_ahead()`` of this thread is the browser launched there."""
    ahead = getattr(_local, "ahead", None)
    executable = None if ahead is not None else chromium_executable()
    with _playwright() as pw:  # inside launched_ahead: the thread's Playwright
        if ahead is not None and not extra_args and service_workers == "allow":  # launched for this use, unused yet
            _local.ahead = None
            context, profile = ahead
        else:
            context, profile = _launch_profile(pw, executable or chromium_executable(), extra_args, service_workers)
        try:
            yield context
        finally:
            _discard(context, profile)


@contextlib.contextmanager
def launched_ahead() -> Iterator[None]:
    """Start Playwright and launch the browser ``chromium_profile()`` gives (default flags, a fresh profile) now,
    for the first ``chromium_profile()`` of this thread inside the block; closed on exit if still unused."""
    with _playwright() as pw:
        _local.ahead = _launch_profile(pw, chromium_executable())
        try:
            yield
        finally:
            ahead, _local.ahead = getattr(_local, "ahead", None), None
            if ahead is not None:
                _discard(*ahead)


def _launch_profile(pw, executable: str, extra_args: tuple[str, ...] = (),
                    service_workers: str = "allow") -> tuple[object, str]:
    """(a persistent Chromium context, its fresh profile folder), the folder removed if the launch fails."""
    profile = _browser_folder()
    try:
        context = pw.chromium.launch_persistent_context(
            os.path.join(profile, PROFILE),
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_FLAGS, *extra_args],
            env=_browser_env(profile),
            service_workers=service_workers,
            timeout=60_000,
        )
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    return context, profile


def _discard(context, profile: str) -> None:
    try:
        close(context)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
