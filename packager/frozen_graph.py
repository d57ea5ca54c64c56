"""A frozen GraphDef ``.pb`` as a SavedModel: tfcoreml's interface (input name -> shape, output names) on top
of the SavedModel every target converts from."""

from __future__ import annotations

import re
from pathlib import Path

from packager.debug_ops import strip_frozen_graph
from packager.errors import InputError, UsageError
from packager.graph_safety import check_graph_def
from packager.spec import PackageSpec


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def export_frozen_graph(path: Path, spec: PackageSpec, export_dir: Path) -> tuple[Path, dict[str, int]]:
    """tfcoreml's interface: a frozen GraphDef + input name->shape + output names -> SavedModel. Returns the
    frozen graph the converters that take one read (``path``, or a copy without debug ops beside
    ``export_dir``) and the debug ops stripped (op -> count)."""
    import tensorflow as tf

    if not spec.input_shapes or not spec.output_names:
        raise UsageError(
            "a frozen graph .pb needs its input shapes and output names",
            where=str(path),
            hint="pass --input-shape NAME=1,224,224,3 (per input) and --output-names NAME[,NAME]",
        )
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as e:
        raise InputError("not a valid frozen GraphDef (.pb could not be parsed)", where=str(path),
                         hint="a frozen graph is written by tf.io.write_graph(..., as_text=False)") from e
    check_graph_def(graph_def, str(path))  # file-system / Python ops: refused before anything is built from it
    nodes = {n.name: n for n in graph_def.node}
    for name in list(spec.input_shapes) + list(spec.output_names):
        if name.split(":")[0] not in nodes:
            raise UsageError(f"the graph has no node named {name!r}", where=str(path),
                             hint="check --input-shape / --output-names against the graph's node names")
    stripped = strip_frozen_graph(graph_def, list(spec.output_names))
    frozen = path
    if stripped:
        frozen = export_dir.parent / "frozen_nodebug.pb"
        frozen.write_bytes(graph_def.SerializeToString(deterministic=True))

    def import_graph():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(import_graph, [])
    g = wrapped.graph
    in_names = list(spec.input_shapes)
    try:
        fn = wrapped.prune(
            [g.as_graph_element(_tensor_name(n)) for n in in_names],
            [g.as_graph_element(_tensor_name(n)) for n in spec.output_names],
        )
    except Exception as e:
        raise InputError(f"could not prune the graph to the given inputs/outputs: {_short(e)}", where=str(path)) from e
    dtypes = {n: g.as_graph_element(_tensor_name(n)).dtype for n in in_names}
    sig = [
        tf.TensorSpec(tuple(spec.input_shapes[n]), dtypes[n], name=frozen_input_name(n)) for n in in_names
    ]

    @tf.function(input_signature=sig)
    def serve(*args):
        outs = fn(*args)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        return {f"output_{i}": o for i, o in enumerate(outs)}

    module = tf.Module()
    module.fn = fn
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": serve})
    return frozen, stripped


def _tensor_name(n: str) -> str:
    return n if ":" in n else n + ":0"


def frozen_input_name(n: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", n.split(":")[0])
