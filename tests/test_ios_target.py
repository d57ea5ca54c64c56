"""The iOS target end to end on tiny models: real coremltools conversion, the saved .mlmodel run by
the NumPy executor (Linux) or Core ML (macOS), the rendered Swift package and its checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
ct = pytest.importorskip("coremltools")

from conftest import run_cli  # noqa: E402
from packager.checks import PASS, UNVERIFIED  # noqa: E402
from packager.pipeline import reference_outputs  # noqa: E402
from packager.samples import load_samples  # noqa: E402
from packager.source import load_source  # noqa: E402
from packager.spec import PackageSpec, Preprocessing  # noqa: E402
from packager.targets.base import Unverified  # noqa: E402
from packager.targets.ios import swift_syntax  # noqa: E402
from packager.targets.ios.target import IOSTarget  # noqa: E402

RNG = np.random.default_rng(3)
HOSTILE = ('quote"d', "back\\slash", "inter\\(polation)", "new\nline", "ünï 😀", "tab\tand */ comment")
L = keras.layers


def _image_folder(path: Path, n: int, hw: tuple[int, int], channels: int = 3) -> Path:
    from PIL import Image

    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = RNG.integers(0, 256, hw + (channels,), dtype=np.uint8)
        Image.fromarray(arr[:, :, 0] if channels == 1 else arr).save(path / f"img_{i}.png")
    return path


def _build(tmp: Path, model, *, samples: Path, **spec_kw):
    model_path = tmp / "model.keras"
    model.save(model_path)
    spec = PackageSpec(model=model_path, samples=samples, out=tmp / "out", name="Tiny Net", **spec_kw)
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    source = load_source(spec, work)
    samp = load_samples(spec, source.inputs)
    return spec, source, samp, reference_outputs(source, samp), work


def _small_cnn(classes: int, channels: int = 3):
    inp = keras.Input((16, 16, channels))
    x = L.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = L.BatchNormalization()(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(x)
    x = L.MaxPooling2D()(x)
    x = L.Flatten()(x)
    return keras.Model(inp, L.Dense(classes, activation="softmax")(x))


@pytest.fixture(scope="module")
def cnn_case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cnn")
    samples = _image_folder(tmp / "samples", 5, (16, 16))
    model = _small_cnn(len(HOSTILE))
    return _build(tmp, model, samples=samples, labels=HOSTILE,
                  preprocessing=Preprocessing(color="bgr", mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 70.0)))


@pytest.mark.parametrize("mode", ["fp32", "fp16", "8bit"])
def test_image_classifier_each_mode(cnn_case, tmp_path, mode):
    spec, source, samples, reference, work = cnn_case
    target = IOSTarget()
    art = target.convert(source, spec, mode, work)
    assert art.path.suffix == ".mlmodel" and art.bytes == art.path.stat().st_size
    mlspec = ct.utils.load_spec(str(art.path))
    assert mlspec.WhichOneof("Type") == "neuralNetworkClassifier"
    assert mlspec.specificationVersion <= 5  # NeuralNetwork, deployable below iOS 15
    assert list(mlspec.neuralNetworkClassifier.stringClassLabels.vector) == list(HOSTILE)
    assert mlspec.description.input[0].type.WhichOneof("Type") == "imageType"
    assert mlspec.description.input[0].type.imageType.colorSpace == 30  # BGR
    meta = mlspec.description.metadata
    assert meta.userDefined["packager.weights"] == mode and "mean" in meta.userDefined["packager.preprocessing"]

    pred = target.predict(art, source, spec, samples)
    assert pred.runtime.startswith("coreml" if IOSTarget.coreml_runtime_available() else "numpy-nn-executor")
    got, want = pred.outputs["output_0"], reference["output_0"]
    assert got.shape == want.shape
    assert (got.argmax(1) == want.argmax(1)).all()
    tol = {"fp32": 1e-4, "fp16": 5e-3, "8bit": 5e-2}[mode]
    assert np.abs(got - want).max() < tol

    out = tmp_path / "ios"
    model_rel = target.render(spec, source, art, samples, reference, out)
    assert (out / model_rel).is_file() and model_rel.as_posix() == "Sources/TinyNet/TinyNetModel.mlmodel"
    for f in ("Package.swift", "README.md", "LICENSE", "Sources/TinyNet/TinyNetClassifier.swift",
              "Tests/TinyNetTests/TinyNetTests.swift", "Tests/TinyNetTests/Resources/golden.json"):
        assert (out / f).is_file(), f
    checks = {c.name: c for c in target.checks(spec, source, art, samples, reference, out)}
    assert checks.pop("swift-build").status == _swift_build_status(), "PASS only where a toolchain built it"
    # the Swift image code cannot run here: its preprocessing check says so (never PASS without a run)
    assert checks.pop("preprocessing").status == "UNVERIFIED"
    assert [c.status for c in checks.values()] == [PASS] * len(checks), checks
    consts = swift_syntax.parse(Path(out / "Sources/TinyNet/TinyNetClassifier.swift").read_bytes())
    assert not consts.root_node.has_error
    # hostile labels are not duplicated in Swift (read from the model's classLabels); golden.json keeps them exact
    text = (out / "Sources/TinyNet/TinyNetClassifier.swift").read_text()
    assert "ünï" not in text and "polation" not in text
    golden = json.loads((out / "Tests/TinyNetTests/Resources/golden.json").read_text())
    assert golden["labels"] == list(HOSTILE) and golden["weights"] == mode


def _swift_build_status() -> str:
    """What the swift-build check may say here: PASS needs a toolchain with Apple's SDKs (macOS)."""
    import platform
    import shutil

    if platform.system() == "Darwin" and (shutil.which("swift") or shutil.which("xcodebuild")):
        return PASS
    return UNVERIFIED


