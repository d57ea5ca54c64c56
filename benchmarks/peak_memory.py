"""Peak memory of a command's whole process tree, and of a build on a large image sample set (issue 6).

    .venv/bin/python benchmarks/peak_memory.py [--count 5000] [--targets android,ios,web]
    .venv/bin/python benchmarks/peak_memory.py --run -- COMMAND ARGS...    # any command, whole tree

``measure(argv)`` runs a command and samples every process descended from it (the worker process, Chromium,
kotlinc's JVM, ...) every ``interval`` seconds through /proc: the sum of their proportional set sizes (PSS:
a page shared by N processes counts 1/N in each, so the sum is the memory the tree really holds) and of their
resident set sizes (RSS: shared pages counted in every process, an upper bound). The peak of each sum is
reported, with the processes that made up the PSS peak. A spike shorter than the interval can be missed; the
largest single process's own peak (``ru_maxrss`` from the kernel, never missed) is reported beside it.

The default run draws COUNT demo-shape PNGs into a temporary folder and builds the bundled demo model with them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 1024 ** 3


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])  # the name in (...) may hold spaces
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _pss_rss(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) in bytes, from /proc/PID/smaps_rollup; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            text = f.read()
    except OSError:
        return None
    pss = rss = 0
    for line in text.splitlines():
        if line.startswith(b"Pss:"):
            pss = int(line.split()[1]) * 1024
        elif line.startswith(b"Rss:"):
            rss = int(line.split()[1]) * 1024
    return pss, rss


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    argv = [a.decode(errors="replace") for a in argv if a]
    if not argv:
        return "?"
    exe = Path(argv[0]).name
    if exe.startswith("python") and len(argv) > 1:
        detail = "worker" if "packager.worker" in " ".join(argv) else Path(argv[1]).name
        return f"{exe} {detail}"
    if "chrom" in exe:
        kind = next((a.split("=", 1)[1] for a in argv if a.startswith("--type=")), "browser")
        return f"chromium {kind}"
    if exe == "java":
        main = next((a for a in argv[1:] if not a.startswith("-") and "." in a and "/" not in a), "")
        return f"java {main}".strip()
    return exe


@dataclass
class Peak:
    pss: int = 0  # bytes: the largest sum of PSS over the tree seen
    rss: int = 0  # bytes: the largest sum of RSS
    at: float = 0.0  # seconds after the start, of the PSS peak
    parts: list[tuple[str, int]] = field(default_factory=list)  # (process, PSS) at the PSS peak, largest first
    samples: int = 0
    max_process_rss: int = 0  # bytes: ru_maxrss of the largest single process (kernel's own peak)
    # (seconds, PSS sum, {process: PSS}) every sample
    timeline: list[tuple[float, int, dict[str, int]]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"peak_pss_gib": round(self.pss / GIB, 3), "peak_rss_sum_gib": round(self.rss / GIB, 3),
                "peak_at_seconds": round(self.at, 1), "samples": self.samples,
                "largest_process_maxrss_gib": round(self.max_process_rss / GIB, 3),
                "at_peak": [{"process": n, "pss_mib": round(b / 2 ** 20)} for n, b in self.parts[:12]]}


class TreeSampler:
    """Samples the process tree under ``root`` in a thread until ``stop()``."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root, self.interval = root, interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> Peak:
        self._stop.set()
        self._thread.join()
        return self.peak

    def sample(self) -> None:
        parts, pss, rss = [], 0, 0
        for pid in tree(self.root):
            got = _pss_rss(pid)
            if got is None:
                continue
            pss += got[0]
            rss += got[1]
            parts.append((pid, got[0]))
        p = self.peak
        p.samples += 1
        now = time.perf_counter() - self._t0
        named = sorted(((_name(pid), b) for pid, b in parts), key=lambda x: -x[1])
        by_name: dict[str, int] = {}
        for n, b in named:
            by_name[n] = by_name.get(n, 0) + b
        p.timeline.append((round(now, 2), pss, by_name))
        p.rss = max(p.rss, rss)
        if pss > p.pss:
            p.pss, p.at, p.parts = pss, now, named

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def measure(argv: list[str], *, env: dict | None = None, cwd=None, log: Path | None = None,
            interval: float = 0.1) -> tuple[int, float, Peak]:
    """Run ``argv`` to the end: (exit code, wall seconds, Peak of its whole process tree)."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                env=env, cwd=cwd)
        sampler = TreeSampler(proc.pid, interval).start()
        # wait4: this child's own rusage (ru_maxrss: the largest process among it and its waited-for descendants)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        peak = sampler.stop()
    finally:
        if log:
            out.close()
    peak.max_process_rss = usage.ru_maxrss * 1024
    return code, wall, peak


def describe(peak: Peak) -> str:
    parts = ", ".join(f"{n} {b / 2 ** 20:.0f}" for n, b in peak.parts[:6])
    return (f"peak PSS {peak.pss / GIB:.2f} GiB at {peak.at:.0f} s (RSS sum {peak.rss / GIB:.2f} GiB; "
            f"largest process {peak.max_process_rss / GIB:.2f} GiB); at the peak, MiB: {parts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--targets", default="android,ios,web")
    ap.add_argument("--run", action="store_true", help="measure the command given after -- instead")
    ap.add_argument("--timeline", help="with --run: write the (seconds, PSS bytes) samples to this JSON file")
    own, command = sys.argv[1:], []
    if "--" in own:
        cut = own.index("--")
        own, command = own[:cut], own[cut + 1:]
    args = ap.parse_args(own)
    if args.run:
        if not command:
            ap.error("--run needs a command after --")
        code, wall, peak = measure(command)
        print(f"exit code {code}; wall {wall:.1f} s; {describe(peak)}")
        if args.timeline:
            Path(args.timeline).write_text(json.dumps({**peak.as_dict(), "timeline": peak.timeline}))
        return
    from packager.demo import HERE as DEMO
    from packager.demo.shapes import dataset

    with tempfile.TemporaryDirectory() as tmp:
        imgs = Path(tmp) / "samples"
        imgs.mkdir()
        images, labels = dataset(args.count // 4 + 1, seed=11)
        for i, im in enumerate(images[: args.count]):
            im.save(imgs / f"{i:05d}.png")
        decoded_mb = args.count * 32 * 32 * 3 * 4 / 1e6
        cmd = [sys.executable, "-m", "packager", "build", str(DEMO / "model.keras"), "--samples", str(imgs),
               "--labels", str(DEMO / "labels.txt"), "--mean", "127.5", "--std", "127.5", "--targets", args.targets,
               "--out", str(Path(tmp) / "out"), "--no-cache", "-q"]
        code, wall, peak = measure(cmd, log=Path(tmp) / "build.log")
        log = (Path(tmp) / "build.log").read_text(errors="replace")
        report = json.loads((Path(tmp) / "out" / "report.json").read_text()) if code in (0, 5, 6) else {}
    print(f"samples: {args.count} images ({decoded_mb:.0f} MB if all were decoded as float32 at once)")
    print(f"command: {' '.join(cmd[2:])}")
    print(f"exit code: {code}; wall time: {wall:.1f} s; {describe(peak)}")
    for name, t in report.get("targets", {}).items():
        print(f"  {name}: {t['status']} top-1 {t['metrics'].get('top1_agreement')}")
    if code not in (0, 5, 6):
        print(log[-2000:])


if __name__ == "__main__":
    main()
