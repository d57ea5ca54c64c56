"""The NumPy ML Program (MIL) executor, op by op, against TensorFlow and NumPy.

Keras cases build a tiny model around one layer, convert it with the real coremltools to an ML Program
(``.mlpackage``, saved and read back from disk) and compare the executor with TensorFlow. MIL cases build
a one-op program with coremltools' own MIL builder (the ops TensorFlow graphs rarely produce, with their
exact MIL parameters) and compare with NumPy. Every case asserts that the op it exercises is really in the
saved program, so a converter change cannot make it vacuous. Compressed weights (fp16, 8-bit linear,
palettized, iOS16 and iOS18 forms) are checked against coremltools' own decompression.
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ct = pytest.importorskip("coremltools")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from coremltools.converters.mil import Builder as mb  # noqa: E402

from packager.targets.ios.executor import mil as mx  # noqa: E402

RNG = np.random.default_rng(11)
L = keras.layers


def save(ml, tmp_path, name="m"):
    path = tmp_path / f"{name}.mlpackage"
    ml.save(str(path))
    return path


def convert_keras(model, shape, tmp_path, precision="fp32", target=None):
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
    with contextlib.redirect_stdout(io.StringIO()):
        ml = ct.convert([fn.get_concrete_function()], source="tensorflow", convert_to="mlprogram",
                        inputs=[ct.TensorType(name="x", shape=shape)],
                        minimum_deployment_target=target or ct.target.iOS15,
                        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
    return ml


def convert_mil(prog, target=None, precision="fp32"):
    with contextlib.redirect_stdout(io.StringIO()):
        return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target or ct.target.iOS15,
                          compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)


def seq(shape, *layers):
    inp = keras.Input(shape[1:])
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def randomize_bn(model):
    for layer in model.layers:
        if isinstance(layer, L.PReLU):
            layer.set_weights([RNG.uniform(0.05, 0.5, w.shape) for w in layer.get_weights()])
        if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
            layer.set_weights([RNG.uniform(0.5, 1.5, w.shape) if i % 2 else RNG.normal(0, 0.3, w.shape)
                               for i, w in enumerate(layer.get_weights())])
    return model


def only_output(out: dict) -> np.ndarray:
    (value,) = out.values()
    return np.asarray(value)


KERAS_CASES = {
    # name: (input shape, layers, a MIL op that must appear)
    "conv_same_stride2": ((1, 9, 11, 3), [L.Conv2D(5, 3, strides=2, padding="same")], "conv"),
    "conv_valid_5x3_dilated": ((1, 12, 12, 2), [L.Conv2D(4, (5, 3), dilation_rate=(1, 2))], "conv"),
    "depthwise_mult2": ((1, 9, 9, 3), [L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")], "conv"),
    "separable": ((1, 8, 8, 4), [L.SeparableConv2D(6, 3, padding="same")], "conv"),
    "conv1d_causal": ((1, 16, 3), [L.Conv1D(4, 3, padding="causal", dilation_rate=2)], "conv"),
    "conv_transpose": ((1, 5, 5, 3), [L.Conv2DTranspose(4, 3, strides=2, padding="same")], "conv_transpose"),
    "maxpool_same": ((1, 7, 7, 2), [L.MaxPooling2D(3, strides=2, padding="same")], "max_pool"),
    "avgpool_same": ((1, 7, 7, 2), [L.AveragePooling2D(3, strides=2, padding="same")], "avg_pool"),
    "global_max": ((1, 5, 5, 3), [L.GlobalMaxPooling2D()], "reduce_max"),
    "zero_padding": ((1, 4, 4, 2), [L.ZeroPadding2D(((1, 2), (0, 1))), L.Conv2D(2, 1)], "pad"),
    "batchnorm_relu6": ((1, 4, 4, 3), [L.Conv2D(3, 1), L.BatchNormalization(), L.ReLU(6.0)], "relu6"),
    "layer_norm_decomposed": ((1, 5, 8), [L.LayerNormalization(), L.Dense(3)], "reduce_mean"),
    "dense_activations": ((1, 10), [L.Dense(8), L.LeakyReLU(0.2), L.Dense(8, activation="elu"),
                                    L.Dense(8, activation="softplus"), L.Dense(6, activation="sigmoid"),
                                    L.Dense(6, activation="tanh"), L.Dense(6, activation="relu6"),
                                    L.Dense(6, activation="silu"), L.Dense(5, activation="softmax")], "softplus"),
    "prelu": ((1, 4, 4, 3), [L.Conv2D(3, 1), L.PReLU(shared_axes=[1, 2])], "prelu"),
    "flatten_dense": ((1, 3, 4, 2), [L.Flatten(), L.Dense(3)], "reshape"),
    "permute_matmul": ((1, 3, 4, 5), [L.Permute((3, 1, 2)), L.Dense(2)], "transpose"),
    "upsample_nearest_tile": ((1, 3, 3, 2), [L.UpSampling2D(2), L.Conv2D(2, 1)], "tile"),
    "upsample_bilinear": ((1, 3, 4, 2), [L.UpSampling2D(2, interpolation="bilinear")], "upsample_bilinear"),
    "embedding": ((1, 6), [L.Embedding(20, 4), L.Flatten(), L.Dense(2)], "gather"),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_layer_matches_tensorflow(case, tmp_path):
    shape, layers, must_have = KERAS_CASES[case]
    model = randomize_bn(seq(shape, *layers))
    x = (RNG.integers(0, 20, shape) if case == "embedding" else RNG.normal(0, 1, shape)).astype(np.float32)
    path = save(convert_keras(model, shape, tmp_path), tmp_path)
    assert must_have in mx.op_types(path), mx.op_types(path)
    got = only_output(mx.run(path, {"x": x}))
    want = model(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_fp16_program_is_rounded_like_fp16(tmp_path):
    """An fp16 program: casts around fp16 ops; the result is near TF's and not bit-equal to the fp32 run."""
    shape = (1, 8, 8, 3)
    model = randomize_bn(seq(shape, L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                             L.GlobalAveragePooling2D(), L.Dense(4, activation="softmax")))
    x = RNG.normal(0, 1, shape).astype(np.float32)
    p16 = save(convert_keras(model, shape, tmp_path, "fp16"), tmp_path, "p16")
    p32 = save(convert_keras(model, shape, tmp_path, "fp32"), tmp_path, "p32")
    assert "cast" in mx.op_types(p16)
    got16, got32 = only_output(mx.run(p16, {"x": x})), only_output(mx.run(p32, {"x": x}))
    want = model(x).numpy()
    np.testing.assert_allclose(got16, want, atol=3e-3)
    assert np.abs(got16 - got32).max() > 0  # fp16 rounding happened
    wide = only_output(mx.Program(p16, fp16_activations=False)({"x": x}))  # fp16 weights, fp32 activations
    assert wide.dtype == np.float32 and np.abs(wide - got16).max() > 0
    np.testing.assert_allclose(wide, want, atol=3e-3)


