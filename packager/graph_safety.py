"""Refuse graphs that touch the file system, the network or call back into Python, before anything of them runs.

A SavedModel or frozen graph is a program: its serving function (and the initializers that run when it is
loaded) may write or read files or call Python. packager executes the graph to compute the reference outputs, so
such a graph is refused by reading its protobuf only: nothing of it is loaded or run.

Refused by *capability*, not by a list of names: every node of the graph and of every function in its library is
looked up in TensorFlow's op registry, and an op is refused when its definition takes a path (an input named
``filename``, ``filenames``, ``prefix``, ``path``, ``logdir``, ``file_pattern``, ``db_uri``, ... : file datasets,
``.cache(path)``, table-from-file initialisers, ``tf.io`` file ops, savers, snapshots), a network address, a
reader or summary-writer handle, or an attribute naming a file (``file_pattern``, ``debug_urls``, ``PrintV2`` to
``file://``, ...). Python callbacks (``PyFunc``, ``EagerPyFunc``) and an op unknown to the registry whose name says
files are refused too. A path input that is an empty constant opens nothing (``.cache()`` in memory) and is allowed.

Two things stay allowed: checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``) in the saver functions
that ``saver_def`` names, and reading the SavedModel's own asset files (vocabularies under ``assets/``): a
table-from-file initialiser or file dataset whose path is the function's captured asset (``bound_inputs`` naming
an ``asset`` object) or, in a TF1 graph, an ``asset_file_def`` tensor, with every asset file name inside
``assets/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from packager.errors import InputError

REFUSED_OPS = frozenset({  # by name, besides the capabilities below
    "MatchingFiles", "ImmutableConst", "RecordInput", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
    "DebugNumericSummaryV2", "FileSystemSetConfiguration", "SummaryWriter", "DumpTensor",
})
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints"})
PATH_INPUTS = frozenset({
    "filename", "filenames", "file_pattern", "prefix", "path", "logdir", "db_uri", "data_source_name", "ckpt_path",
    "old_vocab_file", "new_vocab_file", "checkpoint_prefixes", "destination_prefix", "patterns", "chunk_file",
    "shard_dir", "snapshot_path", "directory", "address", "server_address",
})
HANDLE_ARGS = frozenset({"reader_handle", "writer"})  # readers (files from a queue) and summary writers
PATH_ATTRS = frozenset({
    "file_pattern", "file_name", "log_dir_path", "memory_region_name", "output_file_path", "vocab_file",
    "debug_urls", "reader_path_prefix", "writer_path_prefix", "reader_prefix", "writer_prefix",
})
ATTR_OPS = {"Skipgram": "filename"}  # an attribute that is a path for this op only
# ops that read a path (and only read it): allowed on the SavedModel's own asset files
ASSET_READERS = re.compile(r"^(InitializeTableFromTextFile(V2)?|ReadFile|TextLineDataset|TFRecordDataset(V2)?|"
                           r"FixedLengthRecordDataset(V2)?|CSVDataset(V2)?)$")
UNKNOWN_FILE_OP = re.compile(r"File|Reader|Writer|Summary|Checkpoint|Save|Restore|Load|Dump|Debug|PyFunc|Sql|LMDB|"
                             r"Snapshot|Rpc|Record", re.I)


def _op_def(op: str):
    try:
        from tensorflow.python.framework import op_def_registry

        return op_def_registry.get(op)
    except Exception:  # noqa: BLE001 -- registry not importable: every op is judged by name alone
        return None


def _attr_names_a_file(node, name: str) -> bool:
    if name not in node.attr:
        return False
    a = node.attr[name]
    return bool(a.s or a.list.s)


def _path_args(node, functions: dict) -> list[tuple[int, str]] | None:
    """(index, name) of the node's inputs that are paths or handles to file readers/writers; None when the op is
    not path-free for another reason (an attribute names a file, a Python callback, an unknown op named for files).
    [] when the op opens nothing."""
    op = node.op
    if op in functions:
        return []  # a call: the function's own nodes are checked
    if op in REFUSED_OPS:
        return None
    if op == "PrintV2" and "output_stream" in node.attr:
        return None if node.attr["output_stream"].s.decode("utf-8", "replace").startswith("file://") else []
    if op in ("DecodeProtoV2", "EncodeProto") and "descriptor_source" in node.attr:
        return None if node.attr["descriptor_source"].s not in (b"", b"local://") else []
    if op in ATTR_OPS and _attr_names_a_file(node, ATTR_OPS[op]):
        return None
    if any(_attr_names_a_file(node, a) for a in PATH_ATTRS):
        return None
    op_def = _op_def(op)
    if op_def is None:
        return None if UNKNOWN_FILE_OP.search(op) else []
    if any(a.name in HANDLE_ARGS for a in (*op_def.input_arg, *op_def.output_arg)):
        return None
    found, index = [], 0
    for arg in op_def.input_arg:  # a list argument (N of them) is given as N inputs
        n = 1
        if arg.number_attr:
            n = node.attr[arg.number_attr].i if arg.number_attr in node.attr else 1
        elif arg.type_list_attr:
            n = len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else 1
        if arg.name in PATH_INPUTS:
            found += [(index + k, arg.name) for k in range(n)]
        index += n
    return found


def _producer(inputs: list[str], i: int, nodes: dict) -> str:
    """The node (or function argument) that feeds data input ``i``, through Identity nodes."""
    data = [t for t in inputs if not t.startswith("^")]
    name = data[i].split(":")[0] if i < len(data) else ""
    seen = set()
    while name in nodes and nodes[name].op in ("Identity", "Snapshot") and name not in seen:
        seen.add(name)
        data = [t for t in nodes[name].input if not t.startswith("^")]
        name = data[0].split(":")[0] if data else ""
    return name


def _empty_const(node) -> bool:
    return node is not None and node.op == "Const" and all(v == b"" for v in node.attr["value"].tensor.string_val)


def _opens_paths(node, functions: dict, nodes: dict, asset_sources: set[str]) -> bool:
    """True when the node may open a path outside the model's own assets."""
    paths = _path_args(node, functions)
    if paths is None:
        return True
    for index, _ in paths:
        source = _producer(list(node.input), index, nodes)
        if _empty_const(nodes.get(source)):
            continue
        if source in asset_sources and ASSET_READERS.match(node.op):
            continue
        return True
    return False


