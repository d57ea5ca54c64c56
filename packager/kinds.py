"""Output kinds: what each output tensor means, so that metrics, gates, labels and wrappers follow it.

  probabilities  class probabilities (softmax; rows in [0, 1] summing to 1)
  logits         class scores that are not probabilities (labels given for a 2-D output)
  sigmoid        independent scores in [0, 1] (multi-label, binary); decided at 0.5
  regression     numbers (boxes, landmarks, embeddings, ...): errors and cosine only
  other          non-numeric meaning (integer ids, ...): errors and cosine only
  image          a map / mask / image the size of the input (N, H, W, 1|3|4) with an image input's H x W:
                 errors, cosine and PSNR; the wrappers return it as a picture, report.html shows it

Inferred from the model (the activation that produces the output, found in the TF graph) and the reference
outputs on the sample set, and settable per output in packager.toml (``[outputs.NAME] kind = "..."``).
The *primary* output (what the wrappers' classify/scores use, named in the report) is the first output of
kind probabilities/logits/sigmoid in the model's signature order, else the first output.
"""

from __future__ import annotations

import numpy as np

KINDS = ("probabilities", "logits", "sigmoid", "regression", "other", "image")
IMAGE_CHANNELS = (1, 3, 4)
CLASS_KINDS = ("probabilities", "logits")  # top-1 / top-5 / confusion
PRIMARY_KINDS = ("probabilities", "logits", "sigmoid")

# graph op type -> kind, for the op that produces an output (through identity-like ops)
ACTIVATION_KINDS = {"Softmax": "probabilities", "Sigmoid": "sigmoid", "LogSoftmax": "logits"}
_PASS_THROUGH = {"Identity", "Reshape", "Squeeze", "ExpandDims", "StopGradient", "Snapshot", "EnsureShape"}
_CALLS = {"StatefulPartitionedCall", "PartitionedCall"}


def infer_kind(ref: np.ndarray, *, activation: str | None = None, has_labels: bool = False,
               dtype: str = "float32") -> str:
    """The kind of one output from its producing op type (``activation``, may be None) and its reference rows."""
    if activation in ACTIVATION_KINDS:
        return ACTIVATION_KINDS[activation]
    if not dtype.startswith("float"):
        return "other"
    ref = np.asarray(ref, np.float64)
    if ref.size and np.isfinite(ref).all() and ref.min() >= -1e-6 and ref.max() <= 1 + 1e-6:
        if ref.ndim >= 2 and ref.shape[-1] >= 2 and np.allclose(ref.sum(axis=-1), 1.0, atol=1e-3):
            return "probabilities"
        if activation is None:  # the graph could not tell: the value range does
            return "sigmoid"
    if has_labels and ref.ndim == 2 and ref.shape[1] >= 2:
        return "logits"
    return "regression"


def image_sizes(inputs) -> set[tuple[int, int]]:
    """(H, W) of the model's image-like inputs: NHWC with 1, 3 or 4 channels and a fixed size."""
    sizes = set()
    for t in inputs or ():
        shape = tuple(t.shape)
        if len(shape) == 4 and shape[3] in IMAGE_CHANNELS and shape[1] and shape[2]:
            sizes.add((int(shape[1]), int(shape[2])))
    return sizes


def is_image_output(shape, sizes: set[tuple[int, int]]) -> bool:
    """An output shaped (N, H, W, 1|3|4) with the H x W of an image input: a map the size of the input."""
    shape = tuple(shape)
    return len(shape) == 4 and shape[3] in IMAGE_CHANNELS and (shape[1], shape[2]) in sizes


def image_outputs(spec, source) -> list:
    """The outputs the wrappers return as pictures: kind "image" (resolved, or set in packager.toml), or — before
    the kinds are resolved (a module rendered from the signature alone) — shaped like one (``is_image_output``)."""
    sizes = image_sizes(source.inputs)
    kinds = getattr(spec, "output_kinds", None) or {}
    return [o for o in source.outputs if kinds.get(o.name) == "image"
            or (o.name not in kinds and str(o.dtype).startswith("float") and is_image_output(o.shape, sizes))]


def primary_output(names: list[str], kinds: dict[str, str]) -> str | None:
    for n in names:
        if kinds.get(n) in PRIMARY_KINDS:
            return n
    return names[0] if names else None


def resolve_kinds(outputs, reference: dict[str, np.ndarray], *, set_kinds: dict[str, str],
                  labelled: set[str], activations: dict[str, str | None], plain_labels: int = 0,
                  inputs=None) -> dict[str, str]:
    """Each output's kind: ``set_kinds`` (packager.toml) wins, else inferred. ``labelled``: outputs given labels
    by name; ``plain_labels``: the length of a labels file given without an output name, which labels the
    primary output — or, with no class/sigmoid output, the first 2-D output with that many columns (logits)."""
    kinds = {}
    sizes = image_sizes(inputs)
    for o in outputs:
        if o.name not in set_kinds and o.dtype.startswith("float") and is_image_output(reference[o.name].shape, sizes):
            kinds[o.name] = "image"
            continue
        kinds[o.name] = set_kinds.get(o.name) or infer_kind(
            reference[o.name], activation=activations.get(o.name), has_labels=o.name in labelled, dtype=o.dtype)
    if plain_labels and not any(k in PRIMARY_KINDS for k in kinds.values()):
        for o in outputs:
            ref = reference[o.name]
            if o.name not in set_kinds and ref.ndim == 2 and ref.shape[1] == plain_labels:
                kinds[o.name] = "logits"
                break
    return kinds


