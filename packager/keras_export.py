"""The SavedModel export of a plain Keras 3 model, written without Keras' ExportArchive.

``model.export()`` traces the model three times and walks every trackable twice to find resources (lookup tables)
to carry along: 3.7 CPU s on MobileNetV2 of the build's critical path, where a ``tf.Module`` holding the model's
variables and one traced serving function takes 1.9 s and gives the same signature (input named after the Keras
input, output ``output_0``) and the same numbers. Only for the plain case, where nothing else can be in the graph:
a Functional or Sequential model with one input and one output, made of core layers that hold nothing but
variables, in float32; anything else goes through ``model.export()``. The build then checks the export against
the model itself either way (``source.keras_export_drift``).
"""

from __future__ import annotations

from pathlib import Path

PLAIN_MODELS = {"Functional", "Sequential"}
# layers whose state is variables only (no lookup tables, no other resources, no Python-side randomness at
# inference): the ones image and tabular classifiers are made of
PLAIN_LAYERS = {
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "ZeroPadding2D", "Cropping2D",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Permute",
    "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Rescaling", "UpSampling2D",
}


def plain(model) -> bool:
    try:
        if type(model).__name__ not in PLAIN_MODELS or not type(model).__module__.startswith("keras.src.models"):
            return False
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return False
        if type(model).__name__ == "Functional" and not _single(_one(model._inputs_struct),
                                                                 _one(model._outputs_struct)):
            return False
        layers = list(model._flatten_layers(include_self=False, recursive=True))
    except Exception:
        return False
    return all(type(layer).__name__ in PLAIN_LAYERS and type(layer).__module__.startswith("keras.src.layers")
               and getattr(getattr(layer, "dtype_policy", None), "name", "float32") == "float32"
               for layer in layers)


def _single(*structures) -> bool:
    """Neither a list, a tuple nor a dict: one tensor (the signature's names then are the input's and output_0)."""
    return not any(isinstance(s, (list, tuple, dict)) for s in structures)


def _one(structure):
    """The tensor of a one-element list (a Keras 2 file's ``input_layers: [[...]]``, as fer's and mltk's .h5 load),
    which ``model.export()`` signs as it signs the tensor itself; else ``structure`` as it is."""
    return structure[0] if isinstance(structure, list) and len(structure) == 1 else structure


def export_plain(model, export_dir: Path) -> None:
    """``model``'s serving signature as ``model.export()`` writes it (``plain(model)`` must hold)."""
    import tensorflow as tf

    keras_input = model.inputs[0]
    spec = tf.TensorSpec(keras_input.shape, keras_input.dtype, name=str(keras_input.name).split(":")[0])

    listed = type(model).__name__ == "Functional" and isinstance(model._inputs_struct, list)  # called as built: [x]

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"output_0": model([x] if listed else x, training=False)}

    module = tf.Module()
    # the tf.Variables themselves (a Keras variable wraps one): tracked so, the converters freeze them into
    # constants (tracking the Keras wrappers leaves TFLite a READ_VARIABLE of a variable it never initialises)
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    module.serve = serve
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": serve.get_concrete_function()})
