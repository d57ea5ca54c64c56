"""Each target converts a quantized mode once and derives the fp32 model (the float_bytes reference, and the
model the Android JNI check runs) from the same conversion. That by-product must be byte for byte what a
separate fp32 conversion writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from packager.samples import load_samples  # noqa: E402
from packager.source import load_source  # noqa: E402
from packager.spec import PackageSpec, Preprocessing  # noqa: E402
from packager.targets import load_target  # noqa: E402

pytestmark = pytest.mark.slow
L = keras.layers


def _digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from PIL import Image

    tmp = tmp_path_factory.mktemp("derived")
    rng = np.random.default_rng(7)
    (tmp / "samples").mkdir()
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp / "samples" / f"s{i:02d}.png")
    keras.utils.set_random_seed(7)
    inp = keras.Input((24, 24, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.BatchNormalization()(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(5, activation="softmax")(x))
    model.save(tmp / "model.keras")
    spec = PackageSpec(model=tmp / "model.keras", samples=tmp / "samples", out=tmp / "out", name="Derived",
                       labels=tuple(f"c{i}" for i in range(5)),
                       preprocessing=Preprocessing(mean=(127.5,), std=(127.5,)),
                       web_shard_bytes=1024)  # fp32 weights take 2 shards, uint8 1: the folders must not mix
    (tmp / "work").mkdir()
    source = load_source(spec, tmp / "work")
    source.samples = load_samples(spec, source.inputs)
    return spec, source, tmp


@pytest.mark.parametrize("target_name,mode", [("android", "int8"), ("ios", "fp16"), ("ios", "8bit"),
                                              ("web", "uint8"), ("web", "fp16")])
def test_fp32_by_product_equals_a_separate_fp32_conversion(case, target_name, mode):
    spec, source, tmp = case
    target = load_target(target_name)
    joint, alone, plain = (tmp / f"{target_name}_{mode}_{k}" for k in ("joint", "fp32", "plain"))
    for d in (joint, alone, plain):
        d.mkdir()
    quantized = target.convert(source, spec, mode, joint)
    by_products = quantized.extra.get("by_products", {})
    assert set(by_products) == {"fp32"}, "the quantized conversion should hand over its fp32 model"
    derived = by_products["fp32"]
    separate = target.convert(source, spec, "fp32", alone)
    assert "by_products" not in separate.extra
    assert derived.mode == "fp32" and derived.bytes == separate.bytes > 0
    assert _digest(derived.path) == _digest(separate.path)
    # and the joint conversion stays reproducible
    again = target.convert(source, spec, mode, plain)
    assert _digest(again.path) == _digest(quantized.path)


@pytest.mark.parametrize("mode", ["int8", "fp32"])
def test_tflite_from_the_loaded_saved_model_equals_from_saved_model(case, mode):
    """convert_tflite hands TFLite the SavedModel the Source loaded instead of letting the converter load it twice
    more; the models must be byte for byte what the stock TFLiteConverter.from_saved_model path gives."""
    from packager.targets.android import target as android
    from packager.targets.android.tflite import batch_one_saved_model

    spec, source, _ = case

    class Stock:  # no loaded SavedModel: convert_tflite takes from_saved_model of the same batch-1 SavedModel
        saved_model_dir = batch_one_saved_model(source)[0]

    from tensorflow.lite.python import lite

    loads = []
    original = lite._load

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    assert getattr(source, "_loaded", None) is not None
    lite._load = counting
    try:
        fast = android.convert_tflite(source, spec, mode, samples=source.samples)
        assert loads == []  # TFLite did not load the SavedModel itself
        stock = android.convert_tflite(Stock(), spec, mode, samples=source.samples)
        assert len(loads) == 2  # the stock path loads it twice (signatures, debug info)
    finally:
        lite._load = original
    assert fast.keys() == stock.keys()
    for m in fast:
        assert fast[m] == stock[m], f"{m}: {len(fast[m])} B vs {len(stock[m])} B"


@pytest.mark.parametrize("mode", ["int8", "fp32", "dynamic"])
def test_android_model_is_converted_at_batch_one_with_static_shapes(case, mode):
    """Whatever the graph (this one computes no shapes at run time), the Android model has batch 1 and static shapes
    on every input and output: the module always runs batch 1, and LiteRT's CompiledModel cannot allocate a dynamic
    output. Its signature keeps the model's names, and it runs the samples one at a time as the source does."""
    from ai_edge_litert.interpreter import Interpreter

    from packager.source import reference_outputs
    from packager.targets.android import target as android

    spec, source, tmp = case
    data = android.convert_tflite(source, spec, mode, samples=source.samples)[mode]
    interp = Interpreter(model_content=data)
    runner = interp.get_signature_runner("serving_default")
    ins, outs = runner.get_input_details(), runner.get_output_details()
    assert sorted(ins) == sorted(i.name for i in source.inputs) and sorted(outs) == sorted(source.output_names)
    for name, d in {**ins, **outs}.items():
        assert list(d["shape_signature"]) == list(d["shape"]) and d["shape"][0] == 1, (name, d["shape_signature"])
    assert list(ins[source.inputs[0].name]["shape"]) == [1, 24, 24, 3]
    path = tmp / f"batch1_{mode}.tflite"
    path.write_bytes(data)
    got, _, _ = android.run_tflite(path, source, source.samples)
    want = reference_outputs(source, source.samples)
    for name in want:
        assert got[name].shape == want[name].shape == (16, 5), name
        if mode == "fp32":
            assert np.allclose(got[name], want[name], atol=1e-5), name


