"""Run web bundles for real: a static server confined to one folder, and headless Chromium.

``StaticServer`` serves one folder on 127.0.0.1 (a free port unless one is given). A request whose
resolved path leaves the folder (``..``, percent-encoded ``..``, a symlink pointing outside) gets a
404, never a file. ``chromium()`` launches Debian's Chromium through Playwright with the flags that
work on a machine without network or GPU, in a fresh profile; both clean up on any exit, including
exceptions and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import re
import shutil
import socketserver
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from ..errors import ToolMissing

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
)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


def resolve_inside(root: Path, url_path: str) -> Path | None:
    """The file a URL path names inside ``root``, or None when it would leave ``root``.

    The path is percent-decoded first, then resolved (following symlinks) and required to stay
    under the resolved root, so ``/../x``, ``/%2e%2e/x``, ``/a/../../x`` and outside symlinks fail.
    """
    root = root.resolve()
    try:
        path = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError):
        return None
    if resolved != root and root not in resolved.parents:
        return None
    return resolved


# Names a loopback server answers to: another Host header is a page on a foreign name that resolves to 127.0.0.1
# (DNS rebinding), refused so that it cannot read the bundle.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
IDLE_TIMEOUT_S = 30  # a connection that sends nothing this long is closed (no thread held forever)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "packager-serve"
    sys_version = ""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    timeout = IDLE_TIMEOUT_S

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):  # the client went away: nothing to say
            self.close_connection = True

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return True  # HTTP/1.0 without Host: no name to rebind
        name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
        return name in LOOPBACK_HOSTS

    def __init__(self, *args, directory: str, quiet: bool, prefix: str = "/", headers: dict | None = None, **kwargs):
        self._quiet = quiet
        self._prefix = prefix
        self._headers = headers or {}
        super().__init__(*args, directory=directory, **kwargs)

    def _inside(self, url_path: str) -> Path | None:
        """The file ``url_path`` names: only paths under the served prefix map into the folder."""
        path = urllib.parse.urlsplit(url_path).path
        if path == self._prefix.rstrip("/") and self._prefix != "/":
            return None  # "/demo" (no slash): redirected by send_head so relative URLs resolve under it
        if not path.startswith(self._prefix):
            return None
        return resolve_inside(Path(self.directory), "/" + url_path[len(self._prefix):])

    def send_head(self):
        if not self._host_allowed():
            self.send_error(403, "Host not allowed", "this server answers to 127.0.0.1 and localhost only")
            return None
        path = urllib.parse.urlsplit(self.path).path
        if self._prefix != "/" and path == self._prefix.rstrip("/"):
            self.send_response(301)
            self.send_header("Location", self._prefix)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        target = self._inside(self.path)
        if target is None:
            self.send_error(404, "Not found")
            return None
        if self.headers.get("Range") and target.is_file():
            return self._send_range(target, self.headers["Range"].strip())
        return super().send_head()

    def _send_range(self, target: Path, spec: str):
        """One byte range (``bytes=a-b``, ``a-``, ``-n``): 206 with that part; an unsatisfiable one: 416."""
        size = target.stat().st_size
        m = _RANGE.match(spec)
        first = last = None
        if m and (m[1] or m[2]):
            if m[1]:
                first, last = int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1
            else:
                first, last = max(size - int(m[2]), 0), size - 1
        if first is None or first > last or first >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        with open(target, "rb") as f:
            f.seek(first)
            data = f.read(last - first + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(target)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        self._end_headers()

    def translate_path(self, path: str) -> str:
        resolved = self._inside(path)
        if resolved is None:  # send_head refused it already; never map it to a file
            raise PermissionError(path)
        if resolved.is_dir() and urllib.parse.urlsplit(path).path.endswith("/"):
            return str(resolved) + os.sep
        return str(resolved)

    def list_directory(self, path):  # no directory listings
        self.send_error(404, "Not found")
        return None

    def _end_headers(self) -> None:
        # Always revalidate: a rebuilt bundle must be seen (the service worker does the caching).
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in self._headers.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if not self._quiet:
            super().log_message(format, *args)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# Headers of a cross-origin-isolated host (SharedArrayBuffer allowed: tf.js' wasm backend may start threads).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class StaticServer:
    """Serve ``root`` on ``host`` (127.0.0.1) at ``port`` (0 = a free one) from a background thread, under the
    URL path ``prefix`` (``/`` = the origin's root; ``/demo/`` = as a sub-path deployment would; anything outside
    it is a 404), adding ``headers`` to every response (e.g. ISOLATION_HEADERS)."""

    def __init__(self, root: Path | str, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                 prefix: str = "/", headers: dict | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"not a folder: {self.root}")
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"prefix must start and end with '/': {prefix!r}")
        self.prefix = prefix
        self.headers = dict(headers or {})
        self.host = host
        self._port = port
        self.quiet = quiet
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"

    def bind(self) -> StaticServer:
        """Bind the socket (so ``url`` is known) without serving yet."""
        if self._httpd is None:
            def handler(*args, **kwargs):
                return _Handler(*args, directory=str(self.root), quiet=self.quiet, prefix=self.prefix,
                                headers=self.headers, **kwargs)

            self._httpd = _Server((self.host, self._port), handler)
        return self

    def start(self) -> StaticServer:
        """Serve from a background thread."""
        self.bind()
        assert self._httpd is not None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="packager-static-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``packager serve``); closes the socket after."""
        self.bind()
        assert self._httpd is not None
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()
            self._httpd = None

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


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


@contextlib.contextmanager
def chromium(*, extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``) in a fresh profile; closed on any exit."""
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # pragma: no cover - playwright is a declared dependency
        raise ToolMissing("the Python package `playwright` is not installed", hint="pip install playwright") from e
    # Playwright gives every launch a fresh temporary profile and deletes it on close.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_FLAGS, *extra_args],
            timeout=60_000,
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_profile(*, extra_args: tuple[str, ...] = (), service_workers: str = "allow") -> Iterator[object]:
    """A headless Chromium ``BrowserContext`` in a fresh on-disk profile (not incognito, so the
    browser's PWA installability checks apply); the profile is deleted on any exit."""
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # pragma: no cover
        raise ToolMissing("the Python package `playwright` is not installed", hint="pip install playwright") from e
    profile = tempfile.mkdtemp(prefix="packager-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=[*CHROMIUM_FLAGS, *extra_args],
                service_workers=service_workers,
                timeout=60_000,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
