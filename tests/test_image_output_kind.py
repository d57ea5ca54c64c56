"""The ``image`` output kind without a build: inferred from the shape (an image input's H x W, 1/3/4 channels), PSNR
and its gate, the worst samples, the report's pictures. The end-to-end build is in test_normalize.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from packager.compare import compare, gates_for
from packager.errors import UsageError
from packager.kinds import apply_kinds, image_outputs, resolve_kinds
from packager.spec import TensorSpec

IMAGE_IN = [TensorSpec("image", (None, 8, 6, 3))]


def _kinds(shape, set_kinds=None, dtype="float32", inputs=IMAGE_IN):
    out = TensorSpec("y", (None, *shape[1:]), dtype)
    ref = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    return resolve_kinds([out], {"y": ref}, set_kinds=set_kinds or {}, labelled=set(), activations={"y": "Sigmoid"},
                         inputs=inputs)["y"]


def test_image_kind_is_inferred_from_the_shape():
    assert _kinds((4, 8, 6, 1)) == "image"  # a sigmoid mask the size of the input
    assert _kinds((4, 8, 6, 3)) == "image" and _kinds((4, 8, 6, 4)) == "image"
    assert _kinds((4, 8, 6, 2)) == "sigmoid"  # 2 channels: not a picture
    assert _kinds((4, 4, 3, 1)) == "sigmoid"  # another size than the input's
    assert _kinds((4, 8, 6, 1), inputs=[TensorSpec("x", (None, 8, 6, 7))]) == "sigmoid"  # the input is no image
    assert _kinds((4, 8, 6, 1), dtype="int32") == "sigmoid"  # resolve leaves integer maps to infer_kind
    assert _kinds((4, 8, 6, 1), set_kinds={"y": "regression"}) == "regression"  # packager.toml wins


def test_a_set_image_kind_must_fit_an_image_shape(tmp_path):
    from packager.spec import PackageSpec

    source = SimpleNamespace(inputs=IMAGE_IN, outputs=[TensorSpec("y", (None, 5))],
                             concrete_function=lambda: None)
    spec = PackageSpec(model=tmp_path / "m.keras", samples=tmp_path, output_kinds={"y": "image"})
    with pytest.raises(UsageError, match="kind = \"image\""):
        apply_kinds(spec, source, {"y": np.zeros((2, 5), np.float32)})
    source.outputs = [TensorSpec("y", (None, 3, 3, 1))]
    spec = apply_kinds(spec, source, {"y": np.zeros((2, 3, 3, 1), np.float32)})
    assert spec.output_kinds == {"y": "image"} and [o.name for o in image_outputs(spec, source)] == ["y"]


def test_psnr_gate_and_worst_samples():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 1, (5, 8, 6, 1)).astype(np.float32)
    cand = ref.copy()
    cand[3] += 0.02 * rng.standard_normal(cand[3].shape).astype(np.float32)  # sample 3 is the worst
    cand[1] += 0.005
    gates = gates_for("web", "uint8")
    cmp = compare({"y": ref}, {"y": cand}, gates, {"y": "image"})
    m = cmp.per_output["y"]
    mse3 = float(np.mean((cand[3].astype(np.float64) - ref[3]) ** 2))
    assert m["psnr"] == pytest.approx(10 * np.log10(1 / mse3), rel=1e-6)
    assert m["worst_samples"][:2] == [3, 1] and cmp.ok and cmp.metrics["psnr"] == m["psnr"]
    strict = compare({"y": ref}, {"y": cand}, {**gates, "min_psnr": 60.0}, {"y": "image"})
    assert not strict.ok and "PSNR" in strict.reason
    same = compare({"y": ref}, {"y": ref.copy()}, gates_for("web", "fp32"), {"y": "image"})
    assert same.ok and same.per_output["y"]["psnr"] == 200.0
    assert "psnr" not in compare({"y": ref}, {"y": cand}, gates, {"y": "regression"}).per_output["y"]


def test_report_pictures_of_the_worst_samples():
    from packager.report import TargetResult
    from packager.report_html import output_pictures
    from packager.spec import Preprocessing

    ref = np.random.default_rng(2).uniform(0, 1, (3, 8, 6, 1)).astype(np.float32)
    result = TargetResult("web", "PASS")
    result.output_maps = {"y": {2: ref[2] * 0.5, 0: ref[0]}}
    samples = [{"image": np.zeros((1, 8, 6, 3), np.float32)} for _ in range(3)]
    spec = SimpleNamespace(preprocessing=Preprocessing())
    pics = output_pictures(spec, SimpleNamespace(inputs=IMAGE_IN), samples, {"y": ref}, {"web": result})
    rows = pics["web"]["y"]
    assert [r["index"] for r in rows] == [2, 0]  # worst first, as kept
    assert all(r[k].startswith("data:image/png;base64,") for r in rows for k in ("input", "original", "target", "diff"))
    assert rows[1]["max"] == 0.0 and rows[0]["max"] > 0.1
    assert "output_maps" not in result.to_json()  # pictures go to report.html only


def test_array_samples_must_be_standardised_for_normalize_per_image(tmp_path):
    from packager.errors import InputError
    from packager.preprocessing import standardise
    from packager.samples import load_samples
    from packager.spec import PackageSpec, Preprocessing

    rng = np.random.default_rng(3)
    px = rng.uniform(0, 255, (3, 8, 6, 3)).astype(np.float32)
    good = np.stack([standardise(p) for p in px] + [standardise(np.full((8, 6, 3), 7.0, np.float32))])
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "raw.npy", px / 255)
    for normalize, ok in (("per-image", "good.npy"), ("mean-std", "raw.npy")):
        spec = PackageSpec(model=tmp_path / "m", samples=tmp_path / ok, preprocessing=Preprocessing(normalize=normalize))
        assert len(load_samples(spec, IMAGE_IN)) in (3, 4)
    spec = PackageSpec(model=tmp_path / "m", samples=tmp_path / "raw.npy",
                       preprocessing=Preprocessing(normalize="per-image"))
    with pytest.raises(InputError, match="not standardised"):
        load_samples(spec, IMAGE_IN)
