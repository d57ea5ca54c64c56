"""Load the original model once; expose a SavedModel export and reference predictions.

Every format becomes a SavedModel with a ``serving_default`` signature in the work dir; all targets
convert from it (Keras 3 ``from_keras_model`` is unreliable, see DESIGN.md) and the reference
outputs are computed through the same signature.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from packager.errors import InputError, UsageError, short_reason
from packager.frameworks import import_tensorflow
from packager.frozen_graph import export_frozen_graph
from packager.graph_safety import check_saved_model
from packager.keras_loading import load_keras
from packager.memory import check_sample_size
from packager.paths import check_input_path
from packager.spec import PackageSpec, TensorSpec

if TYPE_CHECKING:
    from packager.samples import SampleSet

KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


def natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def detect_format(path: Path) -> str:
    check_input_path(path, "model", "check the path: pass a .keras/.h5 file, a SavedModel folder, or a frozen "
                                    "graph .pb")  # missing, a link loop, a FIFO or device (would block)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise InputError(
            f"{path} is a folder but not a SavedModel (no saved_model.pb inside)",
            where=str(path),
            hint="pass a .keras/.h5 file, a SavedModel folder, or a frozen graph .pb",
        )
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return KERAS_SUFFIXES[suffix]
    if suffix == ".pb":
        return "frozen_pb"
    raise InputError(
        f"unknown model format {suffix or '(no extension)'!r}",
        where=str(path),
        hint="supported: .keras (Keras 3), .h5 (Keras 2), a SavedModel folder, a frozen GraphDef .pb",
    )


def _check_readable(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise InputError(f"cannot read model file: {e.strerror}", where=str(path), hint="check permissions") from e
    if not head:
        raise InputError("model file is empty", where=str(path), hint="re-save the model")


@dataclass
class Source:
    spec: PackageSpec
    format: str
    saved_model_dir: Path
    keras_model: object | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    samples: object | None = None  # the shared SampleSet, set once loaded (int8 calibration uses it)
    # debug ops (Assert, CheckNumerics, Print, PrintV2) stripped from the export every target converts: op -> count
    stripped_debug_ops: dict[str, int] = field(default_factory=dict)
    frozen_graph: Path | None = None  # a frozen .pb input, debug ops stripped: what the web target converts
    # the original model's outputs on a few samples turned upside down, by sample index (the iOS golden cases),
    # computed where the model is loaded (a worker need not load it again)
    turned_reference: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @cached_property
    def _loaded(self):
        import tensorflow as tf

        return tf.saved_model.load(str(self.saved_model_dir))

    def concrete_function(self):
        return self._loaded.signatures["serving_default"]

    @property
    def is_image(self) -> bool:
        return (
            len(self.inputs) == 1
            and len(self.inputs[0].shape) == 4
            and self.inputs[0].shape[-1] in (1, 3)
            and self.inputs[0].dtype == "float32"
        )

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        fn = self.concrete_function()
        # samples are float32 arrays: integer inputs (token ids) take them in their own dtype
        args = {i.name: tf.constant(np.asarray(batch[i.name]).astype(i.dtype)) for i in self.inputs}
        out = fn(**args)
        return {k: v.numpy() for k, v in out.items()}


def load_source(spec: PackageSpec, workdir: Path, on_preview: Callable[[Source], None] | None = None) -> Source:
    """Load ``spec.model`` and export it as a SavedModel under ``workdir``. For a Keras model, ``on_preview``
    gets the signature the export is expected to have (``keras_preview``) before the export starts."""
    import_tensorflow()
    path = spec.model
    fmt = detect_format(path)
    if path.is_file():
        _check_readable(path)
    export_dir = workdir / "saved_model"
    keras_model = None
    frozen_graph, stripped = None, {}
    if fmt in ("keras", "h5"):
        keras_model = load_keras(path, fmt, spec)
        preview = keras_preview(keras_model, spec, fmt, export_dir) if on_preview else None
        if preview is not None:
            on_preview(preview)
        _export_keras(keras_model, export_dir, path, spec)
    elif fmt == "saved_model":
        export_dir = path
    else:
        frozen_graph, stripped = export_frozen_graph(path, spec, export_dir)
    check_saved_model(export_dir, str(path))  # before anything of the graph runs (its initializers on load)
    if not stripped:
        stripped = _strip_debug_ops(export_dir, workdir / "saved_model_nodebug")
        if stripped:
            export_dir = workdir / "saved_model_nodebug"
    loaded = _load_saved_model(export_dir, path)
    signature_inputs, outputs = _signature_specs(loaded, path)
    # a frozen graph's signature already carries the --input-shape values
    inputs = signature_inputs if fmt == "frozen_pb" else _apply_input_shapes(signature_inputs, spec, path)
    if any(d is None for i in inputs for d in i.shape[1:]):
        bad = [i for i in inputs if any(d is None for d in i.shape[1:])][0]
        raise InputError(
            f"input {bad.name!r} has dynamic dimensions {_fmt_shape(bad.shape)} besides the batch",
            where=str(path),
            hint=f"fix them with --input-shape {bad.name}=1,...",
        )
    check_sample_size({i.name: i.sample_shape[1:] for i in inputs}, str(path),
                      "give the model's real input size with --input-shape NAME=1,H,W,C (or input_shapes in "
                      "packager.toml)" if spec.input_shapes else "export the model with the input size it is used at")
    if inputs != signature_inputs:
        _export_fixed_shapes(export_dir, inputs, workdir / "saved_model_fixed")
        export_dir = workdir / "saved_model_fixed"
        loaded = None
    source = Source(spec, fmt, export_dir, keras_model, inputs, outputs, stripped_debug_ops=stripped,
                    frozen_graph=frozen_graph)
    if loaded is not None:  # loading a SavedModel takes most of a second: the preflight and reference reuse this one
        source.__dict__["_loaded"] = loaded
    return source


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _short(e: Exception | None) -> str:
    return short_reason(e)


def keras_preview(model, spec: PackageSpec, fmt: str, export_dir: Path) -> Source | None:
    """The Source that exporting a Keras 3 model is expected to give, read off the model before the export
    (which takes seconds): inputs named after the model's inputs, outputs ``output_<i>`` or a dict output's
    keys. A guess, so that work needing only the signature can start during the export; whoever uses it
    checks it against the real thing. None when it cannot be guessed."""
    if not type(model).__module__.startswith("keras"):  # tf_keras (Keras 2) names its signature otherwise
        return None
    try:
        def spec_of(name, t) -> TensorSpec:
            shape = tuple(None if d is None else int(d) for d in t.shape)
            return TensorSpec(name, (None,) + shape[1:], str(getattr(t.dtype, "name", t.dtype)))

        inputs = [spec_of(str(t.name).split(":")[0], t) for t in model.inputs]
        try:
            structure = model.output
        except (AttributeError, ValueError):  # a loaded Sequential model has outputs but no output
            structure = None
        names = list(structure) if isinstance(structure, dict) else [f"output_{i}" for i in range(len(model.outputs))]
        outputs = [spec_of(n, t) for n, t in zip(names, model.outputs)]
        inputs = _apply_input_shapes(sorted(inputs, key=lambda t: natural_key(t.name)), spec, spec.model)
    except Exception:
        return None
    if not inputs or not outputs or any(d is None for i in inputs for d in i.shape[1:]):
        return None
    return Source(spec, fmt, export_dir, model, inputs, sorted(outputs, key=lambda t: natural_key(t.name)))


def _export_keras(model, export_dir: Path, path: Path, spec: PackageSpec) -> None:
    import tensorflow as tf

    if hasattr(model, "export") and type(model).__module__.startswith("keras"):
        from packager.keras_export import export_plain, plain
        from packager.recurrent import export_unrolled

        if export_unrolled(model, spec.input_shapes, export_dir):  # recurrent layers as builtins for every target
            return
        if plain(model):  # the same signature, without Keras' ExportArchive (half the CPU)
            export_plain(model, export_dir)
        else:
            model.export(str(export_dir), verbose=False)
    else:  # tf_keras (Keras 2) model
        tf.saved_model.save(model, str(export_dir))


def _strip_debug_ops(export_dir: Path, clean_dir: Path) -> dict[str, int]:
    """Debug ops out of the SavedModel every target converts (as ``tensorflowjs_converter`` does by default):
    a copy without them in ``clean_dir`` when there are any (op -> count), else {}. A SavedModel that cannot
    be read here is left to ``_load_saved_model``, which reports it."""
    from packager.debug_ops import strip_saved_model

    if not (export_dir / "saved_model.pb").is_file():
        return {}
    try:
        return strip_saved_model(export_dir, clean_dir)
    except Exception:  # DecodeError and the like: the load below says what is wrong with the file
        return {}


def _load_saved_model(export_dir: Path, path: Path):
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(export_dir))
    except Exception as e:
        raise InputError(f"could not load the SavedModel: {_short(e)}", where=str(path),
                         hint="re-export it with tf.saved_model.save or model.export") from e


def _signature_specs(loaded, path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    if "serving_default" not in loaded.signatures:
        names = ", ".join(sorted(loaded.signatures)) or "none"
        raise InputError(
            f"SavedModel has no 'serving_default' signature (signatures: {names})",
            where=str(path),
            hint="export with a serving signature: model.export(dir) or tf.saved_model.save(m, dir, signatures=...)",
        )
    fn = loaded.signatures["serving_default"]
    in_specs = fn.structured_input_signature[1]
    out_specs = fn.structured_outputs

    def to_spec(name, ts, what: str) -> TensorSpec:
        shape = tuple(None if d is None else int(d) for d in ts.shape)
        if not shape:
            raise InputError(
                f"{what} {name!r} is a scalar (rank 0): it has no batch dimension, and packager runs and ships the "
                "model one sample at a time, as a batch of one",
                where=str(path),
                hint=f"export the model with a batch dimension first: {what} shape (None, ...) or (1, ...), e.g. "
                     "tf.TensorSpec([None], ...) for one number per sample")
        if what == "input" and shape[0] not in (None, 1):
            raise InputError(
                f"input {name!r} has its batch dimension fixed to {shape[0]} (shape {_fmt_shape(shape)}): "
                "packager runs and ships the model one sample at a time, as a batch of one",
                where=str(path),
                hint="export the model with a batch dimension of None or 1 (keras.Input(shape) without "
                     "batch_size, or tf.TensorSpec([None, ...]))")
        if shape[0] is not None:
            shape = (None,) + shape[1:]
        return TensorSpec(name, shape, ts.dtype.name)

    inputs = [to_spec(n, in_specs[n], "input") for n in sorted(in_specs, key=natural_key)]
    outputs = [to_spec(n, out_specs[n], "output") for n in sorted(out_specs, key=natural_key)]
    if not inputs or not outputs:
        raise InputError("the serving_default signature has no inputs or no outputs", where=str(path))
    return inputs, outputs


def _apply_input_shapes(inputs: list[TensorSpec], spec: PackageSpec, path: Path) -> list[TensorSpec]:
    known = {i.name for i in inputs}
    for name in spec.input_shapes:
        if name not in known:
            raise UsageError(
                f"--input-shape names {name!r}, which is not an input of the model",
                where=str(path),
                hint=f"model inputs: {', '.join(sorted(known))}",
            )
    out = []
    for i in inputs:
        if i.name in spec.input_shapes:
            shape = tuple(spec.input_shapes[i.name])
            if len(shape) != len(i.shape) or any(a is not None and a != b for a, b in zip(i.shape[1:], shape[1:])):
                raise UsageError(
                    f"--input-shape {i.name}={','.join(map(str, shape))} does not fit the model's {_fmt_shape(i.shape)}",
                    where=str(path),
                )
            i = TensorSpec(i.name, (None,) + shape[1:], i.dtype)
        out.append(i)
    return out


def _export_fixed_shapes(src_dir: Path, inputs: list[TensorSpec], dst: Path) -> None:
    """Re-export a SavedModel whose signature has fixed (non-batch) input shapes."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(src_dir))
    fn = loaded.signatures["serving_default"]
    sig = [tf.TensorSpec(i.shape, tf.as_dtype(i.dtype), name=i.name) for i in inputs]
    names = [i.name for i in inputs]

    @tf.function(input_signature=sig)
    def serve(*args):
        return fn(**dict(zip(names, args)))

    module = tf.Module()
    module.inner = loaded
    tf.saved_model.save(module, str(dst), signatures={"serving_default": serve})


