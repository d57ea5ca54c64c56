"""--web-runtime litert|auto: the web bundle ships the Android target's very .tflite on LiteRT.js (issue 30).

Real components: the CLI, the converters, ai-edge-litert on the host, LiteRT.js 2.5.3 in headless Chromium; tiny
models built here. The image model has a fixed batch of 1 (LiteRT.js has no resize call: a dynamic batch is
refused, see test_litert_refuses_what_its_js_api_cannot_run)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from packager.config import build_spec
from packager.errors import ConversionError, UsageError


def ns(**kw):
    base = dict(model="m.keras", samples="s", labels=None, targets=None, out=None, config=None, mean=None, std=None,
                color=None, quantize=None, int8_io=False, input_shape=None, output_names=None, name=None,
                android_package=None, ios_format=None, force=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_web_runtime_settings():
    assert build_spec(ns()).web_runtime == "tfjs"  # TF.js stays the default
    spec = build_spec(ns(web_runtime="litert", targets="android,web"))
    assert spec.web_runtime == "litert" and spec.quantization["web"] == "litert"
    assert build_spec(ns(web_runtime="auto")).quantization["web"] == "auto"
    with pytest.raises(UsageError, match="android is not among the targets"):
        build_spec(ns(web_runtime="litert", targets="ios,web"))
    with pytest.raises(UsageError, match="TF.js weight mode"):
        build_spec(ns(web_runtime="litert", quantize=["web=uint8"]))


def test_web_runtime_in_packager_toml(tmp_path):
    cfg = tmp_path / "packager.toml"
    cfg.write_text('model = "a.keras"\nsamples = "s"\nweb_runtime = "litert"\n')
    assert build_spec(ns(model=None, samples=None, config=str(cfg))).quantization["web"] == "litert"
    cfg.write_text('model = "a.keras"\nsamples = "s"\n[web]\nruntime = "litrt"\n')
    with pytest.raises(UsageError, match="unknown web runtime 'litrt'") as e:
        build_spec(ns(model=None, samples=None, config=str(cfg)))
    assert "did you mean 'litert'" in e.value.hint


def test_web_is_built_after_the_android_file_it_ships():
    from packager.build_session import after_what_they_read

    order = ["ios", "web", "android"]
    assert after_what_they_read(order, build_spec(ns(web_runtime="litert"))) == ["ios", "android", "web"]
    assert after_what_they_read(order, build_spec(ns(web_runtime="auto"))) == ["ios", "android", "web"]
    assert after_what_they_read(order, build_spec(ns())) == order  # tfjs: the measured order is kept


def _tflite(tmp_path: Path, name: str, *, batch: int | None, int8_io: bool = False) -> Path:
    """A one-layer softmax classifier (constant weights) as a .tflite: batch fixed or dynamic, float or int8 I/O."""
    import tensorflow as tf

    w = tf.constant(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([batch, 8], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.nn.softmax(tf.matmul(x, w))}

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / name), signatures={"serving_default": serve.get_concrete_function()})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / name))
    if int8_io:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.random.default_rng(i).random((1, 8), np.float32)]
                                                    for i in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.mark.slow
def test_litert_refuses_what_its_js_api_cannot_run(tmp_path):
    from packager.spec import TensorSpec
    from packager.targets.web.litert.convert import tensor_table

    class Source:
        inputs = (TensorSpec("x", (None, 8)),)
        outputs = (TensorSpec("output_0", (None, 3)),)

    ins, outs = tensor_table(_tflite(tmp_path, "static", batch=1), Source)
    assert ins == [{"name": "x", "tensor": "x", "dtype": "float32", "shape": [1, 8]}]
    assert outs[0]["tensor"] == "output_0" and outs[0]["shape"] == [1, 3]
    with pytest.raises(ConversionError, match="dynamic shape") as e:
        tensor_table(_tflite(tmp_path, "dynamic", batch=None), Source)
    assert "batch 1" in e.value.hint
    with pytest.raises(ConversionError, match="is int8") as e:
        tensor_table(_tflite(tmp_path, "int8io", batch=1, int8_io=True), Source)
    assert "--int8-io" in e.value.hint


def test_litert_judges_the_android_file_by_the_gates_android_judged_it_by(tmp_path):
    """Auto kept a dynamic-range .tflite on android under its auto gates (int8's: max abs 0.1); the web ships that
    file: its checks use the same gates, not the stricter ones of a mode the web never chose (dynamic's 0.05:
    mltk_cifar10 failed its web target with max abs 0.0627, the page equal to android's host run to 3e-4)."""
    import types

    from packager.compare import gates_for
    from packager.modes import convert_mode, judged_gates
    from packager.report import TargetResult
    from packager.targets.web.litert import convert

    path = _tflite(tmp_path, "static", batch=1)
    android = TargetResult("android", "PASS", quantization="dynamic", artifact=path.name, bytes=1, float_bytes=2,
                           gates=gates_for("android", "int8"))
    from packager.spec import TensorSpec

    source = types.SimpleNamespace(inputs=(TensorSpec("x", (None, 8)),), outputs=(TensorSpec("output_0", (None, 3)),))
    spec = types.SimpleNamespace(upstream={"android": {"result": android, "root": str(tmp_path)}}, tolerances={})
    artifact = convert.convert(source, spec, tmp_path / "work")
    assert judged_gates("web", artifact, artifact.mode, {}) == android.gates != gates_for("web", "dynamic")

    class Web:
        def convert(self, source, spec, mode, workdir):
            return convert.convert(source, spec, workdir)

    progress = types.SimpleNamespace(info=lambda *a: None, debug=lambda *a: None)
    result, _ = convert_mode("web", Web(), "litert", spec, source, tmp_path / "work2", {}, progress)
    assert result.gates == android.gates, result.reason


# ---------------------------------------------------------------------------------------------
# end to end (CLI)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """A tiny CNN with a fixed batch of 1 on 16x16 RGB images (three colour classes), its samples and labels."""
    import keras
    from PIL import Image

    d = tmp_path_factory.mktemp("litert_image")
    (d / "samples").mkdir()
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(16, 16, 3), batch_size=1, name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    images = rng.random((24, 16, 16, 3)).astype("float32") * 0.5
    for c in range(3):
        images[8 * c:8 * c + 8, :, :, c] += 0.5
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, np.repeat([0, 1, 2], 8), epochs=10, batch_size=1, verbose=0)
    model.save(d / "model.keras")
    for i, im in enumerate(images):
        Image.fromarray((np.clip(im, 0, 1) * 255).astype("uint8")).save(d / "samples" / f"{i:02d}.png")
    (d / "labels.txt").write_text("red\ngreen\nblue\n")
    return d


@pytest.mark.slow
def test_litert_ships_the_android_file_and_predicts_like_its_host_run(image_model, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", image_model / "model.keras", "--samples", image_model / "samples", "--labels",
                image_model / "labels.txt", "--targets", "android,web", "--web-runtime", "litert", "--out", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    web, android = report["targets"]["web"], report["targets"]["android"]
    assert web["status"] == "PASS" and web["quantization"] == "litert", web["reason"]
    # LiteRT.js runs in the demo page's Worker (a classic one: its wasm glue is loaded with importScripts)
    assert web["runtime"].endswith("wasm, in a Worker"), web
    assert "UNVERIFIED here: webgpu" in r.stdout  # WebGPU not run here: said on the console's status line
    shipped = (out / "web" / "model.tflite").read_bytes()
    android_file = out / android["artifact"]
    assert shipped == android_file.read_bytes()  # the very file, byte for byte
    sha = hashlib.sha256(shipped).hexdigest()
    metadata = json.loads((out / "web" / "metadata.json").read_text())
    assert metadata["runtime"] == "litert" and metadata["model_sha256"] == sha and metadata["backends"] == ["wasm"]
    # the fields model.js (the TF.js bundle's file) and model.d.ts read, as the TF.js bundle writes them
    assert [set(i) for i in metadata["inputs"]] == [{"name", "node", "dtype", "shape"}]
    assert [set(o) for o in metadata["outputs"]] == [{"name", "node", "kind"}]
    assert metadata["image"]["normalize"] == "mean-std"
    checks = {c["name"]: c for c in web["checks"]}
    assert checks["same_file_as_android"]["status"] == "PASS" and sha[:16] in checks["same_file_as_android"]["detail"]
    assert checks["webgpu"]["status"] == "UNVERIFIED"
    for name in ("service_worker", "offline_reload", "console_errors", "image_path", "manifest_installable"):
        assert checks[name]["status"] == "PASS", checks[name]
    assert not (out / "web" / "model.json").exists() and not (out / "web" / "tfjs").exists()

    # Independently of the build's checks: the page (its own window.packager, the path apps take through
    # model.js) on every sample vs ai-edge-litert on android's file, within the int8 gate.
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from packager.targets.web.page import _served_page
    from packager.targets.web.target import preprocess_pixels

    spec = build_spec(ns(model=str(image_model / "model.keras"), samples=str(image_model / "samples")))
    runner = Interpreter(model_path=str(android_file)).get_signature_runner("serving_default")
    worst, agree, files = 0.0, 0, sorted((image_model / "samples").glob("*.png"))
    with _served_page(out / "web") as (session, _server):
        assert session.open() == "wasm"
        assert session.thread == "worker", session.thread
        fetched = session.page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
        assert not [u for u in fetched if "litert-runtime.js" in u or "litert_wasm" in u or "model.tflite" in u]
        for p in files:
            with Image.open(p) as im:
                x = preprocess_pixels(np.asarray(im.convert("RGB")), spec, 3).astype(np.float32)
            page, _ = session.predict({"image": x})
            host = runner(image=x)["output_0"]
            worst = max(worst, float(np.max(np.abs(page["output_0"] - host))))
            agree += int(np.argmax(page["output_0"]) == np.argmax(host))
        assert session.errors == []
    assert agree == len(files) and worst <= 0.1, (agree, worst)


@pytest.fixture(scope="module")
def bucketize_model(tmp_path_factory):
    """A model tf.js cannot run on any backend (Bucketize, from Keras' Discretization: no TF.js kernel, so
    tensorflowjs refuses it) and TFLite runs (builtin BUCKETIZE): 4 floats -> 3 classes, batch 1."""
    import keras

    d = tmp_path_factory.mktemp("litert_bucketize")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(4,), batch_size=1, name="x")
    bins = keras.layers.Discretization(bin_boundaries=[-1.0, -0.3, 0.3, 1.0])(inp)
    flat = keras.layers.Flatten()(keras.layers.Embedding(5, 3)(bins))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([flat, inp]))
    model = keras.Model(inp, out)
    x = rng.normal(size=(24, 4)).astype("float32")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5), epochs=20, batch_size=1, verbose=0)
    model.save(d / "model.keras")
    np.save(d / "samples.npy", x)
    (d / "labels.txt").write_text("a\nb\nc\n")
    return d


