"""MIL control flow and tensor lists, what TensorFlow's ``while_loop`` / ``cond`` / ``TensorArray`` become
(Keras 2 recurrent layers, for one): ``while_loop`` (a condition block and a body block over the loop
variables), ``cond`` (a true and a false block), and ``make_list`` / ``list_read`` / ``list_write`` /
``list_scatter`` / ``list_gather`` / ``list_length``. Lists are values, as every MIL value: a write gives a
new list and leaves the old one unchanged."""

from __future__ import annotations

import numpy as np

from packager.targets.ios.executor.mil.values import CAST_NAMES
from packager.targets.ios.executor.nn.common import ExecutorError

MAX_ITERATIONS = 1_000_000


class TensorList:
    def __init__(self, items: list, elem_shape: tuple | None, dtype, dynamic: bool):
        self.items, self.elem_shape, self.dtype, self.dynamic = items, elem_shape, dtype, dynamic

    def with_items(self, items: list) -> TensorList:
        return TensorList(items, self.elem_shape, self.dtype, self.dynamic)

    def read(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self.items):
            raise ExecutorError(f"list index {i} out of range [0, {len(self.items)})")
        item = self.items[i]
        if item is None:
            if self.elem_shape is None:
                raise ExecutorError(f"list element {i} read before it was written")
            return np.zeros(self.elem_shape, self.dtype)
        return item

    def written(self, i: int, value) -> list:
        items = list(self.items)
        if i >= len(items):
            if not self.dynamic:
                raise ExecutorError(f"write at {i} past the end of a fixed-length list of {len(items)}")
            items.extend([None] * (i + 1 - len(items)))
        items[i] = np.asarray(value)
        return items


def _make_list(a):
    dims = [int(np.asarray(d).reshape(-1)[0]) for d in a.list("elem_shape")]
    dtype_name = str(a.scalar("dtype", "fp32"))
    dtype = CAST_NAMES.get(dtype_name, np.float32)
    length = int(a.scalar("init_length", 1))
    shape = tuple(dims) if dims and all(d >= 0 for d in dims) else None
    return TensorList([None] * length, shape, dtype, bool(a.scalar("dynamic_length", True)))


def _index(v) -> int:
    return int(np.asarray(v).reshape(-1)[0])


def _list_write(a):
    ls = a["ls"]
    return ls.with_items(ls.written(_index(a["index"]), a["value"]))


def _list_scatter(a):
    ls = a["ls"]
    value = np.asarray(a["value"])
    out = ls
    for row, i in zip(value, np.asarray(a["indices"]).reshape(-1)):
        out = out.with_items(out.written(int(i), row))
    return out


def _list_gather(a):
    ls = a["ls"]
    rows = [ls.read(int(i)) for i in np.asarray(a["indices"]).reshape(-1)]
    if not rows:
        return np.zeros((0,) + (ls.elem_shape or ()), ls.dtype)
    return np.stack(rows)


def run_block(block, env: dict, inputs: list) -> list:
    for name, value in zip(block.inputs, inputs):
        env[name] = value
    block.run(env)
    return [env[o] for o in block.outputs]


def _while_loop(a, blocks, env):
    values = a.list("loop_vars")
    if len(blocks) != 2:
        raise ExecutorError(f"while_loop with {len(blocks)} blocks (a condition and a body expected)")
    cond, body = blocks
    for _ in range(MAX_ITERATIONS):
        if not bool(np.asarray(run_block(cond, env, values)[0]).reshape(-1)[0]):
            return tuple(values)
        values = run_block(body, env, values)
    raise ExecutorError(f"while_loop ran {MAX_ITERATIONS} iterations without ending")


def _cond(a, blocks, env):
    if len(blocks) != 2:
        raise ExecutorError(f"cond with {len(blocks)} blocks (a true and a false block expected)")
    taken = blocks[0] if bool(np.asarray(a["pred"]).reshape(-1)[0]) else blocks[1]
    return tuple(run_block(taken, env, []))


OPS = {
    "make_list": _make_list,
    "list_write": _list_write,
    "list_read": lambda a: a["ls"].read(_index(a["index"])),
    "list_scatter": _list_scatter,
    "list_gather": _list_gather,
    "list_length": lambda a: np.int32(len(a["ls"].items)),
}
BLOCK_OPS = {"while_loop": _while_loop, "cond": _cond}
