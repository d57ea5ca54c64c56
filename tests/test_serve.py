"""``packager serve``: serves a folder on 127.0.0.1 and nothing outside it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packager.targets.web.browser.chromium import StaticServer, resolve_inside

REPO = Path(__file__).resolve().parent.parent

ESCAPES = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/site/../../secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..\\secret.txt",
    "/link-out.txt",
    "/%00",
    "/%ff%fe",
]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<p>home</p>")
    (root / "sub" / "a.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "manifest.webmanifest").write_text("{}")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (root / "link-out.txt").symlink_to(tmp_path / "secret.txt")
    return root


def get(port: int, path: str) -> tuple[int, bytes, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read(), r.getheader("Content-Type") or ""
    finally:
        c.close()


def test_resolve_inside_refuses_escapes(tree):
    assert resolve_inside(tree, "/index.html") == (tree / "index.html").resolve()
    assert resolve_inside(tree, "/sub/a.wasm?x=1") == (tree / "sub" / "a.wasm").resolve()
    for path in ESCAPES[:-2]:
        assert resolve_inside(tree, path) is None, path


def test_static_server_serves_inside_only_with_right_types(tree):
    with StaticServer(tree) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, body, _ = get(server.port, "/")
        assert status == 200 and body == b"<p>home</p>"
        status, _, ctype = get(server.port, "/sub/a.wasm")
        assert status == 200 and ctype == "application/wasm"
        assert get(server.port, "/manifest.webmanifest")[2] == "application/manifest+json"
        assert get(server.port, "/sub/")[0] == 404  # no directory listings
        for path in ESCAPES:
            status, body, _ = get(server.port, path)
            assert status == 404 and b"SECRET" not in body, path
        port = server.port
    with pytest.raises(OSError):
        get(port, "/")


def test_packager_serve_prints_url_refuses_escapes_and_stops_on_ctrl_c(tree):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "packager.targets.web.serve", str(tree)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving ") and " at http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        assert get(port, "/index.html")[0] == 200
        for path in ESCAPES:
            status, body, _ = get(port, path)
            assert status == 404 and b"SECRET" not in body, path
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    time.sleep(0.1)
    with pytest.raises(OSError):
        get(port, "/")


def test_packager_serve_rejects_a_missing_folder_and_a_busy_port(tree, tmp_path):
    from packager.targets.web.serve import main

    assert main([str(tmp_path / "nope")]) == 3
    with StaticServer(tree) as busy:
        assert main([str(tree), "--port", str(busy.port)]) == 2


def _raw(port: int, request: bytes, timeout: float = 10) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except TimeoutError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def test_foreign_host_names_are_refused(tree):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends Host: evil.example."""
    with StaticServer(tree) as server:
        p = server.port
        for host in (f"evil.example:{p}", "evil.example", f"127.0.0.1.evil.example:{p}"):
            r = _raw(p, f"GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert r.startswith(b"HTTP/1.0 403") and b"home" not in r, (host, r[:80])
        for host in (f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}", "LOCALHOST"):
            r = _raw(p, f"GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert r.startswith(b"HTTP/1.0 200") and r.endswith(b"<p>home</p>"), (host, r[:80])


def test_range_requests(tree):
    data = (tree / "sub" / "a.wasm").read_bytes()  # 8 bytes
    with StaticServer(tree) as server:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for spec, status, body, content_range in [
                ("bytes=0-3", 206, data[:4], "bytes 0-3/8"),
                ("bytes=4-", 206, data[4:], "bytes 4-7/8"),
                ("bytes=-2", 206, data[-2:], "bytes 6-7/8"),
                ("bytes=2-100", 206, data[2:], "bytes 2-7/8"),
                ("bytes=9-12", 416, b"", "bytes */8"),
                ("bytes=5-2", 416, b"", "bytes */8"),
                ("chunks=1-2", 416, b"", "bytes */8"),
            ]:
                c.request("GET", "/sub/a.wasm", headers={"Range": spec})
                r = c.getresponse()
                assert (r.status, r.read(), r.getheader("Content-Range")) == (status, body, content_range), spec
            c.request("GET", "/sub/a.wasm")
            r = c.getresponse()
            assert r.status == 200 and r.read() == data and r.getheader("Accept-Ranges") == "bytes"
        finally:
            c.close()


def test_idle_connections_are_closed(tree, monkeypatch):
    from packager.targets.web.browser import chromium as browser

    assert browser._Handler.timeout and browser._Handler.timeout <= 60  # bounded by default
    monkeypatch.setattr(browser._Handler, "timeout", 1)  # the same mechanism, quicker
    with StaticServer(tree) as server:
        t0 = time.monotonic()
        assert _raw(server.port, b"GET /index.html HTTP/1.1\r\n", timeout=10) == b""  # half a request, then silence
        assert time.monotonic() - t0 < 5, "the server held an idle connection open"


def test_client_disconnecting_mid_download_leaves_no_traceback(tree):
    import socket

    (tree / "big.bin").write_bytes(os.urandom(8 << 20))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "packager.targets.web.serve", str(tree)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1].strip().rstrip("/"))
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # reset on close
            s.sendall(f"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            s.recv(1024)
            s.close()
        time.sleep(1)
        assert get(port, "/index.html")[0] == 200  # still serving
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        err = proc.stderr.read()
        assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_text_and_wasm_are_gzipped_for_clients_that_accept_it_and_bytes_are_counted(tree):
    import gzip

    (tree / "big.js").write_text("const x = 1;\n" * 2000)
    (tree / "pic.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 8)

    def fetch(port, path, **headers):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            c.close()

    with StaticServer(tree, compress=True) as server:
        status, body, h = fetch(server.port, "/big.js", **{"Accept-Encoding": "gzip, br"})
        assert status == 200 and h["Content-Encoding"] == "gzip" and h["Vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == (tree / "big.js").read_bytes() and len(body) < 1000
        status, body, h = fetch(server.port, "/", **{"Accept-Encoding": "gzip"})  # the folder's index.html
        assert gzip.decompress(body) == b"<p>home</p>" and h["Content-Type"].startswith("text/html")
        status, body, h = fetch(server.port, "/big.js")  # no Accept-Encoding: as is
        assert "Content-Encoding" not in h and body == (tree / "big.js").read_bytes()
        status, body, h = fetch(server.port, "/pic.png", **{"Accept-Encoding": "gzip"})  # compressed already
        assert "Content-Encoding" not in h and body == (tree / "pic.png").read_bytes()
        # unchanged since the client's copy: 304, no body (the service worker's "no-cache" revalidation)
        status, body, _ = fetch(server.port, "/big.js", **{"Accept-Encoding": "gzip",
                                                            "If-Modified-Since": h["Last-Modified"]})
        assert status == 304 and body == b""
        before = server.bytes_sent
        fetch(server.port, "/big.js", **{"Accept-Encoding": "gzip"})
        sent = server.bytes_sent - before
        assert len(gzip.compress((tree / "big.js").read_bytes())) < sent < 2000
    with StaticServer(tree) as server:  # compress off (default): as is
        _, body, h = fetch(server.port, "/big.js", **{"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in h and len(body) == (tree / "big.js").stat().st_size


def test_serve_host_opens_to_the_network_only_when_asked_and_warns(tree):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "packager.targets.web.serve", str(tree), "--host", "0.0.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        warning = proc.stdout.readline()
        assert " at http://0.0.0.0:" in line, line
        assert warning.startswith("warning: listening on 0.0.0.0") and "https or localhost" in warning, warning
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/index.html", headers={"Host": "192.168.1.20:%d" % port})  # a phone on the network
        assert c.getresponse().status == 200
        c.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    # by default, a foreign Host header is still refused (DNS rebinding)
    with StaticServer(tree) as server:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        c.request("GET", "/index.html", headers={"Host": "evil.example"})
        assert c.getresponse().status == 403
        c.close()
