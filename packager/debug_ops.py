"""Debug ops out of a SavedModel, once, for every target.

``tensorflowjs_converter`` strips debug ops by default (``--strip_debug_ops``, grappler's ``debug_stripper``;
its Python API does not), coremltools drops ``Assert`` and ``CheckNumerics`` itself, and the TFLite converter
refuses ``Print`` (no builtin kernel). None of them compute the model's outputs, so packager removes them from the
SavedModel every target converts from:

- ``Assert``, ``PrintV2``: removed, with every control edge to them (and ``control_ret`` entries);
- ``CheckNumerics``, ``CheckNumericsV2``, ``Print``: become ``Identity`` of their first input;
- then, inside functions, what only fed them (``StringFormat`` of ``tf.print``, the condition of
  ``tf.debugging.Assert``) and ``If``/call nodes whose functions are left with no outputs and no side effects.

The edit is on ``saved_model.pb`` only (a copy in packager's work dir, never the user's files): variables,
assets and function names stay as they are, so the converters see the same model minus its debug ops.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

REMOVED = frozenset({"Assert", "PrintV2"})
TO_IDENTITY = frozenset({"CheckNumerics", "CheckNumericsV2", "Print"})
DEBUG_OPS = REMOVED | TO_IDENTITY
# nodes whose only effect is calling functions: removable once those functions do nothing
_CALLS = frozenset({"If", "StatelessIf", "PartitionedCall", "StatefulPartitionedCall"})
_FUNCTION_ATTRS = ("then_branch", "else_branch", "f")


def read_saved_model(saved_model_dir: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    return proto


def debug_op_counts(proto) -> dict[str, int]:
    """Debug op type -> node count over every meta graph of a SavedModel proto, function bodies included."""
    counts: Counter[str] = Counter()
    for meta in proto.meta_graphs:
        counts.update(n.op for n in meta.graph_def.node if n.op in DEBUG_OPS)
        for fn in meta.graph_def.library.function:
            counts.update(n.op for n in fn.node_def if n.op in DEBUG_OPS)
    return dict(sorted(counts.items()))


def strip_saved_model(src: Path, dst: Path) -> dict[str, int]:
    """If the SavedModel at ``src`` holds debug ops, write it without them to ``dst`` and return what was
    stripped (op -> count); else return {} and write nothing. ``src`` is only read."""
    proto = read_saved_model(src)
    found = debug_op_counts(proto)
    if not found:
        return {}
    for meta in proto.meta_graphs:
        strip_graph_def(meta.graph_def)
    if dst.exists():
        shutil.rmtree(dst)
    # everything but the graph (and the fingerprint of the old graph) as it is; copies, not links, so nothing
    # done to the work dir can reach the user's files
    shutil.copytree(src, dst,
                    ignore=lambda d, names: [n for n in names if Path(d) == Path(src)
                                             and n in ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb")])
    (dst / "saved_model.pb").write_bytes(proto.SerializeToString(deterministic=True))
    return found


def strip_frozen_graph(graph_def, output_nodes: list[str]) -> dict[str, int]:
    """Strip debug ops in place from a frozen GraphDef and keep only what ``output_nodes`` need (what fed a
    ``tf.print``'s format is left without consumers); returns what was stripped (op -> count)."""
    import tensorflow as tf

    counts: Counter[str] = Counter(n.op for n in graph_def.node if n.op in DEBUG_OPS)
    for fn in graph_def.library.function:
        counts.update(n.op for n in fn.node_def if n.op in DEBUG_OPS)
    if not counts:
        return {}
    strip_graph_def(graph_def)
    pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, [n.split(":")[0] for n in output_nodes])
    graph_def.CopyFrom(pruned)
    return dict(sorted(counts.items()))


