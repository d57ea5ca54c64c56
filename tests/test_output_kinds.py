"""Output kinds through the real CLI: metrics and gates follow each output's kind, labels per output, the same
primary output in every wrapper, and default `auto` quantization (with its early stop). Tiny models built here."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import run_cli, save_cumprod_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kind_models(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("kind_models")
    keras.utils.set_random_seed(7)
    a = keras.Input((6,), name="features")
    h = keras.layers.Dense(8, activation="tanh")(a)
    # output_0: 4 numbers (a box), output_1: 3 class probabilities
    det = keras.Model(a, [keras.layers.Dense(4, name="box")(h), keras.layers.Dense(3, activation="softmax")(h)])
    det.save(d / "box_and_classes.keras")
    # output_0: 2 numbers, output_1: 5 independent sigmoid scores (multi-label)
    tags = keras.Model(a, [keras.layers.Dense(2)(h), keras.layers.Dense(5, activation="sigmoid")(h)])
    tags.save(d / "multi_label.keras")
    np.savez(d / "s.npz", features=np.random.default_rng(1).normal(size=(16, 6)).astype(np.float32))
    (d / "classes.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    (d / "tags.txt").write_text("red\ngreen\nblue\nbig\n$small\n", encoding="utf-8")
    return d


def build(tmp_path, model, samples, *extra, name="out", env=None):
    out = tmp_path / name
    r = run_cli("build", model, "--samples", samples, "--out", out, *extra, env=env)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return r, out, report


def kinds_of(report) -> dict[str, str]:
    return {o["name"]: o["kind"] for o in report["model"]["outputs"]}


def kotlin_primary(out) -> str:
    """The output the Android wrapper's classify() reads: OUTPUT_NAMES[PRIMARY_OUTPUT_INDEX] (TFLite's order)."""
    kt = next((out / "android").rglob("*Classifier.kt")).read_text(encoding="utf-8")
    names = re.findall(r'"([^"]*)"', re.search(r"val OUTPUT_NAMES: List<String> = (?:Collections\.unmodifiableList\()?listOf\(([^)]*)\)", kt).group(1))
    index = int(re.search(r"const val PRIMARY_OUTPUT_INDEX: Int = (\d+)", kt).group(1))
    assert re.search(r'const val PRIMARY_OUTPUT: String = "([^"]*)"', kt).group(1) == names[index]
    return names[index]


def test_regression_output_has_no_top1_and_plain_labels_go_to_the_primary_output(tmp_path, kind_models):
    """A box (regression) output first, class probabilities second: top-1 only on the classes, and a labels
    file without an output name labels the class output (the old rule took the first 2-D output: 4 != 3)."""
    r, out, report = build(tmp_path, kind_models / "box_and_classes.keras", kind_models / "s.npz",
                           "--targets", "android", "--quantize", "android=fp32",
                           "--labels", kind_models / "classes.txt")
    assert r.returncode == 0, r.stderr + r.stdout
    assert kinds_of(report) == {"output_0": "regression", "output_1": "probabilities"}
    assert report["model"]["primary_output"] == "output_1"
    assert [o["labels"] for o in report["model"]["outputs"]] == [0, 3]
    a = report["targets"]["android"]
    assert a["per_output"]["output_0"]["top1_agreement"] is None
    assert a["per_output"]["output_0"]["decision_agreement"] is None
    assert a["per_output"]["output_1"]["top1_agreement"] == 1.0
    assert a["confusion"]["classes"]  # the confusion table is the class output's
    checks = {c["name"]: c["status"] for c in a["checks"]}
    assert checks["tflite-metadata"] == "PASS" and checks["kotlin-compiles"] == "PASS", checks  # labels on output_1
    assert kotlin_primary(out) == "output_1"
    assert next((out / "android" / "src" / "main" / "assets").rglob("labels.txt")).read_text().split() == ["cat", "dog", "bird"]
    assert "output_1 (probabilities, primary)" in r.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Outputs</h2>" in html and "regression" in html and "(primary)" in html


def test_sigmoid_multi_label_on_every_target(tmp_path, kind_models):
    """Sigmoid scores get decision agreement at 0.5 and no top-1; labels named for the second output; the
    wrappers of all three targets read the same primary output."""
    r, out, report = build(tmp_path, kind_models / "multi_label.keras", kind_models / "s.npz",
                           "--quantize", "android=fp32", "--quantize", "ios=fp32", "--quantize", "web=fp32",
                           "--labels", f"output_1={kind_models / 'tags.txt'}")
    assert r.returncode == 0, r.stderr + r.stdout
    assert kinds_of(report) == {"output_0": "regression", "output_1": "sigmoid"}
    assert report["model"]["primary_output"] == "output_1"
    for name, t in report["targets"].items():
        assert t["status"] == "PASS", (name, t["reason"])
        assert t["per_output"]["output_1"]["decision_agreement"] == 1.0, name
        assert t["metrics"]["top1_agreement"] is None and t["confusion"] == {}, name
        assert t["gates"]["min_decision"] == 1.0
    checks = {f"{n}:{c['name']}": c["status"] for n, t in report["targets"].items() for c in t["checks"]}
    for check in ("android:kotlin-compiles", "android:jni-runs-shipped-model", "ios:swift-syntax", "ios:feature-names",
                  "ios:golden-samples", "web:page_console"):
        assert checks[check] == "PASS", (check, checks)
    assert kotlin_primary(out) == "output_1"
    swift = next((out / "ios").rglob("*Classifier.swift")).read_text(encoding="utf-8")
    features = json.loads(next((out / "ios").rglob("golden.json")).read_text())  # golden expected: feature names
    primary_feature = re.search(r'public static let primaryOutput: String = "([^"]*)"', swift).group(1)
    expected = features["samples"][0]["upright"]["expected"]
    assert primary_feature in expected and expected[primary_feature]["shape"] == [1, 5]
    metadata = json.loads((out / "web" / "metadata.json").read_text(encoding="utf-8"))  # what model.js reads
    assert metadata["primary_output"] == "output_1" and metadata["label_output"] == "output_1"


def test_kind_set_in_packager_toml_wins(tmp_path, kind_models):
    cfg = tmp_path / "packager.toml"
    cfg.write_text('[outputs.output_1]\nkind = "regression"\n[labels]\noutput_1 = "tags.txt"\n', encoding="utf-8")
    (tmp_path / "tags.txt").write_text((kind_models / "tags.txt").read_text())
    r, out, report = build(tmp_path, kind_models / "multi_label.keras", kind_models / "s.npz",
                           "--config", cfg, "--targets", "android", "--quantize", "android=fp32")
    assert r.returncode == 0, r.stderr + r.stdout
    assert kinds_of(report) == {"output_0": "regression", "output_1": "regression"}
    assert report["model"]["primary_output"] == "output_0"  # no class or sigmoid output left: the first
    assert report["model"]["outputs"][1]["labels"] == 5
    a = report["targets"]["android"]
    assert a["per_output"]["output_1"]["decision_agreement"] is None and a["metrics"]["top1_agreement"] is None


def test_bad_kind_and_unknown_output_are_usage_errors(tmp_path, kind_models):
    cfg = tmp_path / "packager.toml"
    cfg.write_text('[outputs.output_1]\nkind = "sigmoidal"\n', encoding="utf-8")
    r, out, _ = build(tmp_path, kind_models / "multi_label.keras", kind_models / "s.npz", "--config", cfg)
    assert r.returncode == 2 and "unknown output kind 'sigmoidal'" in r.stderr and "did you mean 'sigmoid'" in r.stderr
    assert not out.exists()
    r, out, _ = build(tmp_path, kind_models / "multi_label.keras", kind_models / "s.npz", "--targets", "android",
                      "--labels", f"output_2={kind_models / 'tags.txt'}", name="out2")
    assert r.returncode == 2, r.stderr + r.stdout
    assert "output 'output_2'" in r.stderr and "did you mean" in r.stderr and not out.exists()


def test_default_quantization_is_auto_with_every_try_reported(tmp_path, kind_models):
    r, out, report = build(tmp_path, kind_models / "box_and_classes.keras", kind_models / "s.npz",
                           "--targets", "android")
    assert r.returncode == 0, r.stderr + r.stdout
    a = report["targets"]["android"]
    tries = a["tries"]
    first_pass = next(i for i, t in enumerate(tries) if t["status"] == "PASS")
    assert tries[0]["mode"] == "int8" and all(t["status"] == "FAIL" for t in tries[:first_pass])
    kept = next(t for t in tries if t["mode"] == a["quantization"])
    assert kept["status"] == "PASS" and kept["bytes"] == a["bytes"]
    if tries[first_pass]["mode"] == "int8":  # its rival: dynamic-range, weighed by --optimize balanced (default)
        assert [t["mode"] for t in tries[first_pass:]] in (["int8"], ["int8", "dynamic"]), tries
        assert a["optimize"]["objective"] == "balanced" and "25%" in a["optimize"]["why"]
    else:
        assert first_pass == len(tries) - 1
    assert "auto quantization tried int8=" in r.stderr + r.stdout


def test_auto_stops_at_an_unverified_result(tmp_path, kind_models):
    """No browser: the web result is UNVERIFIED whatever the mode, so auto does not escalate to a bigger one."""
    r, out, report = build(tmp_path, kind_models / "box_and_classes.keras", kind_models / "s.npz",
                           "--targets", "web", env={"CI": None, "PACKAGER_CHROMIUM": str(tmp_path / "no-chromium")})
    assert r.returncode == 6, r.stderr + r.stdout
    web = report["targets"]["web"]
    assert web["status"] == "UNVERIFIED"
    assert [t["mode"] for t in web["tries"]] == ["uint8"] and "UNVERIFIED" in web["tries"][0]["stopped"]
    assert web["quantization"] == "uint8" and "auto quantization stopped at uint8" in web["reason"]


def test_auto_stops_when_the_conversion_fails_in_fp32_too(tmp_path):
    """tf.math.cumprod has no coremltools translator: the ios conversion fails in every mode, so auto stops
    after the first (auto's first iOS mode), saying why, instead of converting the others as well. Runs the pipeline's
    build_target on the real ios target (the op preflight, which would reject the model first, is skipped)."""
    from concurrent.futures import ThreadPoolExecutor

    from packager.pipeline import AUTO_ORDER, build_target, reference_outputs
    from packager.progress import SILENT
    from packager.samples import load_samples
    from packager.source import load_source
    from packager.spec import PackageSpec

    save_cumprod_model(tmp_path / "cumprod")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32))
    spec = PackageSpec(model=tmp_path / "cumprod", samples=tmp_path / "x.npy", out=tmp_path / "out",
                       targets=("ios",))
    assert spec.quantization["ios"] == "auto"
    work = tmp_path / "work"
    source = load_source(spec, work)
    samples = load_samples(spec, source.inputs)
    reference = reference_outputs(source, samples)
    staging = tmp_path / "staging"
    staging.mkdir()
    with ThreadPoolExecutor(1) as background:
        result = build_target("ios", spec, source, samples, reference, work, staging, SILENT, background).result()
    assert result.status == "FAIL" and result.conversion_failed
    first = AUTO_ORDER["ios"][0]
    assert [t["mode"] for t in result.tries] == [first], result.tries
    assert "fp32 conversion fails too" in result.tries[0]["stopped"]
    assert f"auto quantization stopped at {first}" in result.reason
