"""An image-folder sample set decodes each image once per process (auto's tries, calibration and the mixed search each
iterate the samples again), within ``samples.DECODED_BYTES``; past it, images are decoded on every access. The
values are those of a fresh decode, and a caller writing into its array changes no one else's."""

from __future__ import annotations

import numpy as np
from PIL import Image

from packager import samples as samples_module
from packager.samples import load_samples
from packager.spec import PackageSpec, Preprocessing, TensorSpec


def _folder(tmp_path, n=5):
    rng = np.random.default_rng(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    spec = PackageSpec(model=tmp_path / "m.keras", samples=folder,
                       preprocessing=Preprocessing(mean=(127.5,), std=(127.5,)))
    return spec, [TensorSpec("image", (None, 16, 16, 3))]


def _decodes(monkeypatch):
    calls = []
    original = samples_module.load_image

    def counting(path, *args):
        calls.append(path.name)
        return original(path, *args)

    monkeypatch.setattr(samples_module, "load_image", counting)
    return calls


def test_each_image_is_decoded_once_and_reads_are_independent(tmp_path, monkeypatch):
    spec, inputs = _folder(tmp_path)
    fresh = [s["image"] for s in load_samples(spec, inputs)]  # another set: its own decodes
    calls = _decodes(monkeypatch)
    sset = load_samples(spec, inputs)
    first = [s["image"] for s in sset]
    for x in first:
        x += 100.0  # a caller normalising in place
    second = [s["image"] for s in sset]
    assert len(calls) == 5 and sorted(calls) == sorted(set(calls))
    for a, b in zip(second, fresh):
        np.testing.assert_array_equal(a, b)
    assert sset.stacked()["image"].shape == (5, 16, 16, 3) and len(calls) == 5


def test_past_the_budget_images_are_decoded_on_every_access(tmp_path, monkeypatch):
    spec, inputs = _folder(tmp_path)
    one = 16 * 16 * 3 * 4  # bytes of one float32 model input
    monkeypatch.setattr(samples_module, "DECODED_BYTES", 2 * one)
    fresh = [s["image"] for s in load_samples(spec, inputs)]
    calls = _decodes(monkeypatch)
    sset = load_samples(spec, inputs)
    for _ in range(3):
        for a, b in zip([s["image"] for s in sset], fresh):
            np.testing.assert_array_equal(a, b)
    assert len(calls) == 5 + 2 * 3  # the first two kept, the other three decoded on each of the three passes