def test_checks_catch_broken_swift_and_feature_names(cnn_case, tmp_path):
    spec, source, samples, reference, work = cnn_case
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    out = tmp_path / "ios"
    target.render(spec, source, art, samples, reference, out)
    wrapper = out / "Sources/TinyNet/TinyNetClassifier.swift"
    wrapper.write_text(wrapper.read_text().replace('imageInput: String = "', 'imageInput: String = "typo_'))
    tests = out / "Tests/TinyNetTests/TinyNetTests.swift"
    tests.write_text(tests.read_text().replace("func testCancelledTaskThrows() async", "func testCancelledTaskThrows( async"))
    golden = out / "Tests/TinyNetTests/Resources/golden.json"
    g = json.loads(golden.read_text())
    g["samples"][0]["upright"]["expected"]["output_0"]["values"][0] += 0.5
    golden.write_text(json.dumps(g))
    by_name = {c.name: c for c in target.checks(spec, source, art, samples, reference, out)}
    assert by_name["swift-syntax"].status == "FAIL" and "TinyNetTests.swift" in by_name["swift-syntax"].detail
    assert by_name["feature-names"].status == "FAIL" and "typo_" in by_name["feature-names"].detail
    assert by_name["golden-samples"].status == "FAIL"


def test_unknown_layer_makes_prediction_unverified(cnn_case, tmp_path):
    spec, source, samples, reference, work = cnn_case
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    mlspec = ct.utils.load_spec(str(art.path))
    layer = mlspec.neuralNetworkClassifier.layers.add()
    layer.name = "mystery"
    layer.input.append(mlspec.neuralNetworkClassifier.layers[0].output[0])
    layer.output.append("mystery_out")
    layer.argSort.axis = -1
    second = mlspec.neuralNetworkClassifier.layers.add()  # a second unknown type: both must be named
    second.name = "mystery_custom"
    second.input.append("mystery_out")
    second.output.append("mystery_custom_out")
    second.custom.className = "MyLayer"
    ct.utils.save_spec(mlspec, str(art.path))
    if IOSTarget.coreml_runtime_available():
        pytest.skip("Core ML itself runs argSort on macOS")
    with pytest.raises(Unverified, match="'argSort'") as e:
        target.predict(art, source, spec, samples)
    reason = str(e.value)
    assert "'custom'" in reason and "'mystery'" in reason and "'mystery_custom'" in reason, reason


