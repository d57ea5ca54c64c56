"""Unit tests: spec/config parsing, labels, metrics and gates, exit codes, escaping. No TensorFlow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from packager.checks import FAIL, NOT_BUILT, PASS, UNVERIFIED
from packager.compare import compare, gates_for, output_metrics
from packager.config import build_spec, parse_shape, read_toml
from packager.errors import EXIT_UNVERIFIED, EXIT_VALIDATION_FAILED, InputError, UsageError
from packager.labels import read_labels
from packager.names import default_android_package, validate_android_package
from packager.render import cpp_string, html_escape, js_string, kotlin_string, render_tree, swift_string, xml_escape
from packager.report import Report, TargetResult


def ns(**kw):
    base = dict(model="m.keras", samples="s", labels=None, targets=None, out=None, config=None, mean=None, std=None,
                color=None, quantize=None, int8_io=False, input_shape=None, output_names=None, name=None,
                android_package=None, ios_format=None, force=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_spec_defaults():
    spec = build_spec(ns())
    assert spec.targets == ("android", "ios", "web")
    assert spec.out == Path("dist")
    assert spec.quantization == {"android": "auto", "ios": "auto", "web": "auto"}  # smallest mode that passes
    assert spec.preprocessing.mean == (0.0,) and spec.preprocessing.std == (255.0,)
    assert spec.android_package == "com.example.m"


def test_cli_flags_override_toml(tmp_path):
    cfg = tmp_path / "packager.toml"
    cfg.write_text('model = "a.keras"\nsamples = "imgs"\n[preprocessing]\nmean = [1, 2, 3]\nstd = 2\n'
                   '[quantization]\nandroid = "fp16"\n[tolerances.fp16]\nmin_top1 = 0.5\n')
    spec = build_spec(ns(model=None, samples=None, config=str(cfg), mean="5", quantize=["web=fp32"]))
    assert spec.model == tmp_path / "a.keras" and spec.samples == tmp_path / "imgs"
    assert spec.preprocessing.mean == (5.0,) and spec.preprocessing.std == (2.0,)
    assert spec.quantization["android"] == "fp16" and spec.quantization["web"] == "fp32"
    assert gates_for("android", "fp16", spec.tolerances)["min_top1"] == 0.5


@pytest.mark.parametrize("text, fragment", [
    ("modle = 'x'", "unknown key 'modle'"),
    ("[preprocessing]\ncolour = 'rgb'", "unknown key 'colour' in [preprocessing]"),
    ("[android]\nint8_io = 'yes'", "android.int8_io must be boolean"),
    ("model = ", "syntax error"),
    ("[tolerances.int9]\nmin_top1 = 1", "unknown tolerance scope"),
    ("[tolerances.int8]\nmin_top = 1", "unknown gate 'min_top'"),
])
def test_bad_toml(tmp_path, text, fragment):
    cfg = tmp_path / "packager.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as e:
        read_toml(cfg)
    assert fragment in e.value.message
    assert e.value.where == str(cfg)


@pytest.mark.parametrize("kw, fragment", [
    (dict(targets="android,iso"), "did you mean 'ios'"),
    (dict(quantize=["android=int4"]), "did you mean 'int8'"),
    (dict(quantize=["ios=uint8"]), "unknown quantization mode 'uint8' for target 'ios'"),
    (dict(color="rbg"), "did you mean 'rgb'"),
    (dict(mean="a,b"), "--mean takes numbers"),
    (dict(std="0"), "non-zero"),
    (dict(android_package="com.Example.x"), "not a valid Android package name"),
    (dict(android_package="com.class.x"), "keyword"),
    (dict(android_package="single"), "at least two"),
    (dict(input_shape=["x=1,a"]), "--input-shape takes NAME=D0,D1"),
])
def test_bad_flags(kw, fragment):
    with pytest.raises(UsageError) as e:
        build_spec(ns(**kw))
    assert fragment in e.value.message + (e.value.hint or "")


def test_android_package_names():
    assert validate_android_package("com.example.my_model2") == "com.example.my_model2"
    spec = build_spec(ns(name="2 Fancy-Model!"))
    assert spec.android_package == "com.example.model_2_fancy_model"
    validate_android_package(default_android_package(build_spec(ns(name="class"))))
    assert parse_shape("in:0=1,224,224,3") == ("in:0", (1, 224, 224, 3))


def test_labels_file(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffcat\ndög\n\n".encode())
    assert read_labels(f) == ("cat", "dög")
    f.write_text("a\n\nb\n")
    with pytest.raises(InputError, match="empty label on line 2"):
        read_labels(f)
    f.write_text("a\nb\na\n")
    with pytest.raises(InputError, match="duplicate label 'a' on lines 1 and 3"):
        read_labels(f)
    f.write_bytes(b"\xff\xfeA")
    with pytest.raises(InputError, match="not UTF-8"):
        read_labels(f)


def test_metrics_on_known_arrays():
    ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    cand = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3], [0.5, 0.4, 0.1]])
    m, disagree = output_metrics(ref, cand)
    assert m["top1_agreement"] == 0.75 and disagree == [2]
    assert m["top5_agreement"] == 1.0
    assert m["max_abs_error"] == pytest.approx(0.1)
    assert m["mean_abs_error"] == pytest.approx(0.4 / 12)
    cos = [(r @ c) / np.linalg.norm(r) / np.linalg.norm(c) for r, c in zip(ref, cand)]
    assert m["cosine"] == pytest.approx(np.mean(cos))


def test_cosine_of_one_value_per_sample_is_taken_over_the_samples():
    # deepcut's sigmoid: fp16 flushes a 3e-8 score to 0 (error 3e-8); a per-sample cosine would call it 0
    ref = np.array([[3e-8], [0.9], [0.2], [0.7]])
    cand = np.array([[0.0], [0.9001], [0.1999], [0.7]])
    m, _ = output_metrics(ref, cand, "sigmoid")
    assert m["cosine"] == pytest.approx(1.0, abs=1e-6) and m["decision_agreement"] == 1.0
    # ... and a wrong scalar output still fails it
    m, _ = output_metrics(ref, np.array([[0.9], [0.0], [0.7], [0.1]]), "sigmoid")
    assert m["cosine"] < 0.5


def test_compare_collects_every_problem():
    ref = {"a": np.ones((2, 3)), "b": np.zeros((2, 2)), "c": np.eye(2)}
    cand = {"a": np.ones((2, 4)), "c": np.eye(2)[::-1], "z": np.ones(1)}
    cmp = compare(ref, cand, gates_for("android", "fp32"))
    assert not cmp.ok
    text = cmp.reason
    assert "missing from the target: b" in text and "unexpected outputs: z" in text
    assert "shape (2, 4) differs" in text and "top-1 agreement 0.000" in text
    ok = compare({"x": np.array([[1.0, 2.0]])}, {"x": np.array([[1.0, 2.0 + 1e-6]])}, gates_for("web", "fp32"))
    assert ok.ok and ok.metrics["top1_agreement"] == 1.0
    nan = compare({"x": np.ones((1, 2))}, {"x": np.array([[np.nan, 1]])}, gates_for("web", "fp32"))
    assert not nan.ok and "NaN" in nan.reason


def test_confusion_covers_only_the_classes_that_occur():
    ref = np.zeros((4, 1000))
    cand = np.zeros((4, 1000))
    for i, (r, c) in enumerate([(7, 7), (7, 999), (3, 3), (999, 999)]):
        ref[i, r] = cand[i, c] = 1.0
    cmp = compare({"p": ref}, {"p": cand}, gates_for("android", "fp32"))
    assert cmp.confusion == {"classes": [3, 7, 999], "counts": [[1, 0, 0], [0, 1, 1], [0, 0, 1]]}


def test_max_abs_gate_scales_with_output_magnitude():
    ref = {"y": np.array([[1000.0], [-500.0]])}
    cand = {"y": np.array([[1000.5], [-500.2]])}
    assert compare(ref, cand, gates_for("android", "fp32")).ok  # 0.5 <= 1e-3 * 1000
    assert not compare(ref, {"y": np.array([[1002.0], [-500.0]])}, gates_for("android", "fp32")).ok


def _report(*statuses, conversion_failed=False):
    targets = {f"t{i}": TargetResult(f"t{i}", s) for i, s in enumerate(statuses)}
    if conversion_failed:
        targets["t0"].conversion_failed = True
    return Report(model={}, samples={}, targets=targets, packager_version="x")


def test_exit_codes():
    assert _report(PASS, PASS).exit_code == 0
    assert _report(PASS, NOT_BUILT).exit_code == 0
    assert _report(PASS, UNVERIFIED).exit_code == EXIT_UNVERIFIED
    assert _report(FAIL, UNVERIFIED).exit_code == EXIT_VALIDATION_FAILED
    assert _report(FAIL, PASS, conversion_failed=True).exit_code == 4
    assert _report(PASS, UNVERIFIED).status == UNVERIFIED


HOSTILE = 'a"b\'c\\d$e${f}`g*/h</script><script>alert(1)</script>\nnew\u2028line é 猫 🐱'


def test_escape_filters_round_trip():
    # Kotlin/Swift/C++ literal grammar is close enough to JSON's after unescaping for this check
    assert "${" not in kotlin_string(HOSTILE).replace("\\${", "")
    assert "\n" not in kotlin_string(HOSTILE) and "\n" not in swift_string(HOSTILE) and "\n" not in cpp_string(HOSTILE)
    js = str(js_string(HOSTILE))
    assert "</script" not in js and json.loads(js) == HOSTILE
    assert "<" not in str(html_escape(HOSTILE)) and "<" not in xml_escape(HOSTILE)
    assert "\\(" not in swift_string("\\(x)").replace("\\\\(", "")


def test_cpp_string_compiles_and_round_trips(tmp_path):
    import shutil
    import subprocess

    if not shutil.which("g++"):
        pytest.skip("g++ not installed")
    src = tmp_path / "t.cc"
    src.write_text('#include <cstdio>\nint main(){ std::fputs(' + cpp_string(HOSTILE) + ', stdout); }\n')
    subprocess.run(["g++", "-Wall", "-Werror", "-o", tmp_path / "t", src], check=True)
    out = subprocess.run([tmp_path / "t"], capture_output=True, check=True).stdout
    assert out.decode() == HOSTILE


def test_render_tree_renders_j2_and_copies_the_rest(tmp_path):
    src = tmp_path / "tpl"
    (src / "src" / "__package_path__").mkdir(parents=True)
    (src / "src" / "__package_path__" / "A.kt.j2").write_text("val s = {{ label | kotlin_string }}\n")
    (src / "blob.bin").write_bytes(b"\x00{{ not rendered }}")
    (src / "template.toml").write_text("model = 'x'\n")
    written = render_tree(src, tmp_path / "out", {"label": "a$b", "paths": {"package_path": "com/x"}})
    assert [p.as_posix() for p in written] == ["blob.bin", "src/com/x/A.kt"]
    assert (tmp_path / "out/src/com/x/A.kt").read_text() == 'val s = "a\\$b"\n'
    assert (tmp_path / "out/blob.bin").read_bytes() == b"\x00{{ not rendered }}"
    assert not (tmp_path / "out/template.toml").exists()


def test_cli_config_and_compare_do_not_import_tensorflow():
    """Flag parsing, config errors and metrics stay fast: TensorFlow is imported only to build."""
    import subprocess

    code = ("import sys, packager.cli, packager.config, packager.compare, packager.report, packager.render\n"
            "packager.cli.make_parser()\nassert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_modes_match_each_target():
    from packager.targets import MODES, TARGETS, load_target

    for name in TARGETS:
        target = load_target(name)
        assert target.modes == MODES[name] and target.default_mode in target.modes, name


def test_worker_process_reports_failures_instead_of_hanging():
    """The target worker (a second Python process): a job that raises comes back as WorkerFailed with the
    error; once the process is gone, a pending or new job fails at once; close() reaps it."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from packager.progress import SILENT
    from packager.worker import TargetWorker, WorkerFailed

    worker = TargetWorker([], SILENT)
    assert worker.warm_facts() == {}  # no targets: nothing imported, nothing read
    bad = worker._call("_build_target", "ios")  # too few arguments
    with pytest.raises(WorkerFailed, match="TypeError"):
        bad.result(timeout=60)
    worker._proc.kill()
    worker._proc.wait(timeout=30)
    try:
        late = worker._call("_warm_up", ())
    except WorkerFailed:
        pass
    else:
        with pytest.raises(WorkerFailed):
            try:
                late.result(timeout=30)
            except FutureTimeout:
                pytest.fail("a job sent to a dead worker never finished")
    worker.close()
    assert worker._proc.returncode is not None


