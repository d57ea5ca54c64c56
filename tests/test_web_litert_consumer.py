"""The --web-runtime litert bundle as a dependency of real web apps (issue 30): the Vite + TypeScript (strict) app and
the webpack 5 app of test_web_consumer_apps ``npm install`` it unedited (Vite also type-checks it: its model.d.ts is
the TF.js bundle's file, so the app's typeChecks() hold on both runtimes), build, are served from their own dist/ and
classify the bundled samples in headless Chromium like the Android host run of the same .tflite.
The same app source as for the TF.js bundle: switching runtime needs no code change."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_web_consumer_apps import make_app, npm, predictions_in_chromium
from test_web_litert import image_model  # noqa: F401  (a fixture)

from conftest import run_cli
from packager.render import template_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="npm/node missing"),
]


@pytest.mark.parametrize("app_name", ["vite_ts", "webpack5"])
def test_consumer_app_runs_the_litert_bundle(image_model, tmp_path, app_name):  # noqa: F811
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    out = tmp_path / "out"
    r = run_cli("build", image_model / "model.keras", "--samples", image_model / "samples", "--labels",
                image_model / "labels.txt", "--targets", "android,web", "--web-runtime", "litert", "--out", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    web = out / "web"
    if app_name == "vite_ts":
        # the app's source unedited, typeChecks() included: model.d.ts is the TF.js bundle's, byte for byte
        assert (web / "model.d.ts").read_bytes() == (template_dir("web") / "model.d.ts").read_bytes()
        app = make_app("vite_ts", web, tmp_path, install_links=False)
        npm([str(app / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "."], app)
        npm([str(app / "node_modules" / ".bin" / "vite"), "build", "--logLevel", "warn"], app)
    else:  # only what `npm pack` ships
        app = make_app("webpack5", web, tmp_path, install_links=True)
        npm([str(app / "node_modules" / ".bin" / "webpack"), "--mode", "production"], app)
    samples = sorted(web.glob("samples/*.png"))
    seen = predictions_in_chromium(app / "dist", samples)
    assert seen["problems"] == [], seen["problems"]
    assert seen["loaded"]["backend"] == "wasm"
    # LiteRT.js's wasm came through the app's build (webpack renames it to its hash)
    assert any(u.split("?")[0].endswith(".wasm") for u in seen["requests"]), seen["requests"]

    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    runner = Interpreter(model_path=str(out / android["artifact"])).get_signature_runner("serving_default")
    labels = (image_model / "labels.txt").read_text().split()
    assert len(seen["rows"]) == len(samples) >= 4
    for p, row in zip(samples, seen["rows"]):
        with Image.open(p) as im:  # the bundled samples are already at the input size
            x = (np.asarray(im.convert("RGB"), np.float32) / 255.0)[None]
        host = runner(image=x)["output_0"].ravel()
        assert np.max(np.abs(np.asarray(row["scores"], np.float32) - host)) <= 0.1, p.name
        assert row["label"] == labels[int(np.argmax(host))], p.name
