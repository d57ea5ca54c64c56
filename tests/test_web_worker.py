"""The demo page runs its model off the main thread (issue 26: Lighthouse's TBT was the main thread evaluating the
tf.js runtime, starting the backend, building and warming up the model): in a Worker (model_client.js ->
model_worker.js -> model.js) on every backend the build validates, with the page's predictions equal to TensorFlow's.
The page's own resource timeline proves it: the main thread never fetches tf-runtime.js, the wasm binaries, model.json
or the weights (the worker does). Real Chromium, real bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_web_target import MODE_TOLERANCE, image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow

# what only the code running the model fetches
MODEL_RUNTIME_FILES = ("tf-runtime.js", ".wasm", "model.json", "group1-shard")

RESOURCES = "() => performance.getEntriesByType('resource').map((e) => e.name)"


def test_the_model_runs_in_a_worker_on_every_backend(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.page import PageSession, _runtime_name

    _, _, _, samples, reference = image_case
    _, _, web = rendered(image_case, "uint8", tmp_path)
    out_name = next(iter(reference))
    with StaticServer(web, prefix="/sub/path/", compress=True) as server, chromium() as browser:
        for query, backend in (("", "wasm"), ("?backend=webgl&warmup=0", "webgl"), ("?backend=cpu", "cpu")):
            context = browser.new_context(service_workers="block")
            try:
                session = PageSession(context, server.url + "index.html" + query)
                assert session.open() == backend
                assert session.thread == "worker", session.thread
                assert session.page.evaluate("() => window.packager.skippedBackends") == []
                assert ", in a Worker" in _runtime_name("x", backend, session.thread)
                rows = [session.predict(sample)[0][out_name] for sample in samples]
                got = np.concatenate(rows)
                assert float(np.max(np.abs(got - reference[out_name]))) <= MODE_TOLERANCE["uint8"]
                assert (got.argmax(-1) == reference[out_name].argmax(-1)).all()
                # an <img> through predictImage: decoded here, preprocessed and run there; the preview shows the
                # model input the worker computed
                shown = session.page.evaluate("""async () => {
                    const r = await window.packager.predictImage(document.querySelector("#sample-strip img"));
                    const c = document.getElementById("preview");
                    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                    return { input: Array.from(r.input.data), shape: r.input.shape, alpha: px[3],
                             rgb: Array.from(px.slice(0, 3)), top: r.outputs[Object.keys(r.outputs)[0]].data.length };
                }""")
                assert shown["shape"] == [1, 8, 8, 3] and shown["alpha"] == 255 and shown["top"] == 5
                # the preview's first pixel is the input's first pixel, un-normalised ((x * 127.5) + 127.5)
                assert np.allclose(np.asarray(shown["input"][:3]) * 127.5 + 127.5, shown["rgb"], atol=0.51)
                fetched = session.page.evaluate(RESOURCES)
                on_main = [u for u in fetched if any(f in u for f in MODEL_RUNTIME_FILES)]
                assert on_main == [], on_main
                assert any(u.endswith("/model_worker.js") for u in fetched)
                assert session.errors == []
            finally:
                context.close()


def test_the_page_runs_the_model_itself_when_its_worker_cannot_load(image_case, tmp_path):  # noqa: F811
    """model_worker.js missing (a partial deployment): the page loads the model on its own main thread and says
    so (window.packager.thread, the runtime's name), predictions unchanged."""
    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.page import PageSession, _runtime_name

    _, _, _, samples, reference = image_case
    _, _, web = rendered(image_case, "uint8", tmp_path)
    (web / "model_worker.js").unlink()
    out_name = next(iter(reference))
    with StaticServer(web, compress=True) as server, chromium() as browser:
        context = browser.new_context(service_workers="block")
        try:
            session = PageSession(context, server.url)
            assert session.open() == "wasm"
            assert session.thread.startswith("page (model_worker.js did not load"), session.thread
            assert ", on the page's main thread (model_worker.js did not load" in _runtime_name("x", "wasm",
                                                                                                  session.thread)
            got = np.concatenate([session.predict(sample)[0][out_name] for sample in samples])
            assert float(np.max(np.abs(got - reference[out_name]))) <= MODE_TOLERANCE["uint8"]
            assert any("tf-runtime.js" in u for u in session.page.evaluate(RESOURCES))
        finally:
            context.close()


def test_a_backend_that_fails_in_the_worker_is_tried_on_the_page_then_the_next(image_case, tmp_path):  # noqa: F811
    """WebGL unavailable in the browser (no GPU, no software rasterizer, no 3D APIs): pinned to webgl, the page
    tries it in the worker, then on its own main thread, and says both reasons once each; unpinned, it goes on to
    the next backend (wasm, in the worker) and lists webgl's two reasons in skippedBackends."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, _, web = rendered(image_case, "uint8", tmp_path)
    meta = json.loads((web / "metadata.json").read_text())
    meta["backends"] = ["webgl", "wasm"]  # the order the page tries (the build writes the validated ones)
    (web / "metadata.json").write_text(json.dumps(meta))
    no_webgl = ("--disable-software-rasterizer", "--disable-3d-apis")
    with StaticServer(web, compress=True) as server, chromium(extra_args=no_webgl) as browser:
        context = browser.new_context(service_workers="block")
        try:
            page = context.new_page()
            page.goto(server.url + "index.html?backend=webgl")
            failed = page.evaluate("() => window.packager.ready.then(() => null, (e) => e.message)")
            assert failed is not None and "no tf.js backend could run the model (webgl: in a Worker: " in failed
            assert "; on the page: " in failed and failed.count("no tf.js backend") == 1, failed
            page.goto(server.url + "index.html")
            assert page.evaluate("() => window.packager.ready") == "wasm"
            assert page.evaluate("() => window.packager.thread") == "worker"
            skipped = page.evaluate("() => window.packager.skippedBackends")
            assert len(skipped) == 1 and skipped[0].startswith("webgl: in a Worker: did not start; on the page: ")
        finally:
            context.close()