def test_a_swallowed_ctrl_c_still_stops_the_build_before_the_output_lands(tmp_path):
    """Libraries drop a KeyboardInterrupt raised inside their callbacks ("Exception ignored in ..."); the
    recorded interrupt is raised again, and the output folder is not moved into place."""
    import os
    import signal

    from packager import interrupt
    from packager.outdir import staged_output

    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupt.install()
        interrupt.check()  # nothing yet
        out = tmp_path / "out"
        with pytest.raises(KeyboardInterrupt):
            with staged_output(out, force=False) as staging:
                (staging / "report.json").write_text("{}")
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):  # the handler runs between bytecodes
                        pass
                except KeyboardInterrupt:
                    pass  # what a C callback does with it
        assert not out.exists() and not list(tmp_path.glob(".out.building-*"))
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupt._seen.clear()


# ---- output kinds (packager/kinds.py) and the metrics that follow them ------------------------------------------

def test_infer_kind_from_activation_and_values():
    from packager.kinds import infer_kind

    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert infer_kind(probs) == "probabilities"
    assert infer_kind(np.array([[0.2, 0.9, 0.1]])) == "sigmoid"  # in [0, 1], rows not summing to 1
    assert infer_kind(np.array([[2.0, -1.0, 0.5]])) == "regression"
    assert infer_kind(np.array([[2.0, -1.0, 0.5]]), has_labels=True) == "logits"
    assert infer_kind(np.array([[2.0, -1.0]]), activation="Softmax") == "probabilities"
    assert infer_kind(np.array([[0.2, 0.9, 0.1]]), activation="BiasAdd") == "regression"  # boxes in [0, 1]
    assert infer_kind(np.array([[0.2, 0.9]]), activation="Sigmoid") == "sigmoid"
    assert infer_kind(np.array([[1, 2]]), dtype="int32") == "other"