# ----------------------------------------------------------------------------- one-op MIL programs


def _x(*shape):
    return RNG.normal(0, 1, shape).astype(np.float32)


def _spec(*shape):
    return [mb.TensorSpec(shape=shape)]


X34 = _x(3, 4)
GAMMA45 = np.random.default_rng(3).normal(0, 1, (4, 5)).astype(np.float32)
X2345 = _x(2, 3, 4, 5)
MIL_CASES = {
    "batch_norm": (X2345, lambda x: mb.batch_norm(x=x, mean=np.array([0.1, -0.2, 0.3], np.float32),
                                                  variance=np.array([0.5, 1.5, 2.0], np.float32),
                                                  gamma=np.array([1.0, 2.0, 0.5], np.float32),
                                                  beta=np.array([0.0, 0.1, -0.1], np.float32), epsilon=1e-3),
                   lambda x: (x - np.array([0.1, -0.2, 0.3]).reshape(1, 3, 1, 1))
                   / np.sqrt(np.array([0.5, 1.5, 2.0]).reshape(1, 3, 1, 1) + 1e-3) * np.array([1, 2, 0.5]).reshape(1, 3, 1, 1)
                   + np.array([0, 0.1, -0.1]).reshape(1, 3, 1, 1), "batch_norm"),
    # name: (input, MIL body on x, NumPy reference on x, op that must appear)
    "layer_norm": (X2345, lambda x: mb.layer_norm(x=x, axes=[-2, -1], gamma=GAMMA45 + 1, beta=np.ones((4, 5), np.float32),
                                                  epsilon=1e-4),
                   lambda x: (x - x.mean((2, 3), keepdims=True)) / np.sqrt(x.var((2, 3), keepdims=True) + 1e-4)
                   * (GAMMA45 + 1) + 1, "layer_norm"),
    "gelu_modes": (X34, lambda x: mb.concat(values=[mb.gelu(x=x), mb.gelu(x=x, mode="TANH_APPROXIMATION"),
                                                    mb.gelu(x=x, mode="SIGMOID_APPROXIMATION")], axis=0),
                   lambda x: np.concatenate([0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2))),
                                             0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
                                             x / (1 + np.exp(-1.702 * x))]), "gelu"),
    "upsample_nearest": (X2345, lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
                         lambda x: x.repeat(2, 2).repeat(3, 3), "upsample_nearest_neighbor"),
    "instance_norm": (X2345, lambda x: mb.instance_norm(x=x, gamma=np.arange(1, 4, dtype=np.float32),
                                                        beta=np.ones(3, np.float32), epsilon=1e-3),
                      lambda x: (x - x.mean((2, 3), keepdims=True)) / np.sqrt(x.var((2, 3), keepdims=True) + 1e-3)
                      * np.arange(1, 4).reshape(1, 3, 1, 1) + 1, "instance_norm"),
    "l2_norm": (X2345, lambda x: mb.l2_norm(x=x, epsilon=1e-6),
                lambda x: x / np.sqrt((x * x).sum((1, 2, 3), keepdims=True)), "l2_norm"),
    "reduce_sum_keep": (X2345, lambda x: mb.reduce_sum(x=x, axes=[1, -1], keep_dims=True),
                        lambda x: x.sum((1, 3), keepdims=True), "reduce_sum"),
    "reduce_prod": (X34, lambda x: mb.reduce_prod(x=x, axes=[0]), lambda x: x.prod(0), "reduce_prod"),
    "reduce_l2": (X34, lambda x: mb.reduce_l2_norm(x=x, axes=[1]), lambda x: np.sqrt((x * x).sum(1)), "reduce_l2_norm"),
    "reduce_lse": (X34, lambda x: mb.reduce_log_sum_exp(x=x, axes=[1]), lambda x: np.log(np.exp(x).sum(1)),
                   "reduce_log_sum_exp"),
    "argmax": (X34, lambda x: mb.reduce_argmax(x=x, axis=1), lambda x: x.argmax(1), "reduce_argmax"),
    "topk": (X34, lambda x: mb.topk(x=x, k=2, axis=1)[0], lambda x: -np.sort(-x, 1)[:, :2], "topk"),
    "cumsum_excl_rev": (X34, lambda x: mb.cumsum(x=x, axis=1, exclusive=True, reverse=True),
                        lambda x: np.flip(np.cumsum(np.flip(x, 1), 1), 1) - x, "cumsum"),
    "split_sizes": (X34, lambda x: mb.split(x=x, split_sizes=[1, 3], axis=1)[1], lambda x: x[:, 1:], "split"),
    "concat_interleave": (X34, lambda x: mb.concat(values=[x, mb.mul(x=x, y=2.0)], axis=0, interleave=True),
                          lambda x: np.stack([x, 2 * x], 1).reshape(6, 4), "concat"),
    "slice_by_index": (X2345, lambda x: mb.slice_by_index(x=x, begin=[0, 1, 3, 0], end=[1, 3, 0, 5], stride=[1, 1, -1, 2],
                                                          begin_mask=[False, False, False, True],
                                                          end_mask=[False, False, True, False],
                                                          squeeze_mask=[True, False, False, False]),
                       lambda x: x[0, 1:3, 3::-1, ::2], "slice_by_index"),
    "slice_by_size": (X2345, lambda x: mb.slice_by_size(x=x, begin=[1, 0, 1, 2], size=[1, -1, 2, 3]),
                      lambda x: x[1:2, :, 1:3, 2:5], "slice_by_size"),
    "squeeze_expand_stack_tile": (X34, lambda x: mb.tile(x=mb.stack(values=[mb.expand_dims(x=x, axes=[0]),
                                                                             mb.expand_dims(x=x, axes=[0])], axis=1),
                                                         reps=[1, 1, 2, 1]),
                                  lambda x: np.tile(np.stack([x[None], x[None]], 1), (1, 1, 2, 1)), "tile"),
    "gather_negative_axis1": (X34, lambda x: mb.gather(x=x, indices=np.array([3, -4, 1], np.int32), axis=1),
                              lambda x: x[:, [3, 0, 1]], "gather"),
    "gather_along_axis": (X34, lambda x: mb.gather_along_axis(x=x, indices=np.array([[0, 3], [1, 1], [2, 0]], np.int32), axis=1),
                          lambda x: np.take_along_axis(x, np.array([[0, 3], [1, 1], [2, 0]]), 1), "gather_along_axis"),
    "gather_nd": (X34, lambda x: mb.gather_nd(x=x, indices=np.array([[2, 1], [0, 3]], np.int32)),
                  lambda x: np.array([x[2, 1], x[0, 3]]), "gather_nd"),
    "compare_select": (X34, lambda x: mb.select(cond=mb.logical_and(x=mb.greater(x=x, y=-0.5), y=mb.less_equal(x=x, y=0.7)),
                                                a=x, b=mb.mul(x=x, y=-3.0)),
                       lambda x: np.where((x > -0.5) & (x <= 0.7), x, -3 * x), "select"),
    "math": (X34, lambda x: mb.add(x=mb.real_div(x=mb.exp(x=x), y=mb.add(x=mb.abs(x=x), y=1.0)),
                                   y=mb.mul(x=mb.rsqrt(x=mb.add(x=mb.square(x=x), y=1.0)), y=mb.floor(x=x))),
             lambda x: np.exp(x) / (np.abs(x) + 1) + np.floor(x) / np.sqrt(x * x + 1 + 1e-12), "rsqrt"),
    "pow_max_min_clip": (X34, lambda x: mb.clip(x=mb.maximum(x=mb.minimum(x=mb.pow(x=mb.abs(x=x), y=1.5), y=1.2), y=0.1),
                                                alpha=0.2, beta=1.0),
                         lambda x: np.clip(np.maximum(np.minimum(np.abs(x) ** 1.5, 1.2), 0.1), 0.2, 1.0), "pow"),
    "pad_reflect": (X2345, lambda x: mb.pad(x=x, pad=[1, 2, 2, 1], mode="reflect"),
                    lambda x: np.pad(x, [(0, 0), (0, 0), (1, 2), (2, 1)], mode="reflect"), "pad"),
    "pad_replicate": (X2345, lambda x: mb.pad(x=x, pad=[0, 1, 1, 0], mode="replicate"),
                      lambda x: np.pad(x, [(0, 0), (0, 0), (0, 1), (1, 0)], mode="edge"), "pad"),
    "l2_pool_ceil": (X2345, lambda x: mb.l2_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
                     lambda x: np.sqrt((x[:, :, :4, :4] ** 2).reshape(2, 3, 2, 2, 2, 2).sum((3, 5))), "l2_pool"),
    "avg_pool_ceil_exclude": (X2345, lambda x: mb.avg_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid",
                                                          ceil_mode=True, exclude_padding_from_average=True),
                              lambda x: np.stack([np.stack([x[:, :, i:i + 2, j:j + 2].mean((2, 3)) for j in (0, 2, 4)], -1)
                                                  for i in (0, 2)], -2), "avg_pool"),
    "cast_int_roundtrip": (X34, lambda x: mb.cast(x=mb.cast(x=mb.mul(x=x, y=3.0), dtype="int32"), dtype="fp32"),
                           lambda x: np.trunc(3 * x), "cast"),
    "softmax_axis0_log": (X34, lambda x: mb.add(x=mb.softmax(x=x, axis=0), y=mb.log(x=mb.sigmoid(x=x))),
                          lambda x: np.exp(x) / np.exp(x).sum(0) + np.log(1 / (1 + np.exp(-x))), "softmax"),
    "matmul_transposes": (X34, lambda x: mb.matmul(x=x, y=x, transpose_x=True), lambda x: x.T @ x, "matmul"),
    "einsum": (X2345, lambda x: mb.einsum(values=(x, mb.transpose(x=x, perm=[0, 3, 2, 1])), equation="nchw,nwhu->nchu"),
               lambda x: np.einsum("nchw,nwhu->nchu", x, x.transpose(0, 3, 2, 1)), "einsum"),
    "resize_bilinear_align": (X2345, lambda x: mb.resize_bilinear(x=x, target_size_height=7, target_size_width=9,
                                                                  sampling_mode="STRICT_ALIGN_CORNERS"),
                              None, "resize_bilinear"),
}


