"""What packager will see of a model: the serving signature of its SavedModel export.

Loaded and exported the way packager's source loader does (Keras 3 first, tf_keras for a .h5 Keras 3
cannot read; `model.export` for Keras 3, `tf.saved_model.save` for tf_keras), so sample names match.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path


def load_keras(path: Path, custom_objects: dict | None = None):
    import keras

    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom_objects)
    except Exception:
        if path.suffix != ".h5":
            raise
    import tf_keras

    return tf_keras.models.load_model(path, compile=False, custom_objects=custom_objects)


def of_keras(model) -> dict:
    """{"inputs": [[name, shape, dtype]...], "outputs": [...]} of the model's exported serving signature."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        if hasattr(model, "export") and type(model).__module__.startswith("keras"):
            model.export(tmp, verbose=False)
        else:
            tf.saved_model.save(model, tmp)
        return of_saved_model(Path(tmp))


def of_saved_model(path: Path) -> dict:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    ins = fn.structured_input_signature[1]
    outs = fn.structured_outputs

    def row(name, t):
        return [name, [None if d is None else int(d) for d in t.shape], t.dtype.name]

    return {"inputs": [row(n, ins[n]) for n in sorted(ins)], "outputs": [row(n, outs[n]) for n in sorted(outs)]}
