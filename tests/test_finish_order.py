"""``finish_all`` goes on with a target's ``--quantize auto`` ladder (a Retry) as soon as that target's Future says
so, not after the targets listed before it have finished their checks (mtcnn_pnet: web's uint8 missed the gates
in the browser while android's compile checks were still running; its next mode waited for them)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from packager import target_build
from packager.report import TargetResult
from packager.target_build import Retry, finish_all


def test_a_retry_goes_on_while_an_earlier_target_still_runs_its_checks(monkeypatch):
    went_on = threading.Event()

    def go_on(retry: Retry) -> Future:  # what build_target does with a Retry, minus the conversion itself
        went_on.set()
        done = Future()
        done.set_result(TargetResult(retry.args[0], "PASS", quantization="mixed"))
        return done

    monkeypatch.setattr(target_build, "_go_on", go_on)
    with ThreadPoolExecutor(1) as pool:
        # android's checks end only once web's ladder went on (or after 20 s: the order this test guards against)
        android = pool.submit(lambda: TargetResult("android", "PASS" if went_on.wait(20) else "FAIL"))
        web = Future()
        web.set_result(Retry(tries=[{"mode": "uint8", "status": "FAIL"}], args=("web",), kwargs={}))
        results = finish_all({"android": android, "web": web})
    assert list(sorted(results)) == ["android", "web"]
    assert results["android"].status == "PASS", "web's retry waited for android's checks"
    assert results["web"].status == "PASS" and results["web"].quantization == "mixed"


def test_finish_all_returns_every_target_and_raises_a_targets_error():
    ok, bad = Future(), Future()
    ok.set_result(TargetResult("ios", "PASS"))
    bad.set_exception(KeyboardInterrupt())
    assert finish_all({"ios": ok})["ios"].status == "PASS"
    try:
        finish_all({"ios": ok, "web": bad})
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("a target's exception must reach the build")