def _tf_resize_align(x):
    y = tf.compat.v1.image.resize_bilinear(np.transpose(x, (0, 2, 3, 1)), (7, 9), align_corners=True).numpy()
    return np.transpose(y, (0, 3, 1, 2))


@pytest.mark.parametrize("case", sorted(MIL_CASES))
def test_mil_op_matches_numpy(case, tmp_path):
    x, body, ref, must_have = MIL_CASES[case]
    prog = mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS15)(lambda x: body(x))
    path = save(convert_mil(prog), tmp_path)
    assert must_have in mx.op_types(path), mx.op_types(path)
    (name,) = [f.name for f in mx.Program(path).spec.description.input]
    got = only_output(mx.run(path, {name: x}))
    want = _tf_resize_align(x) if ref is None else np.asarray(ref(x.astype(np.float64)))
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- compressed weights


def _weighty_model():
    """Conv + dense weights big enough (> 2048 elements) that coremltools compresses them."""
    shape = (1, 8, 8, 16)
    model = seq(shape, L.Conv2D(32, 3, padding="same", activation="relu"), L.Conv2D(32, 3, padding="same"),
                L.GlobalAveragePooling2D(), L.Dense(96, activation="relu"), L.Dense(5))
    return model, shape


def _compress(kind: str, ml):
    import coremltools.optimize.coreml as cto

    configs = {
        "linear8": cto.OpLinearQuantizerConfig(mode="linear_symmetric"),
        "linear8_asym": cto.OpLinearQuantizerConfig(mode="linear", dtype="uint8"),
        "int4_per_block": cto.OpLinearQuantizerConfig(mode="linear", dtype="int4", granularity="per_block",
                                                      block_size=8),
        "lut4": cto.OpPalettizerConfig(mode="uniform", nbits=4),
        "lut2": cto.OpPalettizerConfig(mode="uniform", nbits=2),
        "lut6": cto.OpPalettizerConfig(mode="uniform", nbits=6),
        "lut3_grouped": cto.OpPalettizerConfig(mode="uniform", nbits=3, granularity="per_grouped_channel",
                                               group_size=8),
    }
    config = cto.OptimizationConfig(global_config=configs[kind])
    with contextlib.redirect_stdout(io.StringIO()):
        if kind.startswith("lut"):
            return cto.palettize_weights(ml, config=config)
        return cto.linear_quantize_weights(ml, config=config)


