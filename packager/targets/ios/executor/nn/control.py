"""Control flow: ``loop`` (for / while / joint condition), ``branch`` (if / else), ``loopBreak``,
``loopContinue`` and ``copy``, the layers coremltools writes for TensorFlow ``while_loop`` / ``cond``
(e.g. every Keras RNN traced from a tf_keras model).

Nested networks share the caller's blob table: what a loop body or a branch writes (through ``copy``)
is visible after it, as ``NeuralNetwork.proto`` specifies. Conditions are scalars, true when |value| > 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from packager.targets.ios.executor.nn.common import ControlOp, ExecutorError

MAX_WHILE_ITERATIONS = 1_000_000  # a while loop whose condition never turns false is a broken model, not a hang


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def nested_networks(layer) -> list:
    """The networks a control-flow layer holds (condition and body of a loop, both arms of a branch)."""
    kind = layer.WhichOneof("layer")
    if kind == "loop":
        return [layer.loop.conditionNetwork, layer.loop.bodyNetwork]
    if kind == "branch":
        return [layer.branch.ifBranch, layer.branch.elseBranch]
    return []


def truth(value, what: str) -> bool:
    """A condition is true when its absolute value exceeds 1e-6 (NeuralNetwork.proto, BranchLayerParams)."""
    a = np.asarray(value).reshape(-1)
    if a.size != 1:
        raise ExecutorError(f"{what} must be a scalar, got {a.size} values")
    return bool(abs(float(a[0])) > 1e-6)


class Loop(ControlOp):
    """Case 1: no condition network -> ``for i < max``. Case 2: condition network, max 0, no input ->
    ``while cond``. Case 3: condition network and (max > 0 or an input) -> ``while cond and i < max``.
    An input, when present, is the iteration limit (``maxLoopIterations`` is then ignored)."""

    def __init__(self, layer, compile_block: Callable):
        p = layer.loop
        self.name = layer.name
        self.limit_input = layer.input[0] if len(layer.input) else None
        self.max = int(p.maxLoopIterations)
        self.cond_var = p.conditionVar
        self.cond = compile_block(p.conditionNetwork) if len(p.conditionNetwork.layers) else None
        self.body = compile_block(p.bodyNetwork)

    def _condition(self, blobs) -> bool:
        if self.cond is None:
            return True
        self.cond.run(blobs)
        if self.cond_var not in blobs:
            raise ExecutorError(f"loop {self.name!r}: condition network does not produce {self.cond_var!r}")
        return truth(blobs[self.cond_var], f"loop {self.name!r} condition {self.cond_var!r}")

    def __call__(self, blobs) -> None:
        limit = self.max
        if self.limit_input is not None:
            limit = int(np.asarray(blobs[self.limit_input]).reshape(-1)[0])
        bounded = self.cond is None or self.limit_input is not None or self.max > 0
        i = 0
        go = self._condition(blobs)
        while go and (not bounded or i < limit):
            if not bounded and i >= MAX_WHILE_ITERATIONS:
                raise ExecutorError(f"loop {self.name!r} ran {MAX_WHILE_ITERATIONS} iterations without its "
                                    "condition turning false")
            try:
                self.body.run(blobs)
            except _Continue:
                pass
            except _Break:
                break
            i += 1
            go = self._condition(blobs)


class Branch(ControlOp):
    def __init__(self, layer, compile_block: Callable):
        self.name = layer.name
        self.pred = layer.input[0]
        self.then = compile_block(layer.branch.ifBranch)
        self.other = compile_block(layer.branch.elseBranch)

    def __call__(self, blobs) -> None:
        if self.pred not in blobs:
            raise ExecutorError(f"branch {self.name!r} reads unknown blob {self.pred!r}")
        (self.then if truth(blobs[self.pred], f"branch {self.name!r} predicate") else self.other).run(blobs)


class _Raise(ControlOp):
    def __init__(self, exc: type[Exception]):
        self.exc = exc

    def __call__(self, blobs) -> None:
        raise self.exc()


BUILDERS: dict[str, Callable] = {
    "loop": Loop,
    "branch": Branch,
    "loopBreak": lambda layer, compile_block: _Raise(_Break),
    "loopContinue": lambda layer, compile_block: _Raise(_Continue),
}
