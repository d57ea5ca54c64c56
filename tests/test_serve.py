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

from packager.runtimes.browser import StaticServer, resolve_inside

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
    proc = subprocess.Popen([sys.executable, "-m", "packager.serve", str(tree)], stdout=subprocess.PIPE,
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
    from packager.serve import main

    assert main([str(tmp_path / "nope")]) == 3
    with StaticServer(tree) as busy:
        assert main([str(tree), "--port", str(busy.port)]) == 2
