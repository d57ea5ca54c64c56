"""Op preflight on tiny real models: what it flags per target, and that the real converters agree."""

from __future__ import annotations

import contextlib
import io

import pytest

from packager import preflight as pf


@pytest.fixture
def tfjs_importable(monkeypatch):
    """tensorflowjs imports tensorflow_decision_forests, whose welcome banner imports IPython (not installed)
    whenever stdout is not a terminal, as under pytest's capture; its documented switch turns the banner off."""
    monkeypatch.setenv("TFDF_DISABLE_WELCOME_MESSAGE", "1")


def _save_module(path, fn, shape):
    """A tf.Module whose serving_default signature is ``fn`` on one float32 input ``x`` of ``shape``."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
        def serve(self, x):
            return {"y": fn(x)}

    m = Model()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras
    import tensorflow as tf

    d = tmp_path_factory.mktemp("preflight")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x)).export(str(d / "cnn"), verbose=False)
    return {
        "cnn": d / "cnn",
        # TFLite has no builtin Cumprod and coremltools no translator; TF.js has a kernel
        "cumprod": _save_module(d / "cumprod", lambda x: tf.math.cumprod(x, axis=1) * 2.0, [1, 8]),
        # TF.js and coremltools lack Roll; TFLite lowers it
        "roll": _save_module(d / "roll", lambda x: tf.roll(x, shift=2, axis=1) + 1.0, [1, 8]),
    }


def _errors(findings: list[dict]) -> dict[str, dict]:
    return {f["op"]: f for f in findings if f["severity"] == "error"}


def _coreml_convert(saved_model_dir):
    """The iOS target's converter call (neuralnetwork, its deployment target) on the serving function."""
    import coremltools as ct
    import tensorflow as tf

    from packager.targets.ios.target import DEPLOYMENT

    loaded = tf.saved_model.load(str(saved_model_dir))  # kept alive: the function reads its variables
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return ct.convert([loaded.signatures["serving_default"]], source="tensorflow", convert_to="neuralnetwork",
                          minimum_deployment_target=getattr(ct.target, DEPLOYMENT))


# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_graph_ops_walks_function_bodies(saved):
    ops = pf.graph_ops(saved["cnn"])
    # a Keras 3 export's graph is a call into the function library; the layers' ops live in its bodies
    assert ops["StatefulPartitionedCall"] >= 1
    assert {"Conv2D", "MaxPool", "Relu", "Softmax"} <= set(ops)
    assert all(isinstance(n, int) and n > 0 for n in ops.values())


@pytest.mark.slow
def test_tiny_cnn_has_no_findings_for_any_target(saved):
    findings = pf.preflight(saved["cnn"], pf.TARGETS)
    assert findings == {"android": [], "ios": [], "web": []}
    assert pf.format_findings(findings) == ""


@pytest.mark.slow
def test_cumprod_is_flagged_for_android_and_ios_with_their_fixes(saved):
    findings = pf.preflight(saved["cumprod"], pf.TARGETS)

    android = _errors(findings["android"])["Cumprod"]
    assert android["count"] == 1
    assert "TFLite has no builtin kernel for op Cumprod" in android["why"]
    assert "SELECT_TF_OPS" in android["fix"] and "tensorflow-lite-select-tf-ops" in android["fix"]

    ios = _errors(findings["ios"])["Cumprod"]
    assert ios["why"] == "coremltools has no TensorFlow translator for op Cumprod"
    assert "register_tf_op" in ios["fix"]

    assert findings["web"] == []  # TF.js has a Cumprod kernel

    lines = pf.format_findings(findings).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("android: error: Cumprod (x1): ") and "fix: " in lines[0]
    assert lines[1].startswith("ios: error: Cumprod (x1): ")


@pytest.mark.slow
def test_real_converters_agree_on_cumprod(saved, tmp_path, tfjs_importable):
    import tensorflow as tf

    from packager.targets.web.target import convert_saved_model

    # the android target's fp32 converter call (from_saved_model, serving_default, builtins) refuses the op
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved["cumprod"]), signature_keys=["serving_default"])
    with pytest.raises(Exception, match="'tf.Cumprod' op is neither a custom op nor a flex op"):
        converter.convert()
    # coremltools refuses it too
    with pytest.raises(NotImplementedError, match="Cumprod"):
        _coreml_convert(saved["cumprod"])
    # and TF.js, for which preflight found nothing, converts it
    convert_saved_model(saved["cumprod"], tmp_path / "web", "fp32", 4 * 1024 * 1024)
    assert (tmp_path / "web" / "model.json").is_file()


@pytest.mark.slow
def test_roll_is_flagged_for_web_and_the_tfjs_converter_refuses_it(saved, tmp_path, tfjs_importable):
    from packager.targets.web.target import convert_saved_model

    findings = pf.preflight(saved["roll"], pf.TARGETS)
    web = _errors(findings["web"])["Roll"]
    assert web["why"] == "TF.js has no kernel for op Roll"
    assert web["fix"] == "replace the op or use a different target"
    assert "Roll" in _errors(findings["ios"])
    assert findings["android"] == []  # TFLite lowers Roll to builtins: no false alarm

    with pytest.raises(ValueError, match="(?s)Unsupported Ops.*Roll"):
        convert_saved_model(saved["roll"], tmp_path / "web", "fp32", 4 * 1024 * 1024)


@pytest.mark.slow
def test_android_without_conversion_only_warns_from_the_op_list(saved):
    ops = pf.graph_ops(saved["cumprod"])
    findings = pf.preflight(saved["cumprod"], ("android",), ops=ops, android_convert=False)["android"]
    assert [(f["op"], f["severity"]) for f in findings] == [("Cumprod", "warning")]