def _called(node) -> set[str]:
    """Function names a NodeDef calls: its op (a library function called directly) and func-valued attrs."""
    names = {node.op}
    for attr in node.attr.values():
        if attr.HasField("func"):
            names.add(attr.func.name)
        if attr.HasField("list"):
            names.update(f.name for f in attr.list.func)
    return names


def _reach(start: set[str], functions: dict) -> set[str]:
    seen: set[str] = set()
    todo = [n for n in start if n in functions]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            todo.extend(n for n in _called(node) if n in functions and n not in seen)
    return seen


def refused_ops(graph_def, saver_nodes: set[str] = frozenset(), extra_roots: set[str] = frozenset(),
                asset_args: dict[str, set[str]] | None = None, asset_nodes: set[str] = frozenset()) -> dict[str, str]:
    """``{op: where}`` for each refused op in ``graph_def`` (top-level nodes and every library function).
    Checkpoint ops are allowed in functions reachable only from the top-level nodes ``saver_nodes``; reading a
    path is allowed when it is one of the model's assets: argument names per function (``asset_args``) or
    top-level nodes (``asset_nodes``)."""
    functions = {f.signature.name: f for f in graph_def.library.function}
    asset_args = asset_args or {}
    saver_roots: set[str] = set()
    other_roots: set[str] = set(extra_roots)
    found: dict[str, str] = {}
    top = {n.name: n for n in graph_def.node}
    for node in graph_def.node:
        in_saver = node.name in saver_nodes
        (saver_roots if in_saver else other_roots).update(_called(node))
        if (node.op in CHECKPOINT_OPS and not in_saver) or (
                node.op not in CHECKPOINT_OPS and _opens_paths(node, functions, top, set(asset_nodes))):
            found.setdefault(node.op, f"node {node.name!r}")
    # functions not called from any top-level node may still be called by the loaded object (e.g. a resource
    # initializer): only functions reached from the saver alone may hold checkpoint ops
    saver_only = _reach(saver_roots, functions) - _reach(other_roots, functions)
    for name, fn in functions.items():
        nodes = {n.name: n for n in fn.node_def}
        for node in fn.node_def:
            if node.op in CHECKPOINT_OPS and name in saver_only:
                continue
            if _opens_paths(node, functions, nodes, asset_args.get(name, set())):
                found.setdefault(node.op, f"function {name!r}, node {node.name!r}")
    return found


