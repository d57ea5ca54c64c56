"""coremltools' MIL pass pipeline validates the whole program after every one of its ~110 passes
(``PassPipelineManager.apply_pipeline``: ``prog.validate()`` walks every op's inputs and outputs each time):
O(passes x ops) Python on every iOS conversion. On an unrolled 200-step GRU (7,644 TF ops) it was ~24 % of an
iOS-only build's samples, more than the passes themselves.

``validate_once_per_pipeline`` keeps every check coremltools makes, only fewer times: the program is validated
before the pipeline (as before), after each dead-code elimination (as before: the one check of the ops' scope
information, which coremltools makes only there), and once after the last pass when the last check was earlier;
the validations after the other passes are left out. Validation only reads the program (it raises on an
inconsistent one), so a conversion that succeeded before gives the same program; a pass that leaves the program
inconsistent still fails the conversion, at the pipeline's end instead of after that pass.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

_UNSET = object()
_state = threading.local()
_lock = threading.Lock()
_active = [0]  # conversions inside the context (the patch is installed by the first, removed by the last)


_originals: dict = {}  # coremltools' own functions while the patch is installed


def _validate(self, check_essential_scope=_UNSET):
    if getattr(_state, "inside", False) and check_essential_scope is False:
        _state.pending = True  # a check after an ordinary pass: made once, after the pipeline's last pass
        return None
    _state.pending = False
    if check_essential_scope is _UNSET:
        return _originals["validate"](self)
    return _originals["validate"](self, check_essential_scope=check_essential_scope)


def _apply_pipeline(prog, pass_pipeline):
    outer = getattr(_state, "inside", False)
    _state.inside, _state.pending = True, False
    try:
        _originals["apply_pipeline"].__func__(prog, pass_pipeline)
        pending = _state.pending
    finally:
        _state.inside = outer
    if pending:
        _originals["validate"](prog)
    return None


@contextmanager
def validate_once_per_pipeline():
    """The patch installed by the first conversion inside it (coremltools' own functions read then, under the
    lock: a conversion entering while another is inside never takes the patch for the original) and removed by
    the last."""
    from coremltools.converters.mil.mil import program as program_module
    from coremltools.converters.mil.mil.passes import pass_pipeline

    program_cls = program_module.Program
    manager = pass_pipeline.PassPipelineManager
    with _lock:
        _active[0] += 1
        if _active[0] == 1:
            _originals["validate"] = program_cls.validate
            _originals["apply_pipeline"] = manager.__dict__["apply_pipeline"]  # the staticmethod object
            program_cls.validate = _validate
            manager.apply_pipeline = staticmethod(_apply_pipeline)
    try:
        yield
    finally:
        with _lock:
            _active[0] -= 1
            if _active[0] == 0:
                program_cls.validate = _originals.pop("validate")
                manager.apply_pipeline = _originals.pop("apply_pipeline")
