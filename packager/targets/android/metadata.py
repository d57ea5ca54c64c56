"""TFLite model metadata (the standard ``metadata_schema.fbs``, file identifier ``M001``) for the Android module.

The metadata flatbuffer is built here with the ``flatbuffers`` builder (tflite-support, which ships the
generated schema code, cannot be installed next to TensorFlow 2.19): model name/description/version/author/
license, per input the image properties (colour space, size) and the normalisation (mean/std) as a
``NormalizationOptions`` process unit, per output a feature tensor, and on the first output the labels as an
associated ``TENSOR_AXIS_LABELS`` file. It is stored in the model as a ``TFLITE_METADATA`` buffer, and
``labels.txt`` is zipped onto the end of the model file, as the metadata spec describes — interpreters ignore
both.

Field slots follow ``tensorflow_lite_support/metadata/metadata_schema.fbs`` (schema 1.x); only fields of
parser version 1.0.0 are written.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packager.source import Source
    from packager.spec import PackageSpec

METADATA_BUFFER_NAME = "TFLITE_METADATA"
METADATA_FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"

# enums / union tags of metadata_schema.fbs
ASSOCIATED_FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACE = {"rgb": 1, "grayscale": 2, "bgr": 0}  # the schema has no BGR: UNKNOWN, explained in the description
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2
PROCESS_UNIT_NORMALIZATION = 1


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - older environments
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def signature_io_names(tflite_path: Path, order: str = "graph") -> tuple[list[str], list[str]]:
    """Names of the model's inputs and outputs, from its ``serving_default`` signature (the first one if none has that
    key; tensor names if it has none).

    ``order="graph"``: the subgraph's input/output tensor order: what TFLite's C API index, LiteRT 2.3's signature
    index (it lists a signature's tensors in the subgraph's order) and the metadata's tensor lists mean. Each tensor is
    named by the next signature key bound to it, so two keys bound to one tensor (``{"b": p, "c": p}``, the tensor
    listed twice among the outputs) get one entry each. ``order="signature"``: as the signature lists them in the
    file (sorted keys)."""
    _, _, names_in, names_out = _signature_io(tflite_path, order)
    return names_in, names_out


def shared_outputs(tflite_path: Path) -> list[str]:
    """The output names (as ``signature_io_names``) bound to the same tensor as another output: LiteRT 2.3's C API
    reports one key for all of them (``{"b": p, "c": p, "a": q}`` reads as c, c, a), and their values are equal."""
    _, tensors_out, _, names_out = _signature_io(tflite_path, "graph")
    return [n for n, t in zip(names_out, tensors_out) if tensors_out.count(t) > 1]


def _signature_io(tflite_path: Path, order: str) -> tuple[list[int], list[int], list[str], list[str]]:
    """(input tensor indices, output tensor indices, input names, output names) in ``order``."""
    if order not in ("graph", "signature"):
        raise ValueError(f"order must be 'graph' or 'signature', not {order!r}")
    schema = _schema()
    data = Path(tflite_path).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    sigs = [model.SignatureDefs(i) for i in range(model.SignatureDefsLength())]
    sig = next((g for g in sigs if (g.SignatureKey() or b"").decode("utf-8", "replace") == "serving_default"),
               sigs[0] if sigs else None)
    sub = model.Subgraphs(sig.SubgraphIndex() if sig is not None else 0)

    def tensor_names(indices: list[int]) -> list[str]:
        return [(sub.Tensors(i).Name() or b"").decode("utf-8", "replace") for i in indices]

    graph_in = [int(i) for i in sub.InputsAsNumpy()] if sub.InputsLength() else []
    graph_out = [int(i) for i in sub.OutputsAsNumpy()] if sub.OutputsLength() else []
    if sig is None:
        return graph_in, graph_out, tensor_names(graph_in), tensor_names(graph_out)
    pairs_in = [(sig.Inputs(j).Name().decode("utf-8", "replace"), int(sig.Inputs(j).TensorIndex()))
                for j in range(sig.InputsLength())]
    pairs_out = [(sig.Outputs(j).Name().decode("utf-8", "replace"), int(sig.Outputs(j).TensorIndex()))
                 for j in range(sig.OutputsLength())]
    if order == "signature":
        return ([t for _, t in pairs_in], [t for _, t in pairs_out], [n for n, _ in pairs_in],
                [n for n, _ in pairs_out])

    def by_graph(pairs: list[tuple[str, int]], graph: list[int]) -> list[str]:
        free = list(pairs)
        names = []
        for t in graph:
            hit = next((p for p in free if p[1] == t), None)
            if hit is None:  # the signature does not cover the graph: tensor names
                return tensor_names(graph)
            free.remove(hit)
            names.append(hit[0])
        return names

    return graph_in, graph_out, by_graph(pairs_in, graph_in), by_graph(pairs_out, graph_out)


# ---- metadata flatbuffer -------------------------------------------------------------------------------------

def _strings(b, values):
    return [b.CreateString(v) for v in values]


def _vector_of_tables(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _float_vector(b, values):
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _table(b, slots: dict[int, tuple[str, object]], nslots: int):
    """Write a table: ``slots`` = {slot: (kind, value)}; kind in offset/uint8/uint32."""
    b.StartObject(nslots)
    for slot, (kind, value) in sorted(slots.items(), reverse=True):
        if value is None:
            continue
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            b.PrependUint8Slot(slot, value, 0)
        elif kind == "uint32":
            b.PrependUint32Slot(slot, value, 0)
        else:  # pragma: no cover
            raise ValueError(kind)
    return b.EndObject()


def build_metadata(*, name: str, description: str, version: str, author: str, license: str,
                   inputs: list[dict], outputs: list[dict]) -> bytes:
    """``inputs``/``outputs``: dicts with ``name`` and optionally ``image`` ({color, width, height}),
    ``mean``/``std`` (lists), ``labels_file`` (name of the zipped labels file)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def tensor_md(t: dict) -> int:
        name_off = b.CreateString(t["name"])
        desc_off = b.CreateString(t["description"]) if t.get("description") else None
        if t.get("image"):
            size = _table(b, {0: ("uint32", t["image"]["width"]), 1: ("uint32", t["image"]["height"])}, 2)
            props = _table(b, {0: ("uint8", COLOR_SPACE[t["image"]["color"]]), 1: ("offset", size)}, 2)
            content = _table(b, {0: ("uint8", CONTENT_IMAGE), 1: ("offset", props)}, 3)
        else:
            props = _table(b, {}, 0)
            content = _table(b, {0: ("uint8", CONTENT_FEATURE), 1: ("offset", props)}, 3)
        units = stats = files = None
        if t.get("mean") is not None:
            norm = _table(b, {0: ("offset", _float_vector(b, t["mean"])), 1: ("offset", _float_vector(b, t["std"]))}, 2)
            unit = _table(b, {0: ("uint8", PROCESS_UNIT_NORMALIZATION), 1: ("offset", norm)}, 2)
            units = _vector_of_tables(b, [unit])
            lo = [(0.0 - m) / s for m, s in zip(t["mean"], t["std"])]
            hi = [(255.0 - m) / s for m, s in zip(t["mean"], t["std"])]
            stats = _table(b, {0: ("offset", _float_vector(b, [max(a, c) for a, c in zip(lo, hi)])),
                               1: ("offset", _float_vector(b, [min(a, c) for a, c in zip(lo, hi)]))}, 2)
        if t.get("labels_file"):
            f = _table(b, {0: ("offset", b.CreateString(t["labels_file"])),
                           1: ("offset", b.CreateString("Labels of the classes, one per line, in output order.")),
                           2: ("uint8", ASSOCIATED_FILE_TENSOR_AXIS_LABELS)}, 4)
            files = _vector_of_tables(b, [f])
        return _table(b, {0: ("offset", name_off), 1: ("offset", desc_off), 3: ("offset", content),
                          4: ("offset", units), 5: ("offset", stats), 6: ("offset", files)}, 7)

    in_md = _vector_of_tables(b, [tensor_md(t) for t in inputs])
    out_md = _vector_of_tables(b, [tensor_md(t) for t in outputs])
    sub = _table(b, {0: ("offset", b.CreateString(name)), 2: ("offset", in_md), 3: ("offset", out_md)}, 7)
    subs = _vector_of_tables(b, [sub])
    strs = {k: (b.CreateString(v) if v else None) for k, v in
            (("name", name), ("description", description), ("version", version), ("author", author),
             ("license", license), ("mpv", MIN_PARSER_VERSION))}
    root = _table(b, {0: ("offset", strs["name"]), 1: ("offset", strs["description"]),
                      2: ("offset", strs["version"]), 3: ("offset", subs), 4: ("offset", strs["author"]),
                      5: ("offset", strs["license"]), 7: ("offset", strs["mpv"])}, 8)
    b.Finish(root, file_identifier=METADATA_FILE_IDENTIFIER)
    return bytes(b.Output())


