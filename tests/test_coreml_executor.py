"""The NumPy Core ML executor, layer by layer, against TensorFlow (and NumPy for legacy layers).

Each case builds a tiny Keras model around one op, converts it with the real coremltools to a
NeuralNetwork spec, and runs the *saved spec* with the executor. A case also asserts the layer type
it meant to exercise is really in the converted spec, so a converter change cannot make it vacuous.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import Counter

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ct = pytest.importorskip("coremltools")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from packager.targets.ios.executor import nn as cx  # noqa: E402
from packager.targets.ios.executor.nn.network import _relu_cap_chain  # noqa: E402

RNG = np.random.default_rng(7)


def convert(model: keras.Model, shape):
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
    ml = ct.convert([fn.get_concrete_function()], source="tensorflow", convert_to="neuralnetwork",
                    minimum_deployment_target=ct.target.iOS14,
                    inputs=[ct.TensorType(name="x", shape=shape)])
    return ml.get_spec()


def seq(shape, *layers):
    inp = keras.Input(shape[1:])
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def randomize_bn(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([RNG.uniform(0.5, 1.5, g.shape), RNG.normal(0, 0.2, b.shape),
                               RNG.normal(0, 0.2, m.shape), RNG.uniform(0.5, 1.5, v.shape)])
    return model


L = keras.layers
CASES = {
    # name: (input shape, layers, a Core ML layer type that must appear)
    "conv_same_stride2": ((1, 9, 11, 3), [L.Conv2D(5, 3, strides=2, padding="same")], "convolution"),
    "conv_valid_5x3": ((1, 8, 8, 2), [L.Conv2D(4, (5, 3), padding="valid")], "convolution"),
    "conv_dilated": ((1, 10, 10, 2), [L.Conv2D(3, 3, dilation_rate=2, padding="same")], "convolution"),
    "conv_1x1": ((1, 6, 6, 4), [L.Conv2D(7, 1)], "convolution"),
    "depthwise": ((1, 8, 8, 4), [L.DepthwiseConv2D(3, padding="same")], "convolution"),
    "depthwise_stride2_mult2": ((1, 9, 9, 3), [L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")],
                                "convolution"),
    "maxpool_same": ((1, 7, 7, 2), [L.MaxPooling2D(3, strides=2, padding="same")], "pooling"),
    "avgpool_same": ((1, 7, 7, 2), [L.AveragePooling2D(3, strides=2, padding="same")], "pooling"),
    "avgpool_valid": ((1, 8, 8, 2), [L.AveragePooling2D(2)], "pooling"),
    "global_avg": ((1, 5, 5, 3), [L.GlobalAveragePooling2D()], "reduceMean"),
    "global_max": ((1, 5, 5, 3), [L.GlobalMaxPooling2D()], "reduceMax"),
    "zero_padding": ((1, 4, 4, 2), [L.ZeroPadding2D(((1, 2), (0, 1)))], "constantPad"),
    "batchnorm_relu6": ((1, 4, 4, 3), [L.Conv2D(3, 1), L.BatchNormalization(), L.ReLU(6.0)], "unary"),
    "leaky_sigmoid_tanh": ((1, 10), [L.Dense(8), L.LeakyReLU(0.2), L.Dense(6, activation="sigmoid"),
                                     L.Dense(4, activation="tanh")], "activation"),
    "elu_softplus": ((1, 10), [L.Dense(8, activation="elu"), L.Dense(4, activation="softplus")], "activation"),
    "dense_softmax": ((1, 12), [L.Dense(5, activation="softmax")], "softmaxND"),
    "flatten_dense": ((1, 3, 4, 2), [L.Flatten(), L.Dense(3)], "reshapeStatic"),
    "permute": ((1, 3, 4, 5), [L.Permute((3, 1, 2))], "transpose"),
    "reshape": ((1, 12), [L.Reshape((3, 4)), L.Dense(2)], "reshapeStatic"),
    "upsample": ((1, 3, 3, 2), [L.UpSampling2D(2), L.Conv2D(2, 1)], "tile"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_tensorflow(case):
    shape, layers, must_have = CASES[case]
    model = randomize_bn(seq(shape, *layers))
    spec = convert(model, shape)
    assert must_have in cx.layer_types(spec), cx.layer_types(spec)
    x = RNG.normal(0, 1, shape).astype(np.float32)
    want = model(x).numpy()
    got = cx.run(spec, {"x": x})
    (out,) = got.values()
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_add_multiply_concat_two_branches():
    inp = keras.Input((6, 6, 3))
    a = L.Conv2D(4, 3, padding="same")(inp)
    b = L.Conv2D(4, 1)(inp)
    x = L.Concatenate()([L.Add()([a, b]), L.Multiply()([a, b])])
    x = L.Conv2D(2, 1)(x)
    model = keras.Model(inp, x)
    spec = convert(model, (1, 6, 6, 3))
    types = cx.layer_types(spec)
    assert "add" in types or "addBroadcastable" in types
    assert any(t.startswith("concat") for t in types)
    x = RNG.normal(0, 1, (1, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(next(iter(cx.run(spec, {"x": x}).values())), model(x).numpy(), atol=1e-4)


# ---------------------------------------------------------------- legacy layers via the builder


def _builder(in_shape, out_name="y"):
    return NeuralNetworkBuilder([("x", datatypes.Array(*in_shape))], [(out_name, None)],
                                disable_rank5_shape_mapping=True)


def test_inner_product_flatten_softmax_legacy():
    b = _builder((1, 3, 2, 2))
    w = RNG.normal(0, 1, (5, 12)).astype(np.float32)
    bias = RNG.normal(0, 1, 5).astype(np.float32)
    b.add_flatten("flat", 0, "x", "f")
    b.add_inner_product("ip", W=w, b=bias, input_channels=12, output_channels=5, has_bias=True,
                        input_name="f", output_name="ip")
    b.add_softmax("sm", "ip", "y")
    x = RNG.normal(0, 1, (1, 3, 2, 2)).astype(np.float32)
    got = cx.run(b.spec, {"x": x})["y"].reshape(-1)
    logits = w @ x.reshape(-1) + bias
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batchnorm_scale_and_elementwise_legacy():
    b = _builder((1, 3, 2, 2))
    g, beta = RNG.uniform(0.5, 1, 3), RNG.normal(0, 1, 3)
    mean, var = RNG.normal(0, 1, 3), RNG.uniform(0.5, 2, 3)
    b.add_batchnorm("bn", 3, g, beta, mean, var, input_name="x", output_name="bn", epsilon=1e-3)
    b.add_scale("sc", W=np.array([2.0, 3.0, 4.0]), b=np.array([1.0, 0.0, -1.0]), has_bias=True,
                input_name="bn", output_name="sc", shape_scale=[3], shape_bias=[3])
    b.add_elementwise("mul", ["sc", "x"], "y", mode="MULTIPLY")
    x = RNG.normal(0, 1, (1, 3, 2, 2)).astype(np.float32)
    c = (1, 3, 1, 1)
    bn = (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + 1e-3) * g.reshape(c) + beta.reshape(c)
    sc = bn * np.array([2, 3, 4.0]).reshape(c) + np.array([1, 0, -1.0]).reshape(c)
    np.testing.assert_allclose(cx.run(b.spec, {"x": x})["y"], sc * x, rtol=1e-5, atol=1e-5)


def test_grouped_convolution_legacy():
    """Keras' grouped Conv2D does not convert (coremltools rejects its function call), so the
    grouped conv is built directly and compared with TensorFlow per group."""
    b = _builder((1, 4, 6, 6))
    w = RNG.normal(0, 1, (3, 3, 2, 6)).astype(np.float32)  # (kh, kw, C_in/groups, C_out)
    b.add_convolution("gconv", kernel_channels=2, output_channels=6, height=3, width=3, stride_height=1,
                      stride_width=1, border_mode="same", groups=2, W=w, b=None, has_bias=False,
                      input_name="x", output_name="y")
    x = RNG.normal(0, 1, (1, 4, 6, 6)).astype(np.float32)
    xh = np.transpose(x, (0, 2, 3, 1))
    parts = [tf.nn.conv2d(xh[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], 1, "SAME").numpy() for g in range(2)]
    want = np.transpose(np.concatenate(parts, axis=-1), (0, 3, 1, 2))
    np.testing.assert_allclose(cx.run(b.spec, {"x": x})["y"], want, rtol=1e-4, atol=1e-4)


def test_unknown_layers_are_all_named_nested_ones_included():
    """Every unknown layer type is named (one layer of each), also inside a loop body; the model is not run."""
    b = _builder((1, 3, 4, 4))
    b.add_argsort("sort_layer", "x", "n", axis=-1)
    b.add_sliding_windows("windows_layer", "n", "r", axis=-1, window_size=2)
    loop = b.add_loop("a_loop", max_iterations=2)
    body = NeuralNetworkBuilder(nn_spec=loop.loop.bodyNetwork, disable_rank5_shape_mapping=True)
    body.add_custom("custom_layer", ["r"], ["r2"])
    body.add_argsort("sort_again", "r2", "r3")
    b.add_activation("out", "RELU", "x", "y")
    assert cx.unsupported_layers(b.spec) == ["argSort", "slidingWindows", "custom"]
    with pytest.raises(cx.UnsupportedLayer) as e:
        cx.run(b.spec, {"x": np.zeros((1, 3, 4, 4), np.float32)})
    assert e.value.layer_types == ["argSort", "slidingWindows", "custom"]
    assert e.value.layer_names == ["sort_layer", "windows_layer", "custom_layer"]
    for word in ("'argSort'", "'slidingWindows'", "'custom'", "sort_layer", "custom_layer"):
        assert word in str(e.value)


# ---------------------------------------------------------------- quantized weights


@pytest.mark.parametrize("nbits", [16, 8, 4])
def test_quantized_weights_decode_like_coremltools(nbits):
    from coremltools.models.neural_network import quantization_utils as qu

    model = seq((1, 6, 6, 3), L.Conv2D(8, 3, padding="same"), L.DepthwiseConv2D(3), L.Flatten(), L.Dense(4))
    spec = convert(model, (1, 6, 6, 3))
    with contextlib.redirect_stdout(io.StringIO()):
        quant = qu.quantize_weights(ct.models.MLModel(spec), nbits=nbits, quantization_mode="linear").get_spec()
    # coremltools' own dequantizer is the reference for the bit layout and per-channel scales
    ref = quant.__class__.FromString(quant.SerializeToString())
    if nbits == 16:  # float16Value: the reference is the float32 weights rounded to half precision
        ref = spec.__class__.FromString(spec.SerializeToString())
        for layer in ref.neuralNetwork.layers:
            for wp in (getattr(layer, t).weights for t in ("convolution", "batchedMatmul") if layer.HasField(t)):
                half = np.asarray(wp.floatValue, np.float32).astype(np.float16).astype(np.float32)
                del wp.floatValue[:]
                wp.floatValue.extend(half)
    else:
        qu._dequantize_nn_spec(ref.neuralNetwork)
    checked = 0
    for lq, lr in zip(quant.neuralNetwork.layers, ref.neuralNetwork.layers):
        if lq.WhichOneof("layer") == "convolution":
            p = lq.convolution
            shape = (p.outputChannels, p.kernelChannels, *p.kernelSize)
            got = cx.weights(p.weights, shape)
            want = np.asarray(lr.convolution.weights.floatValue, np.float32).reshape(shape)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
            checked += 1
        elif lq.WhichOneof("layer") == "batchedMatmul":
            p = lq.batchedMatmul
            shape = (p.weightMatrixSecondDimension, p.weightMatrixFirstDimension)
            got = cx.weights(p.weights, shape)
            want = np.asarray(lr.batchedMatmul.weights.floatValue, np.float32).reshape(shape)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
            checked += 1
    assert checked >= 3
    x = RNG.normal(0, 1, (1, 6, 6, 3)).astype(np.float32)
    out = next(iter(cx.run(quant, {"x": x}).values()))
    tol = {16: 2e-2, 8: 0.1, 4: 1.0}[nbits]
    np.testing.assert_allclose(out, model(x).numpy(), atol=tol)


# ---------------------------------------------------------------- image preprocessing


@pytest.mark.parametrize("layout", ["RGB", "BGR"])
def test_image_input_scale_bias_and_layout(layout):
    shape = (1, 5, 4, 3)
    model = seq(shape, L.Conv2D(2, 1))
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec(shape, tf.float32, name="img")])
    bias = [-1.0, -0.5, 0.25]  # in model channel order, as ct.ImageType takes it
    ml = ct.convert([fn.get_concrete_function()], source="tensorflow", convert_to="neuralnetwork",
                    minimum_deployment_target=ct.target.iOS14,
                    inputs=[ct.ImageType(name="img", shape=shape, scale=1 / 64, bias=bias,
                                         color_layout=getattr(ct.colorlayout, layout))])
    rgb = RNG.integers(0, 256, (5, 4, 3)).astype(np.float32)
    model_order = rgb[..., ::-1] if layout == "BGR" else rgb
    want = model((model_order / 64 + np.asarray(bias, np.float32))[None]).numpy()
    got = cx.run(ml.get_spec(), {"img": rgb})
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-5, atol=1e-5)


def test_supported_layers_cover_mobilenet_v2():
    for t in ("activation", "convolution", "unary", "add", "padding", "transpose", "reduceMean",
              "batchedMatmul", "softmaxND", "pooling", "batchnorm", "innerProduct", "concat", "concatND",
              "reshapeStatic", "flatten", "multiply", "softmax", "reduce"):
        assert t in cx.SUPPORTED_LAYERS


def test_relu6_chains_are_fused_and_exact():
    """coremltools writes ReLU6 as ReLU, x*-1, max(x, -6), x*-1; the executor runs it as one clip.
    A chain whose intermediate blob is read by another layer too must not be fused."""
    shape = (1, 6, 6, 3)
    inp = keras.Input(shape[1:])
    a = keras.layers.ReLU(6.0)(keras.layers.Conv2D(4, 3, padding="same")(inp))
    b = keras.layers.ReLU(6.0)(keras.layers.Conv2D(4, 1)(a))
    model = keras.Model(inp, keras.layers.Add()([a, b]))
    spec = convert(model, shape)
    prog = cx.Program(spec)
    n_layers = len(spec.neuralNetwork.layers)
    assert len(prog.steps) == n_layers - 2 * 3  # two four-layer chains became two steps
    x = RNG.normal(0, 4, shape).astype(np.float32)  # wide enough to hit the cap and the floor
    got = next(iter(cx.run(spec, {"x": x}).values()))
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-5, atol=1e-5)
    relu = spec.neuralNetwork.layers[[layer.WhichOneof("layer") for layer in spec.neuralNetwork.layers].index("activation")]
    consumers = Counter({relu.output[0]: 2})
    chain = list(spec.neuralNetwork.layers)
    start = chain.index(relu)
    assert _relu_cap_chain(chain[start:start + 4], consumers) is None


# ---------------------------------------------------------------- layers of real models, against TensorFlow
# Ids through Embedding, masks, comparisons and where, gathers, dynamic slices and shapes, and the loop /
# branch control flow TensorFlow's while_loop / cond (every tf_keras RNN) become. Each case converts a TF
# function the way packager does (concrete function -> neuralnetwork), asserts the layer types it exists
# for are in the spec, and compares the executor with TensorFlow on the same inputs.


def convert_fn(fn, specs):
    cf = tf.function(fn, input_signature=specs).get_concrete_function()
    with contextlib.redirect_stdout(io.StringIO()):
        ml = ct.convert([cf], source="tensorflow", convert_to="neuralnetwork",
                        minimum_deployment_target=ct.target.iOS14,
                        inputs=[ct.TensorType(name=s.name, shape=tuple(s.shape), dtype=s.dtype.as_numpy_dtype)
                                for s in specs])
    return cf, ml.get_spec()


def max_error_vs_tf(cf, spec, feeds: dict) -> float:
    """Run TF and the executor; outputs pair by coremltools' names (Identity, Identity_1, ...)."""
    want = cf(*[tf.constant(v) for v in feeds.values()])
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    got = cx.run(spec, feeds)
    assert spec.description.output
    worst = 0.0
    for o in spec.description.output:
        ref = np.asarray(want[0 if o.name == "Identity" else int(o.name.rsplit("_", 1)[1])], np.float32)
        out = got[o.name]
        assert out.size == ref.size, (o.name, out.shape, ref.shape)
        worst = max(worst, float(np.abs(out.reshape(ref.shape) - ref).max()))
    return worst


