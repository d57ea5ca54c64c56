"""Memory must not depend on load (issue 32): in the low-memory plan, the work a target starts ahead of its
conversion (``prepare``: Android's kotlinc and g++, the browser's launch) never runs beside a converter, however
slow the machine makes it."""

from __future__ import annotations

import time

import pytest


@pytest.mark.slow
def test_low_memory_plan_converts_only_after_the_work_started_ahead_finished(models, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from packager.config import build_spec
    from packager.pipeline import build
    from packager.targets.android.target import AndroidTarget

    seen = {}
    prepare, convert = AndroidTarget.prepare, AndroidTarget.convert

    def slow_prepare(self, spec, preview, workdir):  # a busy machine: the compilers take 4 s longer
        time.sleep(4)
        result = prepare(self, spec, preview, workdir)
        seen["prepared"] = time.monotonic()
        return result

    def timed_convert(self, source, spec, mode, workdir):
        seen.setdefault("converted", time.monotonic())
        return convert(self, source, spec, mode, workdir)

    monkeypatch.setattr(AndroidTarget, "prepare", slow_prepare)
    monkeypatch.setattr(AndroidTarget, "convert", timed_convert)
    spec = build_spec(SimpleNamespace(model=str(models["keras"]), samples=str(models["images_npy"]),
                                      out=str(tmp_path / "out"), targets="android", quantize=["android=fp32"]))
    report = build(spec, use_cache=False, low_memory=True)
    assert report.targets["android"].status == "PASS", report.targets["android"].reason
    assert seen["prepared"] <= seen["converted"], seen


@pytest.mark.slow
def test_low_memory_plan_runs_the_web_models_samples_once_under_auto(models, tmp_path, monkeypatch):
    """--quantize auto in the low-memory plan (every model of memory.LARGE_WEIGHTS or more): the web target's first
    mode is validated with the page's checks in one browser session on the rendered output, as in the parallel
    plan; the samples are not run in a browser of their own first (on a 117 MB model that was 12 samples of 0.9 s
    and a browser launch, twice)."""
    from types import SimpleNamespace

    from packager.config import build_spec
    from packager.pipeline import build
    from packager.targets.web.target import WebTarget

    calls = {"predict": 0, "predict_and_check": 0}
    predict, predict_and_check = WebTarget.predict, WebTarget.predict_and_check

    def counted_predict(self, *args):
        calls["predict"] += 1
        return predict(self, *args)

    def counted_predict_and_check(self, *args):
        calls["predict_and_check"] += 1
        return predict_and_check(self, *args)

    monkeypatch.setattr(WebTarget, "predict", counted_predict)
    monkeypatch.setattr(WebTarget, "predict_and_check", counted_predict_and_check)
    spec = build_spec(SimpleNamespace(model=str(models["keras"]), samples=str(models["images_npy"]),
                                      out=str(tmp_path / "out"), targets="web", quantize=["web=auto"]))
    report = build(spec, use_cache=False, low_memory=True)
    web = report.targets["web"]
    assert web.status == "PASS", web.reason
    assert [t["mode"] for t in web.tries] == ["uint8"] and web.tries[0]["status"] == "PASS"
    assert calls == {"predict": 0, "predict_and_check": 1}, calls
