"""A static server confined to one folder, for web bundles: what ``packager serve`` and the build's browser checks
serve from.

``StaticServer`` serves one folder on 127.0.0.1 (a free port unless one is given) under a URL prefix. A request
whose resolved path leaves the folder (``..``, percent-encoded ``..``, a symlink pointing outside) gets a 404, never
a file. Text, JSON, JavaScript and wasm are sent gzip-compressed to clients that accept it (``compress=True``), as
static hosts do; ``bytes_sent`` counts every byte written to clients (headers included).
"""

from __future__ import annotations

import email.utils
import gzip
import http.server
import io
import ipaddress
import os
import re
import socket
import socketserver
import stat
import threading
import urllib.parse
from pathlib import Path

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


def _servable(path: Path) -> bool:
    """A regular file or a folder (or nothing there: a 404 then); never a FIFO, device or socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


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


# Sent gzip-compressed to clients that accept it, as static hosts (GitHub Pages, Netlify, nginx gzip_types) do.
# Images are compressed already; weight shards (.bin, application/octet-stream) are left as most hosts leave them.
COMPRESSIBLE = frozenset({".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".wasm", ".svg", ".txt", ".ts"})


# Names a loopback server answers to: another Host header is a page on a foreign name that resolves to 127.0.0.1
# (DNS rebinding), refused so that it cannot read the bundle.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _ip(host: str):
    try:
        return ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address literal (127.0.0.0/8, ``::1``, ``::ffff:127.x.y.z``, bracketed or not)."""
    host = host.strip().lower()
    ip = _ip(host)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket
    return host == "localhost" or bool(ip and ip.is_loopback) or bool(mapped and mapped.is_loopback)
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
        if self._owner is not None and self._owner.any_host:
            return True  # `packager serve --host`: explicitly opened to the network
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return True  # HTTP/1.0 without Host: no name to rebind
        name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
        return name in LOOPBACK_HOSTS or is_loopback(name)

    def __init__(self, *args, directory: str, quiet: bool, prefix: str = "/", headers: dict | None = None,
                 owner: StaticServer | None = None, **kwargs):
        self._quiet = quiet
        self._prefix = prefix
        self._headers = headers or {}
        self._owner = owner
        super().__init__(*args, directory=directory, **kwargs)

    def setup(self) -> None:
        super().setup()
        if self._owner is not None:
            self.wfile = _CountingWriter(self.wfile, self._owner)

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
        if target.is_dir() and path.endswith("/") and (target / "index.html").is_file():
            target = target / "index.html"  # what SimpleHTTPRequestHandler would send for "dir/"
        if not _servable(target):  # a FIFO would hold this thread forever in open(); a device would stream
            self.send_error(404, "Not found")
            return None
        if (self._owner is not None and self._owner.compress and target.is_file()
                and target.suffix.lower() in COMPRESSIBLE
                and "gzip" in (self.headers.get("Accept-Encoding") or "").lower()):
            return self._send_gzip(target)
        return super().send_head()

    def _send_gzip(self, target: Path):
        """The file gzip-compressed (compressed once per version of the file); 304 when unchanged since the
        client's copy (If-Modified-Since), as for uncompressed files."""
        st = target.stat()
        since = self.headers.get("If-Modified-Since")
        if since and not self.headers.get("If-None-Match"):
            try:
                if int(st.st_mtime) <= email.utils.parsedate_to_datetime(since).timestamp():
                    self.send_response(304)
                    self.send_header("Vary", "Accept-Encoding")
                    self.end_headers()
                    return None
            except (TypeError, ValueError, OverflowError, IndexError):
                pass
        assert self._owner is not None
        data = self._owner.gzipped(target, st)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(target)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        self.end_headers()
        return io.BytesIO(data)

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


class _CountingWriter:
    """The handler's socket writer, adding every byte written to the server's ``bytes_sent``."""

    def __init__(self, raw, owner: StaticServer):
        self._raw, self._owner = raw, owner

    def write(self, data) -> int:
        n = self._raw.write(data)
        self._owner._count(len(data))
        return n

    def __getattr__(self, name):
        return getattr(self._raw, name)


# Compressed files, shared by every server of the process (the build serves one bundle from two or three servers at
# once: the backends' browser, the page checks' browser): a file is compressed once per content (path, mtime, size).
_GZIP_CACHE: dict[tuple, bytes] = {}
_GZIP_LOCK = threading.Lock()
_GZIP_CACHE_FILES = 64


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


# Headers of a cross-origin-isolated host (SharedArrayBuffer allowed: tf.js' wasm backend may start threads).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class StaticServer:
    """Serve ``root`` on ``host`` (127.0.0.1) at ``port`` (0 = a free one) from a background thread, under the
    URL path ``prefix`` (``/`` = the origin's root; ``/demo/`` = as a sub-path deployment would; anything outside
    it is a 404), adding ``headers`` to every response (e.g. ISOLATION_HEADERS). ``compress``: gzip text, JSON,
    JavaScript and wasm for clients that accept it. ``bytes_sent``: bytes written to clients so far."""

    def __init__(self, root: Path | str, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                 prefix: str = "/", headers: dict | None = None, compress: bool = False):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"not a folder: {self.root}")
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"prefix must start and end with '/': {prefix!r}")
        self.prefix = prefix
        self.headers = dict(headers or {})
        self.compress = compress
        self.any_host = not is_loopback(host)  # listening beyond loopback: by request
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self.host = host
        self._port = port
        self.quiet = quiet
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def gzipped(self, path: Path, st: os.stat_result) -> bytes:
        key = (str(path), st.st_mtime_ns, st.st_size)
        with _GZIP_LOCK:
            hit = _GZIP_CACHE.get(key)
        if hit is None:
            hit = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
            with _GZIP_LOCK:
                if len(_GZIP_CACHE) >= _GZIP_CACHE_FILES:
                    _GZIP_CACHE.pop(next(iter(_GZIP_CACHE)))
                _GZIP_CACHE[key] = hit
        return hit

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.host
        if host.lower() != "localhost" and _ip(host) is None:  # 127.1, 0177.0.0.1: the address it stands for
            host = self.bound_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}{self.prefix}"

    def bind(self) -> StaticServer:
        """Bind the socket (so ``url`` is known) without serving yet."""
        if self._httpd is None:
            def handler(*args, **kwargs):
                return _Handler(*args, directory=str(self.root), quiet=self.quiet, prefix=self.prefix,
                                headers=self.headers, owner=self, **kwargs)

            self._httpd = (_Server6 if ":" in self.host else _Server)((self.host, self._port), handler)
            # judged by the address the socket got, not by its spelling: 127.1, 0177.0.0.1, 2130706433, a name
            # that resolves to 127.0.1.1 are loopback (the Host check stays on); 0.0.0.0 and :: are not
            self.any_host = not is_loopback(self.bound_address)
        return self

    @property
    def bound_address(self) -> str:
        """The address the socket listens on (the host as the system read it), or the host before ``bind``."""
        return str(self._httpd.server_address[0]) if self._httpd is not None else self.host

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