def strip_graph_def(graph_def) -> None:
    """Strip debug ops in place from a GraphDef and its function library."""
    _strip_nodes(graph_def.node)
    functions = {fn.signature.name: fn for fn in graph_def.library.function}
    touched = set()
    for name, fn in functions.items():
        if any(n.op in DEBUG_OPS for n in fn.node_def):
            _drop_control_rets(fn, _strip_nodes(fn.node_def))
            touched.add(name)
    # the callers of an edited function are edited too: an If that guarded an Assert now does nothing
    callers = {name: {f for n in fn.node_def for f in _called(n)} for name, fn in functions.items()}
    while grown := {name for name, called in callers.items() if name not in touched and called & touched}:
        touched |= grown
    pure: set[str] = set()
    while grown := {name for name, fn in functions.items()
                    if name not in pure and not fn.control_ret and all(_is_pure(n, pure) for n in fn.node_def)}:
        pure |= grown
    for name in touched:
        fn = functions[name]
        _drop_control_edges(fn, {n.name for n in fn.node_def if _is_pure(n, pure)})
        _prune_dead(fn)


def _strip_nodes(nodes) -> set[str]:
    """Remove REMOVED nodes, turn TO_IDENTITY nodes into Identity; returns the names removed."""
    removed = {n.name for n in nodes if n.op in REMOVED}
    for node in nodes:
        if node.op in TO_IDENTITY:
            data = [i for i in node.input if not i.startswith("^")]
            controls = [i for i in node.input if i.startswith("^")]
            dtype = node.attr["T"]
            node.op = "Identity"
            del node.input[:]
            node.input.extend(data[:1] + controls)
            kept = type(dtype)()
            kept.CopyFrom(dtype)
            node.attr.clear()
            node.attr["T"].CopyFrom(kept)
    _remove(nodes, removed)
    return removed


def _remove(nodes, names: set[str]) -> None:
    if not names:
        return
    keep = [n for n in nodes if n.name not in names]
    for node in keep:
        inputs = [i for i in node.input if not (i.startswith("^") and i[1:] in names)]
        if len(inputs) != len(node.input):
            del node.input[:]
            node.input.extend(inputs)
    survivors = [type(n)() for n in keep]
    for s, n in zip(survivors, keep):
        s.CopyFrom(n)
    del nodes[:]
    nodes.extend(survivors)


def _drop_control_rets(fn, names: set[str]) -> None:
    gone = [k for k, v in fn.control_ret.items() if v in names]
    for k in gone:
        del fn.control_ret[k]
    if gone:
        outputs = [c for c in fn.signature.control_output if c not in gone]
        del fn.signature.control_output[:]
        fn.signature.control_output.extend(outputs)


# ops with no effect beyond their outputs: a control edge to one orders nothing that matters
_PURE_OPS = frozenset({"Identity", "IdentityN", "NoOp", "Const"})


def _called(node) -> set[str]:
    return {node.attr[a].func.name for a in _FUNCTION_ATTRS if a in node.attr and node.attr[a].func.name}


def _is_pure(node, pure_functions: set[str]) -> bool:
    if node.op in _PURE_OPS:
        return True
    called = _called(node)
    return node.op in _CALLS and bool(called) and called <= pure_functions


def _drop_control_edges(fn, names: set[str]) -> None:
    """Control edges to (and control outputs naming) side-effect-free nodes."""
    for node in fn.node_def:
        inputs = [i for i in node.input if not (i.startswith("^") and i[1:] in names)]
        if len(inputs) != len(node.input):
            del node.input[:]
            node.input.extend(inputs)
    _drop_control_rets(fn, names)


def _prune_dead(fn) -> None:
    """Remove nodes nothing reaches from the function's outputs and control outputs."""
    by_name = {n.name: n for n in fn.node_def}
    live: set[str] = set()
    stack = [v.split(":")[0] for v in fn.ret.values()] + list(fn.control_ret.values())
    while stack:
        name = stack.pop()
        if name in live or name not in by_name:
            continue
        live.add(name)
        stack.extend(i.lstrip("^").split(":")[0] for i in by_name[name].input)
    dead = set(by_name) - live
    _remove(fn.node_def, dead)