def _assets(meta, where: str) -> tuple[dict[str, set[str]], set[str]]:
    """The model's own asset files as the graph sees them: per concrete function, the argument names bound to an
    ``asset`` object; the top-level tensors of ``asset_file_def`` (TF1). Every asset file name must stay inside
    ``assets/`` (an absolute or ``..`` name would point the reader anywhere)."""
    for a in meta.asset_file_def:
        name = a.filename.replace("\\", "/")
        if not name or name.startswith("/") or ".." in name.split("/") or ":" in name:
            raise InputError(f"the SavedModel names an asset file outside its assets/ folder: {a.filename!r}",
                             where=where, hint="re-export the model; assets must be files inside assets/")
    nodes = meta.object_graph_def.nodes
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    args: dict[str, set[str]] = {}
    for name, cf in meta.object_graph_def.concrete_functions.items():
        fn = functions.get(name)
        if fn is None or not cf.bound_inputs:
            continue
        inputs = list(fn.signature.input_arg)
        captured = inputs[len(inputs) - len(cf.bound_inputs):]
        args[name] = {arg.name for arg, node_id in zip(captured, cf.bound_inputs)
                      if 0 <= node_id < len(nodes) and nodes[node_id].WhichOneof("kind") == "asset"}
    return args, {a.tensor_info.name.split(":")[0] for a in meta.asset_file_def}


def check_saved_model(folder: Path, where: str) -> None:
    """Refuse a SavedModel folder whose graphs touch files or call Python. Reads ``saved_model.pb`` only."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = folder / "saved_model.pb"
    if not pb.is_file():  # saved_model.pbtxt: the loader reports what it cannot read
        return
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as e:
        raise InputError("saved_model.pb could not be parsed (corrupt or truncated)", where=str(pb),
                         hint="re-export the model with tf.saved_model.save or model.export") from e
    for meta in sm.meta_graphs:
        saver = meta.saver_def
        saver_nodes = {t.split(":")[0] for t in (saver.save_tensor_name, saver.restore_op_name,
                                                 saver.filename_tensor_name) if t}
        roots = set(meta.object_graph_def.concrete_functions)
        asset_args, asset_nodes = _assets(meta, where)
        _raise_if_found(refused_ops(meta.graph_def, saver_nodes, roots, asset_args, asset_nodes), where)


def check_graph_def(graph_def, where: str) -> None:
    """Refuse a frozen GraphDef whose ops touch files or call Python."""
    _raise_if_found(refused_ops(graph_def), where)


def _raise_if_found(found: dict[str, str], where: str) -> None:
    if not found:
        return
    ops = ", ".join(sorted(found))
    first = sorted(found)[0]
    raise InputError(
        f"the model's graph holds op(s) that touch the file system or run Python: {ops} "
        f"(first: {first} in {found[first]}); packager refuses to run it",
        where=where,
        hint="export an inference-only graph without file I/O (datasets or caches on files, tables read from a "
             "path, tf.io, summaries), tf.py_function or network ops (e.g. model.export(dir) from the Keras model); "
             "a vocabulary the model reads belongs inside the SavedModel as an asset (tf.saved_model.Asset)",
    )
