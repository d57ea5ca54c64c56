"""The SavedModel export of plain Keras models without Keras' ExportArchive (packager.keras_export): the same
signature and numbers as ``model.export()``, converters freeze its variables, and only plain models take it."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _plain_models():
    import keras

    keras.utils.set_random_seed(0)
    a = keras.Input((12, 12, 3), name="photo")
    x = keras.layers.Conv2D(4, 3, padding="same")(a)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.3)(x)
    yield "cnn", keras.Model(a, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    yield "sequential", keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                                          keras.layers.Dense(1)])
    # built with one-element lists, as a Keras 2 .h5 file loads (fer's, mltk's): signed as the tensors themselves
    b = keras.Input((8, 8, 1), name="input_1")
    y = keras.layers.Conv2D(3, 3)(b)
    yield "listed", keras.Model([b], [keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(y))])


def _other_models():
    import keras

    a = keras.Input((4,))
    yield "dict output", keras.Model(a, {"x": keras.layers.Dense(2)(a)})
    b, c = keras.Input((4,)), keras.Input((3,))
    yield "two inputs", keras.Model([b, c], keras.layers.Dense(2)(keras.layers.Concatenate()([b, c])))
    ids = keras.Input((5,), dtype="int32")
    yield "embedding", keras.Model(ids, keras.layers.Embedding(10, 3)(ids))
    inner = keras.Model(a, keras.layers.Dense(2)(a))
    yield "nested model", keras.Model(a, inner(a))
    words = keras.Input((1,), dtype="string")
    lookup = keras.layers.StringLookup(vocabulary=["a", "b"])
    yield "lookup table", keras.Model(words, lookup(words))


def test_only_plain_models_take_it():
    from packager.keras_export import plain

    assert all(plain(m) for _, m in _plain_models())
    for name, model in _other_models():
        assert not plain(model), name


def test_the_plain_export_is_what_model_export_gives_and_converts(tmp_path):
    import tensorflow as tf

    from packager.keras_export import export_plain

    for name, model in _plain_models():
        export_plain(model, tmp_path / name)
        model.export(str(tmp_path / f"{name}-keras"), verbose=False)
        ours, theirs = (tf.saved_model.load(str(tmp_path / n)).signatures["serving_default"]
                        for n in (name, f"{name}-keras"))
        assert ours.structured_input_signature == theirs.structured_input_signature, name
        assert ours.structured_outputs == theirs.structured_outputs, name
        (arg, spec), = ours.structured_input_signature[1].items()
        x = np.random.default_rng(1).normal(size=(3, *spec.shape[1:])).astype(np.float32)
        want = theirs(**{arg: tf.constant(x)})["output_0"].numpy()
        np.testing.assert_array_equal(ours(**{arg: tf.constant(x)})["output_0"].numpy(), want)
        # the TFLite converter freezes the variables (tracking Keras' wrappers left it READ_VARIABLE ops)
        interpreter = tf.lite.Interpreter(
            model_content=tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / name)).convert())
        runner = interpreter.get_signature_runner()
        got = np.concatenate([runner(**{arg: x[i:i + 1]})["output_0"] for i in range(len(x))])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
