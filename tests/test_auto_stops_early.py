"""--quantize auto stops running a try's samples once they already fail a gate that no later sample can undo
(compare.certain_failure: the max-abs-error gate, bounded by the whole reference), when a later mode remains; the
try is a FAIL that says so, and the next mode runs on every sample as before. The last mode of the ladder always
runs every sample (its figures are the report's)."""

from __future__ import annotations

import numpy as np
import pytest

from packager.compare import certain_failure, compare, gates_for


def test_certain_failure_is_only_what_more_samples_cannot_undo():
    rng = np.random.default_rng(0)
    ref = {"y": rng.uniform(0, 1, size=(6, 4, 4, 1))}
    gates = {**gates_for("ios", "fp32"), "max_abs_error": 0.05}
    near = ref["y"][:2] + 0.01
    assert certain_failure(ref, {"y": near}, gates) is None
    far = ref["y"][:2].copy()
    far[1, 0, 0, 0] += 0.2
    why = certain_failure(ref, {"y": far}, gates)
    assert why == "output 'y': max abs error 0.2 > 0.05"
    # the same verdict compare() gives on every sample, whatever the others are
    full = ref["y"].copy()
    full[:2] = far
    assert not compare(ref, {"y": full}, gates).ok
    # the bound is the whole reference's (compare's): a larger value in a later sample raises it
    big = {"y": np.concatenate([ref["y"][:2], np.full((1, 4, 4, 1), 10.0)])}
    assert certain_failure(big, {"y": far}, gates) is None  # bound 0.05 x 10 = 0.5 > 0.2
    assert certain_failure(ref, {"y": far}, {"min_cosine": 0.99}) is None  # no such gate: nothing is certain


@pytest.mark.slow
def test_ios_auto_stops_a_failing_try_at_its_first_sample_and_goes_on(models, tmp_path):
    import dataclasses
    from types import SimpleNamespace

    from packager.config import build_spec
    from packager.pipeline import build

    spec = build_spec(SimpleNamespace(model=str(models["keras"]), samples=str(models["images_npy"]),
                                      out=str(tmp_path / "out"), targets="ios", quantize=["ios=auto"]))
    # the palettes cannot meet a gate of 1e-9: each is a certain failure on its first sample
    impossible = {"max_abs_error": 1e-9}
    spec = dataclasses.replace(spec, tolerances={"ios.palette4": impossible, "ios.palette6": impossible})
    report = build(spec, use_cache=False)
    ios = report.targets["ios"]
    tries = {t["mode"]: t for t in ios.tries}
    n = 24
    for mode in ("palette4", "palette6"):
        assert tries[mode]["status"] == "FAIL"
        assert f"on the first 1 of {n} samples (the other samples not run" in tries[mode]["reason"], tries[mode]
    assert ios.status == "PASS" and ios.quantization == "8bit", (ios.status, ios.reason)
    assert "first 1 of" not in ios.reason
    assert ios.metrics["max_abs_error"] is not None and len(ios.per_output) == 1
