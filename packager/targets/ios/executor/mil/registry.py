"""Every MIL op this executor implements: op type -> function of its ``Args`` (``OPS``), and the
``constexpr_*`` ops that decode weights once at load time (``OPS_CONSTEXPR``)."""

from __future__ import annotations

from packager.targets.ios.executor.mil import (
    activations,
    constexpr,
    control,
    conv,
    elementwise,
    indexing,
    linear,
    norm,
    reductions,
    shapes,
)

OPS: dict = {}
for _module in (activations, control, conv, elementwise, indexing, linear, norm, reductions, shapes):
    OPS.update(_module.OPS)
OPS.update(control.BLOCK_OPS)  # these take (args, nested blocks, env)
BLOCK_OPS: tuple[str, ...] = tuple(control.BLOCK_OPS)
OPS_CONSTEXPR: dict = dict(constexpr.OPS)
CONSTEXPR: tuple[str, ...] = tuple(OPS_CONSTEXPR)
SUPPORTED_OPS: list[str] = sorted(set(OPS) | set(OPS_CONSTEXPR) | {"const"})