# ---- a small reader (for tests and the check that the metadata round-trips) ----------------------------------

def _tab(buf: bytes, pos: int):
    import flatbuffers

    t = flatbuffers.table.Table(bytearray(buf), pos)
    return t


def _field_string(t, slot: int) -> str | None:
    o = t.Offset(4 + 2 * slot)
    return t.String(o + t.Pos).decode("utf-8") if o else None


def _field_table(t, slot: int):
    import flatbuffers

    o = t.Offset(4 + 2 * slot)
    return flatbuffers.table.Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _field_vector_tables(t, slot: int) -> list:
    import flatbuffers

    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start, n = t.Vector(o), t.VectorLen(o)
    return [flatbuffers.table.Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)]


def _field_floats(t, slot: int) -> list[float]:
    import struct

    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start, n = t.Vector(o), t.VectorLen(o)
    return list(struct.unpack_from(f"<{n}f", t.Bytes, start))


def _field_uint8(t, slot: int) -> int:
    o = t.Offset(4 + 2 * slot)
    return t.Bytes[o + t.Pos] if o else 0


def read_metadata(tflite_path: Path) -> dict:
    """The metadata embedded by :func:`embed_metadata`, as a plain dict (plus the zipped file names)."""
    import flatbuffers

    schema = _schema()
    data = Path(tflite_path).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    meta_bytes = None
    for i in range(model.MetadataLength()):
        m = model.Metadata(i)
        if m.Name() == METADATA_BUFFER_NAME.encode():
            meta_bytes = model.Buffers(m.Buffer()).DataAsNumpy().tobytes()
    if meta_bytes is None:
        raise ValueError(f"{tflite_path} has no {METADATA_BUFFER_NAME}")
    if meta_bytes[4:8] != METADATA_FILE_IDENTIFIER:
        raise ValueError("metadata buffer has the wrong file identifier")
    root = _tab(meta_bytes, flatbuffers.encode.Get(flatbuffers.packer.uoffset, meta_bytes, 0))

    def tensor(t) -> dict:
        out = {"name": _field_string(t, 0)}
        content = _field_table(t, 3)
        if content is not None:
            out["content_type"] = _field_uint8(content, 0)
            props = _field_table(content, 1)
            if out["content_type"] == CONTENT_IMAGE and props is not None:
                out["color_space"] = _field_uint8(props, 0)
        for unit in _field_vector_tables(t, 4):
            if _field_uint8(unit, 0) == PROCESS_UNIT_NORMALIZATION:
                norm = _field_table(unit, 1)
                out["mean"], out["std"] = _field_floats(norm, 0), _field_floats(norm, 1)
        out["associated_files"] = [(_field_string(f, 0), _field_uint8(f, 2)) for f in _field_vector_tables(t, 6)]
        return out

    subs = _field_vector_tables(root, 3)
    zipped = {}
    if zipfile.is_zipfile(tflite_path):  # labels are zipped onto the model only when there are labels
        with zipfile.ZipFile(tflite_path) as zf:
            zipped = {n: zf.read(n).decode("utf-8") for n in zf.namelist()}
    return {
        "name": _field_string(root, 0), "description": _field_string(root, 1), "version": _field_string(root, 2),
        "author": _field_string(root, 4), "license": _field_string(root, 5),
        "min_parser_version": _field_string(root, 7),
        "inputs": [tensor(t) for t in _field_vector_tables(subs[0], 2)] if subs else [],
        "outputs": [tensor(t) for t in _field_vector_tables(subs[0], 3)] if subs else [],
        "files": zipped,
    }


