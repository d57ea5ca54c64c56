"""MIL ``Value`` messages -> NumPy: immediate tensors (numbers, strings, packed bytes), lists, and
``BlobFileValue`` weights read from ``weights/weight.bin`` with coremltools' own blob reader
(``coremltools.libmilstoragepython``, shipped in the Linux wheel), sub-byte types (uint1..uint6, int4)
unpacked least significant bit first, as coremltools packs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer

# MIL DataType enum -> NumPy dtype (sub-byte types are held unpacked in the smallest integer type)
NUMPY = {
    1: np.bool_, 10: np.float16, 11: np.float32, 12: np.float64, 21: np.int8, 22: np.int16, 23: np.int32,
    24: np.int64, 25: np.int8, 31: np.uint8, 32: np.uint16, 33: np.uint32, 34: np.uint64, 35: np.uint8,
    36: np.uint8, 37: np.uint8, 38: np.uint8, 39: np.uint8,
}
STRING = 2
SUB_BYTE_BITS = {25: 4, 35: 4, 36: 2, 37: 1, 38: 6, 39: 3}
NAMES = {1: "bool", 2: "string", 10: "fp16", 11: "fp32", 12: "fp64", 13: "bf16", 21: "int8", 22: "int16",
         23: "int32", 24: "int64", 25: "int4", 31: "uint8", 32: "uint16", 33: "uint32", 34: "uint64",
         35: "uint4", 36: "uint2", 37: "uint1", 38: "uint6", 39: "uint3", 40: "fp8e4m3", 41: "fp8e5m2"}
_BLOB_READ = {10: "read_fp16_data", 11: "read_float_data", 21: "read_int8_data", 22: "read_int16_data",
              23: "read_int32_data", 25: "read_int4_data", 31: "read_uint8_data", 32: "read_uint16_data",
              33: "read_uint32_data", 35: "read_uint4_data", 36: "read_uint2_data", 37: "read_uint1_data",
              38: "read_uint6_data", 39: "read_uint3_data"}
# dtype names of the ``cast`` op's ``dtype`` argument
CAST_NAMES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8, "uint8": np.uint8,
              "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def numpy_dtype(data_type: int, where: str = ""):
    if data_type == STRING:
        return object
    if data_type not in NUMPY:
        raise UnsupportedLayer(f"data type {NAMES.get(data_type, data_type)}", where)
    return NUMPY[data_type]


def static_shape(tensor_type) -> tuple[int, ...] | None:
    """The tensor type's shape, or None when a dimension is unknown."""
    dims = []
    for d in tensor_type.dimensions:
        if d.WhichOneof("dimension") != "constant":
            return None
        dims.append(int(d.constant.size))
    return tuple(dims)


def unpack_bits(raw: bytes, nbits: int, count: int, signed: bool) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[: count * nbits].reshape(count, nbits)
    values = (bits.astype(np.int64) << np.arange(nbits)).sum(axis=1)
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
    return values


class Weights:
    """The package's blob files, each opened once."""

    def __init__(self, weights_dir: Path | None):
        self.dir = weights_dir
        self.readers: dict[str, object] = {}

    def read(self, blob, data_type: int, where: str) -> np.ndarray:
        if self.dir is None:
            raise ExecutorError(f"{where}: weights stored in a blob file, but the model has no weights folder")
        name = blob.fileName.split("/")[-1]
        path = self.dir / name
        if not path.is_file():
            raise ExecutorError(f"{where}: weight file {blob.fileName!r} is missing from the .mlpackage")
        if name not in self.readers:
            from coremltools.libmilstoragepython import _BlobStorageReader

            self.readers[name] = _BlobStorageReader(str(path))
        method = _BLOB_READ.get(data_type)
        if method is None:
            raise UnsupportedLayer(f"blob data type {NAMES.get(data_type, data_type)}", where)
        data = np.asarray(getattr(self.readers[name], method)(int(blob.offset)))
        if data_type == 10:
            data = data.view(np.float16)
        return data.astype(NUMPY[data_type], copy=False)


def decode(value, weights: Weights, where: str = ""):
    """A ``Value`` as a NumPy array (tensors), a Python list (lists) or dict (dictionaries)."""
    vtype = value.type.WhichOneof("type")
    kind = value.WhichOneof("value")
    if vtype == "listType" and kind == "immediateValue":
        return [decode(v, weights, where) for v in value.immediateValue.list.values]
    if vtype == "dictionaryType" and kind == "immediateValue":
        return {decode(e.key, weights, where).item(): decode(e.value, weights, where)
                for e in value.immediateValue.dictionary.values}
    if vtype != "tensorType":
        raise UnsupportedLayer(f"value type {vtype}", where)
    t = value.type.tensorType
    shape = static_shape(t)
    dtype = numpy_dtype(t.dataType, where)
    if kind == "blobFileValue":
        data = weights.read(value.blobFileValue, t.dataType, where)
    elif kind == "immediateValue":
        data = _immediate(value.immediateValue.tensor, t.dataType, shape, dtype, where)
    else:
        raise ExecutorError(f"{where}: a value with neither an immediate value nor a blob")
    if shape is not None and data.size == int(np.prod(shape, dtype=np.int64)):
        data = data.reshape(shape)
    return data


def _immediate(tensor, data_type: int, shape, dtype, where: str) -> np.ndarray:
    field = tensor.WhichOneof("value")
    if field is None:
        return np.zeros(shape or (0,), dtype)
    if field == "bytes":
        raw = tensor.bytes.values
        if data_type in SUB_BYTE_BITS:
            count = int(np.prod(shape)) if shape is not None else len(raw) * 8 // SUB_BYTE_BITS[data_type]
            return unpack_bits(raw, SUB_BYTE_BITS[data_type], count, data_type == 25).astype(dtype)
        return np.frombuffer(raw, dtype=dtype).copy()
    values = list(getattr(tensor, field).values)
    if field == "strings":
        return np.asarray(values, dtype=object)
    return np.asarray(values).astype(dtype)
