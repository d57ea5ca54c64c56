"""Load a ``.keras`` / ``.h5`` model with Keras safe mode on.

Keras 3 loads it; a Keras 2 ``.h5`` it cannot read falls back to ``tf_keras``. A model that holds Python code
(a ``Lambda`` layer's marshalled bytecode) is refused before any loader sees it, and nothing that safe mode
refused is handed to another loader: ``--unsafe-deserialization`` (named for what it does) is the only way to
load it. Custom layers come from the modules named by ``--custom-objects``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from packager.errors import InputError, short_reason
from packager.spec import PackageSpec

UNSAFE_HINT = ("only if you trust the file: pass --unsafe-deserialization to let Keras run the code stored in it "
               "(Lambda layers); better, replace the Lambda by a registered custom layer and re-save the model")
FILE_HINT = ("re-save the model with the vocabulary inside it (a lookup layer given its vocabulary as a list, or "
             "model.save() of a layer that read it: .keras keeps it under assets/); only if you trust the file and "
             "the path: --unsafe-deserialization")
CUSTOM_HINT = ("name the module that defines it with --custom-objects MODULE (searched in the model's folder, the "
               "config's folder and on PYTHONPATH; importing it runs its code), or set custom_objects = [\"MODULE\"] "
               "in packager.toml")


def load_keras(path: Path, fmt: str, spec: PackageSpec | None = None):
    import keras

    if fmt == "keras" and not zipfile.is_zipfile(path):
        raise InputError(
            "not a valid .keras file (a .keras model is a zip archive; this one is corrupt or truncated)",
            where=str(path),
            hint="re-save the model with model.save('model.keras')",
        )
    unsafe = bool(spec and spec.unsafe_deserialization)
    if fmt == "h5":
        with open(path, "rb") as f:
            if f.read(8) != b"\x89HDF\r\n\x1a\n":
                raise InputError(
                    "not a valid HDF5 file (corrupt or truncated)",
                    where=str(path),
                    hint="re-save the model with model.save('model.h5') or as .keras",
                )
    custom = {}
    if spec and spec.custom_objects:  # imported first: a Lambda may name a function they define
        from packager.custom_objects import import_custom_objects

        custom = import_custom_objects(spec.custom_objects, spec.custom_objects_dirs, str(path))
    if fmt == "h5":
        code_layers = _h5_code_layers(path, set(custom))
        if code_layers and not unsafe:  # Keras 2's loader would run their marshalled bytecode: nothing is loaded
            raise InputError(
                f"the model holds Python code (Lambda layer {', '.join(map(repr, code_layers[:5]))}); loading it "
                "would run that code, so packager refuses it (Keras safe mode)",
                where=str(path),
                hint=UNSAFE_HINT,
            )
    if unsafe:
        keras.config.enable_unsafe_deserialization()
    first_error: Exception | None = None
    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom or None, safe_mode=not unsafe)
    except Exception as e:  # Keras 3 cannot read every Keras 2 file
        first_error = e
    if _refused_by_safe_mode(first_error):  # no other loader may run what safe mode refused
        reason = _innermost(first_error)
        if "outside of the model archive" in reason:  # a lookup layer's vocabulary = a path anywhere on disk
            file = reason.rsplit("Vocabulary file:", 1)[-1].strip() if "Vocabulary file:" in reason else ""
            raise InputError(f"the model reads a file outside its own archive when it loads (a lookup layer's "
                             f"vocabulary file {file}): Keras safe mode refuses it, and so does packager",
                             where=str(path), hint=FILE_HINT) from first_error
        raise InputError(f"Keras safe mode refused to load the model: {reason[:300]}", where=str(path),
                         hint=UNSAFE_HINT) from first_error
    if fmt == "h5":
        try:
            import tf_keras

            return tf_keras.models.load_model(path, compile=False, custom_objects=custom or None)
        except Exception as e:
            raise InputError(
                f"could not load the .h5 model with Keras 3 ({short_reason(first_error)}) nor tf_keras ({short_reason(e)})",
                where=str(path),
                hint=CUSTOM_HINT if _unknown_object(first_error) or _unknown_object(e)
                else "re-save the model with the Keras version that trained it, or export a SavedModel",
            ) from e
    raise InputError(
        f"could not load the Keras model: {short_reason(first_error)}",
        where=str(path),
        hint=CUSTOM_HINT if _unknown_object(first_error) else "check the file is complete (re-save it)",
    ) from first_error


def _innermost(e: Exception | None) -> str:
    """The cause Keras nests last ("... Exception encountered: <cause>"), not its outer "could not be deserialized"
    lines."""
    text = " ".join(str(e).split())
    return text.rsplit("Exception encountered:", 1)[-1].strip() if "Exception encountered:" in text \
        else short_reason(e)


def _refused_by_safe_mode(e: Exception | None) -> bool:
    text = str(e)
    return "safe_mode" in text or "unsafe_deserialization" in text or "arbitrary code" in text


def _unknown_object(e: Exception | None) -> bool:
    text = str(e)
    return any(s in text for s in ("Could not locate", "Unknown layer", "Unknown object", "custom_objects",
                                   "Unknown activation", "Unknown loss"))


def _h5_code_layers(path: Path, custom_names: set[str] = frozenset()) -> list[str]:
    """Names of the layers of an .h5 model whose config holds Python code (Lambda layers, functions saved as
    bytecode), read from the file's ``model_config`` without loading anything. A Lambda naming a function is
    allowed only when --custom-objects provides that function (else Keras 2 would look it up in any module)."""
    import json

    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as e:
        raise InputError(f"cannot read the HDF5 file: {e}", where=str(path),
                         hint="re-save the model with model.save('model.h5') or as .keras") from e
    if raw is None:
        return []  # a weights-only file: the loaders report it
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except ValueError as e:
        raise InputError("the HDF5 file's model_config is not valid JSON", where=str(path),
                         hint="re-save the model") from e
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
            named_function = (node.get("class_name") == "Lambda" and cfg.get("function_type") == "function"
                              and str(cfg.get("function")) in custom_names)
            if (node.get("class_name") == "Lambda" and not named_function) or any(
                    node.get(k) == "lambda" for k in ("function_type", "output_shape_type")):
                found.append(str(cfg.get("name") or node.get("name") or "?"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return list(dict.fromkeys(found))
