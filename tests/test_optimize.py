"""--optimize size|speed|balanced (issue 32): what --quantize auto weighs when more than one mode passes, and what
each try records (kernel family, XNNPACK-delegated ops, host latency labelled with the host CPU)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import run_cli


def conv_model(path, layers=10, channels=16):
    """3x3 convolutions (10 of 16 channels: 21k weights): dynamic-range is ~8 % smaller than full int8 here (int8
    stores a scale and a 64-bit zero point per output channel of every convolution, and quantization parameters
    for every activation), and both pass the gates."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    h = inp
    for _ in range(layers):
        h = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(h)
    # the class is the input's brightest channel (a strong skip path), so that every mode's top-1 is well defined
    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(h),
                                    keras.layers.GlobalAveragePooling2D()(inp)])
    m = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="probs")(h))
    w, b = m.layers[-1].get_weights()
    w[-3:, :3] += 8 * np.eye(3)
    m.layers[-1].set_weights([w, b])
    m.save(path)
    return path


def samples(n=32):
    rng = np.random.default_rng(0)
    return (rng.uniform(size=(n, 16, 16, 3)) * rng.uniform(size=(n, 1, 1, 3))).astype(np.float32)


def test_balanced_ships_a_hybrid_rival_only_when_it_saves_more_than_the_share():
    from packager.modes import BALANCED_SHARE, prefer_rival

    assert BALANCED_SHARE == 0.25
    assert prefer_rival("balanced", "android", ("int8", 1000), ("dynamic", 900)) [0] is False
    assert prefer_rival("balanced", "android", ("int8", 1000), ("dynamic", 740))[0] is True
    assert prefer_rival("size", "android", ("int8", 1000), ("dynamic", 999))[0] is True
    assert prefer_rival("size", "android", ("int8", 1000), ("dynamic", 1001))[0] is False
    take, why = prefer_rival("balanced", "android", ("int8", 1000), ("dynamic", 900))
    assert "full-integer" in why and "hybrid" in why and "25%" in why, why


def test_speed_ladder_puts_float_before_hybrid():
    from packager.modes import kernel_family, ladder, rivals

    order = ladder("android", "speed")
    families = [kernel_family("android", m) for m in order]
    assert families[0] == "full-integer" and "hybrid" not in families, families
    assert families.index("float") > families.index("mixed")
    assert rivals("android", "int8", "speed") == () and rivals("android", "int8", "balanced") == ("dynamic",)
    assert ladder("android", "balanced") == ladder("android", "size")


def test_optimize_comes_from_the_flag_or_packager_toml(tmp_path):
    from packager.config import build_spec
    from packager.errors import UsageError

    model, samples = tmp_path / "m.keras", tmp_path / "s.npz"
    cfg = tmp_path / "packager.toml"
    cfg.write_text('optimize = "speed"\n')
    base = dict(model=str(model), samples=str(samples), out=str(tmp_path / "out"))
    assert build_spec(SimpleNamespace(**base)).optimize == "balanced"
    assert build_spec(SimpleNamespace(**base, config=str(cfg))).optimize == "speed"
    assert build_spec(SimpleNamespace(**base, config=str(cfg), optimize="size")).optimize == "size"
    cfg.write_text('optimize = "fast"\n')
    with pytest.raises(UsageError) as e:
        build_spec(SimpleNamespace(**base, config=str(cfg)))
    assert "fast" in e.value.message and "balanced" in (e.value.hint or "")


def test_xnnpack_coverage_counts_the_ops_left_to_reference_kernels(tmp_path):
    """int8 softmax has no XNNPACK kernel: of QUANTIZE, CONV_2D, MEAN, FULLY_CONNECTED, SOFTMAX, DEQUANTIZE, five
    are delegated; in float all four are."""
    import tensorflow as tf

    from packager.targets.android.tflite import xnnpack_coverage

    m = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Conv2D(4, 3, activation="relu"),
                             tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(3, activation="softmax")])
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    (tmp_path / "fp32.tflite").write_bytes(conv.convert())
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.rand(1, 8, 8, 3).astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    (tmp_path / "int8.tflite").write_bytes(conv.convert())
    assert xnnpack_coverage(tmp_path / "fp32.tflite") == {"delegated": 4, "ops": 4}
    assert xnnpack_coverage(tmp_path / "int8.tflite") == {"delegated": 5, "ops": 6}


