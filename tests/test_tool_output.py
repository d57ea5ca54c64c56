"""packager.tool_output.cause_first: what a failed tool run printed, cause first, whatever runtime log lines (any of
the formats native runtimes use) came before it. The CLI test is test_bad_input_5's native refusal."""

from __future__ import annotations

import pytest

from packager.tool_output import cause_first, log_severity

CAUSE = "java.lang.IllegalArgumentException: input 0 has type unsupported (code 7); supported: float32"


@pytest.mark.parametrize("noise", [
    "WARNING: npu_registry: no NPU vendor library found",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "VERBOSE: Replacing 3 out of 3 node(s) with delegate",
    "W0000 00:00:1733542200.123456   4242 npu_registry.cc:45] no NPU vendor library found",
    "I1207 03:30:00.123456   4242 litert_environment.cc:12] Created LiteRT environment",
    "2026-12-07 03:30:00.123456: W tensorflow/core/util/port.cc:153] oneDNN custom operations are on",
    "[WARNING] litert: no accelerator registry",
    "[0.010s][warning][cds] The shared archive file was created by a different version",
])
def test_the_cause_comes_before_any_runtime_log_line(noise):
    output = "\n".join([noise] * 20 + ['Exception in thread "main" java.lang.reflect.InvocationTargetException',
                                       "\tat AndroidHostRunner.main(AndroidHostRunner.java:60)",
                                       "Caused by: " + CAUSE, "\tat Native.createFromBytes(Native Method)",
                                       "\t... 2 more"])
    lines = cause_first(output).splitlines()
    assert lines[0] == CAUSE
    assert not any(line.startswith("\t") for line in lines)
    assert log_severity(noise) is not None


def test_error_log_lines_come_before_warnings_and_tool_lines_are_kept():
    output = "W0000 00:00:1.5   1 a.cc:1] warn\nE0000 00:00:1.5   1 b.cc:2] broke\nkotlinc: error: x.kt:3: oops"
    assert cause_first(output).splitlines() == ["kotlinc: error: x.kt:3: oops", "E0000 00:00:1.5   1 b.cc:2] broke",
                                                "W0000 00:00:1.5   1 a.cc:1] warn"]
    assert log_severity("warning: unused variable") is None  # a compiler's own lower-case lines are the output
