"""The fallback backends' spot checks are bounded by the model's measured cost (backends.fallback_budget): a
fallback that has not finished its spot check when the budget runs out is closed and UNVERIFIED with the reason,
one whose turn comes after it is not started (UNVERIFIED too), never PASS; the page still lists them (unchecked),
and the target's status line names the check. Real conversion, real Chromium; the budget is set to nothing so that
the outcome does not hang on the machine's speed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from test_web_fused_bias import residual  # noqa: E402,F401  (the module-scoped tiny model fixture)

pytestmark = pytest.mark.slow


def test_fallbacks_past_the_budget_are_unverified_with_the_reason_never_pass(residual, tmp_path,  # noqa: F811
                                                                               monkeypatch):
    from packager.checks import PASS, UNVERIFIED
    from packager.report import TargetResult
    from packager.targets.web import backends as web_backends
    from packager.targets.web import target as web

    # one after another, as a model of memory.LARGE_WEIGHTS or more runs them; a budget of nothing
    monkeypatch.setattr(web_backends, "_weights", lambda spec: web_backends.LARGE_WEIGHTS)
    monkeypatch.setattr(web_backends, "FALLBACK_FLOOR_S", 0.0)
    monkeypatch.setattr(web_backends, "FALLBACK_SHARE", 0.0)
    opened_beside = []  # the pages of the context when a fallback page opens
    page_init = web_backends._BackendPage.__init__

    def seen(self, context, *args, **kwargs):
        opened_beside.append([p.url for p in context.pages])
        page_init(self, context, *args, **kwargs)

    monkeypatch.setattr(web_backends._BackendPage, "__init__", seen)
    from packager.targets.web.page import PageSession

    loads = []  # the first page's model loads (open / reload; the fallback pages load theirs in _BackendPage)
    for how in ("open", "reload"):
        def counted(self, *args, _how=how, _orig=getattr(PageSession, how), **kwargs):
            loads.append(_how)
            return _orig(self, *args, **kwargs)
        monkeypatch.setattr(PageSession, how, counted)
    _, spec, source, samples, reference = residual
    target = web.WebTarget()
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    out = tmp_path / "web"
    target.render(spec, source, art, samples, reference, out)
    pred = target.predict_and_check(spec, source, art, samples, reference, out)
    checks = {c.name: c for c in pred.checks}
    print(checks["backends"].detail, checks.get("backend_fallbacks"))

    # the first backend ran every sample and is the target's figures
    assert "wasm backend" in pred.runtime and len(pred.outputs[next(iter(reference))]) == len(samples)
    for k, ref in reference.items():
        assert np.max(np.abs(pred.outputs[k] - ref)) <= 1e-5
    assert checks["backends"].status == PASS and "wasm: PASS" in checks["backends"].detail
    # the fallbacks: neither PASS, each with its reason and the first backend's measured cost
    fallbacks = checks["backend_fallbacks"]
    assert fallbacks.status == UNVERIFIED
    assert "webgl: UNVERIFIED" in fallbacks.detail and "had not finished when the fallbacks' budget" in fallbacks.detail
    assert "cpu: UNVERIFIED" in fallbacks.detail and "was spent before its turn" in fallbacks.detail
    assert "wasm ran each sample in" in fallbacks.detail
    assert "webgl: PASS" not in checks["backends"].detail and "cpu: PASS" not in checks["backends"].detail
    # still the page's fallbacks (not judged wrong), listed in the page's order
    assert json.loads((out / "metadata.json").read_text())["backends"] == ["wasm", "webgl", "cpu"]
    # one page's weights at a time: the first page rested (about:blank) while the fallback loaded; it came back
    # (from its service worker) for the network-cut checks, which passed
    assert len(opened_beside) == 1 and opened_beside[0] and set(opened_beside[0]) == {"about:blank"}, opened_beside
    # ... and it came back once, with the network cut: two model loads in all (not a wake online, then a reload)
    assert loads == ["open", "open"], loads
    assert checks["offline_reload"].detail.startswith("opened again with the server stopped and the network offline")
    assert "page from service worker: True" in checks["offline_reload"].detail
    # every other check ran and passed
    assert all(c.status == PASS for c in pred.checks if c.name != "backend_fallbacks"), pred.checks
    # the console's status line says what was not verified
    result = TargetResult("web", PASS, checks=list(pred.checks))
    assert result.status_line == "PASS (UNVERIFIED here: backend_fallbacks)"