def _cmp(x):
    r = tf.round(x)
    return [tf.cast(x > 0.2, tf.float32) + 2 * tf.cast(x < -0.3, tf.float32) + 4 * tf.cast(x >= 0.5, tf.float32),
            tf.cast(x <= 0.1, tf.float32) + tf.cast(tf.equal(r, 0.0), tf.float32) + tf.cast(tf.not_equal(r, 1.0), tf.float32),
            tf.cast(tf.logical_and(x > 0, x < 1), tf.float32) + tf.cast(tf.logical_or(x > 1, x < -1), tf.float32)
            + tf.cast(tf.logical_not(x > 0), tf.float32),
            tf.where(x > 0, x, -2 * x)]


def _while(x):
    return tf.while_loop(lambda i, a: i < 4, lambda i, a: (i + 1, a * 0.5 + tf.sin(a)), (tf.constant(0), x))[1]


def _while_joint(x):
    return tf.while_loop(lambda i, a: tf.logical_and(i < 10, tf.reduce_sum(a) < 30.0),
                         lambda i, a: (i + 1, a + 1.5), (tf.constant(0), x))[1]


OP_CASES = {
    # name: (function of x, x shape, layer types that must be in the converted spec)
    "comparisons_logical_where": (_cmp, (2, 10), {"greaterThan", "lessThan", "greaterEqual", "lessEqual", "equal",
                                                   "notEqual", "logicalAnd", "logicalOr", "logicalNot",
                                                   "whereBroadcastable"}),
    "gather_dynamic_index": (lambda x: tf.gather(x, tf.cast(tf.argmax(x, axis=-1), tf.int32), axis=1), (2, 5),
                             {"gather", "argMax"}),
    "gather_nd": (lambda x: tf.gather_nd(x, [[0, 1], [1, 3], [2, 0]]), (3, 4), {"gatherND"}),
    "slice_dynamic": (lambda x: x[:, tf.cast(tf.reduce_max(tf.abs(x)) > 100, tf.int32):4], (2, 6),
                      {"sliceDynamic", "concatND"}),
    "slice_legacy_tile_broadcast": (lambda x: tf.broadcast_to(x[:, :1], (2, 6)) * tf.reduce_mean(x), (2, 6),
                                    {"slice", "tile"}),
    "tile_dynamic_reps": (lambda x: tf.tile(x, tf.stack([1, tf.cast(tf.reduce_max(x) > -100, tf.int32) + 1])),
                          (2, 3), {"tile"}),
    "where_nonzero": (lambda x: tf.cast(tf.where(x > 0), tf.float32), (2, 6), {"whereNonZero"}),
    "topk": (lambda x: [tf.math.top_k(x, k=3).values, tf.cast(tf.math.top_k(x, k=3).indices, tf.float32)], (2, 6),
             {"topK"}),
    "argmin_argmax": (lambda x: [tf.cast(tf.argmin(x, -1), tf.float32), tf.cast(tf.argmax(x, 0), tf.float32)],
                      (3, 6), {"argMin", "argMax"}),
    "cumsum": (lambda x: [tf.cumsum(x, axis=1, exclusive=True, reverse=True), tf.cumsum(x, axis=0)], (2, 6),
               {"cumSum"}),
    "reverse": (lambda x: tf.reverse(x, axis=[-1]) + tf.reverse(x, axis=[0]), (2, 6), {"reverse"}),
    "one_hot": (lambda x: tf.one_hot(tf.cast(tf.argmax(x, -1), tf.int32), 6), (2, 6), {"oneHot"}),
    "math_unary": (lambda x: tf.math.erf(x) + tf.sin(x) + tf.math.atan(x) + tf.math.sinh(x / 4)
                   + tf.math.floormod(x, 0.7), (2, 6), {"erf", "sin", "atan", "sinh", "floorDivBroadcastable"}),
    "clip_round_floor_sign": (lambda x: tf.clip_by_value(x, -0.3, 0.4) + tf.round(x * 3) + tf.floor(x) + tf.sign(x),
                              (2, 6), {"round", "floor", "sign"}),
    "reductions": (lambda x: [tf.reduce_prod(x, 1), tf.reduce_logsumexp(x, 1), tf.norm(x, axis=1),
                              tf.reduce_max(x, 1, keepdims=True) + tf.reduce_min(x, 0, keepdims=True)], (2, 6),
                   {"reduceProd", "reduceMax", "reduceMin", "reduceSum"}),
    "split_concat_squeeze_expand": (lambda x: tf.squeeze(tf.expand_dims(tf.concat(tf.split(x, 3, axis=1)[::-1], 0), 1),
                                                         1), (2, 6), {"splitND", "concatND", "expandDims", "squeeze"}),
    "upsample_bilinear_keras": (lambda x: L.UpSampling2D(2, interpolation="bilinear")(x), (1, 4, 5, 3), {"upsample"}),
    "upsample_bilinear_fractional": (lambda x: tf.image.resize(x, (7, 9), method="bilinear"), (1, 4, 5, 3),
                                     {"upsample"}),
    "resize_bilinear_align_corners": (lambda x: tf.compat.v1.image.resize_bilinear(x, (7, 9), align_corners=True),
                                      (1, 4, 5, 3), {"resizeBilinear"}),
    "resize_bilinear_v1_legacy": (lambda x: tf.compat.v1.image.resize_bilinear(x, (9, 7)), (1, 4, 5, 3),
                                  {"resizeBilinear"}),
    "lrn": (lambda x: tf.nn.local_response_normalization(x, depth_radius=2, bias=1.5, alpha=0.05, beta=0.75),
            (1, 4, 5, 7), {"lrn"}),
    "depth_to_space": (lambda x: tf.nn.depth_to_space(x, 2), (1, 3, 4, 8), {"reorganizeData"}),
    "space_to_depth": (lambda x: tf.nn.space_to_depth(x, 2), (1, 4, 6, 3), {"reorganizeData"}),
    "cond_branch": (lambda x: tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2, lambda: x - 1), (2, 3), {"branch", "copy"}),
    "while_loop": (_while, (2, 3), {"loop", "copy", "lessThan"}),
    "while_joint_condition": (_while_joint, (2, 3), {"loop", "logicalAnd"}),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_matches_tensorflow(case):
    fn, shape, must_have = OP_CASES[case]
    cf, spec = convert_fn(fn, [tf.TensorSpec(shape, tf.float32, name="x")])
    assert must_have <= set(cx.layer_types(spec)), cx.layer_types(spec)
    for sign in (1, -1):  # both arms of data-dependent branches and loops
        err = max_error_vs_tf(cf, spec, {"x": sign * RNG.normal(0, 1, shape).astype(np.float32)})
        print(f"{case}: max abs error {err:.2e}")
        assert err < 1e-5