def test_tflite_error_text_without_structured_errors_still_names_the_op():
    text = ("<unknown>:0: error: loc(...): 'tf.Cumprod' op is neither a custom op nor a flex op\n"
            "<unknown>:0: error: loc(...): 'tf.Erf' op is neither a custom op nor a flex op\n")
    findings = pf.tflite_failure_findings(RuntimeError(text), {"Cumprod": 3, "Erf": 1})
    assert [(f["op"], f["count"], f["severity"]) for f in findings] == [("Cumprod", 3, "error"), ("Erf", 1, "error")]
    other = pf.tflite_failure_findings(RuntimeError("<unknown>:0: error: something else broke"), {})
    assert other[0]["op"] == "(model)" and "something else broke" in other[0]["why"]


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="desktop"):
        pf.preflight("unused", ("desktop",), ops={})


def test_debug_ops_are_not_counted_and_variable_reads_count_as_their_frozen_op():
    ops = {"Assert": 2, "CheckNumerics": 1, "Print": 1, "PrintV2": 1, "ResourceGather": 3, "GatherV2": 1, "MatMul": 1}
    assert pf.converter_ops(ops) == {"GatherV2": 4, "MatMul": 1}
    findings = pf.preflight("unused", ("web", "ios"), ops=ops, coreml_ops=frozenset({"GatherV2", "MatMul"}))
    assert findings == {"web": [], "ios": []}


def test_settled_findings_say_what_the_conversion_did():
    error = {"op": "Roll", "count": 1, "severity": "error", "why": "TF.js has no kernel for op Roll",
             "fix": "replace the op or use a different target"}
    warning = {**error, "op": "While", "severity": "warning", "why": "may fail"}
    ok = pf.settle([error, warning], "succeeded")
    assert [(f["severity"], f["conversion"]) for f in ok] == [("warning", "succeeded"), ("warning", "succeeded")]
    assert "it succeeded" in ok[0]["why"] and error["severity"] == "error"  # the input is not changed
    assert pf.preflight_warnings(ok)[0].startswith("op preflight: Roll (x1): TF.js has no kernel")
    failed = pf.settle([error], "failed")
    assert pf.settle([error], "not run")[0]["severity"] == "error"
    assert failed[0]["severity"] == "error" and failed[0]["conversion"] == "failed"
    reason = pf.explain_failure("tensorflowjs could not convert the model (fp32): Unsupported Ops — generic hint",
                                [error, warning])
    assert reason == ("op preflight: Roll (x1): TF.js has no kernel for op Roll — fix: replace the op or use a "
                      "different target (confirmed by the conversion: tensorflowjs could not convert the model "
                      "(fp32): Unsupported Ops)")
    # a warning is only a guess: after a failure it follows the converter's words as the likely cause
    assert pf.explain_failure("converter crashed — generic hint", [warning]) == (
        "converter crashed — likely cause (op preflight): While (x1): may fail — fix: replace the op or use a "
        "different target")
    assert pf.explain_failure("converter crashed", []) == "converter crashed"  # nothing to explain it


@pytest.mark.slow
def test_stripped_saved_model_has_no_debug_ops_and_computes_the_same(tmp_path):
    import numpy as np
    import tensorflow as tf

    from packager.debug_ops import strip_saved_model

    def noisy(x):
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(x)), [x])
        x = tf.debugging.check_numerics(x, "x")
        tf.print("x", x)
        return tf.nn.softmax(tf.raw_ops.Print(input=x, data=[x], message="x") * 2.0)

    src = _save_module(tmp_path / "noisy", noisy, [None, 4])
    assert strip_saved_model(src, tmp_path / "clean") == {"Assert": 1, "CheckNumerics": 1, "Print": 1, "PrintV2": 1}
    ops = pf.graph_ops(tmp_path / "clean")
    assert not set(ops) & (pf.DEBUG_OPS | {"If", "StringFormat"}), ops  # the Assert's If and tf.print's format too
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    want = tf.saved_model.load(str(src)).signatures["serving_default"](x=x)["y"].numpy()
    got = tf.saved_model.load(str(tmp_path / "clean")).signatures["serving_default"](x=x)["y"].numpy()
    np.testing.assert_array_equal(got, want)
    assert strip_saved_model(tmp_path / "clean", tmp_path / "again") == {}  # nothing left: nothing written
    assert not (tmp_path / "again").exists()


@pytest.mark.slow
def test_frozen_graph_loses_its_debug_ops_and_what_only_fed_them():
    import numpy as np
    import tensorflow as tf

    from packager.debug_ops import strip_frozen_graph

    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4], name="x")
        check = tf.debugging.check_numerics(x, "x")
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(check > -100.0), [x]), tf.print("x", x)]):
            tf.nn.softmax(tf.compat.v1.Print(check, [x], "x") * 2.0, name="probs")
    graph_def = g.as_graph_def()
    assert strip_frozen_graph(graph_def, ["probs"]) == {"Assert": 1, "CheckNumerics": 1, "Print": 1, "PrintV2": 1}
    assert not {n.op for n in graph_def.node} & (pf.DEBUG_OPS | {"StringFormat"})
    x = np.random.default_rng(0).normal(size=(1, 4)).astype(np.float32)
    results = []
    for gd in (g.as_graph_def(), graph_def):
        with tf.compat.v1.Session(graph=tf.Graph()) as session:
            tf.compat.v1.import_graph_def(gd, name="")
            results.append(session.run("probs:0", {"x:0": x}))
    np.testing.assert_array_equal(results[0], results[1])
