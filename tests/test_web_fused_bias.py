"""A residual block whose convolution and BatchNorm carry no bias (ResNet50 with weights=None): the converter fuses
the residual add into the convolution as a rank-4 "bias", which tf.js' wasm backend refuses ("FusedConv2D only
supports rank-1 bias"), the failure ResNet50's page had. Real conversion, real Chromium, every backend."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from test_web_target import ExportedModel, Samples  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    import keras

    from packager.spec import PackageSpec

    d = tmp_path_factory.mktemp("residual")
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 3))
    y = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 1)(x))  # zero bias and beta, as initialised
    y = keras.layers.ReLU()(keras.layers.Add()([y, x]))
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(y))
    keras.Model(x, out).export(str(d / "sm"), verbose=False)
    source = ExportedModel(d / "sm")
    rng = np.random.default_rng(0)
    samples = Samples([{source.inputs[0].name: rng.normal(size=(1, 8, 8, 3)).astype(np.float32)} for _ in range(3)])
    spec = PackageSpec(model=d / "m.keras", samples=d / "x.npy", name="residual")
    return d, spec, source, samples, source.predict(samples.stacked())


def _fused_with_tensor_bias(model_json) -> int:
    model = json.loads(model_json.read_text())
    weights = {w["name"] for g in model["weightsManifest"] for w in g["weights"]}
    return sum(1 for n in model["modelTopology"]["node"]
               if n["op"] == "_FusedConv2D" and n["input"][2].split(":")[0] not in weights)


def test_without_the_rewrite_wasm_is_left_out_and_webgl_validated(residual, tmp_path):
    from packager.targets.web import target as web

    _, spec, source, samples, reference = residual
    target = web.WebTarget()
    target.unfuse_tensor_bias = False  # the converter's own graph, as tensorflowjs_converter writes it
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    assert _fused_with_tensor_bias(art.path / "model.json") == 1
    out = tmp_path / "web"
    target.render(spec, source, art, samples, reference, out)
    pred = target.predict_and_check(spec, source, art, samples, reference, out)
    checks = {c.name: c for c in pred.checks}
    print(checks["backends"].detail)
    assert "wasm: cannot run the model" in checks["backends"].detail
    assert "FusedConv2D only supports rank-1 bias" in checks["backends"].detail
    assert "webgl: PASS" in checks["backends"].detail and "cpu: PASS" in checks["backends"].detail
    assert json.loads((out / "metadata.json").read_text())["backends"] == ["webgl", "cpu"]
    assert "webgl backend" in pred.runtime  # the page's pick on a machine like this, and the figures' source
    assert all(c.status == "PASS" for c in pred.checks), pred.checks
    for k, ref in reference.items():
        assert np.max(np.abs(pred.outputs[k] - ref)) <= 1e-5


def test_the_rewrite_lets_wasm_run_it_with_the_same_numbers(residual, tmp_path, monkeypatch):
    from packager.targets.web import backends as web_backends
    from packager.targets.web import target as web


    _, spec, source, samples, reference = residual
    target = web.WebTarget()
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    assert art.extra["unfused_tensor_bias"] == 1 and _fused_with_tensor_bias(art.path / "model.json") == 0
    out = tmp_path / "web"
    target.render(spec, source, art, samples, reference, out)
    pred = target.predict_and_check(spec, source, art, samples, reference, out)
    checks = {c.name: c for c in pred.checks}
    print(checks["backends"].detail)
    assert all(f"{b}: PASS" in checks["backends"].detail for b in ("wasm", "webgl", "cpu"))
    assert "wasm backend" in pred.runtime and len(pred.outputs[next(iter(reference))]) == 3  # the first: every sample
    detail = checks["backends"].detail
    assert detail.count(f"on {web_backends.FALLBACK_SAMPLES} of 3 samples (a fallback's spot check)") == 2, detail
    for k, ref in reference.items():
        assert np.max(np.abs(pred.outputs[k] - ref)) <= 1e-5


@pytest.mark.parametrize("side_by_side", [True, False])
def test_fallbacks_side_by_side_or_one_after_another_judge_the_same(residual, tmp_path, monkeypatch, side_by_side):
    """Fallback pages run their samples inside the page, all at once (small models) or one after another (models
    of memory.LARGE_WEIGHTS or more); either way each loads, runs FALLBACK_SAMPLES and is judged against the
    reference; the first backend runs every sample."""
    from packager.targets.web import backends as web_backends
    from packager.targets.web import target as web

    monkeypatch.setattr(web_backends, "_weights", lambda spec: 0 if side_by_side else web_backends.LARGE_WEIGHTS)
    _, spec, source, samples, reference = residual
    art = web.WebTarget().convert(source, spec, "fp32", tmp_path / "work")
    out = tmp_path / "web"
    web.WebTarget().render(spec, source, art, samples, reference, out)
    runs = web_backends.validate_backends(spec, source, samples, reference, "fp32", out)
    assert [r.name for r in runs] == ["wasm", "webgl", "cpu"]
    assert all(r.loaded and r.passed for r in runs), [r.summary() for r in runs]
    assert runs[0].samples == len(samples)
    assert [r.samples for r in runs[1:]] == [web_backends.FALLBACK_SAMPLES] * 2
    for r in runs:
        for k, ref in reference.items():
            assert np.max(np.abs(r.prediction.outputs[k] - ref[:r.samples])) <= 1e-5
