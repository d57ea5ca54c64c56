"""The web bundle as an ES module: a page that is not the demo imports ``web/model.js`` and predicts the bundled
samples equal to the reference; ``npm install ./web`` resolves the package. Real conversion, real Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from test_web_target import LABELS, image_case, rendered  # noqa: F401  (image_case: a fixture)

pytestmark = pytest.mark.slow

CONSUMER = """<!doctype html>
<html><head><meta charset="utf-8"><title>someone else's app</title></head>
<body><p id="out">waiting</p>
<script type="module">
  import * as model from "../web/model.js";
  window.model = model;
  window.loaded = model.load();
</script></body></html>
"""


def test_another_page_imports_the_module_and_predicts_like_the_reference(image_case, tmp_path):  # noqa: F811
    from packager.targets.web.browser.chromium import StaticServer, chromium
    from packager.targets.web.target import preprocess_pixels

    _, spec, source, samples, reference = image_case
    site = tmp_path / "site"
    _, _, web = rendered(image_case, "fp32", tmp_path, site / "web")
    (site / "app").mkdir()
    (site / "app" / "index.html").write_text(CONSUMER)

    metadata = json.loads((web / "metadata.json").read_text())
    assert json.loads((web / "model.json").read_text())["userDefinedMetadata"]["packager"] == metadata
    assert metadata["labels"] == list(LABELS) and metadata["image"]["mean"] == [127.5] * 3

    name = source.inputs[0].name
    with StaticServer(site, prefix="/elsewhere/") as server, chromium() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "app/index.html")
        loaded = page.evaluate("() => window.loaded")
        assert loaded["backend"] == "wasm" and loaded["skipped"] == []
        assert page.evaluate("() => window.model.labels") == list(LABELS)
        rows = []
        for sample in samples:
            x = np.asarray(sample[name], np.float32)
            r = page.evaluate(
                """async ([name, shape, data]) => {
                    const r = await window.model.predict({[name]: {shape, data: Float32Array.from(data)}});
                    return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v.data)]));
                }""", [name, list(x.shape), x.ravel().tolist()])
            rows.append(r)
        # predictImage on an <img> of each bundled sample PNG vs predict on the same pixels preprocessed in Python
        from PIL import Image

        for rel in sorted(p.relative_to(web).as_posix() for p in web.glob("samples/*.png")):
            got = page.evaluate(
                """async (url) => {
                    const img = new Image(); img.src = url; await img.decode();
                    const r = await window.model.predictImage(img);
                    const top = window.model.topK(r.outputs[window.model.metadata.primary_output].data, 2);
                    return {out: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v.data)])),
                            top};
                }""", "../web/" + rel)
            with Image.open(web / rel) as im:
                x = preprocess_pixels(np.asarray(im.convert("RGB")), spec, 3)
            want = page.evaluate(
                """async ([name, shape, data]) => Array.from(Object.values((await window.model.predict(
                    {[name]: {shape, data: Float32Array.from(data)}})).outputs)[0].data)""",
                [name, list(x.shape), x.ravel().tolist()])
            (out,) = got["out"].values()
            assert np.max(np.abs(np.asarray(out) - np.asarray(want))) <= 1e-5
            assert got["top"][0]["label"] == LABELS[int(np.argmax(want))]
        assert errors == []
    for k, ref in reference.items():
        got = np.asarray([r[k] for r in rows], np.float32).reshape(ref.shape)
        assert np.max(np.abs(got - ref)) <= 1e-5, k
        assert (got.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="npm/node missing")
def test_npm_install_of_the_folder_resolves_the_module(image_case, tmp_path):  # noqa: F811
    _, _, web = rendered(image_case, "uint8", tmp_path)
    pkg = json.loads((web / "package.json").read_text())
    assert pkg["type"] == "module" and pkg["types"] == "./model.d.ts"
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "version": "0.0.0", "private": true}')
    r = subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund", str(web)], cwd=app,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["node", "--input-type=module", "-e",
                        f"console.log(import.meta.resolve({json.dumps(pkg['name'])}));"
                        f"console.log(import.meta.resolve({json.dumps(pkg['name'] + '/metadata.json')}))"],
                       cwd=app, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    model_js, metadata = r.stdout.split()
    assert model_js.endswith("/model.js") and metadata.endswith("/metadata.json")


def test_load_finds_files_the_app_hosts_itself(image_case, tmp_path):  # noqa: F811
    """load({baseUrl}) and load({modelUrl, weights, wasmPaths}) with the model's files moved away from model.js
    (its default locations then 404); an HTML page served for model.json is named as such."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, spec, source, samples, reference = image_case
    site = tmp_path / "site"
    _, _, web = rendered(image_case, "fp32", tmp_path, site / "pkg")
    hosted = site / "hosted"
    (hosted / "tfjs").mkdir(parents=True)
    moved = ["model.json", "metadata.json", *(p.name for p in web.glob("group1-shard*.bin"))]
    moved += [f"tfjs/{p.name}" for p in (web / "tfjs").glob("*.wasm")]
    for rel in moved:
        (web / rel).rename(hosted / rel)
    (site / "app").mkdir()
    (site / "app" / "index.html").write_text(CONSUMER.replace("../web/", "../pkg/").replace(
        "window.loaded = model.load();", ""))
    name = source.inputs[0].name
    x = np.concatenate([np.asarray(s[name], np.float32) for s in samples])
    predict_all = """async ([name, shape, data]) => {
        const r = await window.model.predict({[name]: {shape, data: Float32Array.from(data)}});
        return Array.from(Object.values(r.outputs)[0].data);
    }"""
    shard = sorted(p.name for p in hosted.glob("group1-shard*.bin"))
    (want,) = reference.values()
    with StaticServer(site) as server, chromium() as browser:
        for how in ("() => window.model.load({baseUrl: '../hosted'})",  # relative to the page, no trailing '/'
                    f"""async () => window.model.load({{modelUrl: '/hosted/model.json', wasmPaths: '/hosted/tfjs/',
                        weights: await (await fetch('/hosted/{shard[0]}')).arrayBuffer()}})"""):
            page = browser.new_page()
            page.goto(server.url + "app/index.html")
            page.wait_for_function("() => window.model !== undefined")
            assert page.evaluate(how)["backend"] == "wasm"
            rows = [page.evaluate(predict_all, [name, [1, *x.shape[1:]], xi[None].ravel().tolist()]) for xi in x]
            got = np.asarray(rows, np.float32).reshape(want.shape)
            assert np.max(np.abs(got - want)) <= 1e-5 and (got.argmax(-1) == want.argmax(-1)).all()
            page.close()
        page = browser.new_page()
        page.goto(server.url + "app/index.html")
        page.wait_for_function("() => window.model !== undefined")
        failed = page.evaluate("() => window.model.load().then(() => 'loaded', (e) => e.message)")
        assert failed.startswith("model.json: HTTP 404")  # the defaults really are gone
        page.route("**/hosted/model.json", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>my app</title>"))
        failed = page.evaluate("() => window.model.load({baseUrl: '/hosted/'}).then(() => 'loaded', (e) => e.message)")
        assert failed.startswith("model.json: the server sent an HTML page")
