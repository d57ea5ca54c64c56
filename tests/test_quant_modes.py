"""Quantization modes that use the samples to choose precision (issue 18): mixed-precision int8 on Android."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli


def outlier_model(path):
    """An MLP whose first layer has one unit with a 300x larger range: per-tensor int8 activations crush the
    other 63 units to a few quantization steps, so full int8 (and dynamic-range) miss the gates, while keeping
    that layer (and the one reading it) float recovers the outputs. ~170k weights, so weights dominate bytes."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), name="features")
    h = keras.layers.Dense(64, activation="relu", name="wide")(inp)
    h = keras.layers.Dense(512, activation="relu", name="mid")(h)
    h = keras.layers.Dense(256, activation="relu", name="mid2")(h)
    m = keras.Model(inp, keras.layers.Dense(10, name="logits")(h))
    w, b = m.get_layer("wide").get_weights()
    w[:, 0] *= 300.0
    m.get_layer("wide").set_weights([w, b])
    w, b = m.get_layer("mid").get_weights()
    w[0, :] /= 300.0
    m.get_layer("mid").set_weights([w, b])
    m.save(path)
    return path


def test_median_channel_error_sees_a_crushed_channel():
    from packager.targets.android.mixed import median_channel_error

    rng = np.random.default_rng(0)
    f = np.abs(rng.normal(size=(1, 8, 8, 4))).astype(np.float32)
    f[..., 0] *= 300.0
    scale = float(f.max()) / 127
    q = np.clip(np.round(f / scale), -128, 127).astype(np.int8)
    assert median_channel_error(f, q, scale, 0) > 0.5  # 3 of 4 channels lose most of their signal
    fine = float(np.abs(f[..., 1:]).max()) / 127
    q = np.round(f[..., 1:] / fine).astype(np.int8)
    assert median_channel_error(f[..., 1:], q, fine, 0) < 0.02


@pytest.mark.slow
def test_auto_keeps_the_worst_ops_float_when_int8_misses_the_gates(tmp_path):
    model = outlier_model(tmp_path / "outlier.keras")
    np.savez(tmp_path / "s.npz", features=np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32))
    out = tmp_path / "out"
    r = run_cli("build", model, "--samples", tmp_path / "s.npz", "--targets", "android", "--out", out)
    assert r.returncode == 0, r.stderr + r.stdout
    t = json.loads((out / "report.json").read_text())["targets"]["android"]
    assert [x["mode"] for x in t["tries"]] == ["int8", "mixed"], t["tries"]
    assert t["tries"][0]["status"] == "FAIL" and t["status"] == "PASS" and t["quantization"] == "mixed"
    (check,) = [c for c in t["checks"] if c["name"] == "mixed precision"]
    assert "'functional" in check["detail"] and "wide" in check["detail"].split(";")[0], check["detail"]
    # between int8 and the next mode that passes (fp16 here: dynamic-range misses its gates too)
    assert t["tries"][0]["bytes"] < t["bytes"] < 0.5 * t["float_bytes"]
    assert (out / "android").exists()


def test_kmeans_palette_is_exact_on_few_values_and_beats_a_uniform_grid():
    from packager.targets.ios.quantize import kmeans_palette

    w = np.array([[0.5, -1.0], [0.5, 2.0]], np.float32)
    palette, idx = kmeans_palette(w, 4)
    assert palette.shape == (16,) and idx.shape == w.shape and idx.dtype == np.uint8
    assert np.array_equal(palette[idx], w)
    w = np.random.default_rng(0).standard_t(4, size=(64, 3, 3, 32)).astype(np.float32)  # heavy tails
    errors = {}
    for bits in (4, 6):
        palette, idx = kmeans_palette(w, bits)
        assert np.all(np.diff(palette) >= 0) and idx.max() < (1 << bits)
        errors[bits] = float(np.mean((palette[idx] - w) ** 2))
        grid = np.linspace(w.min(), w.max(), 1 << bits)  # what a linear 4/6-bit table would give
        uniform = grid[np.abs(w[..., None] - grid).argmin(-1)]
        assert errors[bits] < 0.8 * float(np.mean((uniform - w) ** 2))
    assert errors[6] < errors[4] / 4  # two more bits: about 16x less in theory


def test_nbit_packing_gives_coremltools_own_bytes():
    """palettize() swaps coremltools' bit-by-bit Python packing for pack_nbit while it runs: the same bytes for
    every width and length (padding included), and coremltools' function is back afterwards."""
    from coremltools.models.neural_network import quantization_utils as qu

    from packager.targets.ios.quantize import _packed_by_numpy, pack_nbit

    rng = np.random.default_rng(0)
    for nbits in range(1, 9):
        for n in (0, 1, 3, 7, 8, 9, 1001):
            values = rng.integers(0, 1 << nbits, n).astype(np.uint8)
            want = qu._convert_array_to_nbit_quantized_bytes(values, nbits)
            got = pack_nbit(values, nbits)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (nbits, n)
    original = qu._convert_array_to_nbit_quantized_bytes
    with _packed_by_numpy(qu):
        assert qu._convert_array_to_nbit_quantized_bytes is pack_nbit
    assert qu._convert_array_to_nbit_quantized_bytes is original