def keras_case(name: str):
    """(model, input shape, input dtype, layer types that must be in the spec) for one named case."""
    if name == "keras_embedding":
        inp = keras.Input((8,), dtype="int32")
        x = L.GlobalAveragePooling1D()(L.Embedding(20, 4)(inp))
        return keras.Model(inp, L.Dense(3)(x)), (1, 8), "int32", {"embeddingND", "whereBroadcastable"}
    if name == "keras_conv1d_audio":
        inp = keras.Input((64, 1))
        x = L.MaxPooling1D(2)(L.Conv1D(4, 5, strides=2, activation="relu")(inp))
        x = L.GlobalAveragePooling1D()(L.BatchNormalization()(L.Conv1D(6, 3, padding="same", dilation_rate=2)(x)))
        model = randomize_bn(keras.Model(inp, L.Dense(3, activation="softmax")(x)))
        return model, (1, 64, 1), "float32", {"convolution", "crop", "pooling"}
    if name == "keras_two_outputs":
        inp = keras.Input((6, 3))
        h = L.Flatten()(inp)
        return keras.Model(inp, [L.Dense(2)(h), L.Dense(3, activation="sigmoid")(h)]), (1, 6, 3), "float32", set()
    tk = pytest.importorskip("tf_keras")
    tl = tk.layers
    layer = {"tf_keras_lstm": lambda: tl.LSTM(4), "tf_keras_gru": lambda: tl.GRU(4),
             "tf_keras_bidirectional_lstm": lambda: tl.Bidirectional(tl.LSTM(3, return_sequences=True))}[name]()
    i = tk.Input((6, 3))
    rnn_types = {"loop", "branch", "copy", "scatter", "gather", "fillDynamic", "getShape", "sliceStatic"}
    return tk.Model(i, layer(i)), (1, 6, 3), "float32", rnn_types | ({"reverse"} if "bidir" in name else set())


