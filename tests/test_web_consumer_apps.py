"""The web bundle as a dependency of real web apps: a Vite + TypeScript (strict) app and a webpack 5 app
(tests/consumer_apps/, tools pinned by their package-lock.json, installed from the npm registry by
.ci/setup-consumer-apps.sh) ``npm install`` the generated ``web/`` folder unedited, type-check, build, are served
from their own ``dist/`` and predict the bundled samples in headless Chromium equal to TensorFlow.
Nothing is copied by hand: the model's files reach ``dist/`` only through the bundler."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest
from test_web_target import LABELS, image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="npm/node missing"),
]

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "tests" / "consumer_apps"
NPM_QUIET = ("--no-audit", "--no-fund", "--loglevel=error")


def installed_tools(app: str) -> Path:
    """The folder holding ``app``'s node_modules, installed once per lockfile (.ci/setup-consumer-apps.sh)."""
    r = subprocess.run(["bash", str(REPO / ".ci" / "setup-consumer-apps.sh"), app], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def npm(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 0, f"{' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def make_app(app: str, web: Path, tmp_path: Path, *, install_links: bool) -> Path:
    """The app's committed sources in ``tmp_path``, its pinned tools, and ``npm install <web>`` (a symlinked
    ``file:`` dependency, or a copy of what ``npm pack`` would ship with ``install_links``)."""
    tools = installed_tools(app)
    dest = tmp_path / app
    shutil.copytree(APPS / app, dest)
    shutil.copytree(tools / "node_modules", dest / "node_modules", symlinks=True)
    name = json.loads((web / "package.json").read_text())["name"]
    for src in (dest / "src").iterdir():
        src.write_text(src.read_text().replace("__PACKAGE__", name))
    npm(["npm", "install", "--offline", *NPM_QUIET, *(["--install-links"] if install_links else []), str(web)],
        dest)
    return dest


def predictions_in_chromium(dist: Path, samples: list[Path], query: str = "", url: str | None = None) -> dict:
    """Serve ``dist`` (the samples copied into dist/samples/ as the app's own images) and classify each sample
    with the app's code -> {loaded, rows: [{label, scores}], problems (errors, failed requests), console,
    requests, app_state (its tf.js backend, flags, backends), same_engine (the last two for apps that expose them)}."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    (dist / "samples").mkdir(exist_ok=True)
    for p in samples:
        shutil.copyfile(p, dist / "samples" / p.name)
    seen: dict = {"problems": [], "console": [], "requests": []}
    with (contextlib.nullcontext(types.SimpleNamespace(url=url)) if url else StaticServer(dist)) as server, \
            chromium() as browser:
        page = browser.new_page()
        page.on("pageerror", lambda e: seen["problems"].append(f"pageerror: {e}"))
        page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("response", lambda r: seen["problems"].append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        page.goto(server.url + query)
        page.wait_for_function("() => window.app !== undefined", timeout=30000)
        seen["loaded"] = page.evaluate("() => window.app.loaded")
        seen["rows"] = [page.evaluate("(url) => window.app.classify(url)", f"samples/{p.name}") for p in samples]
        seen["app_state"] = page.evaluate("() => window.app.appState ? window.app.appState() : null")
        seen["same_engine"] = page.evaluate("() => window.app.sameEngine ? window.app.sameEngine() : null")
    return seen


def assert_like_tensorflow(image_case, samples: list[Path], seen: dict, backend: str = "wasm"):  # noqa: F811
    from PIL import Image

    from packager.targets.web.target import preprocess_pixels

    _, spec, source, _, _ = image_case
    assert seen["problems"] == []
    assert seen["loaded"]["backend"] == backend and seen["loaded"]["skipped"] == []
    rows = seen["rows"]
    assert len(rows) == len(samples) >= 4
    for p, row in zip(samples, rows):
        with Image.open(p) as im:
            x = preprocess_pixels(np.asarray(im.convert("RGB")), spec, 3)
        (want,) = source.predict({source.inputs[0].name: x}).values()
        want = np.asarray(want, np.float32).ravel()
        assert np.max(np.abs(np.asarray(row["scores"], np.float32) - want)) <= 1e-5, p.name
        assert row["label"] == LABELS[int(np.argmax(want))], p.name


def test_vite_typescript_app_installs_builds_and_predicts(image_case, tmp_path):  # noqa: F811
    _, _, web = rendered(image_case, "fp32", tmp_path)
    app = make_app("vite_ts", web, tmp_path, install_links=False)
    npm([str(app / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "."], app)
    npm([str(app / "node_modules" / ".bin" / "vite"), "build", "--logLevel", "warn"], app)
    samples = sorted(web.glob("samples/*.png"))
    assert_like_tensorflow(image_case, samples, predictions_in_chromium(app / "dist", samples))


def test_webpack5_app_installs_the_packed_files_builds_and_predicts(image_case, tmp_path):  # noqa: F811
    _, _, web = rendered(image_case, "fp32", tmp_path)
    app = make_app("webpack5", web, tmp_path, install_links=True)  # only what `npm pack` ships
    npm([str(app / "node_modules" / ".bin" / "webpack"), "--mode", "production"], app)
    samples = sorted(web.glob("samples/*.png"))
    assert_like_tensorflow(image_case, samples, predictions_in_chromium(app / "dist", samples))


def test_an_app_with_its_own_tfjs_keeps_its_backend_and_flags(image_case, tmp_path):  # noqa: F811
    """A Vite + TypeScript app on @tensorflow/tfjs 4.22 (cpu backend and a flag of its own choosing).
    Passing its tf to load(): one tf.js in the page (no kernel registered twice, the bundled runtime and wasm never
    fetched). Not passing it (``?tf=bundled``): the module's own runtime runs the model on wasm, and the app's
    tf.js keeps its backend, flags and registered backends (the runtime's engine is its own, not window's).
    Both predict as TensorFlow does."""
    _, _, web = rendered(image_case, "fp32", tmp_path)
    app = make_app("vite_tfjs", web, tmp_path, install_links=False)
    npm([str(app / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "."], app)
    npm([str(app / "node_modules" / ".bin" / "vite"), "build", "--logLevel", "warn"], app)
    samples = sorted(web.glob("samples/*.png"))
    for query, backend in (("", "cpu"), ("?tf=bundled", "wasm")):
        seen = predictions_in_chromium(app / "dist", samples, query)
        assert_like_tensorflow(image_case, samples, seen, backend=backend)
        before = seen["loaded"]["appBefore"]
        assert before["backend"] == "cpu" and "wasm" not in before["backends"], query
        after = seen["app_state"]
        assert (after["backend"], after["backends"]) == (before["backend"], before["backends"]), query
        # every flag the app had set or read keeps its value; none of the wasm backend's was set on it
        assert {k: after["flags"].get(k) for k in before["flags"]} == before["flags"], query
        assert not [k for k in after["flags"] if k.startswith("WASM")], (query, after["flags"])
        assert seen["same_engine"] is True, query  # window's engine is the app's
        assert not [m for m in seen["console"] if "already registered" in m or "already been set" in m], query
        runtime = [u for u in seen["requests"] if "tf-runtime" in u or u.endswith(".wasm")]
        assert bool(runtime) == (query != ""), (query, runtime)


@contextlib.contextmanager
def vite_dev_server(app: Path):
    """``vite`` (the dev server) in ``app`` on a free port -> its URL; stopped after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(app / "node_modules" / ".bin" / "vite"), "--port", str(port), "--strictPort",
                             "--host", "127.0.0.1", "--clearScreen", "false"], cwd=app, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        for line in proc.stdout:
            if "Local:" in line:
                break
        else:
            raise AssertionError("vite dev server did not start")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_vite_dev_server_with_the_readme_config_predicts(image_case, tmp_path):  # noqa: F811
    """``vite`` (dev server, not build) with the package linked by ``npm install <web>``: its files are outside the
    app's folder, which Vite refuses to serve (HTTP 403 for model.json) until the vite.config.ts of the package's
    README allows them; with it the app predicts as TensorFlow does. A copied install (``--install-links``, what a
    tarball gives) works on the dev server with no configuration."""
    _, _, web = rendered(image_case, "fp32", tmp_path)
    samples = sorted(web.glob("samples/*.png"))
    readme = (web / "README.md").read_text()
    config = re.search(r"```ts\n(// vite\.config\.ts\n.*?)```", readme, re.S).group(1)
    for install_links in (False, True):
        app = make_app("vite_ts", web, tmp_path / str(install_links), install_links=install_links)
        if not install_links:
            with vite_dev_server(app) as url, pytest.raises(Exception, match="model.json: HTTP 403"):
                predictions_in_chromium(app, samples, url=url)
            (app / "vite.config.ts").write_text(config)
        with vite_dev_server(app) as url:
            seen = predictions_in_chromium(app, samples, url=url)
        seen["problems"] = [p for p in seen["problems"] if not p.endswith("/favicon.ico")]
        assert_like_tensorflow(image_case, samples, seen)