def test_primary_output_rule():
    from packager.kinds import primary_output

    assert primary_output(["boxes", "scores", "classes"], {"boxes": "regression", "scores": "sigmoid",
                                                           "classes": "probabilities"}) == "scores"
    assert primary_output(["a", "b"], {"a": "regression", "b": "other"}) == "a"


def test_regression_output_has_no_top1():
    ref = {"boxes": np.array([[0.1, 0.9, 0.3, 0.2], [0.4, 0.1, 0.2, 0.3]])}
    cand = {"boxes": np.array([[0.1, 0.9, 0.31, 0.2], [0.4, 0.1, 0.2, 0.31]])}
    cmp = compare(ref, cand, gates_for("android", "int8"), {"boxes": "regression"})
    assert cmp.per_output["boxes"]["top1_agreement"] is None and cmp.metrics["top1_agreement"] is None
    assert cmp.per_output["boxes"]["decision_agreement"] is None
    assert cmp.confusion == {} and cmp.disagreements == []
    # without kinds: the legacy rule (2-D, >= 2 columns = class scores)
    assert compare(ref, cand, gates_for("android", "int8")).metrics["top1_agreement"] == 1.0


def test_sigmoid_decision_agreement_and_gate():
    ref = {"tags": np.array([[0.1, 0.7, 0.45, 0.9], [0.6, 0.2, 0.3, 0.8]])}
    cand = {"tags": np.array([[0.1, 0.7, 0.55, 0.9], [0.6, 0.2, 0.3, 0.8]])}  # one score crosses 0.5
    gates = {**gates_for("web", "uint8"), "max_abs_error": 1.0, "min_cosine": 0.0}
    cmp = compare(ref, cand, gates, {"tags": "sigmoid"})
    assert cmp.per_output["tags"]["decision_agreement"] == 7 / 8
    assert cmp.per_output["tags"]["top1_agreement"] is None
    assert not cmp.ok and "decision agreement at 0.5 0.875 < 0.9" in cmp.reason
    assert compare(ref, cand, {**gates, "min_decision": 0.8}, {"tags": "sigmoid"}).ok