def test_dynamic_output_shape_is_described_not_a_crash(tmp_path):
    """A fully convolutional model (H and W dynamic, fixed by --input-shape): its outputs' H and W stay
    dynamic in the source signature. The .mlmodel describes them as dynamic and still runs."""
    inp = keras.Input((None, None, 3), name="img")
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    model = keras.Model(inp, L.Conv2D(2, 1)(x))
    np.save(tmp_path / "x.npy", RNG.normal(0, 1, (2, 8, 6, 3)).astype(np.float32))
    spec, source, samples, reference, work = _build(tmp_path, model, samples=tmp_path / "x.npy",
                                                    input_shapes={"img": (1, 8, 6, 3)})
    assert None in source.outputs[0].shape[1:]
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    mlspec = ct.utils.load_spec(str(art.path))
    (out,) = mlspec.description.output
    assert "?" in out.shortDescription and "dynamic" in out.shortDescription, out.shortDescription
    pred = target.predict(art, source, spec, samples)
    (name,) = reference
    assert pred.outputs[name].shape == reference[name].shape == (2, 8, 6, 2)
    assert np.abs(pred.outputs[name] - reference[name]).max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fp16", "8bit"])
def test_mobilenet_v2(tmp_path, mode):
    model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=7)
    for layer in model.layers:  # non-trivial BN statistics so every layer matters
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([RNG.uniform(0.8, 1.2, g.shape), RNG.normal(0, 0.1, b.shape),
                               RNG.normal(0, 0.1, m.shape), RNG.uniform(0.8, 1.2, v.shape)])
    samples = _image_folder(tmp_path / "samples", 3, (64, 64))
    spec, source, samp, reference, work = _build(
        tmp_path, model, samples=samples, labels=tuple(f"class {i}" for i in range(7)),
        preprocessing=Preprocessing(mean=(127.5,), std=(127.5,)))
    target = IOSTarget()
    art = target.convert(source, spec, mode, work)
    from packager.targets.ios.executor import nn as coreml_numpy

    types = set(coreml_numpy.layer_types(art.path))
    assert {"convolution", "activation", "unary", "add", "padding"} <= types
    pred = target.predict(art, source, spec, samp)
    got, want = pred.outputs["output_0"], reference["output_0"]
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.999
    assert np.abs(got - want).max() < (5e-3 if mode == "fp16" else 5e-2)


def test_two_output_array_model(tmp_path):
    inp = keras.Input((10,))
    h = L.Dense(16, activation="tanh")(inp)
    model = keras.Model(inp, [L.Dense(3)(h), L.Dense(5, activation="sigmoid")(h)])
    np.save(tmp_path / "x.npy", RNG.normal(0, 1, (4, 10)).astype(np.float32))
    spec, source, samples, reference, work = _build(tmp_path, model, samples=tmp_path / "x.npy")
    assert len(source.outputs) == 2
    target = IOSTarget()
    for mode in ("fp32", "8bit"):
        art = target.convert(source, spec, mode, work)
        mlspec = ct.utils.load_spec(str(art.path))
        assert mlspec.WhichOneof("Type") == "neuralNetwork"
        assert [f.name for f in mlspec.description.output] == [o.name for o in source.outputs]
        pred = target.predict(art, source, spec, samples)
        for o in source.outputs:
            assert pred.outputs[o.name].shape == reference[o.name].shape
            assert np.abs(pred.outputs[o.name] - reference[o.name]).max() < (1e-4 if mode == "fp32" else 5e-2)
    out = tmp_path / "ios"
    target.render(spec, source, art, samples, reference, out)
    statuses = [c.status for c in target.checks(spec, source, art, samples, reference, out)]
    assert statuses == [PASS] * 3 + [_swift_build_status()], statuses
    consts = swift_syntax.string_constants((out / "Sources/TinyNet/TinyNetClassifier.swift").read_bytes(),
                                           "TinyNetFeatures")
    assert consts["arrayOutputs"] == [o.name for o in source.outputs]


def test_array_classifier_returns_full_probabilities(tmp_path):
    inp = keras.Input((6,))
    model = keras.Model(inp, L.Dense(3, activation="softmax")(L.Dense(8, activation="relu")(inp)))
    np.save(tmp_path / "x.npy", RNG.normal(0, 1, (5, 6)).astype(np.float32))
    spec, source, samples, reference, work = _build(tmp_path, model, samples=tmp_path / "x.npy",
                                                    labels=("a", "b", "c"))
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    assert ct.utils.load_spec(str(art.path)).WhichOneof("Type") == "neuralNetworkClassifier"
    pred = target.predict(art, source, spec, samples)
    np.testing.assert_allclose(pred.outputs["output_0"], reference["output_0"], atol=1e-5)


