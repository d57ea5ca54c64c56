"""Reliability round 3 (issue 31), through the real CLI or the real server: a cache folder shared with the user's
own folders, per-output labels inside --out, model graphs that open paths through ops of any name, `packager serve`
on other loopback addresses or a folder that is not a bundle, and clear messages for odd flag values."""

from __future__ import annotations

import os
import time

import pytest
from test_bad_input_2 import assert_refused, no_leftovers, tree

from conftest import run_cli

pytestmark = pytest.mark.slow

USAGE, INPUT = 2, 3


# ---------------------------------------------------------------------------------------------------------------
# Data loss: PACKAGER_CACHE_DIR pointing at a folder that holds other things


def test_cache_dir_holding_user_folders_loses_none_of_them(tmp_path, models):
    """More user folders than the cache keeps entries, some old, one named like a cache key, one like a store in
    progress: a build that stores into that folder prunes none of them."""
    cache = tmp_path / "projects"
    names = [f"project{i}" for i in range(10)] + ["0123456789abcdef0123456789abcdef", ".store-mine"]
    long_ago = time.time() - 30 * 86400
    for name in names:
        (cache / name).mkdir(parents=True)
        (cache / name / "main.c").write_text(f"int main() {{ return {len(name)}; }}\n")
        os.utime(cache / name, (long_ago, long_ago))
    before = tree(cache)
    r = run_cli("build", models["regressor"], "--samples", models["features_npy"], "--targets", "android",
                "--quantize", "android=fp32", "--out", tmp_path / "a",
                env={"PACKAGER_CACHE_DIR": str(cache), "PACKAGER_NO_CACHE": None})
    assert r.returncode == 0, r.stderr
    after = tree(cache)
    assert {k: v for k, v in after.items() if k in before} == before, "a user file was deleted or changed"
    stored = [p for p in cache.iterdir() if (p / ".packager-cache-entry").is_file()]
    assert len(stored) == 1, "the build itself was stored, with its marker"


def test_per_output_labels_inside_out_are_refused_with_force(tmp_path, models):
    out = tmp_path / "dist"
    out.mkdir()
    (out / ".packager-output").write_text("x")  # an earlier packager output: --force may replace it
    labels = out / "cls.txt"
    labels.write_text("a\nb\nc\nd\n")
    r = run_cli("build", models["two_outputs"], "--samples", models["features_npy"], "--labels", f"cls={labels}",
                "--targets", "android", "--out", out, "--force")
    assert_refused(r, INPUT, "--out", str(labels))
    assert labels.read_text() == "a\nb\nc\nd\n"
    no_leftovers(out)


def test_config_per_output_labels_inside_out_are_refused(tmp_path, models):
    out = tmp_path / "dist"
    out.mkdir()
    (out / ".packager-output").write_text("x")
    (out / "cls.txt").write_text("a\nb\nc\nd\n")
    cfg = tmp_path / "packager.toml"
    cfg.write_text(f'model = "{models["two_outputs"]}"\nsamples = "{models["features_npy"]}"\nout = "dist"\n'
                   'targets = ["android"]\n[labels]\ncls = "dist/cls.txt"\n')
    r = run_cli("build", "--config", cfg, "--force")
    assert_refused(r, INPUT, "--out", "cls.txt")
    assert (out / "cls.txt").read_text() == "a\nb\nc\nd\n"
