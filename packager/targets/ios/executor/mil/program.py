"""The ``.mlpackage`` loader and the block walker: reads the manifest and the ML Program spec, decodes the
constants once (``const`` and the ``constexpr_*`` weight ops), binds every op of the ``main`` function to
its NumPy function and runs them in order. Each op's result is cast to the dtype its output declares, so
an fp16 program is rounded to fp16 after every op, as Core ML stores fp16 activations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from packager.targets.ios.executor.mil import registry
from packager.targets.ios.executor.mil.values import Weights, decode, numpy_dtype
from packager.targets.ios.executor.nn.common import ExecutorError, UnsupportedLayer

CONSTANT_OPS = ("const",) + registry.CONSTEXPR


def package_files(path: Path) -> tuple[Path, Path | None]:
    """(model spec file, weights folder) of an ``.mlpackage`` (or a bare spec file, no weights)."""
    path = Path(path)
    if path.is_file():
        return path, None
    manifest_path = path / "Manifest.json"
    if not manifest_path.is_file():
        raise ExecutorError(f"{path} is not an .mlpackage: it has no Manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = manifest.get("itemInfoEntries", {})
    root = entries.get(manifest.get("rootModelIdentifier", ""), {})
    if "path" not in root:
        raise ExecutorError(f"{manifest_path}: no root model entry")
    model = path / "Data" / root["path"]
    weights = model.parent / "weights"
    return model, weights if weights.is_dir() else None


def load(path) -> tuple[object, Path | None]:
    from coremltools.proto import Model_pb2

    model_file, weights = package_files(Path(path))
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    return spec, weights


def main_block(spec):
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise UnsupportedLayer(f"model type {kind}", detail="only ML Program models (.mlpackage) are executed here")
    functions = spec.mlProgram.functions
    if "main" not in functions:
        raise ExecutorError("the ML Program has no 'main' function")
    fn = functions["main"]
    if fn.opset not in fn.block_specializations:
        raise ExecutorError(f"the 'main' function has no block for its opset {fn.opset!r}")
    return fn, fn.block_specializations[fn.opset]


def walk(block):
    for op in block.operations:
        yield op
        for sub in op.blocks:
            yield from walk(sub)


def op_types(path) -> list[str]:
    """The distinct op types of a model's ``main`` function (nested blocks included), in first-use order."""
    spec, _ = load(path)
    return list(dict.fromkeys(op.type for op in walk(main_block(spec)[1])))


def check_supported(block) -> None:
    unknown: dict[str, str] = {}
    for op in walk(block):
        if op.type not in registry.OPS and op.type not in CONSTANT_OPS:
            unknown.setdefault(op.type, op.outputs[0].name if op.outputs else "")
    if unknown:
        raise UnsupportedLayer(list(unknown), list(unknown.values()),
                               detail="ML Program ops the NumPy MIL executor does not implement")


class Args:
    """An op's inputs by parameter name: ``a["x"]`` (one value), ``a.list("values")`` (variadic),
    ``a.get("axis", -1)`` (optional)."""

    def __init__(self, values: dict[str, list], op):
        self.values, self.op = values, op

    def __getitem__(self, key):
        if key not in self.values:
            raise ExecutorError(f"op {self.op.type} ({self.name}) lacks its input {key!r}")
        return self.values[key][0]

    def __contains__(self, key) -> bool:
        return key in self.values

    def get(self, key, default=None):
        return self.values[key][0] if key in self.values else default

    def list(self, key) -> list:
        return list(self.values.get(key, []))

    def scalar(self, key, default=None):
        v = self.get(key, default)
        return v.item() if isinstance(v, np.ndarray) else v

    def ints(self, key, default=None):
        v = self.get(key, default)
        return None if v is None else [int(i) for i in np.asarray(v).reshape(-1)]

    @property
    def name(self) -> str:
        return self.op.outputs[0].name if self.op.outputs else "?"


def _cast_to_declared(value, out_type, fp16: bool = True):
    if out_type.WhichOneof("type") != "tensorType" or not isinstance(value, np.ndarray):
        return value
    dtype = numpy_dtype(out_type.tensorType.dataType)
    if dtype is np.float16 and not fp16:
        dtype = np.float32
    return value if dtype is object or value.dtype == dtype else value.astype(dtype)