def keras_export_drift(source: Source, samples, reference: dict[str, np.ndarray], count: int = 4) -> str | None:
    """For Keras models: does the SavedModel export (which every target converts from, and which gives
    the reference) reproduce ``model(x, training=False)``? Returns a description of the drift, or None.
    Skipped (None) when the Keras inputs cannot be matched to the signature by name."""
    model = source.keras_model
    if model is None or not len(samples):
        return None
    names = [str(getattr(t, "name", "")).split(":")[0] for t in getattr(model, "inputs", None) or []]
    if sorted(names) != sorted(i.name for i in source.inputs):
        return None
    n = min(count, len(samples))
    rows = [samples[i] for i in range(n)]
    feed = [np.concatenate([r[name] for r in rows]) for name in names]
    out = model(feed if len(feed) > 1 else feed[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    if len(outs) != len(source.outputs):
        return None
    for spec_out, value in zip(source.outputs, outs):
        ref = reference[spec_out.name][:n]
        got = np.asarray(value, np.float32).reshape(ref.shape)
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        if diff > 1e-3 * max(1.0, float(np.max(np.abs(ref)))):
            return (f"output {spec_out.name!r}: the SavedModel export differs from model(x, training=False) by "
                    f"up to {diff:.3g} on the first {n} samples")
    return None


def check_reference_finite(reference: dict[str, np.ndarray], model: Path) -> None:
    """The original model's outputs must be finite: with NaN or infinity there is nothing to compare against."""
    for name, values in reference.items():
        if not values.size:
            continue
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if np.any(bad):
            first = int(np.flatnonzero(bad)[0])
            raise InputError(f"the original model outputs NaN or infinity ({name!r}, on {int(np.sum(bad))} of "
                             f"{len(values)} samples, first: sample {first}): no target can be compared with it",
                             where=str(model), hint="check the model's weights for NaN/inf, and that the samples "
                                                    "are preprocessed the way the model was trained (--mean/--std)")


def reference_outputs(source: Source, samples: SampleSet) -> dict[str, np.ndarray]:
    """The model's outputs on ``samples``, run once per Source and sample set (android's mixed asks again): copies."""
    if (memo := source.__dict__.get("_reference")) is not None and memo[0] is samples:
        return {name: v.copy() for name, v in memo[1].items()}
    rows: dict[str, list[np.ndarray]] = {o: [] for o in source.output_names}
    for index, sample in enumerate(samples):
        out = _predict_reference(source, sample, index)
        for name in rows:
            rows[name].append(np.asarray(out[name], np.float32))
    reference = {name: np.concatenate(v) for name, v in rows.items()}
    check_reference_finite(reference, source.spec.model)
    if sum(v.nbytes for v in reference.values()) <= 1 << 24:  # a copy kept: 16 MB at most (small models)
        source.__dict__["_reference"] = (samples, {name: v.copy() for name, v in reference.items()})
    return reference


def _predict_reference(source: Source, sample, index: int) -> dict[str, np.ndarray]:
    """The original model on one sample; an op failing while it runs is the model's (or the sample's) problem."""
    import tensorflow as tf

    try:
        return source.predict(sample)
    except (tf.errors.OpError, ValueError, TypeError) as e:
        text = getattr(e, "message", None) or str(e)
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        # TF's "Graph execution error:" header and "Detected at node" trace say less than the op's own message
        useful = [ln for ln in lines if not ln.startswith(("Graph execution error", "Detected at node", "<stack",
                                                            "[[", "File ", "Received"))]
        reason = (useful or lines or [type(e).__name__])[0][:300]
        raise InputError(f"the original model fails when it runs on sample {index} "
                         f"({type(e).__name__}: {reason}): there is no reference to compare the targets with",
                         where=str(source.spec.model),
                         hint="check that the model runs on these samples in TensorFlow (model(x) / "
                              "the serving signature), and that the samples have the values it expects") from None
