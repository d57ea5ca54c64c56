"""Importing TensorFlow and the TF.js converter without JAX.

JAX is installed (tensorflowjs requires it), but packager never converts a JAX model. TensorFlow's TFLite module
imports JAX when it can (for ``experimental_from_jax``) and tensorflowjs's package imports its JAX converter:
jax and jaxlib cost about a CPU second per process here, and jax hooks every garbage collection (a Ctrl-C
landing in that hook was swallowed). Measured: ``import tensorflow`` 3.2 -> 2.1 CPU s, the TF.js converter
0.9 -> 0.6, coremltools 0.5 -> 0.3.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

_TFJS_JAX = "tensorflowjs.converters.jax_conversion"


def import_tensorflow():
    """``import tensorflow`` with JAX hidden while it loads (TFLite then leaves its JAX entry point unset).
    Call it before anything imports TensorFlow (Keras does); later calls return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    hide = "jax" not in sys.modules
    if hide:
        sys.modules["jax"] = None  # makes `import jax` raise ImportError
    try:
        import tensorflow
    finally:
        if hide and "jax" in sys.modules and sys.modules["jax"] is None:
            del sys.modules["jax"]
    return tensorflow


def tfjs_saved_model_converter():
    """tensorflowjs' SavedModel converter module, without its package importing the JAX converter."""
    if "tensorflowjs.converters" not in sys.modules and _TFJS_JAX not in sys.modules:
        stub = types.ModuleType(_TFJS_JAX)

        def convert_jax(*args, **kwargs):
            raise NotImplementedError("packager loads tensorflowjs without its JAX converter")

        stub.convert_jax = convert_jax
        sys.modules[_TFJS_JAX] = stub
    import_tensorflow()
    from tensorflowjs.converters import tf_saved_model_conversion_v2

    return tf_saved_model_conversion_v2


def reusing(load, saved_model_dir: Path, loaded):
    """A stand-in for a converter's own SavedModel loader ``load(path, ...)`` that returns ``loaded`` (the
    SavedModel at ``saved_model_dir``, already loaded) for that folder, and loads any other."""
    same = Path(saved_model_dir).resolve()

    def reuse(path, *args, **kwargs):
        return loaded if loaded is not None and Path(path).resolve() == same else load(path, *args, **kwargs)

    return reuse