KERAS_CASE_NAMES = ["keras_embedding", "keras_conv1d_audio", "keras_two_outputs", "tf_keras_lstm", "tf_keras_gru",
                    "tf_keras_bidirectional_lstm"]


@pytest.mark.parametrize("case", KERAS_CASE_NAMES)
def test_real_model_layers_match_tensorflow(case):
    model, shape, dtype, must_have = keras_case(case)
    cf, spec = convert_fn(lambda x: model(x), [tf.TensorSpec(shape, getattr(tf, dtype), name="x")])
    assert must_have <= set(cx.layer_types(spec)), cx.layer_types(spec)
    worst = 0.0
    for _ in range(3):
        if dtype == "int32":
            x = RNG.integers(0, 20, shape).astype(np.int32)
        else:
            x = RNG.normal(0, 1, shape).astype(np.float32)
        worst = max(worst, max_error_vs_tf(cf, spec, {"x": x}))
    print(f"{case}: max abs error {worst:.2e}")
    assert worst < 1e-5


# ---------------------------------------------------------------- legacy recurrent layers, with Keras weights
# coremltools 9 writes TF RNNs as loops (above); the recurrent layers come from older converters. Each is built
# with the Core ML builder from a Keras layer's weights and compared with that Keras layer.


def _rnn_builder(seq: int, n_in: int):
    return NeuralNetworkBuilder([("x", datatypes.Array(seq, 1, n_in, 1, 1))], [("y", None)],
                                disable_rank5_shape_mapping=True)