class Block:
    """A block's ops with their constants decoded; ``run(env)`` executes it on a name -> value table."""

    def __init__(self, block, weights: Weights, consts: dict, fp16: bool = True):
        self.fp16 = fp16
        self.outputs = list(block.outputs)
        self.steps = []
        for op in block.operations:
            if op.type in CONSTANT_OPS:
                consts.update(self._fold(op, weights, consts))
                continue
            bound = {k: [(b.name, None) if b.WhichOneof("binding") == "name" else (None, decode(b.value, weights))
                         for b in arg.arguments] for k, arg in op.inputs.items()}
            nested = [Block(sub, weights, consts, fp16) for sub in op.blocks]
            self.steps.append((op, bound, nested, registry.OPS[op.type]))
        self.inputs = [v.name for v in block.inputs]

    @staticmethod
    def _fold(op, weights: Weights, consts: dict) -> dict:
        where = op.outputs[0].name
        if op.type == "const":
            return {where: decode(op.attributes["val"], weights, where)}
        values = {}
        for k, arg in op.inputs.items():
            vals = []
            for b in arg.arguments:
                if b.WhichOneof("binding") == "name":
                    if b.name not in consts:
                        raise ExecutorError(f"{op.type} ({where}) reads {b.name!r}, which is not a constant")
                    vals.append(consts[b.name])
                else:
                    vals.append(decode(b.value, weights, where))
            values[k] = vals
        for k, v in op.attributes.items():  # iOS16 constexpr ops carry their data as attributes
            if k != "name":
                values[k] = [decode(v, weights, where)]
        out = registry.OPS_CONSTEXPR[op.type](Args(values, op))
        outs = out if isinstance(out, tuple) else (out,)
        return {o.name: _cast_to_declared(np.asarray(r), o.type) for o, r in zip(op.outputs, outs)}

    def run(self, env: dict) -> None:
        for op, bound, nested, fn in self.steps:
            try:
                values = {k: [env[n] if n is not None else v for n, v in b] for k, b in bound.items()}
            except KeyError as e:
                raise ExecutorError(f"op {op.type} ({op.outputs[0].name}) reads unknown value {e.args[0]!r}") from None
            args = Args(values, op)
            out = fn(args, nested, env) if op.type in registry.BLOCK_OPS else fn(args)
            outs = out if isinstance(out, tuple) else (out,)
            if len(outs) != len(op.outputs):
                raise ExecutorError(f"op {op.type} ({op.outputs[0].name}) gave {len(outs)} outputs, "
                                    f"the model declares {len(op.outputs)}")
            for o, r in zip(op.outputs, outs):
                if isinstance(r, (np.generic, int, float, bool)):
                    r = np.asarray(r)
                env[o.name] = _cast_to_declared(r, o.type, self.fp16)


class Program:
    """A compiled ``.mlpackage``: call it with ``{feature name: array}`` to get ``{feature name: array}``.

    ``fp16_activations=False`` keeps fp16-typed intermediate values in float32 (the weights stay as stored):
    a diagnostic, to tell the error of fp16 activations from that of fp16 weights."""

    def __init__(self, path, fp16_activations: bool = True):
        self.spec, weights_dir = load(path)
        self.function, block = main_block(self.spec)
        check_supported(block)
        self.consts: dict = {}
        self.block = Block(block, Weights(weights_dir), self.consts, fp16_activations)
        self.input_types = {v.name: v.type for v in self.function.inputs}

    def _feed(self, feature, value) -> np.ndarray:
        kind = feature.type.WhichOneof("Type")
        vt = self.input_types.get(feature.name)
        dtype = numpy_dtype(vt.tensorType.dataType) if vt is not None else np.float32
        if kind == "imageType":
            return image_tensor(feature.type.imageType, value, feature.name).astype(dtype, copy=False)
        if kind == "multiArrayType":
            return np.asarray(value).astype(dtype, copy=False)
        raise UnsupportedLayer(f"input type {kind}", feature.name)

    def __call__(self, inputs: dict) -> dict:
        env = dict(self.consts)
        for feature in self.spec.description.input:
            if feature.name not in inputs:
                raise ExecutorError(f"missing input {feature.name!r}")
            env[feature.name] = self._feed(feature, inputs[feature.name])
        self.block.run(env)
        out = {}
        for feature in self.spec.description.output:
            if feature.name not in env:
                raise ExecutorError(f"output {feature.name!r} is produced by no op")
            value = env[feature.name]
            out[feature.name] = value
        return out


def image_tensor(img, value, name: str) -> np.ndarray:
    """An (H, W, C) / (1, H, W, C) array of pixel values 0..255 -> the (1, C, H, W) float32 tensor Core ML
    feeds an ML Program: gray converted with BT.601 luma, BGR reordered; scale and bias are ops of the
    program itself."""
    x = np.asarray(value, dtype=np.float32)
    if x.ndim == 4:
        x = x[0]
    if x.ndim == 2:
        x = x[:, :, None]
    if img.height and img.width and x.shape[:2] != (img.height, img.width):
        raise ExecutorError(f"image input {name!r} must be {img.height}x{img.width}, got {x.shape[0]}x{x.shape[1]}")
    gray = img.colorSpace in (10, 40)
    if gray and x.shape[2] == 3:
        x = x @ np.asarray([0.299, 0.587, 0.114], np.float32)[:, None]
    if img.colorSpace == 30:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(np.transpose(x, (2, 0, 1)))[None]


def run(path, inputs: dict) -> dict:
    return Program(path)(inputs)
