"""Which tf.js backends the page may pick (packager/targets/web/backends.py): only those that ran the samples within
the gates. The selection on real comparisons (packager.compare) of arrays; the browser runs are in the slow tests."""

from __future__ import annotations

import numpy as np

from packager.checks import FAIL, PASS
from packager.compare import compare, gates_for
from packager.targets.web.backends import BackendRun, backends_check, first_prediction, page_backends


def _run(name, reference, candidate):
    from packager.targets.base import Prediction

    cmp = compare(reference, candidate, gates_for("web", "fp32"))
    return BackendRun(name, loaded=True, passed=cmp.ok, reason=cmp.reason, metrics=dict(cmp.metrics),
                      prediction=Prediction(outputs=candidate, runtime=f"tf.js {name} backend", latency_ms=1.0))


def test_a_backend_that_loads_but_computes_wrong_numbers_is_left_out_and_named():
    rng = np.random.default_rng(0)
    ref = {"p": rng.dirichlet(np.ones(4), size=6).astype(np.float32)}
    wrong = {"p": ref["p"][:, ::-1].copy()}  # every sample's classes reversed: loads, runs, wrong
    runs = [_run("wasm", ref, wrong), _run("webgl", ref, {"p": ref["p"] + 1e-7}),
            BackendRun("cpu", loaded=False, reason="did not start")]
    assert [r.passed for r in runs] == [False, True, False]
    chosen = page_backends(runs)
    assert chosen == ("webgl",)
    check = backends_check(runs, chosen)
    assert check.status == PASS
    assert "wasm: numerically wrong" in check.detail and "left out" in check.detail
    assert "cpu: cannot run the model (did not start)" in check.detail
    assert "webgl: PASS (top-1 1.000" in check.detail and "figures above: webgl" in check.detail
    assert first_prediction(runs, chosen).runtime == "tf.js webgl backend"


def test_no_backend_within_the_gates_fails_the_check_on_the_first_one_that_loads():
    ref = {"p": np.eye(4, dtype=np.float32)}
    runs = [BackendRun("wasm", loaded=False, reason="FusedConv2D only supports rank-1 bias"),
            _run("webgl", ref, {"p": ref["p"][:, ::-1].copy()}), _run("cpu", ref, {"p": ref["p"][:, ::-1].copy()})]
    chosen = page_backends(runs)
    assert chosen == ("webgl", "cpu")
    check = backends_check(runs, chosen)
    assert check.status == FAIL and check.detail.startswith("no tf.js backend runs the model within the gates")
    assert first_prediction(runs, chosen).runtime == "tf.js webgl backend"


def test_a_fallback_left_unverified_stays_listed_and_is_named_unverified_never_pass():
    from packager.checks import UNVERIFIED
    from packager.targets.web.backends import fallbacks_check

    ref = {"p": np.eye(4, dtype=np.float32)}
    runs = [_run("wasm", ref, {"p": ref["p"] + 1e-7}),
            BackendRun("webgl", loaded=True, unverified=True, reason="had not finished after 15.2 s"),
            BackendRun("cpu", loaded=True, unverified=True, reason="not spot-checked: budget spent")]
    chosen = page_backends(runs)
    assert chosen == ("wasm", "webgl", "cpu")  # the page keeps its fallbacks, unchecked
    check = backends_check(runs, chosen)
    assert check.status == PASS and "webgl: UNVERIFIED (had not finished" in check.detail
    assert "webgl: PASS" not in check.detail and "cpu: PASS" not in check.detail
    left = fallbacks_check(runs)
    assert left.status == UNVERIFIED and left.name == "backend_fallbacks"
    assert "webgl: UNVERIFIED" in left.detail and "cpu: UNVERIFIED (not spot-checked" in left.detail
    assert fallbacks_check(runs[:1]) is None
    assert first_prediction(runs, chosen).runtime == "tf.js wasm backend"


def test_the_image_path_takes_the_images_whose_runs_fit_its_budget_by_the_measured_cost():
    from packager.targets.web.page_checks import IMAGE_PATH_BUDGET_S, IMAGE_PATH_MIN, image_path_count

    assert image_path_count(12, 40.0) == 12  # MobileNetV2-like: every image
    assert image_path_count(12, None) == 12  # cost unknown: every image
    assert image_path_count(12, 900.0) == int(IMAGE_PATH_BUDGET_S * 1000 // 900)  # hed idle: 5
    assert image_path_count(12, 20_000.0) == IMAGE_PATH_MIN  # never fewer than IMAGE_PATH_MIN
    assert image_path_count(1, 20_000.0) == 1