@pytest.mark.slow
def test_ios_auto_tries_4bit_palettes_first_and_the_executor_verifies_them(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(7, 1, activation="relu")(x)  # 7 biases in 4 bits: a padded bit stream to decode
    x = keras.layers.Dense(64, activation="relu")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, keras.layers.Dense(5, activation="softmax")(x)).save(tmp_path / "c.keras")
    np.savez(tmp_path / "c.npz", image=np.random.default_rng(0).uniform(size=(20, 16, 16, 3)).astype(np.float32))
    sizes = {}
    for mode in ("auto", "palette6", "8bit"):
        out = tmp_path / mode
        r = run_cli("build", tmp_path / "c.keras", "--samples", tmp_path / "c.npz", "--targets", "ios", "--out", out,
                    "--quantize", f"ios={mode}")
        assert r.returncode == 0, r.stderr + r.stdout
        t = json.loads((out / "report.json").read_text())["targets"]["ios"]
        assert t["status"] == "PASS" and t["runtime"].startswith("numpy-nn-executor"), t
        sizes[t["quantization"]] = t["bytes"]
        if mode == "auto":
            assert [x["mode"] for x in t["tries"]] == ["palette4"]
            import coremltools as ct

            (mlmodel,) = out.glob("ios/**/*.mlmodel")
            spec = ct.utils.load_spec(str(mlmodel))
            layers = getattr(spec, spec.WhichOneof("Type")).layers
            luts = [len(lay.convolution.weights.quantization.lookupTableQuantization.floatValue)
                    for lay in layers if lay.WhichOneof("layer") == "convolution"]
            assert luts == [16, 16, 16], luts
    assert sizes["palette4"] < sizes["palette6"] < sizes["8bit"]


def test_uint8_error_flags_a_tensor_with_an_outlier():
    from packager.targets.web.mixed import choose_dtype_map, uint8_error

    rng = np.random.default_rng(0)
    normal = rng.normal(size=(64, 64)).astype(np.float32)
    spiky = normal.copy()
    spiky[0, 0] = 300.0
    assert uint8_error(normal) < 0.01 < uint8_error(spiky)
    weights = [[{"name": "a/kernel", "data": normal}, {"name": "b[0]/kernel*", "data": spiky},
                {"name": "c/kernel", "data": normal * 2}, {"name": "shape", "data": np.array([1, 2], np.int32)}]]
    chosen = choose_dtype_map(weights)
    assert chosen.dtype_map == {"float16": ["b[[]0]/kernel[*]"], "uint8": True}
    import fnmatch

    assert fnmatch.fnmatch("b[0]/kernel*", chosen.dtype_map["float16"][0])
    with pytest.raises(Exception, match="same uint8 error"):  # a mix needs some tensor worse than another
        choose_dtype_map([[{"name": "a", "data": normal}, {"name": "c", "data": normal * 2}]])
    # No outlier (glorot-like kernels, zero biases): the worst above-median tensor still gets float16.
    wide = rng.uniform(-1, 1, size=(64, 64)).astype(np.float32)
    mild = normal.copy()
    mild[0, 0] = 6.0  # a slightly coarser grid than ``normal``'s, far from OUTLIER_FACTOR times the median
    plain = [[{"name": "a", "data": normal}, {"name": "m", "data": mild}, {"name": "w", "data": wide},
              {"name": "bias", "data": np.zeros(8, np.float32)}]]
    errors = {e["name"]: uint8_error(e["data"]) for e in plain[0]}
    assert max(errors.values()) < 3 * float(np.median(list(errors.values())))
    chosen = choose_dtype_map(plain)
    assert [n for n, _ in chosen.float16] == [max(errors, key=errors.get)], errors
    assert "above the model's median" in chosen.check().detail