def graph_activations(fn) -> dict[str, str | None]:
    """Signature output name -> type of the op that produces it (following identity-like ops and function
    calls), from a concrete function; None where the walk cannot tell. Never raises."""
    try:
        graph_def = fn.graph.as_graph_def()
        structured = fn.structured_outputs
        names = sorted(structured) if isinstance(structured, dict) else []  # tf.nest's order of a dict
        outputs = dict(zip(names, fn.outputs)) if len(names) == len(fn.outputs) else {}
    except Exception:
        return {}
    funcs = {f.signature.name: f for f in graph_def.library.function}
    top = {n.name: n for n in graph_def.node}
    found: dict[str, str | None] = {}
    for name, tensor in outputs.items():
        try:
            found[name] = _producer(top, funcs, tensor.op.name, tensor.value_index, in_function=False)
        except Exception:
            found[name] = None
    return found


def _split(ref: str, in_function: bool) -> tuple[str, int]:
    parts = ref.lstrip("^").split(":")
    if in_function:  # "node:output_arg:index" (or an argument name)
        return parts[0], int(parts[2]) if len(parts) == 3 else 0
    return parts[0], int(parts[1]) if len(parts) == 2 else 0


def _producer(scope: dict, funcs: dict, name: str, index: int, *, in_function: bool) -> str | None:
    for _ in range(256):
        node = scope.get(name)
        if node is None:  # a function argument: the producer is outside this body
            return None
        if node.op in _PASS_THROUGH:
            name, index = _split(node.input[0], in_function)
        elif node.op == "IdentityN":
            name, index = _split(node.input[index], in_function)
        elif node.op in _CALLS:
            body = funcs.get(node.attr["f"].func.name)
            if body is None:
                return None
            ret = body.ret[body.signature.output_arg[index].name]
            scope, in_function = {n.name: n for n in body.node_def}, True
            name, index = _split(ret, True)
        else:
            return node.op
    return None


def apply_kinds(spec, source, reference: dict[str, np.ndarray]):
    """The spec with every output's kind resolved, its primary output chosen and the primary output's labels
    in ``labels`` (the labels the wrappers show). Raises UsageError/InputError for names or labels that do
    not fit the model."""
    from packager.errors import UsageError
    from packager.labels import check_primary_labels
    from packager.targets import did_you_mean

    names = [o.name for o in source.outputs]
    for name in spec.output_kinds:
        if name not in names:
            raise UsageError(f"[outputs.{name}] names an output the model does not have",
                             where=str(spec.model), hint=f"{did_you_mean(name, names)}outputs: {', '.join(names)}")
    for o in source.outputs:
        shape = tuple(o.shape)
        if spec.output_kinds.get(o.name) == "image" and not (len(shape) == 4 and shape[3] in IMAGE_CHANNELS):
            raise UsageError(f"[outputs.{o.name}] kind = \"image\" but the output is shaped {list(shape)}",
                             where=str(spec.model),
                             hint="an image output is (N, H, W, C) with 1, 3 or 4 channels; choose another kind")
    try:
        activations = graph_activations(source.concrete_function())
    except Exception:  # no graph to read: the values and labels decide
        activations = {}
    kinds = resolve_kinds(source.outputs, reference, set_kinds=spec.output_kinds, labelled=set(spec.output_labels),
                          activations=activations, plain_labels=len(spec.labels), inputs=source.inputs)
    primary = primary_output(names, kinds)
    labels = spec.labels
    output_labels = dict(spec.output_labels)
    if primary is not None:
        if labels and primary in output_labels and output_labels[primary] != labels:
            raise UsageError(f"two labels files for the primary output {primary!r}",
                             where=str(spec.labels_file or spec.model),
                             hint="give it one: --labels FILE or --labels OUTPUT=FILE")
        if labels:
            check_primary_labels(labels, next(o for o in source.outputs if o.name == primary),
                                 str(spec.labels_file or spec.model))
            output_labels[primary] = labels
        labels = output_labels.get(primary, ())
    return spec.with_(output_kinds=kinds, primary_output=primary or "", labels=labels, output_labels=output_labels)


def primary_name(spec, source) -> str:
    """The primary output's name for a target's wrapper: resolved by the pipeline, else the first output."""
    names = [o.name for o in source.outputs]
    if spec.primary_output in names:
        return spec.primary_output
    return names[0] if names else ""