@pytest.mark.slow
def test_auto_chooses_litert_for_a_model_tfjs_cannot_run(bucketize_model, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", bucketize_model / "model.keras", "--samples", bucketize_model / "samples.npy", "--labels",
                bucketize_model / "labels.txt", "--targets", "android,web", "--web-runtime", "auto", "--out", out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    web = report["targets"]["web"]
    assert web["status"] == "PASS" and web["quantization"] == "litert", web["reason"]
    # LiteRT.js runs in the demo page's Worker (a classic one: its wasm glue is loaded with importScripts)
    assert web["runtime"].endswith("wasm, in a Worker"), web
    tries = web["tries"]
    assert tries[0]["mode"] == "uint8" and tries[0]["status"] == "FAIL" and "Bucketize" in tries[0]["reason"]
    assert "going on with litert" in tries[0]["stopped"]
    assert tries[-1]["mode"] == "litert" and tries[-1]["status"] == "PASS" and "first visit" in tries[-1]["note"]
    assert (out / "web" / "model.tflite").read_bytes() == (out / report["targets"]["android"]["artifact"]).read_bytes()


def test_auto_places_litert_in_the_ladder_by_first_visit(tmp_path):
    """The LiteRT.js try goes where its first visit (android's .tflite + the LiteRT.js runtime, gzip) falls among the
    TF.js modes' (estimated from android's fp32 size): last for a small model, before the 2-byte modes for a large
    one; --web-runtime tfjs leaves the ladder alone."""
    from packager.modes import AUTO_ORDER
    from packager.report import TargetResult
    from packager.targets.web.target import WebTarget

    ladder = AUTO_ORDER["web"]
    for size, expected in ((20_000, (*ladder, "litert")),
                           (8_000_000, ("uint8", "mixed", "litert", "fp16", "uint16", "fp32"))):
        (tmp_path / "model.tflite").write_bytes(np.random.default_rng(0).bytes(size))  # incompressible, as weights
        android = TargetResult("android", "PASS", quantization="int8", artifact="model.tflite", float_bytes=4 * size)
        spec = build_spec(ns(web_runtime="auto")).with_(upstream={"android": {"result": android, "root": tmp_path}})
        assert WebTarget().auto_order(spec, ladder) == expected, size
        assert WebTarget().auto_order(spec.with_(web_runtime="tfjs"), ladder) == ladder
    android.status = "FAIL"  # nothing to ship: the TF.js ladder only
    assert WebTarget().auto_order(spec, ladder) == ladder