def _mixed_sizes_model(path):
    """Weights on both sides of the dynamic-range quantizer's size cut (1024 elements): a small first convolution,
    a depthwise one with batch norm, a wide dense layer, a tiny one, a constant scale shared by two branches."""
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)  # 216 weights: float in dynamic
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)  # 2,304: int8 in dynamic
    a = keras.layers.GlobalAveragePooling2D()(h)
    b = keras.layers.GlobalMaxPooling2D()(h)
    h = keras.layers.Concatenate()([a, b])
    h = keras.layers.Dense(64, activation="relu")(h)  # 4,096
    m = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="probs")(h))  # 256
    m.save(path)
    return path


def test_an_int8_models_buffers_are_a_floor_of_its_dynamic_range_bytes(tmp_path):
    """What lets balanced skip converting dynamic-range (modes.rival_cannot_win) must hold: the floor taken from the
    int8 model (``dynamic_floor``: its buffers, small int8 weights at float32's four bytes) never exceeds the
    dynamic-range model's bytes, on convolutions, depthwise + batch norm and dense layers of both sides of the
    quantizer's size cut (6 convolutions of 24 channels and 10 of 8, where the floor alone rules dynamic out)."""
    import tensorflow as tf

    from packager.modes import BALANCED_SHARE
    from packager.targets.android.tflite import buffer_bytes, dynamic_floor

    cases = {"conv6x24": lambda p: conv_model(p, 6, 24), "conv10x16": lambda p: conv_model(p, 10, 16),
             "conv3x4": lambda p: conv_model(p, 3, 4), "conv10x8": lambda p: conv_model(p, 10, 8),
             "mixed_sizes": _mixed_sizes_model}
    for name, make in cases.items():
        m = tf.keras.models.load_model(make(tmp_path / f"{name}.keras"))
        conv = tf.lite.TFLiteConverter.from_keras_model(m)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        dynamic = conv.convert()
        conv.representative_dataset = lambda: ([s[None]] for s in samples(8))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        int8 = tmp_path / f"int8_{name}.tflite"
        int8.write_bytes(conv.convert())
        floor = dynamic_floor(int8)
        assert buffer_bytes(int8) <= floor <= len(dynamic), (name, buffer_bytes(int8), floor, len(dynamic))
        if name == "conv6x24":
            assert 1 - floor / int8.stat().st_size <= BALANCED_SHARE
        if name in ("conv3x4", "conv10x8", "mixed_sizes"):  # small weights there: counted as float32
            assert floor > buffer_bytes(int8), name
        if name == "conv10x8":  # 576-weight kernels, float32 in dynamic (1.8x int8's bytes): not worth converting
            assert floor > int8.stat().st_size, (floor, int8.stat().st_size, len(dynamic))


@pytest.mark.slow
def test_balanced_ships_int8_where_size_ships_the_smaller_dynamic(tmp_path):
    model = conv_model(tmp_path / "convs.keras")
    np.savez(tmp_path / "s.npz", image=samples())
    got = {}
    for objective in ("balanced", "size"):
        out = tmp_path / objective
        args = ["--optimize", objective] if objective == "size" else []
        r = run_cli("build", model, "--samples", tmp_path / "s.npz", "--targets", "android", "--out", out, *args)
        assert r.returncode == 0, r.stderr + r.stdout
        got[objective] = t = json.loads((out / "report.json").read_text())["targets"]["android"]
        tries = {x["mode"]: x for x in t["tries"]}
        assert tries["int8"]["status"] == tries["dynamic"]["status"] == "PASS", t["tries"]
        assert tries["dynamic"]["bytes"] < tries["int8"]["bytes"] < tries["dynamic"]["bytes"] / 0.75
        assert tries["int8"]["family"] == "full-integer" and tries["dynamic"]["family"] == "hybrid"
        for x in tries.values():
            assert 0 < x["xnnpack"]["delegated"] <= x["xnnpack"]["ops"], x
            assert x["latency_ms"] > 0 and "host, not a phone" in x["latency_host"], x
        assert t["optimize"]["objective"] == objective and objective in r.stdout + r.stderr
        assert "kept " + t["quantization"] in r.stdout + r.stderr
    assert got["balanced"]["quantization"] == "int8" and got["size"]["quantization"] == "dynamic"
    assert "25%" in got["balanced"]["optimize"]["why"]
    assert got["size"]["bytes"] < got["balanced"]["bytes"]
