"""Keras recurrent layers exported as a static, unrolled graph that every target's runtime can execute.

Keras 3 exports an ``LSTM``/``GRU``/``SimpleRNN`` over a sequence as a ``While`` loop over TensorLists. Measured here
(TF 2.19): TFLite converts it only with Select TF ops (``TensorListReserve``; LiteRT 2.x on Android has no Flex
delegate), and traced at a static batch and length it still emits a ``WHILE`` builtin around ``BATCH_MATMUL``s, not
its fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (that fusion needs tf_keras' ``api_implements="lstm_*"`` functions);
tf.js cannot execute the loop on any backend ("Cannot compute the outputs"); coremltools 9 fails on it.

When every input's non-batch shape is static (from the model, or fixed with ``--input-shape``), the serving
function is traced with the recurrent layers' ``unroll`` switched on: one cell step per time step, made of
MatMul/Add/activations -- builtins for TFLite, kernels on every tf.js backend. The model's own layers are used
(weights shared, nothing re-built) and switched back afterwards; the build then checks the export against
``model(x, training=False)`` (``source.keras_export_drift``), so an unrolled graph that computed something else
would be reported.
"""

from __future__ import annotations

from pathlib import Path

# what to do about a recurrent layer's loop that reached a converter (a SavedModel's, or a length left dynamic)
LOOP_FIX = ("give packager the Keras model file (.keras/.h5) with the sequence length fixed (--input-shape "
            "NAME=1,LENGTH,...): it exports the recurrent layers unrolled, as builtins every target runs; or save "
            "the model with the layers' unroll=True and a fixed length")
LOOP_WHY = "the while loop a Keras recurrent layer (LSTM/GRU/SimpleRNN) is exported as"
LOOP_OPS = ("While", "StatelessWhile", "TensorListReserve", "TensorListSetItem", "TensorListGetItem",
            "TensorListFromTensor", "TensorListStack", "TensorListElementShape", "TensorListLength")
MAX_STEPS = 512  # beyond this many time steps an unrolled graph grows too large: the loop is exported as before


def recurrent_layers(model) -> list:
    """The Keras 3 recurrent layers (``keras.layers.RNN`` and its subclasses, inside ``Bidirectional`` too) of
    ``model`` that run as a loop (``unroll=False``)."""
    if not type(model).__module__.startswith("keras"):
        return []
    try:
        from keras.src.layers.rnn.rnn import RNN

        layers = list(model._flatten_layers(include_self=False, recursive=True))
    except Exception:
        return []
    found = []
    for layer in layers:
        for inner in (layer, getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)):
            if isinstance(inner, RNN) and not inner.unroll and inner not in found:
                found.append(inner)
    return found


def static_input_specs(model, input_shapes: dict) -> list[tuple[str, tuple, str]] | None:
    """(name, shape with batch None, dtype) of each Keras input in the model's order, the shapes fixed by
    ``--input-shape``; None when a non-batch dimension stays dynamic (nothing can be unrolled)."""
    specs = []
    for t in model.inputs:
        name = str(t.name).split(":")[0]
        shape = tuple(None if d is None else int(d) for d in t.shape)
        if name in input_shapes:
            fixed = tuple(input_shapes[name])
            if len(fixed) != len(shape):
                return None
            shape = fixed
        shape = (None,) + tuple(shape[1:])
        if any(d is None for d in shape[1:]):
            return None
        specs.append((name, shape, str(getattr(t.dtype, "name", t.dtype))))
    return specs


def export_unrolled(model, input_shapes: dict, export_dir: Path) -> list[str]:
    """Export ``model``'s serving signature (as ``model.export()`` names it: inputs after the Keras inputs, outputs
    ``output_<i>`` or a dict output's keys) with its recurrent layers unrolled. Returns the unrolled layers' names;
    [] when there is nothing to unroll or it cannot be (a dynamic or very long time axis): then nothing is written."""
    import tensorflow as tf

    layers = recurrent_layers(model)
    specs = static_input_specs(model, input_shapes) if layers else None
    if not layers or specs is None or len(model.inputs) == 0:
        return []
    if any(len(s) > 1 and s[1] is not None and s[1] > MAX_STEPS for _, s, _ in specs):
        return []
    tf_specs = [tf.TensorSpec(shape, tf.as_dtype(dtype), name=name) for name, shape, dtype in specs]
    names = [name for name, _, _ in specs]
    structure = getattr(model, "_inputs_struct", None)

    def call(xs):
        if isinstance(structure, dict):
            feed = dict(zip(names, xs))
        elif len(xs) == 1 and not isinstance(structure, (list, tuple)):
            feed = xs[0]
        else:
            feed = list(xs)
        out = model(feed, training=False)
        if isinstance(out, dict):
            return dict(out)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return {f"output_{i}": o for i, o in enumerate(outs)}

    serve = tf.function(lambda *xs: call(xs), input_signature=tf_specs)
    # Keras 3 draws a recurrent layer's dropout masks on every call, training or not (unused at inference): the
    # seed generator's update would stay in the graph as an AssignVariableOp no TF.js / Core ML runtime has.
    # Dropout does nothing at inference, so the cells trace with rate 0: the same outputs, no state update.
    cells = [c for layer in layers for c in getattr(getattr(layer, "cell", None), "cells", [getattr(layer, "cell", None)])
             if c is not None and hasattr(c, "dropout")]
    rates = [(c.dropout, getattr(c, "recurrent_dropout", 0.0)) for c in cells]
    for layer in layers:
        layer.unroll = True
    for c in cells:
        c.dropout = 0.0
        if hasattr(c, "recurrent_dropout"):
            c.recurrent_dropout = 0.0
    try:
        concrete = serve.get_concrete_function()
    except ValueError:  # a layer between the input and the recurrent one leaves the time axis unknown
        return []
    finally:
        for layer in layers:
            layer.unroll = False
        for c, (rate, recurrent) in zip(cells, rates):
            c.dropout = rate
            if hasattr(c, "recurrent_dropout"):
                c.recurrent_dropout = recurrent
    module = tf.Module()
    # the tf.Variables themselves, as keras_export.export_plain: the converters freeze them into constants
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": concrete})
    return [layer.name for layer in layers]
