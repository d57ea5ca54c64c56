"""Refuse graphs that touch the file system or call back into Python, before anything of them runs.

A SavedModel or frozen graph is a program: its serving function (and the initializers that run when it is
loaded) may write or read files (``WriteFile``, ``ReadFile``, ``MatchingFiles``, summary writers, file
datasets and readers) or call Python (``PyFunc``, ``EagerPyFunc``). packager executes the graph to compute the
reference outputs, so such a graph is refused by reading its protobuf only: nothing of it is loaded or run.

Every SavedModel carries checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``) in the saver
functions that ``saver_def`` names; those are allowed there and refused anywhere else (a serving function
could write a checkpoint to any path).
"""

from __future__ import annotations

from pathlib import Path

from packager.errors import InputError

REFUSED_OPS = frozenset({
    # files
    "WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "RecordInput",
    "Save", "SaveSlices", "Restore", "RestoreSlice", "LoadAndRemapMatrix", "GenerateVocabRemapping",
    # summaries (write event files)
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
    "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
    "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter", "CloseSummaryWriter",
    # readers and datasets over files
    "TFRecordReader", "TFRecordReaderV2", "WholeFileReader", "WholeFileReaderV2", "TextLineReader",
    "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader",
    "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
    "TextLineDataset", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
    "LoadDataset", "SqlDataset", "ExperimentalSqlDataset", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset",
    "LMDBDataset", "ExperimentalLMDBDataset", "SnapshotDataset", "SnapshotDatasetV2",
    # Python callbacks
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    # debugger ops that dump tensors to files or URLs; file-system configuration
    "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
    "DebugNumericSummaryV2", "FileSystemSetConfiguration",
})
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints"})


def _refused(node) -> bool:
    """An op in REFUSED_OPS, or one whose attributes point it at a file (``PrintV2`` to ``file://...``,
    ``DecodeProtoV2`` reading its descriptors from a file)."""
    if node.op in REFUSED_OPS:
        return True
    if node.op == "PrintV2" and "output_stream" in node.attr:
        return node.attr["output_stream"].s.decode("utf-8", "replace").startswith("file://")
    if node.op == "DecodeProtoV2" and "descriptor_source" in node.attr:
        return node.attr["descriptor_source"].s not in (b"", b"local://")
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


def refused_ops(graph_def, saver_nodes: set[str] = frozenset(), extra_roots: set[str] = frozenset()) -> dict[str, str]:
    """``{op: where}`` for each refused op in ``graph_def`` (top-level nodes and every library function).
    Checkpoint ops are allowed in functions reachable only from the top-level nodes ``saver_nodes``."""
    functions = {f.signature.name: f for f in graph_def.library.function}
    saver_roots: set[str] = set()
    other_roots: set[str] = set(extra_roots)
    found: dict[str, str] = {}
    for node in graph_def.node:
        in_saver = node.name in saver_nodes
        (saver_roots if in_saver else other_roots).update(_called(node))
        if _refused(node) or (node.op in CHECKPOINT_OPS and not in_saver):
            found.setdefault(node.op, f"node {node.name!r}")
    # functions not called from any top-level node may still be called by the loaded object (e.g. a resource
    # initializer): only functions reached from the saver alone may hold checkpoint ops
    saver_only = _reach(saver_roots, functions) - _reach(other_roots, functions)
    for name, fn in functions.items():
        for node in fn.node_def:
            if _refused(node) or (node.op in CHECKPOINT_OPS and name not in saver_only):
                found.setdefault(node.op, f"function {name!r}, node {node.name!r}")
    return found


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
        _raise_if_found(refused_ops(meta.graph_def, saver_nodes, roots), where)


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
        hint="export an inference-only graph without file I/O, tf.py_function or summaries "
             "(e.g. model.export(dir) from the Keras model)",
    )