def test_missing_output_is_structural():
    cmp = compare({"a": np.ones((2, 3)), "b": np.ones((2, 1))}, {"a": np.ones((2, 3))}, gates_for("ios", "fp16"))
    assert cmp.structural and not cmp.ok
    assert not compare({"a": np.ones((2, 3))}, {"a": np.zeros((2, 3))}, gates_for("ios", "fp16")).structural


def test_labels_per_output_flags(tmp_path):
    (tmp_path / "a.txt").write_text("x\ny\n")
    (tmp_path / "b.txt").write_text("p\nq\nr\n")
    spec = build_spec(ns(labels=[str(tmp_path / "a.txt"), f"classes={tmp_path / 'b.txt'}"]))
    assert spec.labels == ("x", "y") and spec.output_labels == {"classes": ("p", "q", "r")}
    with pytest.raises(UsageError, match="--labels given twice"):
        build_spec(ns(labels=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]))


def test_toml_outputs_and_labels_tables(tmp_path):
    (tmp_path / "b.txt").write_text("p\nq\n")
    cfg = tmp_path / "packager.toml"
    cfg.write_text('model = "a.keras"\nsamples = "s"\n[outputs.output_0]\nkind = "regression"\n'
                   '[labels]\noutput_1 = "b.txt"\n')
    spec = build_spec(ns(model=None, samples=None, config=str(cfg)))
    assert spec.output_kinds == {"output_0": "regression"} and spec.output_labels == {"output_1": ("p", "q")}


