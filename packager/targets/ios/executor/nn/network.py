"""The spec walker: loads a NeuralNetwork spec, binds every layer (nested networks of loops and
branches included) to its NumPy function, feeds the inputs the way Core ML does and runs the layers
in order on one shared blob table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from packager.targets.ios.executor.nn import (
    activations,
    control,
    dense,
    elementwise,
    indexing,
    recurrent,
    reductions,
    resample,
    shapes,
    spatial,
)
from packager.targets.ios.executor.nn.common import F32, ControlOp, ExecutorError, UnsupportedLayer
from packager.targets.ios.executor.nn.control import nested_networks

BUILDERS: dict = {}
for _module in (activations, dense, elementwise, indexing, recurrent, reductions, resample, shapes, spatial,
                control):
    BUILDERS.update(_module.BUILDERS)
SUPPORTED_LAYERS: list[str] = sorted(BUILDERS)


def load_spec(spec_or_path):
    """A ``Model_pb2.Model`` from a path (``.mlmodel``) or an already loaded spec."""
    if isinstance(spec_or_path, (str, Path)):
        from coremltools.proto import Model_pb2

        spec = Model_pb2.Model()
        spec.ParseFromString(Path(spec_or_path).read_bytes())
        return spec
    return spec_or_path


def network_of(spec):
    kind = spec.WhichOneof("Type")
    if kind not in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        raise UnsupportedLayer(f"model type {kind}", detail="only NeuralNetwork models (.mlmodel) are executed")
    return kind, getattr(spec, kind)


def walk(layers):
    """Every layer of a network, the layers of loop and branch bodies included (depth first)."""
    for layer in layers:
        yield layer
        for sub in nested_networks(layer):
            yield from walk(sub.layers)


def layer_types(spec_or_path) -> list[str]:
    """The distinct layer types of a model (nested networks included), in first-use order."""
    _, nn = network_of(load_spec(spec_or_path))
    seen: dict[str, None] = {}
    for layer in walk(nn.layers):
        seen.setdefault(layer.WhichOneof("layer"), None)
    return list(seen)


def unsupported_layers(spec_or_path) -> list[str]:
    """The layer types of a model this executor cannot run, in first-use order."""
    return [t for t in layer_types(spec_or_path) if t not in BUILDERS]


def check_supported(layers) -> None:
    """Raise :class:`UnsupportedLayer` naming *every* unknown layer type (and one layer of each)."""
    unknown: dict[str, str] = {}
    for layer in walk(layers):
        kind = layer.WhichOneof("layer")
        if kind not in BUILDERS:
            unknown.setdefault(kind, layer.name)
    if unknown:
        raise UnsupportedLayer(list(unknown), list(unknown.values()))


def _relu_cap_chain(chain, consumers: Counter) -> float | None:
    """coremltools writes ReLU6 (and any capped ReLU) as four layers: ReLU, linear(-1), unary
    threshold(-cap), linear(-1). Returns ``cap`` when ``chain`` is exactly that, each intermediate blob
    read by the next layer only (so fusing it changes nothing observable), else None."""
    if len(chain) != 4 or any(len(layer.input) != 1 or len(layer.output) != 1 for layer in chain):
        return None
    relu, neg1, thresh, neg2 = chain
    if not (relu.WhichOneof("layer") == "activation" and relu.activation.WhichOneof("NonlinearityType") == "ReLU"):
        return None
    for neg in (neg1, neg2):
        if not (neg.WhichOneof("layer") == "activation" and neg.activation.WhichOneof("NonlinearityType") == "linear"
                and neg.activation.linear.alpha == -1.0 and neg.activation.linear.beta == 0.0):
            return None
    u = thresh.unary if thresh.WhichOneof("layer") == "unary" else None
    if u is None or u.type != 7 or u.scale not in (0.0, 1.0) or u.shift != 0.0 or u.alpha >= 0:
        return None
    for a, b in ((relu, neg1), (neg1, thresh), (thresh, neg2)):
        if b.input[0] != a.output[0] or consumers[a.output[0]] != 1:
            return None
    return -float(u.alpha)


class Block:
    """One network's layers bound to NumPy functions, run in order on a shared blob table (nested networks
    of loops and branches read and write the same table, as in Core ML)."""

    def __init__(self, layers, consumers: Counter):
        layers = list(layers)
        self.steps: list[tuple[str, list[str], list[str], object]] = []
        i = 0
        while i < len(layers):
            cap = _relu_cap_chain(layers[i:i + 4], consumers)
            if cap is not None:  # ReLU -> x*-1 -> max(x, -cap) -> x*-1 is min(max(x, 0), cap): one pass
                self.steps.append((layers[i + 3].name, list(layers[i].input), list(layers[i + 3].output),
                                   lambda xs, cap=cap: [np.clip(xs[0], F32(0), F32(cap))]))
                i += 4
                continue
            layer = layers[i]
            kind = layer.WhichOneof("layer")
            if kind in control.BUILDERS:
                op = control.BUILDERS[kind](layer, lambda net: Block(net.layers, consumers))
            else:
                op = BUILDERS[kind](layer)
            self.steps.append((layer.name, list(layer.input), list(layer.output), op))
            i += 1

    def run(self, blobs: dict[str, np.ndarray]) -> None:
        for name, ins, outs, op in self.steps:
            if isinstance(op, ControlOp):
                op(blobs)
                continue
            try:
                args = [blobs[i] for i in ins]
            except KeyError as e:
                raise ExecutorError(f"layer {name!r} reads unknown blob {e.args[0]!r}") from None
            for o, r in zip(outs, op(args)):
                blobs[o] = r if r.ndim else r.reshape(1)  # a NeuralNetwork has no rank-0 tensors: scalars are (1,)


class Program:
    """A compiled model: weights decoded once, layers bound to NumPy functions."""

    def __init__(self, spec_or_path):
        self.spec = load_spec(spec_or_path)
        self.kind, self.nn = network_of(self.spec)
        check_supported(self.nn.layers)
        consumers = Counter(i for layer in walk(self.nn.layers) for i in layer.input)
        consumers.update(o.name for o in self.spec.description.output)
        self.block = Block(self.nn.layers, consumers)
        self.steps = self.block.steps
        self.preprocessing = {p.featureName: p for p in self.nn.preprocessing}
        if not self.preprocessing and len(self.nn.preprocessing) == 1:
            self.preprocessing = {"": self.nn.preprocessing[0]}

    # -- inputs

    def _image_input(self, feature, value: np.ndarray) -> np.ndarray:
        img = feature.type.imageType
        space = img.colorSpace  # GRAYSCALE=10, RGB=20, BGR=30, GRAYSCALE_FLOAT16=40
        x = np.asarray(value, dtype=F32)
        if x.ndim == 4:
            x = x[0]
        if x.ndim == 2:
            x = x[:, :, None]
        if x.shape[:2] != (img.height, img.width) and img.height and img.width:
            raise ExecutorError(
                f"image input {feature.name!r} must be {img.height}x{img.width}, got {x.shape[0]}x{x.shape[1]}"
            )
        gray = space in (10, 40)
        if gray and x.shape[2] == 3:  # Core ML converts colour to gray (BT.601 luma)
            x = x @ np.asarray([0.299, 0.587, 0.114], F32)[:, None]
        if space == 30:
            x = x[:, :, ::-1]
        pre = self.preprocessing.get(feature.name) or self.preprocessing.get("")
        if pre is not None and pre.WhichOneof("preprocessor") == "scaler":
            s = pre.scaler
            scale = s.channelScale if s.channelScale != 0 else 1.0
            if gray:
                bias = np.asarray([s.grayBias], F32)
            elif space == 30:
                bias = np.asarray([s.blueBias, s.greenBias, s.redBias], F32)
            else:
                bias = np.asarray([s.redBias, s.greenBias, s.blueBias], F32)
            x = x * F32(scale) + bias
        elif pre is not None and pre.WhichOneof("preprocessor") is not None:
            raise UnsupportedLayer(f"preprocessing.{pre.WhichOneof('preprocessor')}")
        chw = np.ascontiguousarray(np.transpose(x, (2, 0, 1)))[None]
        if self.nn.imageInputShapeMapping == 0:  # RANK5: (Seq, Batch, C, H, W)
            chw = chw[None]
        return chw.astype(F32, copy=False)

    def _array_input(self, feature, value: np.ndarray) -> np.ndarray:
        x = np.asarray(value, dtype=F32)
        shape = tuple(feature.type.multiArrayType.shape)
        if self.nn.arrayInputShapeMapping == 0 and len(shape) in (1, 3):  # RANK5 legacy: (C,H,W) -> 5-D
            x = x.reshape((1, 1) + ((shape[0], 1, 1) if len(shape) == 1 else shape))
        return x

    # -- run

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs: dict[str, np.ndarray] = {}
        for feature in self.spec.description.input:
            if feature.name not in inputs:
                raise ExecutorError(f"missing input {feature.name!r}")
            kind = feature.type.WhichOneof("Type")
            if kind == "imageType":
                blobs[feature.name] = self._image_input(feature, inputs[feature.name])
            elif kind == "multiArrayType":
                blobs[feature.name] = self._array_input(feature, inputs[feature.name])
            else:
                raise UnsupportedLayer(f"input type {kind}")
        self.block.run(blobs)
        return self._outputs(blobs)

    def _outputs(self, blobs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.kind == "neuralNetworkClassifier":
            probs_name = self.nn.labelProbabilityLayerName or self.spec.description.predictedProbabilitiesName
            probs = blobs[probs_name].reshape(-1)
            labels = _class_labels(self.nn)
            if self.spec.description.predictedProbabilitiesName:
                out[self.spec.description.predictedProbabilitiesName] = probs
            out[self.spec.description.predictedFeatureName or "classLabel"] = np.asarray(labels[int(np.argmax(probs))])
            for feature in self.spec.description.output:
                if feature.name not in out and feature.name in blobs:
                    out[feature.name] = blobs[feature.name]
            return out
        for feature in self.spec.description.output:
            if feature.name not in blobs:
                raise ExecutorError(f"output {feature.name!r} is produced by no layer")
            out[feature.name] = blobs[feature.name]
        return out


def _class_labels(nn) -> list:
    kind = nn.WhichOneof("ClassLabels")
    if kind == "stringClassLabels":
        return list(nn.stringClassLabels.vector)
    if kind == "int64ClassLabels":
        return list(nn.int64ClassLabels.vector)
    return []


def compile_model(spec_or_path) -> Program:
    return Program(spec_or_path)


def run(spec_or_path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute a NeuralNetwork ``.mlmodel`` (path or spec) on one input set.

    For classifiers, the probabilities output is the full vector in label order and the
    predicted-feature output holds the top label.
    """
    return Program(spec_or_path)(inputs)
