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


@contextmanager
def validate_once_per_pipeline():
    from coremltools.converters.mil.mil import program as program_module
    from coremltools.converters.mil.mil.passes import pass_pipeline

    program_cls = program_module.Program
    manager = pass_pipeline.PassPipelineManager
    original_validate = program_cls.validate
    original_apply = manager.__dict__["apply_pipeline"]  # the staticmethod object

    def validate(self, check_essential_scope=_UNSET):
        if getattr(_state, "inside", False) and check_essential_scope is False:
            _state.pending = True  # a check after an ordinary pass: made once, after the pipeline's last pass
            return None
        _state.pending = False
        if check_essential_scope is _UNSET:
            return original_validate(self)
        return original_validate(self, check_essential_scope=check_essential_scope)

    def apply_pipeline(prog, pass_pipeline):
        outer = getattr(_state, "inside", False)
        _state.inside, _state.pending = True, False
        try:
            original_apply.__func__(prog, pass_pipeline)
            pending = _state.pending
        finally:
            _state.inside = outer
        if pending:
            original_validate(prog)
        return None

    with _lock:
        _active[0] += 1
        if _active[0] == 1:
            program_cls.validate = validate
            manager.apply_pipeline = staticmethod(apply_pipeline)
    try:
        yield
    finally:
        with _lock:
            _active[0] -= 1
            if _active[0] == 0:
                program_cls.validate = original_validate
                manager.apply_pipeline = original_apply
