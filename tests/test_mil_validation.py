"""packager.targets.ios.mil_validation: coremltools' MIL pipeline validated once per pipeline (and after each
dead-code elimination) instead of after every pass: the same program, the same checks, an inconsistent program
still fails the conversion."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("coremltools")


def _program():
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8))])
    def prog(x):
        y = mb.relu(x=x)
        w = mb.const(val=np.arange(8, dtype=np.float32).reshape(1, 8))
        z = mb.add(x=y, y=mb.mul(x=w, y=np.float32(2.0)))
        z = mb.add(x=z, y=np.float32(0.0))  # removed by a later pass
        return mb.sigmoid(x=z)

    return prog


def _text(prog) -> str:
    # block and op numbers count what was built in the process before
    return re.sub(r"_\d+", "_#", re.sub(r"\bblock\d+", "block", str(prog)))


def _count_validations(monkeypatch):
    """Counts whole-program validations (each walks every op of the function)."""
    from coremltools.converters.mil.mil import Function

    calls = []
    original = Function.validate

    def counted(self, *args, **kwargs):
        if kwargs.get("force_validate"):  # a Program's validation (others return at once unless in DEBUG)
            calls.append(kwargs.get("check_essential_scope"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Function, "validate", counted)
    return calls


def test_same_program_with_fewer_validations(monkeypatch):
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipeline, PassPipelineManager

    from packager.targets.ios.mil_validation import validate_once_per_pipeline

    calls = _count_validations(monkeypatch)
    before = _program()
    PassPipelineManager.apply_pipeline(before, PassPipeline.DEFAULT)
    every_pass = len(calls)
    passes = PassPipeline.DEFAULT.passes
    assert every_pass == 1 + len(passes)
    calls.clear()
    after = _program()
    with validate_once_per_pipeline():
        PassPipelineManager.apply_pipeline(after, PassPipeline.DEFAULT)
    dce = sum(p == "common::dead_code_elimination" for p in passes)
    assert len(calls) <= 2 + dce < every_pass
    assert calls.count(True) == dce  # the scope check after each dead-code elimination is still made
    assert _text(after) == _text(before)
    assert _text(after) != _text(_program())  # the passes did change it


def test_an_inconsistent_program_still_fails(monkeypatch):
    """A pass that leaves the program inconsistent (a var listing an op that does not read it) fails the pipeline
    although the next validation coremltools would have made is left out: the check at the pipeline's end."""
    from coremltools.converters.mil.mil.passes import pass_registry
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipeline, PassPipelineManager

    from packager.targets.ios.mil_validation import validate_once_per_pipeline

    class Corrupt(AbstractGraphPass):
        def apply(self, prog):
            ops = list(prog.functions["main"].operations)
            ops[0].outputs[0]._child_ops.append(ops[-1])  # the last op does not read the first op's output

    monkeypatch.setitem(pass_registry.PASS_REGISTRY.passes, "packager_test::corrupt", Corrupt())
    pipeline = PassPipeline(pass_names=["packager_test::corrupt", "common::const_elimination"], pipeline_name="t")
    with validate_once_per_pipeline(), pytest.raises(Exception, match="should be consumed"):
        PassPipelineManager.apply_pipeline(_program(), pipeline)


def test_coremltools_own_functions_are_back_afterwards():
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipelineManager

    from packager.targets.ios.mil_validation import validate_once_per_pipeline

    validate, apply = Program.validate, PassPipelineManager.__dict__["apply_pipeline"]
    with validate_once_per_pipeline():
        assert Program.validate is not validate
    assert Program.validate is validate and PassPipelineManager.__dict__["apply_pipeline"] is apply


def test_overlapping_conversions_leave_coremltools_own_functions_back():
    """Two conversions whose contexts overlap (the first leaves while the second is inside): the second must not
    take the first's patch for coremltools' own function and put the patch back for good when it leaves."""
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipelineManager

    from packager.targets.ios.mil_validation import validate_once_per_pipeline

    validate, apply = Program.validate, PassPipelineManager.__dict__["apply_pipeline"]
    first, second = validate_once_per_pipeline(), validate_once_per_pipeline()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert Program.validate is not validate  # the second conversion is still inside
    second.__exit__(None, None, None)
    assert Program.validate is validate and PassPipelineManager.__dict__["apply_pipeline"] is apply