COMPRESSED = {
    # kind: (deployment target, constexpr op that must appear)
    "linear8": ("iOS16", "constexpr_affine_dequantize"),
    "linear8_asym": ("iOS16", "constexpr_affine_dequantize"),
    "lut4": ("iOS16", "constexpr_lut_to_dense"),
    "lut2": ("iOS16", "constexpr_lut_to_dense"),
    "lut6": ("iOS16", "constexpr_lut_to_dense"),
    "int4_per_block": ("iOS18", "constexpr_blockwise_shift_scale"),
    "lut3_grouped": ("iOS18", "constexpr_lut_to_dense"),
}


LEVELS = {"linear8": 255, "linear8_asym": 255, "int4_per_block": 15, "lut4": 16, "lut2": 4, "lut6": 64,
          "lut3_grouped": 8}


@pytest.mark.parametrize("kind", sorted(COMPRESSED))
def test_compressed_weights_decode_like_coremltools(kind, tmp_path):
    """The executor's output on the compressed program equals its output on the same program after
    coremltools' own ``decompress_weights`` (so the constexpr decoding is coremltools'), and every decoded
    weight is within one quantization step of the Keras weight it came from (compared sorted: sorting moves no
    value farther, so placement-free)."""
    import coremltools.optimize.coreml as cto

    from packager.targets.ios.executor.mil.program import main_block, walk

    target, op = COMPRESSED[kind]
    model, shape = _weighty_model()
    ml = _compress(kind, convert_keras(model, shape, tmp_path, "fp32", getattr(ct.target, target)))
    path = save(ml, tmp_path, "compressed")
    assert op in mx.op_types(path), mx.op_types(path)
    with contextlib.redirect_stdout(io.StringIO()):
        plain = save(cto.decompress_weights(ml), tmp_path, "plain")
    assert not any(t.startswith("constexpr_") for t in mx.op_types(plain))
    x = RNG.normal(0, 1, shape).astype(np.float32)
    program = mx.Program(path)
    got = only_output(program({"x": x}))
    np.testing.assert_allclose(got, only_output(mx.run(plain, {"x": x})), rtol=1e-5, atol=1e-5)

    decoded = [program.consts[o.name] for o in walk(main_block(program.spec)[1]) if o.type.startswith("constexpr_")
               for o in o.outputs]
    keras_weights = {w.size: np.asarray(w) for w in model.get_weights() if w.ndim > 1}
    assert decoded and all(d.size in keras_weights for d in decoded)
    for d in decoded:
        w = keras_weights[d.size].reshape(-1)
        step = (w.max() - w.min()) / (LEVELS[kind] - 1)
        assert np.abs(np.sort(d.reshape(-1).astype(np.float32)) - np.sort(w)).max() <= step + 1e-3 * np.abs(w).max()