def _gates(kernel, recurrent, bias, n: int, order):
    """Keras' packed (in, k*H) kernel -> Core ML's per-gate (H, in) matrices, in ``order`` of Keras gate indices."""
    w = [kernel[:, g * n:(g + 1) * n].T for g in order]
    r = [recurrent[:, g * n:(g + 1) * n].T for g in order]
    return w, r, [bias[g * n:(g + 1) * n] for g in order]


def _randomize(layer):
    layer.set_weights([RNG.normal(0, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.mark.parametrize("kind", ["uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent"])
@pytest.mark.parametrize("sequences", [False, True])
def test_recurrent_layers_match_keras(kind, sequences):
    seq, n_in, n = 5, 3, 4
    x = RNG.normal(0, 1, (1, seq, n_in)).astype(np.float32)
    b = _rnn_builder(seq, n_in)
    outs = ["y", "h"] + (["c"] if "LSTM" in kind else []) + (["hb", "cb"] if kind == "biDirectionalLSTM" else [])
    if kind == "uniDirectionalLSTM":
        layer = L.LSTM(n, return_sequences=sequences)
        layer(x)
        _randomize(layer)
        w, r, bias = _gates(*layer.get_weights(), n, (0, 1, 3, 2))  # Keras i, f, c, o -> Core ML i, f, o, z
        b.add_unilstm("rnn", r, w, bias, n, n_in, ["x"], outs, output_all=sequences)
    elif kind == "biDirectionalLSTM":
        layer = L.Bidirectional(L.LSTM(n, return_sequences=sequences))
        layer(x)
        _randomize(layer)
        wf, rf, bf = _gates(*layer.forward_layer.get_weights(), n, (0, 1, 3, 2))
        wb, rb, bb = _gates(*layer.backward_layer.get_weights(), n, (0, 1, 3, 2))
        b.add_bidirlstm("rnn", rf, wf, bf, rb, wb, bb, n, n_in, ["x"], outs, output_all=sequences)
    elif kind == "gru":
        layer = L.GRU(n, return_sequences=sequences, reset_after=False)  # Core ML resets before the matmul
        layer(x)
        _randomize(layer)
        w, r, bias = _gates(*layer.get_weights(), n, (0, 1, 2))  # z, r, h in both
        b.add_gru("rnn", r, w, bias, n, n_in, ["x"], outs, inner_activation="SIGMOID", output_all=sequences)
    else:
        layer = L.SimpleRNN(n, return_sequences=sequences)
        layer(x)
        _randomize(layer)
        k, rk, bias = layer.get_weights()
        b.add_simple_rnn("rnn", rk.T, k.T, bias, n, n_in, "TANH", ["x"], outs, output_all=sequences)
    assert cx.layer_types(b.spec) == [kind]
    got = cx.run(b.spec, {"x": np.transpose(x, (1, 0, 2)).reshape(seq, 1, n_in, 1, 1)})["y"]
    want = layer(x).numpy()  # (1, seq, H) or (1, H); bidirectional: 2H
    assert got.shape == ((seq if sequences else 1), 1, want.shape[-1], 1, 1)
    got = got.reshape(seq, -1)[None] if sequences else got.reshape(1, -1)  # (Seq, Batch, H, 1, 1) -> Keras
    err = float(np.abs(got - want).max())
    print(f"{kind} sequences={sequences}: max abs error {err:.2e}")
    assert err < 1e-5


# ---------------------------------------------------------------- layers coremltools writes for other graphs
# (dynamic shapes, older converters): built with the Core ML builder, compared with the TensorFlow op that
# computes the same thing on the same inputs.


def _nd(inputs: dict):
    return NeuralNetworkBuilder([(k, datatypes.Array(*v)) for k, v in inputs.items()], [("y", None)],
                                disable_rank5_shape_mapping=True)


def _case_gather_along_axis():
    b = _nd({"x": (3, 5), "i": (3, 2)})
    b.add_gather_along_axis("g", ["x", "i"], "y", axis=1)
    x, i = RNG.normal(0, 1, (3, 5)).astype(np.float32), RNG.integers(0, 5, (3, 2))
    return b, {"x": x, "i": i.astype(np.float32)}, tf.gather(x, i, axis=1, batch_dims=1)


def _case_scatter_add_axis1():
    b = _nd({"x": (2, 6), "i": (3,), "u": (2, 3)})
    b.add_scatter("s", ["x", "i", "u"], "y", axis=1, mode="ADD")
    x, u = RNG.normal(0, 1, (2, 6)).astype(np.float32), RNG.normal(0, 1, (2, 3)).astype(np.float32)
    i = np.array([4, 0, 4])
    want = tf.transpose(tf.tensor_scatter_nd_add(tf.transpose(x), i[:, None], tf.transpose(u)))
    return b, {"x": x, "i": i.astype(np.float32), "u": u}, want


def _case_scatter_nd():
    b = _nd({"x": (3, 4), "i": (2, 2), "u": (2,)})
    b.add_scatter_nd("s", ["x", "i", "u"], "y")
    x, u, i = RNG.normal(0, 1, (3, 4)).astype(np.float32), np.array([7.0, -3.0], np.float32), np.array([[0, 3], [2, 1]])
    return b, {"x": x, "i": i.astype(np.float32), "u": u}, tf.tensor_scatter_nd_update(x, i, u)


def _case_scatter_along_axis():
    b = _nd({"x": (2, 4), "i": (2, 1), "u": (2, 1)})
    b.add_scatter_along_axis("s", ["x", "i", "u"], "y", axis=1)
    x, u, i = RNG.normal(0, 1, (2, 4)).astype(np.float32), np.array([[5.0], [6.0]], np.float32), np.array([[2], [0]])
    want = tf.tensor_scatter_nd_update(x, [[0, 2], [1, 0]], u[:, 0])
    return b, {"x": x, "i": i.astype(np.float32), "u": u}, want


def _case_fill_and_shape():
    b = _nd({"x": (2, 3)})
    b.add_get_shape("shape", "x", "s")
    b.add_fill_dynamic("fd", "s", "fd", value=2.5)
    b.add_fill_like("fl", "x", "fl", value=-1.0)
    b.add_fill_static("fs", "fs", [2, 3], value=0.25)
    b.add_add_broadcastable("a1", ["fd", "fl"], "a")
    b.add_add_broadcastable("a2", ["a", "fs"], "y")
    x = RNG.normal(0, 1, (2, 3)).astype(np.float32)
    want = tf.fill(tf.shape(x), 2.5) + tf.fill(tf.shape(x), -1.0) + tf.fill([2, 3], 0.25)
    return b, {"x": x}, want


def _case_ranges():
    b = _nd({"e": (1,), "s": (1,)})
    b.add_range_dynamic("rd", ["e", "s"], "rd", step=2)
    b.add_range_static("rs", "rs", end=7, start=1, step=2)
    b.add_add_broadcastable("a", ["rd", "rs"], "y")
    return b, {"e": np.array([8.0], np.float32), "s": np.array([2.0], np.float32)}, tf.range(2, 8, 2.0) + tf.range(1, 7, 2.0)


def _case_broadcast_to():
    b = _nd({"x": (1, 3), "like": (4, 3), "shape": (2,)})
    b.add_broadcast_to_like("bl", ["x", "like"], "bl")
    b.add_broadcast_to_static("bs", "x", "bs", [4, 3])
    b.add_broadcast_to_dynamic("bd", ["x", "shape"], "bd")
    b.add_elementwise("sum", ["bl", "bs", "bd"], "y", "ADD")
    x = RNG.normal(0, 1, (1, 3)).astype(np.float32)
    feeds = {"x": x, "like": np.zeros((4, 3), np.float32), "shape": np.array([4, 3], np.float32)}
    return b, feeds, 3 * tf.broadcast_to(x, (4, 3))


def _case_slice_by_size():
    b = _nd({"x": (3, 6), "begin": (1,)})
    b.add_slice_by_size("s", ["x", "begin"], "y", axis=1, size=3)
    x = RNG.normal(0, 1, (3, 6)).astype(np.float32)
    return b, {"x": x, "begin": np.array([2.0], np.float32)}, tf.slice(x, [0, 2], [3, 3])


def _case_embedding_legacy():
    b = _nd({"x": (4, 1, 1, 1)})
    table = RNG.normal(0, 1, (5, 3)).astype(np.float32)  # vocab 5, 3 channels
    bias = RNG.normal(0, 1, 3).astype(np.float32)
    b.add_embedding("e", table.T, bias, 5, 3, True, "x", "y")
    ids = np.array([4, 0, 2, 2])
    want = tf.reshape(tf.nn.embedding_lookup(table, ids) + bias, (4, 3, 1, 1))
    return b, {"x": ids.reshape(4, 1, 1, 1).astype(np.float32)}, want


def _case_clamped_relu():
    b = _nd({"x": (2, 8)})
    b.add_clamped_relu("c", "x", "y", alpha=0.1, beta=1.5)
    x = RNG.normal(0, 2, (2, 8)).astype(np.float32)
    return b, {"x": x}, tf.minimum(tf.where(x >= 0, x, 0.1 * x), 1.5)


def _case_loop_break_continue():
    """for i in 0..<10: a += 1; if sum(a) > limit: break; continue; (unreachable a *= 100)."""
    b = _nd({"x": (3,)})
    b.add_copy("init", "x", "a")
    loop = b.add_loop("loop", max_iterations=10)
    body = NeuralNetworkBuilder(nn_spec=loop.loop.bodyNetwork, disable_rank5_shape_mapping=True)
    body.add_load_constant_nd("one", "one", np.ones(1, np.float32), [1])
    body.add_add_broadcastable("inc", ["a", "one"], "a_next")
    body.add_copy("write", "a_next", "a")
    body.add_reduce_sum("sum", "a", "total", axes=[0], keepdims=False)
    body.add_greater_than("over", ["total"], "over", alpha=12.0)
    branch = body.add_branch("stop", "over")
    NeuralNetworkBuilder(nn_spec=branch.branch.ifBranch, disable_rank5_shape_mapping=True).add_loop_break("brk")
    body.add_loop_continue("next")
    body.add_elementwise("never", ["a"], "a_bad", "MULTIPLY", alpha=100.0)
    body.add_copy("never_write", "a_bad", "a")
    b.add_copy("out", "a", "y")
    x = RNG.normal(0, 1, 3).astype(np.float32)

    @tf.function
    def reference(a):
        for _ in tf.range(10):
            a = a + 1
            if tf.reduce_sum(a) > 12.0:
                break
        return a

    return b, {"x": x}, reference(tf.constant(x))


def _case_l2_normalize():
    b = _nd({"x": (2, 3, 4, 5)})
    b.add_l2_normalize("l2", "x", "y", epsilon=1e-12)
    x = RNG.normal(0, 1, (2, 3, 4, 5)).astype(np.float32)
    return b, {"x": x}, tf.math.l2_normalize(x, axis=[1, 2, 3], epsilon=1e-12)


BUILDER_CASES = {
    "gatherAlongAxis": _case_gather_along_axis, "scatter_add_axis1": _case_scatter_add_axis1,
    "scatterND": _case_scatter_nd, "scatterAlongAxis": _case_scatter_along_axis,
    "getShape_fillDynamic_fillLike_fillStatic": _case_fill_and_shape, "rangeDynamic_rangeStatic": _case_ranges,
    "broadcastToLike_Static_Dynamic": _case_broadcast_to, "sliceBySize": _case_slice_by_size,
    "embedding_legacy": _case_embedding_legacy, "clampedReLU": _case_clamped_relu,
    "loop_loopBreak_loopContinue_branch": _case_loop_break_continue, "l2normalize": _case_l2_normalize,
}


@pytest.mark.parametrize("case", sorted(BUILDER_CASES))
def test_built_layer_matches_tensorflow_op(case):
    spec, feeds, want = BUILDER_CASES[case]()
    spec = spec.spec
    assert not cx.unsupported_layers(spec)
    got = cx.run(spec, feeds)["y"]
    want = np.asarray(want, np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = float(np.abs(got - want).max())
    print(f"{case}: max abs error {err:.2e}")
    assert err < 1e-5
