"""Bias correction of full-integer int8 (packager/targets/android/bias_correction.py) on a real conversion: a tiny
conv net whose int8 rounding shifts its outputs one way, TFLiteConverter's int8 and float models, ai-edge-litert."""

from __future__ import annotations

import numpy as np
import pytest
from test_android_module import TinySamples, TinySource, make_spec

from packager.spec import TensorSpec


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """A conv net on non-negative inputs with few, coarse weights: int8 rounds every weight of a channel on the
    same inputs, so each channel's output moves by a mean a bias can take back. Its int8 and float models."""
    import keras
    import tensorflow as tf

    from packager.targets.android.tflite import convert_tflite

    d = tmp_path_factory.mktemp("bias")
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(16, 3, activation="relu")(inp)
    x = keras.layers.Conv2D(24, 3, activation="relu")(x)
    x = keras.layers.Conv2D(8, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(5)(x))  # logits: the error is not hidden under softmax steps
    for layer in model.layers[1:4]:  # one large weight a channel sets its int8 step: the others round coarsely
        w, b = layer.get_weights()
        w[0, 0, 0, :] = 30 * np.abs(w).max()
        layer.set_weights([w, b])
    sm = d / "saved_model"
    model.export(str(sm), verbose=False)
    sig = tf.saved_model.load(str(sm)).signatures["serving_default"]
    in_name = next(iter(sig.structured_input_signature[1]))
    out_name = sorted(sig.structured_outputs)[0]
    rng = np.random.default_rng(0)
    samples = TinySamples({in_name: rng.uniform(0, 1, (1, 12, 12, 3)).astype(np.float32)} for _ in range(24))
    source = TinySource(sm, [TensorSpec(in_name, (None, 12, 12, 3))], [TensorSpec(out_name, (None, 5))],
                        is_image=False, samples=samples)
    models = convert_tflite(source, make_spec(), "int8", samples=samples)
    return source, samples, models


def test_bias_correction_moves_the_int8_outputs_towards_the_float_model(shifted):
    from packager.targets.android.bias_correction import _biased_ops, correct_biases

    _, samples, models = shifted
    fixed = correct_biases(models["int8"], models["fp32"], samples)
    assert fixed.applied and fixed.ops == len(_biased_ops(models["int8"])) >= 3, fixed.note()
    # measured against the float model on the samples: the mean output error falls, top-1 agreement holds
    assert fixed.after["mean_abs_error"] < 0.8 * fixed.before["mean_abs_error"], fixed.note()
    assert fixed.after["top1"] >= fixed.before["top1"], fixed.note()
    # the same model but for bias values: same bytes, every difference inside a bias buffer
    assert len(fixed.data) == len(models["int8"]) and fixed.data != models["int8"]
    changed = np.flatnonzero(np.frombuffer(fixed.data, np.uint8) != np.frombuffer(models["int8"], np.uint8))
    spans = [(op.bias_offset, op.bias_offset + 4 * len(op.bias_scale)) for op in _biased_ops(models["int8"])]
    assert all(any(a <= i < b for a, b in spans) for i in changed)
    assert f"bias correction: {fixed.ops} op(s) corrected" in fixed.note()


def test_the_android_int8_artifact_ships_the_corrected_model(shifted, tmp_path):
    """Through the target, as a build converts int8: the corrected model is the one written, and its try says so."""
    import dataclasses

    from packager.targets.android.bias_correction import correct_biases
    from packager.targets.android.target import AndroidTarget

    source, samples, models = shifted
    artifact = AndroidTarget().convert(dataclasses.replace(source, samples=samples), make_spec(), "int8", tmp_path)
    expected = correct_biases(models["int8"], models["fp32"], samples)
    (check,) = [c for c in artifact.extra["quantization_checks"] if c.name == "bias correction"]
    assert check.data["applied"] and f"{expected.ops} op(s) corrected" in artifact.extra["try_note"]
    from packager.targets.android.bias_correction import _biased_ops

    shipped = artifact.path.read_bytes()
    for op in _biased_ops(models["int8"]):  # the shipped biases are the corrected ones (metadata moves offsets)
        want = np.frombuffer(expected.data, "<i4", len(op.bias_scale), op.bias_offset)
        assert shipped.find(want.tobytes()) >= 0



def test_a_model_past_the_budget_is_left_as_converted(shifted, monkeypatch):
    """The correction's cost is bounded: the float pass, two agreement passes and one group's two passes over the
    samples must fit ELEMENT_BUDGET (MobileNetV2 224 on 16 samples does not), else the converter's model ships."""
    from packager.targets.android import bias_correction as bc

    _, samples, models = shifted
    per_pass = len(samples) * bc.activation_elements(models["int8"])
    monkeypatch.setattr(bc, "ELEMENT_BUDGET", 4 * per_pass)
    skipped = bc.correct_biases(models["int8"], models["fp32"], samples)
    assert not skipped.applied and skipped.data == models["int8"] and "budget" in skipped.note(), skipped.note()
    monkeypatch.setattr(bc, "ELEMENT_BUDGET", 5 * per_pass)  # one group: every op corrected at once
    assert bc.correct_biases(models["int8"], models["fp32"], samples).ops >= 3
