"""Memory (issue 19): the free-memory check before converting, the low-memory plan, the process-tree sampler.

The check reads the machine's real figures (/proc/meminfo, the cgroup); PACKAGER_MEMORY_LIMIT only lowers what
they say (a smaller machine), so the decision the CLI takes is the real one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, run_cli
from packager import memory
from packager.errors import MemoryShortage, UsageError


def test_available_reads_the_machine_and_a_limit_only_lowers_it(monkeypatch):
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    real = memory.available()
    meminfo = memory.meminfo_available()
    assert meminfo and meminfo > 0
    assert real.bytes is not None and 0 < real.bytes <= meminfo
    monkeypatch.setenv(memory.ENV_LIMIT, "256M")
    capped = memory.available()
    assert capped.bytes == 256 * memory.MIB and capped.source == f"${memory.ENV_LIMIT}"
    monkeypatch.setenv(memory.ENV_LIMIT, str(10 * real.bytes))  # above what the machine has: the machine wins
    assert memory.available().bytes <= meminfo


def test_parse_size():
    assert memory.parse_size("4G", "x") == 4 * memory.GIB
    assert memory.parse_size("512m", "x") == 512 * memory.MIB
    assert memory.parse_size("1000", "x") == 1000
    with pytest.raises(UsageError):
        memory.parse_size("lots", "x")


def test_plan_follows_the_weights(tmp_path):
    small, large = tmp_path / "small.keras", tmp_path / "large.h5"
    small.write_bytes(b"\0" * 1000)
    with open(large, "wb") as f:
        f.truncate(memory.LARGE_WEIGHTS)  # sparse: takes no disk
    assert memory.choose_plan(small) == memory.PARALLEL
    assert memory.choose_plan(small, low_memory=True) == memory.LOW_MEMORY
    assert memory.choose_plan(large) == memory.LOW_MEMORY
    saved = tmp_path / "sm"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\0" * 10)
    (saved / "variables" / "variables.data-00000-of-00001").write_bytes(b"\0" * 90)
    assert memory.weights_bytes(saved) == 100


def test_shortage_names_the_flags(tmp_path, monkeypatch):
    model = tmp_path / "m.keras"
    with open(model, "wb") as f:
        f.truncate(10 * memory.MIB)
    monkeypatch.setenv(memory.ENV_LIMIT, "100M")
    with pytest.raises(MemoryShortage) as e:
        memory.check_fits(model, 3, memory.PARALLEL)
    text = e.value.render()
    assert "--low-memory" in e.value.hint and "--targets" in e.value.hint and "PACKAGER_MEMORY_LIMIT" in text
    with pytest.raises(MemoryShortage) as e:
        memory.check_fits(model, 3, memory.LOW_MEMORY)
    assert e.value.hint.startswith("fewer targets")  # --low-memory already on: fewer targets or a bigger machine
    monkeypatch.setenv(memory.ENV_CHECK, "0")  # the user's word against the estimate
    assert memory.check_fits(model, 3, memory.PARALLEL) > memory.available().bytes
    monkeypatch.delenv(memory.ENV_CHECK)
    monkeypatch.setenv(memory.ENV_LIMIT, "64G")
    assert memory.check_fits(model, 3, memory.PARALLEL) <= memory.available().bytes


@pytest.mark.slow
def test_cli_refuses_a_build_that_does_not_fit_before_converting(models, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", models["keras"], "--samples", models["images_npy"], "--out", out, "--no-cache",
                env={memory.ENV_LIMIT: "300M"})
    assert r.returncode == MemoryShortage.exit_code, r.stderr
    assert "not enough memory" in r.stderr and "--low-memory" in r.stderr and "300M" not in r.stderr
    assert "GiB is free ($PACKAGER_MEMORY_LIMIT)" in r.stderr
    assert "converting" not in r.stderr and not out.exists()  # refused before any work, nothing written


@pytest.mark.slow
def test_cli_low_memory_builds_one_target_at_a_time(models, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", models["keras"], "--samples", models["images_npy"], "--targets", "ios,web",
                "--quantize", "ios=fp16", "--quantize", "web=fp32", "--out", out, "--no-cache", "--low-memory")
    assert r.returncode == 0, r.stderr
    assert "one process, one target at a time" in r.stderr
    assert "second process" not in r.stderr  # no worker
    report = json.loads((out / "report.json").read_text())
    assert {t: v["status"] for t, v in report["targets"].items()} == {"ios": "PASS", "web": "PASS"}


def test_sampler_sums_the_whole_process_tree():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from peak_memory import measure

    child = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"
    code = (f"import subprocess, sys, time; a = bytearray(200 * 2**20); a[::4096] = b'x' * len(a[::4096]); "
            f"subprocess.run([sys.executable, '-c', {child!r}])")
    rc, wall, peak = measure([sys.executable, "-c", code], interval=0.05)
    assert rc == 0
    assert peak.pss >= 480 * 2**20  # both processes' pages at once (200 + 300 MiB touched)
    assert len(peak.parts) == 2
    assert peak.max_process_rss >= 300 * 2**20


def test_peak_memory_script_runs_a_command(tmp_path):
    timeline = tmp_path / "t.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "peak_memory.py"), "--timeline", str(timeline),
                        "--run", "--", sys.executable, "-c", "import time; time.sleep(0.3)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "exit code 0" in r.stdout and "peak PSS" in r.stdout
    assert json.loads(timeline.read_text())["timeline"]