@pytest.mark.parametrize("text, fragment", [
    ('[outputs.out]\nkind = "regresion"', "did you mean 'regression'"),
    ('[outputs.out]\nknd = "regression"', "did you mean 'kind'"),
    ('[outputs]\nout = "regression"', "one table per output"),
    ('[labels]\nout = 3', "labels.out must be string"),
])
def test_bad_output_tables(tmp_path, text, fragment):
    cfg = tmp_path / "packager.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as e:
        read_toml(cfg)
    assert fragment in e.value.render()


def test_resolve_kinds_config_wins_and_plain_labels_make_logits():
    from packager.kinds import resolve_kinds
    from packager.spec import TensorSpec

    outs = [TensorSpec("a", (None, 4)), TensorSpec("b", (None, 3))]
    ref = {"a": np.array([[1.5, -2.0, 0.3, 4.0]]), "b": np.array([[2.0, -1.0, 0.5]])}
    kinds = resolve_kinds(outs, ref, set_kinds={}, labelled=set(), activations={"a": "BiasAdd", "b": "BiasAdd"})
    assert kinds == {"a": "regression", "b": "regression"}
    # a labels file without an output name, 3 labels: the first 2-D output with 3 columns holds class scores
    kinds = resolve_kinds(outs, ref, set_kinds={}, labelled=set(), activations={}, plain_labels=3)
    assert kinds == {"a": "regression", "b": "logits"}
    kinds = resolve_kinds(outs, ref, set_kinds={"b": "other"}, labelled={"a"}, activations={})
    assert kinds == {"a": "logits", "b": "other"}


def test_report_html_and_console_for_tensor_samples_with_disagreements():
    """.npz samples have no thumbnails: report.html still renders the disagreeing samples (was: jinja2
    UndefinedError, exit 1, no report); a PASS target with a check that could not run says so on its status line."""
    from packager.checks import Check
    from packager.report import Report, TargetResult
    from packager.report_html import render_report_html

    r = TargetResult("android", PASS, quantization="int8", disagreements=[2, 5],
                     checks=[Check("gradle-build", UNVERIFIED, "no Google Maven here")])
    model = {"name": "m", "file": "m.pb", "format": "frozen_pb", "inputs": [], "primary_output": "tags",
             "outputs": [{"name": "tags", "shape": [None, 50], "dtype": "float32", "kind": "sigmoid"}]}
    report = Report(model=model, samples={"count": 6, "source": "s.npz", "kind": "tensors"}, targets={"android": r},
                    packager_version="test")
    html = render_report_html(report, (), {})
    assert "#2" in html and "#5" in html
    line = next(x for x in report.summary_table().splitlines() if x.startswith("android"))
    assert "PASS (UNVERIFIED here: gradle-build)" in line
    assert "PASS (UNVERIFIED here: gradle-build)" in html and report.to_json()["targets"]["android"]["status_line"] \
        == "PASS (UNVERIFIED here: gradle-build)"