@pytest.mark.slow
@pytest.mark.parametrize("targets", ["web", "web,android"])
def test_web_auto_keeps_the_damaged_weight_float16_when_uint8_misses_the_gates(tmp_path, targets):
    """auto takes uint8 ahead (validated with the page's checks in the background); missing the gates, the build
    goes on with the ladder (``target_build.Retry``), here or in the worker process (web,android: web is the
    worker's), and the page and its checks are those of the mode that passed."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), name="features")
    h = keras.layers.Dense(64, activation="relu", name="first")(inp)
    h = keras.layers.Dense(64, activation="relu", name="second")(h)
    m = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="probs")(h))
    w, b = m.get_layer("first").get_weights()
    w[0, 0] = 150.0  # ~500x the others: tensorflowjs' uint8 grid for this tensor has a step of ~0.6
    m.get_layer("first").set_weights([w, b])
    m.save(tmp_path / "w.keras")
    np.savez(tmp_path / "w.npz", features=np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32))
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "w.keras", "--samples", tmp_path / "w.npz", "--targets", targets, "--out", out)
    assert r.returncode == 0, r.stderr + r.stdout
    t = json.loads((out / "report.json").read_text())["targets"]["web"]
    assert [(x["mode"], x["status"]) for x in t["tries"]] == [("uint8", "FAIL"), ("mixed", "PASS")], t["tries"]
    (check,) = [c for c in t["checks"] if c["name"] == "mixed weights"]
    assert check["detail"].startswith("1 of ") and "first" in check["detail"], check["detail"]
    model_json = json.loads(next(out.glob("web/**/model.json")).read_text())
    dtypes = {w["name"]: w.get("quantization", {}).get("dtype") for g in model_json["weightsManifest"]
              for w in g["weights"]}
    assert sorted(d for d in dtypes.values() if d) == ["float16", "uint8", "uint8"], dtypes
    assert t["tries"][0]["bytes"] < t["bytes"] < 0.5 * t["float_bytes"]
    names = [c["name"] for c in t["checks"]]  # one validation (mixed's) and the page's checks, all passed
    assert names.count("predictions") == 1 and {"service_worker", "offline_reload"} <= set(names), names
    assert all(c["status"] != "FAIL" for c in t["checks"]), t["checks"]


def _random_layers(rng, n: int = 80):
    """A NeuralNetwork's layers wired at random: fan-out, fan-in, layers of several outputs, a blob written twice."""
    from coremltools.proto import NeuralNetwork_pb2

    nn = NeuralNetwork_pb2.NeuralNetwork()
    blobs = ["x"]
    for i in range(n):
        layer = nn.layers.add()
        layer.name = f"l{i % 7}"  # repeated names: the maps go by index
        for b in rng.choice(blobs, size=min(len(blobs), int(rng.integers(1, 4))), replace=False):
            layer.input.append(str(b))
        kind = ("activation", "innerProduct", "convolution", "batchnorm", "add")[int(rng.integers(0, 5))]
        getattr(layer, kind).SetInParent()
        for k in range(int(rng.integers(1, 3))):
            layer.output.append(f"b{i}_{k}")
        if i == n // 2:
            layer.output.append(blobs[-1])  # written again
        blobs.extend(layer.output)
    return nn.layers


def test_layer_maps_are_coremltools_own():
    """linear_layer_maps() swaps coremltools' O(layers^2) _get_nn_mappings for nn_mappings while the NeuralNetwork
    quantizer runs: the same three maps (types, readers, writers; same order) on randomly wired layers, and
    coremltools' function is back afterwards."""
    from coremltools.models.neural_network import optimization_utils as ou

    from packager.targets.ios.quantize import linear_layer_maps, nn_mappings

    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 80, 300):
        layers = _random_layers(rng, n)
        assert nn_mappings(layers) == ou._get_nn_mappings(layers), n
    original = ou._get_nn_mappings
    with linear_layer_maps():
        assert ou._get_nn_mappings is nn_mappings
    assert ou._get_nn_mappings is original


@pytest.mark.parametrize("mode", ["8bit", "palette6"])
def test_quantized_model_is_byte_identical_with_the_linear_maps(mode, monkeypatch):
    """A network coremltools' quantizer fuses (innerProduct -> bias) quantizes to the
    same bytes with packager's layer maps as with coremltools' own."""
    import coremltools as ct
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.neural_network import optimization_utils as ou

    from packager.targets.ios import quantize as q
    from packager.targets.ios.convert import quantize

    rng = np.random.default_rng(1)
    b = NeuralNetworkBuilder([("x", datatypes.Array(3, 8, 8))], [("y", datatypes.Array(5))])
    b.add_convolution("conv", 3, 4, 3, 3, 1, 1, "same", 1, rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
                      rng.normal(size=4).astype(np.float32), True, input_name="x", output_name="c")
    b.add_activation("relu", "RELU", "c", "r")
    b.add_flatten("flat", 0, "r", "f")
    b.add_inner_product("fc", rng.normal(size=(5, 256)).astype(np.float32), rng.normal(size=5).astype(np.float32),
                        256, 5, True, input_name="f", output_name="z")
    b.add_bias("bias", rng.normal(size=5).astype(np.float32), "z", "y", shape_bias=[5])
    model = ct.models.MLModel(b.spec)
    ours = quantize(model, mode, False).get_spec().SerializeToString()
    monkeypatch.setattr(q, "nn_mappings", ou._get_nn_mappings)  # coremltools' own maps
    assert quantize(model, mode, False).get_spec().SerializeToString() == ours
