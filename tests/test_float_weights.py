"""Dynamic-range with float32 weights where int8 flips samples (packager/targets/android/float_weights.py), on a real
conversion: a tiny dense net on near-tie samples, TFLiteConverter's dynamic-range and float models, ai-edge-litert;
and how ``--quantize auto`` (balanced) weighs a rival that agrees on more samples."""

from __future__ import annotations

import numpy as np
import pytest
from test_android_module import TinySamples, TinySource, make_spec

from packager.spec import TensorSpec


@pytest.fixture(scope="module")
def near_ties(tmp_path_factory):
    """A dense net whose large layer rounds coarsely in int8 (one large weight a channel sets the channel's step),
    run on the samples whose two best classes are nearest in the float model: int8 weights flip some of them."""
    import keras
    import tensorflow as tf

    from packager.targets.android.tflite import convert_tflite

    d = tmp_path_factory.mktemp("floatw")
    keras.utils.set_random_seed(5)
    inp = keras.Input((64,), name="features")
    x = keras.layers.Dense(16, activation="relu")(inp)  # 1,024 weights: int8 in dynamic-range, the coarse one
    x = keras.layers.Dense(2048, activation="relu")(x)  # the bulk of the bytes (float32 would not fit the budget)
    model = keras.Model(inp, keras.layers.Dense(3)(x))
    w, b = model.layers[1].get_weights()
    w[0, :] = 40 * np.abs(w).max()
    model.layers[1].set_weights([w, b])
    rng = np.random.default_rng(1)
    pool = rng.uniform(0, 1, (4000, 64)).astype(np.float32)
    pool[:, 0] *= 0.02  # the outlier weight's input stays small: it sets the step, not the outputs
    logits = model.predict(pool, verbose=0)
    top2 = np.sort(logits, axis=1)[:, -2:]
    rows = np.argsort(top2[:, 1] - top2[:, 0])[:24]  # nearest ties
    sm = d / "saved_model"
    model.export(str(sm), verbose=False)
    sig = tf.saved_model.load(str(sm)).signatures["serving_default"]
    in_name = next(iter(sig.structured_input_signature[1]))
    out_name = sorted(sig.structured_outputs)[0]
    samples = TinySamples({in_name: pool[i:i + 1]} for i in rows)
    source = TinySource(sm, [TensorSpec(in_name, (None, 64))], [TensorSpec(out_name, (None, 3))],
                        is_image=False, samples=samples)
    models = {**convert_tflite(source, make_spec(), "dynamic"), **convert_tflite(source, make_spec(), "fp32")}
    return source, samples, models


def _float32_weights(data: bytes) -> int:
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    return sum(1 for t in graph.tensors if t.type == schema.TensorType.FLOAT32 and len(t.shape) == 2
               and model.buffers[t.buffer].data is not None)


def test_the_weights_that_flip_samples_are_kept_float32(near_ties):
    from packager.targets.android.float_weights import BYTE_SHARE, keep_float_weights

    _, samples, models = near_ties
    kept = keep_float_weights(models["dynamic"], models["fp32"], samples)
    assert kept.before["top1"] < 1.0, "the fixture's int8 weights must flip a near-tie"
    assert kept.kept and kept.after["top1"] > kept.before["top1"], kept.note()
    assert kept.kept[0].startswith("FULLY_CONNECTED"), kept.kept
    # one more float32 weight tensor than the converter's model, no more bytes than the budget
    assert _float32_weights(kept.data) == _float32_weights(models["dynamic"]) + 1
    assert 0 < len(kept.data) - len(models["dynamic"]) == kept.added <= BYTE_SHARE * len(models["dynamic"])
    assert "1 op(s)" in kept.note() and kept.check().data["kept"] == kept.kept


def test_a_model_that_agrees_on_every_sample_is_left_as_converted(near_ties):
    from packager.targets.android.float_weights import keep_float_weights

    _, samples, models = near_ties
    same = keep_float_weights(models["fp32"], models["fp32"], samples)  # no int8 weights at all
    assert same.data == models["fp32"] and not same.kept and same.reason
    # a byte budget too small for any op: nothing changes
    import packager.targets.android.float_weights as fw

    share, fw.BYTE_SHARE = fw.BYTE_SHARE, 0.001
    try:
        tight = fw.keep_float_weights(models["dynamic"], models["fp32"], samples)
    finally:
        fw.BYTE_SHARE = share
    assert tight.data == models["dynamic"] and "budget" in tight.reason
    # a float model it cannot read: the converter's model, with why (a refinement never fails the conversion)
    broken = keep_float_weights(models["dynamic"], b"not a tflite", samples)
    assert broken.data == models["dynamic"] and not broken.kept and broken.reason.startswith("not measured")