def test_report_json_is_strict_json_when_a_metric_is_not_finite(tmp_path):
    """NaN/inf metrics (a target that output NaN) are written as null: JSON.parse rejects bare NaN."""
    from packager.report import Report, TargetResult

    r = TargetResult("web", FAIL, reason="output contains NaN",
                     metrics={"max_abs_error": float("nan"), "cosine": float("-inf")},
                     per_output={"y": {"max_abs_error": float("inf"), "cosine": 0.5}})
    model = {"name": "m", "file": "m.keras", "format": "keras", "inputs": [], "primary_output": "y",
             "outputs": [{"name": "y", "shape": [None, 2], "dtype": "float32", "kind": "regression"}]}
    Report(model=model, samples={"count": 1, "source": "s.npy", "kind": "tensors"}, targets={"web": r},
           packager_version="test").write(tmp_path)

    def refuse(name):
        raise ValueError(f"bare {name} in report.json")

    d = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"), parse_constant=refuse)
    assert d["targets"]["web"]["metrics"]["max_abs_error"] is None
    assert d["targets"]["web"]["per_output"]["y"]["max_abs_error"] is None


def test_report_thumbnails_are_upright(tmp_path):
    """A phone photo (EXIF orientation 6: stored landscape, shown portrait) is drawn upright in report.html."""
    import base64
    import io
    from types import SimpleNamespace

    from PIL import Image

    from packager.report_html import thumbnails

    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (128, 64), (200, 30, 30)).save(path, exif=exif)
    samples = SimpleNamespace(image_paths=[path])
    uri = thumbnails(samples, {"web": SimpleNamespace(disagreements=[0])})[0]
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        assert im.size == (32, 64)
    assert thumbnails(SimpleNamespace(image_paths=None), {}) == {}


def test_disk_full_names_the_file_being_written_not_the_one_read(tmp_path):
    """shutil's copies raise ENOSPC with filename = the source and filename2 = the destination: the destination's
    device is the full one (a template file in packager's install was named before)."""
    import errno

    from packager.errors import disk_full

    e = OSError(errno.ENOSPC, "No space left on device", "/usr/lib/packager/template.cc", None,
                str(tmp_path / "out" / "template.cc"))
    full = disk_full(e)
    assert full is not None and str(tmp_path / "out" / "template.cc") in full.message
    assert "/usr/lib/packager" not in full.message


def test_auto_judges_each_mode_by_its_gates_relaxed_to_the_first_modes():
    """auto never turns a more precise mode down for an error it would ship from its smallest mode; the user's own
    tolerances for a mode are taken as they are, and tightening the first mode does not tighten the others."""
    from packager.compare import gates_for
    from packager.modes import auto_gates

    assert auto_gates("android", "int8", "dynamic", {}) == gates_for("android", "int8")
    assert auto_gates("android", "int8", "int8", {}) == gates_for("android", "int8")
    assert auto_gates("web", "uint8", "fp16", None)["max_abs_error"] == 0.1
    strict_int8 = {"int8": {"max_abs_error": 1e-7}}
    assert auto_gates("android", "int8", "dynamic", strict_int8)["max_abs_error"] == 0.05  # dynamic's own
    assert auto_gates("android", "int8", "int8", strict_int8)["max_abs_error"] == 1e-7
    mine = {"android.dynamic": {"max_abs_error": 0.01}}
    assert auto_gates("android", "int8", "dynamic", mine) == gates_for("android", "dynamic", mine)


def test_demo_takes_the_objective_and_web_runtime_flags_of_build(tmp_path):
    """`packager demo --web-runtime litert --optimize size` builds the demo as `build` would with those flags (issue
    30 shows the demo on LiteRT.js): the flags reach the spec, not only the parser."""
    from packager.cli import make_parser
    from packager.config import build_spec
    from packager.demo import demo_args

    args = make_parser().parse_args(["demo", "--out", str(tmp_path / "o"), "--targets", "android,web",
                                     "--web-runtime", "litert", "--optimize", "size"])
    spec = build_spec(demo_args(args))
    assert spec.web_runtime == "litert" and spec.optimize == "size"
    default = build_spec(demo_args(make_parser().parse_args(["demo", "--out", str(tmp_path / "p")])))
    assert default.web_runtime == "tfjs" and default.optimize == "balanced"