def test_frozen_graph_converts(tmp_path):
    """tfcoreml's interface: a frozen GraphDef with input name -> shape and output names."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = _small_cnn(4)
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec((None, 16, 16, 3), tf.float32, name="x"))
    frozen = convert_variables_to_constants_v2(fn)
    graph_def = frozen.graph.as_graph_def()
    out_name = frozen.outputs[0].name.split(":")[0]
    pb = tmp_path / "frozen.pb"
    pb.write_bytes(graph_def.SerializeToString())
    samples = _image_folder(tmp_path / "samples", 3, (16, 16))
    spec = PackageSpec(model=pb, samples=samples, out=tmp_path / "out", name="frozen",
                       input_shapes={"x": (1, 16, 16, 3)}, output_names=(out_name,))
    work = tmp_path / "work"
    work.mkdir()
    source = load_source(spec, work)
    assert source.keras_model is None
    samp = load_samples(spec, source.inputs)
    reference = reference_outputs(source, samp)
    target = IOSTarget()
    art = target.convert(source, spec, "fp16", work)
    pred = target.predict(art, source, spec, samp)
    (name,) = reference
    assert np.abs(pred.outputs[name] - reference[name]).max() < 5e-3


@pytest.mark.parametrize("mode", ["fp32", "fp16", "8bit"])
def test_mlprogram_runs_on_the_mil_executor(cnn_case, tmp_path, mode):
    """--ios-format mlprogram: an .mlpackage, executed here by the NumPy MIL executor (BGR image input with
    mean/std, a classifier), agreeing with the reference as closely as the .mlmodel does."""
    spec, source, samples, reference, work = cnn_case
    spec = spec.with_(ios_format="mlprogram")
    target = IOSTarget()
    art = target.convert(source, spec, mode, work)
    assert art.path.suffix == ".mlpackage" and art.path.is_dir()
    pred = target.predict(art, source, spec, samples)
    assert pred.runtime.startswith("coreml" if IOSTarget.coreml_runtime_available() else "numpy-mil-executor")
    got, want = pred.outputs["output_0"], reference["output_0"]
    assert got.shape == want.shape
    assert (got.argmax(1) == want.argmax(1)).all()
    tol = {"fp32": 1e-4, "fp16": 5e-3, "8bit": 5e-2}[mode]
    assert np.abs(got - want).max() < tol


def test_keras2_lstm_runs_on_the_executor_not_unverified(tmp_path):
    """A Keras 2 (.h5) LSTM: coremltools writes its while loop as loop/branch/copy/scatter layers; the
    executor runs them and the prediction matches the reference (it used to be UNVERIFIED)."""
    tk = pytest.importorskip("tf_keras")
    inp = tk.Input((6, 3))
    model = tk.Model(inp, tk.layers.Dense(2)(tk.layers.LSTM(4)(inp)))
    model.save(tmp_path / "rnn.h5")
    np.save(tmp_path / "x.npy", RNG.normal(0, 1, (3, 6, 3)).astype(np.float32))
    spec = PackageSpec(model=tmp_path / "rnn.h5", samples=tmp_path / "x.npy", out=tmp_path / "out", name="Rnn")
    work = tmp_path / "work"
    work.mkdir()
    source = load_source(spec, work)
    samples = load_samples(spec, source.inputs)
    reference = reference_outputs(source, samples)
    target = IOSTarget()
    art = target.convert(source, spec, "fp32", work)
    from packager.targets.ios.executor import nn as coreml_numpy

    assert {"loop", "branch", "copy"} <= set(coreml_numpy.layer_types(art.path))
    pred = target.predict(art, source, spec, samples)
    (name,) = reference
    assert np.abs(pred.outputs[name] - reference[name]).max() < 1e-4


@pytest.mark.slow
def test_cli_keras2_gru_and_dynamic_output_model_pass_on_ios(tmp_path):
    """Through the real CLI: a Keras 2 GRU (loop/branch layers in the .mlmodel) and a fully convolutional
    model whose outputs have dynamic H/W (was a TypeError after conversion): ios PASS on the executor."""
    import subprocess
    import sys

    code = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
            "import tf_keras as k\n"
            "k.utils.set_random_seed(2)\n"
            "i = k.Input((7, 2)); m = k.Model(i, k.layers.Dense(3, activation='softmax')(k.layers.GRU(5)(i)))\n"
            f"m.save({str(tmp_path / 'gru.h5')!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    np.save(tmp_path / "seq.npy", RNG.normal(0, 1, (4, 7, 2)).astype(np.float32))
    inp = keras.Input((None, None, 3), name="img")
    keras.Model(inp, L.Conv2D(2, 3, padding="same")(inp)).save(tmp_path / "fcn.keras")
    np.save(tmp_path / "img.npy", RNG.normal(0, 1, (3, 6, 5, 3)).astype(np.float32))
    for model, samples, extra in (("gru.h5", "seq.npy", ()), ("fcn.keras", "img.npy", ("--input-shape", "img=1,6,5,3"))):
        out = tmp_path / f"out_{model}"
        # fp16: the executor's own agreement is what is measured here, not 8-bit weights (auto's first choice)
        r = run_cli("build", tmp_path / model, "--samples", tmp_path / samples, "--targets", "ios", "--out", out,
                    "--quantize", "ios=fp16", *extra)
        assert r.returncode == 0, r.stderr + r.stdout
        ios = json.loads((out / "report.json").read_text())["targets"]["ios"]
        assert ios["status"] == "PASS", ios
        assert ios["runtime"].startswith("numpy-nn-executor") or IOSTarget.coreml_runtime_available()
        assert ios["metrics"]["max_abs_error"] < 5e-3


@pytest.mark.parametrize("fmt", ["neuralnetwork", "mlprogram", "neuralnetwork-large"])
def test_auto_modes_share_one_float_conversion(tmp_path, monkeypatch, fmt):
    """auto's weight modes are all derived from one float conversion (not one TensorFlow conversion per mode), and
    what they give is byte for byte what a fresh conversion gives. A model of KEEP_FLOAT_BELOW or more too: its
    float conversion is kept on disk, not in memory, between the tries."""
    import dataclasses

    from packager.targets.ios import convert as ios_convert

    large = fmt.endswith("-large")
    fmt = fmt.removesuffix("-large")
    if large:
        monkeypatch.setattr(ios_convert, "KEEP_FLOAT_BELOW", 0)
    spec, source, _, _, work = _build(tmp_path, _small_cnn(3), samples=_image_folder(tmp_path / "s", 3, (16, 16)))
    spec = dataclasses.replace(spec, ios_format=fmt)
    calls = []
    real = ct.convert
    monkeypatch.setattr(ct, "convert", lambda *a, **k: calls.append(1) or real(*a, **k))
    target = IOSTarget()
    modes = ("palette4", "palette6", "8bit") + (("fp16",) if fmt == "neuralnetwork" else ())
    for m in modes + ("fresh",):
        (work / m).mkdir()
    kept = {m: target.convert(source, spec, m, work / m) for m in modes}
    assert len(calls) == 1, calls
    if large:  # no copy of the weights held in memory between tries: the float spec on disk
        assert [type(v[1]) for v in ios_convert._FLOAT_MODEL.values()] == [type(work)], ios_convert._FLOAT_MODEL
    ios_convert._FLOAT_MODEL.clear()
    fresh = target.convert(source, spec, "palette6", work / "fresh")
    assert len(calls) == 2
    assert kept["palette6"].bytes == fresh.bytes
    if fmt == "neuralnetwork" and large:  # the same model; its metadata map may serialize in another order
        assert ct.utils.load_spec(str(kept["palette6"].path)) == ct.utils.load_spec(str(fresh.path))
    elif fmt == "neuralnetwork":
        assert kept["palette6"].path.read_bytes() == fresh.path.read_bytes()
        assert len({a.bytes for a in kept.values()}) == len(kept)  # each mode its own weights