# ---- embedding -----------------------------------------------------------------------------------------------

def labels_text(labels) -> str:
    return "".join(f"{label}\n" for label in labels)


def labelled_output_index(spec: PackageSpec, source: Source, out_names: list[str]) -> int:
    """Index (in the .tflite's output order) of the output ``spec.labels`` label: the primary output."""
    from packager.kinds import primary_name

    primary = primary_name(spec, source)
    return out_names.index(primary) if primary in out_names else 0


def embed_metadata(tflite_path: Path, spec: PackageSpec, source: Source) -> None:
    """Write labels and normalisation into ``tflite_path`` (in place) with the standard metadata schema."""
    import flatbuffers
    import numpy as np

    schema = _schema()
    tflite_path = Path(tflite_path)
    in_names, out_names = signature_io_names(tflite_path)  # graph order: the metadata's tensor lists
    specs_in = {t.name: t for t in source.inputs}
    inputs = []
    for n in in_names:
        t: dict = {"name": n}
        ts = specs_in.get(n)
        if source.is_image and ts is not None and len(ts.shape) == 4:
            h, w, c = (int(d) for d in ts.shape[1:4])
            t.update(image={"color": spec.preprocessing.color, "width": w, "height": h},
                     description=f"{w}x{h} {spec.preprocessing.color.upper()} image, pixels 0..255, "
                                 "normalised per channel as (x - mean) / std.")
            if spec.preprocessing.standardised:  # no fixed NormalizationOptions: each image's own statistics
                t["description"] = (f"{w}x{h} {spec.preprocessing.color.upper()} image, pixels 0..255, "
                                    f"standardised {spec.preprocessing.normalize}: (x - mean(x)) / "
                                    "max(std(x), 1/sqrt(N)) with the image's own statistics.")
            else:
                mean, std = spec.preprocessing.per_channel(c)
                t.update(mean=list(mean), std=list(std))
        inputs.append(t)
    outputs = [{"name": n} for n in out_names]
    if spec.labels and outputs:  # the primary output's labels (packager.kinds), on that output
        outputs[labelled_output_index(spec, source, out_names)]["labels_file"] = LABELS_FILE
    meta = build_metadata(name=spec.display_name, description=spec.description, version=spec.version,
                          author=spec.author, license=spec.license, inputs=inputs, outputs=outputs)

    data = tflite_path.read_bytes()
    end = _flatbuffer_end(data)
    model = schema.ModelT.InitFromPackedBuf(data[:end], 0)
    old = [m for m in (model.metadata or []) if m.name in (METADATA_BUFFER_NAME, METADATA_BUFFER_NAME.encode())]
    model.metadata = [m for m in (model.metadata or []) if m not in old]
    for m in sorted(old, key=lambda m: -m.buffer):  # re-embedding: drop the old buffer when nothing else uses it
        used = {b for sub in model.subgraphs or [] for t in sub.tensors or [] for b in [t.buffer]}
        used |= {e.buffer for e in model.metadata}
        if m.buffer == len(model.buffers) - 1 and m.buffer not in used:
            model.buffers.pop()
    buf = schema.BufferT()
    buf.data = np.frombuffer(meta, dtype=np.uint8)
    model.buffers = (model.buffers or []) + [buf]
    entry = schema.MetadataT()
    entry.name = METADATA_BUFFER_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + len(meta) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    tflite_path.write_bytes(bytes(builder.Output()))
    if spec.labels:
        with zipfile.ZipFile(tflite_path, "a") as zf:
            info = zipfile.ZipInfo(LABELS_FILE, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, labels_text(spec.labels).encode("utf-8"))


def _flatbuffer_end(data: bytes) -> int:
    """Length of the model flatbuffer when files were already zipped onto it (else the whole file)."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            starts = [i.header_offset for i in zf.infolist()]
        if starts:
            return min(starts)
    return len(data)


def outputs_differ(validated: Path, with_metadata: Path, samples, count: int = 4) -> str | None:
    """Run both .tflite files on the first ``count`` real samples (fed as the android target feeds them:
    quantized for integer inputs, token ids as they are); None when every output is bit-identical."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from packager.targets.android.tflite import _quantize

    results = []
    for path in (validated, with_metadata):
        runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("serving_default")
        details = runner.get_input_details()
        outs = []
        for i in range(min(count, len(samples))):
            sample = samples[i]
            outs.append(runner(**{name: _quantize(np.asarray(sample[name]), details[name]) for name in details}))
        results.append(outs)
    for i, (a, b) in enumerate(zip(*results)):
        for name in a:
            if not np.array_equal(a[name], b[name]):
                return f"output {name!r} on sample {i}"
    return None