def test_constexpr_cast_fp16_weights(tmp_path):
    w = RNG.normal(0, 1, (4, 3)).astype(np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.linear(x=x, weight=mb.constexpr_cast(source_val=w, output_dtype="fp32"))

    path = save(convert_mil(prog, ct.target.iOS16), tmp_path)
    assert "constexpr_cast" in mx.op_types(path)
    x = _x(2, 3)
    np.testing.assert_allclose(only_output(mx.run(path, {"x": x})), x @ w.astype(np.float32).T, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- inputs, outputs, errors


@pytest.mark.parametrize("layout", ["RGB", "BGR", "G"])
def test_image_input_layout_scale_bias_and_classifier(layout, tmp_path):
    channels = 1 if layout == "G" else 3
    shape = (1, 6, 6, channels)
    model = seq(shape, L.Conv2D(3, 1), L.GlobalAveragePooling2D(), L.Softmax())
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
    color = {"RGB": ct.colorlayout.RGB, "BGR": ct.colorlayout.BGR, "G": ct.colorlayout.GRAYSCALE}[layout]
    bias = [-1.0] if layout == "G" else [-1.0, -0.5, 0.25]
    with contextlib.redirect_stdout(io.StringIO()):
        ml = ct.convert([fn.get_concrete_function()], source="tensorflow", convert_to="mlprogram",
                        inputs=[ct.ImageType(name="x", shape=shape, scale=1 / 127.5, bias=bias if channels == 3 else bias[0],
                                             color_layout=color)],
                        classifier_config=ct.ClassifierConfig(["a", "b", "c"]),
                        minimum_deployment_target=ct.target.iOS15, compute_precision=ct.precision.FLOAT32)
    path = save(ml, tmp_path)
    assert "classify" in mx.op_types(path)
    rgb = RNG.integers(0, 256, (6, 6, 3)).astype(np.float32)
    out = mx.run(path, {"x": rgb})
    if layout == "G":
        seen = rgb @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    else:
        seen = rgb[:, :, ::-1] if layout == "BGR" else rgb
    want = model((seen / 127.5 + np.asarray(bias, np.float32))[None]).numpy()[0]
    probs = out[ml.get_spec().description.predictedProbabilitiesName]
    np.testing.assert_allclose([probs[k] for k in "abc"], want, rtol=1e-5, atol=1e-6)
    assert out["classLabel"] == "abc"[int(np.argmax(want))]


def test_unknown_ops_are_all_named_and_ios_reports_unverified(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 6, 6))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.add(x=mb.reduce_sum(x=mb.pixel_shuffle(x=x, upscale_factor=2)),
                      y=mb.reduce_sum(x=mb.space_to_depth(x=x, block_size=2)))

    path = save(convert_mil(prog), tmp_path)
    assert mx.unsupported_ops(path) == ["pixel_shuffle", "space_to_depth"]
    with pytest.raises(mx.UnsupportedLayer) as info:
        mx.Program(path)
    assert info.value.layer_types == ["pixel_shuffle", "space_to_depth"]

    class Unverified(Exception):
        pass

    with pytest.raises(Unverified, match="'pixel_shuffle'.*'space_to_depth'.*not implemented by the NumPy MIL executor"):
        mx.runner_or_unverified(path, Unverified)


def test_not_an_mlpackage_is_a_clear_error(tmp_path):
    (tmp_path / "x.mlpackage").mkdir()
    with pytest.raises(mx.ExecutorError, match="no Manifest.json"):
        mx.Program(tmp_path / "x.mlpackage")


# ----------------------------------------------------------------------------- control flow and lists


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN", "LSTM_sequences"])
def test_keras2_recurrent_while_loop_matches_tensorflow(kind, tmp_path):
    """Keras 2 recurrent layers become while_loop + tensor lists (make_list, list_scatter, list_read,
    list_write, list_gather) in an ML Program."""
    tk = pytest.importorskip("tf_keras")
    seq_len, n_in = 7, 3
    inp = tk.Input((seq_len, n_in), batch_size=1)
    layer = getattr(tk.layers, kind.split("_")[0])(5, return_sequences=kind.endswith("sequences"))
    model = tk.Model(inp, tk.layers.Dense(2)(layer(inp)))
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((1, seq_len, n_in), tf.float32, name="x")])
    with contextlib.redirect_stdout(io.StringIO()):
        ml = ct.convert([fn.get_concrete_function()], source="tensorflow", convert_to="mlprogram",
                        inputs=[ct.TensorType(name="x", shape=(1, seq_len, n_in))],
                        minimum_deployment_target=ct.target.iOS15, compute_precision=ct.precision.FLOAT32)
    path = save(ml, tmp_path)
    assert {"while_loop", "list_write", "list_gather"} <= set(mx.op_types(path)), mx.op_types(path)
    x = RNG.normal(0, 1, (1, seq_len, n_in)).astype(np.float32)
    np.testing.assert_allclose(only_output(mx.run(path, {"x": x})), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_cond_takes_the_right_branch(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(3,))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.cond(pred=mb.greater(x=mb.reduce_sum(x=x), y=0.0),
                       _true_fn=lambda: mb.mul(x=x, y=2.0), _false_fn=lambda: mb.sub(x=x, y=1.0))

    path = save(convert_mil(prog), tmp_path)
    assert "cond" in mx.op_types(path)
    program = mx.Program(path)
    (name,) = [f.name for f in program.spec.description.input]
    for x in (np.array([1, 2, -1], np.float32), np.array([-3, 1, 1], np.float32)):
        want = 2 * x if x.sum() > 0 else x - 1
        np.testing.assert_allclose(only_output(program({name: x})), want)


def test_unsupported_variant_found_at_run_time_is_unverified(tmp_path):
    """A 3-D convolution is a known op with a variant the executor lacks: running it raises the caller's
    UNVERIFIED exception naming it, not a crash and not a result."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 2, 3, 4, 4))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.conv(x=x, weight=np.ones((2, 2, 1, 1, 1), np.float32))

    path = save(convert_mil(prog), tmp_path)
    assert mx.unsupported_ops(path) == []

    class Unverified(Exception):
        pass

    runner, runtime = mx.runner_or_unverified(path, Unverified)
    assert runtime.startswith("numpy-mil-executor")
    (name,) = [f.name for f in mx.Program(path).spec.description.input]
    with pytest.raises(Unverified, match="conv on a rank-5 input"):
        runner({name: np.zeros((1, 2, 3, 4, 4), np.float32)})