def test_the_android_dynamic_artifact_ships_the_float_weights(near_ties, tmp_path):
    """Through the target, as a build converts dynamic: the model written is the one with float weights, the try
    and the report say which ops, and the float model converted for it is handed over (not converted again)."""
    import dataclasses

    from packager.targets.android.target import AndroidTarget
    from packager.targets.android.tflite import run_tflite

    source, samples, models = near_ties
    artifact = AndroidTarget().convert(dataclasses.replace(source, samples=samples), make_spec(), "dynamic", tmp_path)
    (check,) = [c for c in artifact.extra["quantization_checks"] if c.name == "float weights"]
    assert check.data["kept"] and "float weights: 1 op(s)" in artifact.extra["try_note"]
    assert "fp32" in artifact.extra["by_products"]
    outputs, _, _ = run_tflite(artifact.path, source, samples)
    floats, _, _ = run_tflite(artifact.extra["by_products"]["fp32"].path, source, samples)
    (name,) = outputs
    assert (outputs[name].argmax(1) == floats[name].argmax(1)).mean() == check.data["after"]["top1"] > \
        check.data["before"]["top1"]


def test_balanced_ships_a_rival_that_agrees_on_more_samples_at_no_more_bytes():
    from packager.modes import FIDELITY_RIVAL_BYTES, prefer_rival, rival_cannot_win

    take, why = prefer_rival("balanced", "android", ("int8", 1000, 0.95), ("dynamic", 960, 1.0))
    assert take and "more samples" in why, why
    assert prefer_rival("balanced", "android", ("int8", 1000, 0.95), ("dynamic", 1001, 1.0))[0] is False  # larger
    assert prefer_rival("balanced", "android", ("int8", 1000, 1.0), ("dynamic", 960, 1.0))[0] is False  # as faithful
    assert prefer_rival("balanced", "android", ("int8", 1000, 0.95), ("dynamic", 960, None))[0] is False

    class Target:  # the rival's bytes alone could not win: converted only when it may agree on more samples
        def rival_floor(self, artifact, rival):
            return 950

    class Artifact:
        mode, bytes = "int8", 1000

    assert rival_cannot_win("balanced", Target(), Artifact(), "dynamic", 1.0)
    assert rival_cannot_win("balanced", Target(), Artifact(), "dynamic", None)
    assert rival_cannot_win("balanced", Target(), Artifact(), "dynamic", 0.95) is None
    Artifact.bytes = FIDELITY_RIVAL_BYTES + 1  # a large model: its rival costs seconds, it is not tried for fidelity
    Target.rival_floor = lambda self, artifact, rival: FIDELITY_RIVAL_BYTES
    assert rival_cannot_win("balanced", Target(), Artifact(), "dynamic", 0.95)


@pytest.mark.slow
def test_auto_balanced_ships_dynamic_with_float_weights_when_it_agrees_on_more_samples(tmp_path):
    """The real CLI, default ``--quantize auto`` (balanced), a model where int8 passes and is larger: a coarse dense
    layer (one large weight a channel) under a near-tie sample flips it in int8 and in dynamic-range; dynamic-range
    keeps that layer's weights float32 and is shipped for agreeing on more samples at no more bytes."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((64,), name="features")
    coarse = keras.layers.Dense(16, activation="relu")  # 1,024 weights: int8 in both quantized modes
    head = keras.layers.Dense(3)(coarse(inp))
    bulk = keras.layers.Reshape((1, 1, 64))(inp)
    for _ in range(3):  # per-channel convolutions: full int8 stores more per channel than dynamic-range
        bulk = keras.layers.Conv2D(256, 1, activation="relu")(bulk)
    bulk = keras.layers.Rescaling(0.001)(keras.layers.Flatten()(keras.layers.Conv2D(3, 1)(bulk)))
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Add()([head, bulk])))
    w, b = coarse.get_weights()
    w[0, :] = 40 * np.abs(w).max()
    coarse.set_weights([w, b])
    rng = np.random.default_rng(1)
    pool = rng.uniform(0, 1, (4000, 64)).astype(np.float32)
    pool[:, 0] *= 0.02
    p = model.predict(pool, verbose=0)
    top2 = np.sort(p, axis=1)[:, -2:]
    order = np.argsort(top2[:, 1] - top2[:, 0])
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "s.npz", features=pool[np.concatenate([order[:4], order[-60:]])])  # 4 near-ties, 60 clear
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "packager", "build", str(tmp_path / "m.keras"), "--samples",
                           str(tmp_path / "s.npz"), "--targets", "android", "--out", str(out), "--no-cache", "-q"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=900)
    assert (out / "report.json").exists(), proc.stderr[-2000:]
    android = json.loads((out / "report.json").read_text())["targets"]["android"]
    tries = {t["mode"]: t for t in android["tries"]}
    assert tries["int8"]["status"] == tries["dynamic"]["status"] == "PASS", android["tries"]
    int8, dynamic = tries["int8"]["metrics"]["top1_agreement"], tries["dynamic"]["metrics"]["top1_agreement"]
    assert int8 < dynamic and tries["dynamic"]["bytes"] <= tries["int8"]["bytes"], android["tries"]
    assert "float weights: 1 op(s)" in tries["dynamic"]["note"], tries["dynamic"]
    assert android["quantization"] == "dynamic" and "more samples" in android["optimize"]["why"], android["optimize"]
    assert android["metrics"]["top1_agreement"] == dynamic
    assert any(c["name"] == "float weights" and c["data"]["kept"] for c in android["checks"])