def test_tfjs_from_the_loaded_saved_model_equals_loading_it(case, tmp_path):
    """The TF.js conversion reads the SavedModel the Source loaded instead of loading it again: same files."""
    from packager.targets.web import target as web

    spec, source, _ = case
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_convert

    loads = []
    original = tfjs_convert._load_model

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    tfjs_convert._load_model = counting
    try:
        web.convert_saved_model(source.saved_model_dir, tmp_path / "fast", "uint8", 1024,
                                loaded=source._loaded)
        assert loads == []
        web.convert_saved_model(source.saved_model_dir, tmp_path / "stock", "uint8", 1024)
        assert len(loads) == 1
    finally:
        tfjs_convert._load_model = original
    assert _digest(tmp_path / "fast") == _digest(tmp_path / "stock")


def test_mixed_failing_hands_over_its_bound_models_as_a_separate_conversion_writes_them(case, tmp_path):
    """Android's mixed converts dynamic (and fp16 when dynamic misses its gates) for its size bound; when no mix
    passes, auto's next tries take those models instead of converting them again (``modes.convert_once``), and
    they must be byte for byte what converting those modes writes. Gates no mix can meet make mixed fail here."""
    import dataclasses

    from packager.errors import ConversionError
    from packager.modes import convert_once

    spec, source, _ = case
    strict = dataclasses.replace(spec, tolerances={"android.mixed": {"max_abs_error": 0.0, "min_cosine": 1.0}})
    target = load_target("android")
    artifacts: dict = {}
    (tmp_path / "auto").mkdir()
    with pytest.raises(ConversionError, match="mixed-precision int8"):
        convert_once(target, "mixed", strict, source, tmp_path / "auto", artifacts)
    assert "mixed" not in artifacts and "dynamic" in artifacts, sorted(artifacts)
    for mode, handed in artifacts.items():
        (tmp_path / mode).mkdir()
        separate = target.convert(source, strict, mode, tmp_path / mode)
        assert handed.mode == mode and handed.bytes == separate.bytes > 0
        assert _digest(handed.path) == _digest(separate.path), mode
        assert convert_once(target, mode, strict, source, tmp_path / "auto", artifacts) is handed  # not again


def test_reference_outputs_run_the_model_once_per_sample_set(case, monkeypatch):
    """The build's reference and android's mixed search ask for the same outputs: the model runs once per Source
    and sample set, the second caller gets the same values, and a caller changing its arrays changes no one else's."""
    import dataclasses

    from packager.source import Source, reference_outputs

    spec, source, _ = case
    calls = []
    predict = Source.predict
    monkeypatch.setattr(Source, "predict", lambda self, batch: calls.append(1) or predict(self, batch))
    fresh = dataclasses.replace(source)
    first = reference_outputs(fresh, source.samples)
    assert len(calls) == len(source.samples) == 16
    kept = {k: v.copy() for k, v in first.items()}
    for v in first.values():
        v[...] = 0
    again = reference_outputs(fresh, source.samples)
    assert len(calls) == 16, "the same sample set ran the model again"
    afresh = reference_outputs(dataclasses.replace(source), source.samples)
    for name in kept:
        assert again[name].tobytes() == kept[name].tobytes() == afresh[name].tobytes(), name
    reference_outputs(fresh, load_samples(spec, source.inputs))  # another sample set: run on it
    assert len(calls) == 3 * 16
