"""The build report: report.json (read by other tools), a console table, and report.html."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from packager.checks import FAIL, NOT_BUILT, PASS, UNVERIFIED, Check
from packager.errors import EXIT_OK, EXIT_UNVERIFIED, EXIT_VALIDATION_FAILED, ConversionError

# report.json keys whose values differ between identical runs (timings); everything else is reproducible
VOLATILE_KEYS = ("latency_ms", "seconds", "timings")
# null: not run, or not measured for the output's kind (top-1/top-5: class outputs; decisions: sigmoid scores)
METRIC_KEYS = ("top1_agreement", "top5_agreement", "decision_agreement", "max_abs_error", "mean_abs_error", "cosine",
               "psnr")  # psnr: image outputs only (dB, worst sample)


@dataclass
class TargetResult:
    target: str
    status: str
    reason: str = ""
    quantization: str = ""
    artifact: str | None = None  # path relative to the output folder
    bytes: int | None = None
    float_bytes: int | None = None
    runtime: str | None = None
    latency_ms: float | None = None
    metrics: dict = field(default_factory=dict)
    per_output: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    disagreements: list[int] = field(default_factory=list)
    error_histogram: dict = field(default_factory=dict)
    confusion: dict = field(default_factory=dict)  # {classes: [class index], counts: [[int]]}
    checks: list[Check] = field(default_factory=list)
    conversion_failed: bool = False
    seconds: float | None = None
    tries: list[dict] = field(default_factory=list)
    optimize: dict = field(default_factory=dict)  # auto: {objective, why} the kept mode was chosen by
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the target chose by default and how to change it
    preflight: list[dict] = field(default_factory=list)  # op findings before conversion
    # image outputs: {output: {sample index: the target's map (H, W, C)}} of its worst samples, for report.html's
    # pictures; not written to report.json
    output_maps: dict = field(default_factory=dict)

    @property
    def status_line(self) -> str:
        """The status as the console and report.html show it: a PASS names the checks that could not run here
        (e.g. ``PASS (UNVERIFIED here: gradle-build)``), so they are not hidden in the details under a green PASS."""
        unverified = [c.name for c in self.checks if c.status == UNVERIFIED]
        return f"{self.status} (UNVERIFIED here: {', '.join(unverified)})" if self.status == PASS and unverified \
            else self.status

    def to_json(self) -> dict:
        d = {
            "target": self.target,
            "status": self.status,
            "status_line": self.status_line,
            "reason": self.reason,
            "quantization": self.quantization,
            "artifact": self.artifact,
            "bytes": self.bytes,
            "float_bytes": self.float_bytes,
            "size_ratio": round(self.bytes / self.float_bytes, 4) if self.bytes and self.float_bytes else None,
            "runtime": self.runtime,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "metrics": {k: _round(self.metrics.get(k)) for k in METRIC_KEYS},
            "per_output": {n: {k: _round(v) for k, v in m.items()} for n, m in self.per_output.items()},
            "gates": self.gates,
            "disagreements": self.disagreements,
            "error_histogram": self.error_histogram,
            "confusion": self.confusion,
            "checks": [c.to_json() for c in self.checks],
            "seconds": None if self.seconds is None else round(self.seconds, 2),
        }
        if self.conversion_failed:
            d["conversion_failed"] = True
        if self.tries:
            d["tries"] = self.tries
        if self.optimize:
            d["optimize"] = self.optimize
        if self.warnings:
            d["warnings"] = self.warnings
        if self.notes:
            d["notes"] = self.notes
        if self.preflight:
            d["preflight"] = self.preflight
        pre = next((c.data for c in self.checks if c.name == "preprocessing" and c.data is not None), None)
        if pre is not None:  # the target's own image code on the original sample files vs Python's
            d["preprocessing"] = {**pre, "status": next(c.status for c in self.checks if c.name == "preprocessing")}
        return d


    @classmethod
    def from_json(cls, d: dict) -> TargetResult:
        known = {f for f in cls.__dataclass_fields__} - {"target", "status", "checks", "conversion_failed", "output_maps"}
        r = cls(d.get("target", ""), d["status"], **{k: v for k, v in d.items() if k in known})
        r.checks = [Check(**c) for c in d.get("checks", [])]
        r.conversion_failed = bool(d.get("conversion_failed"))
        return r


def _round(v):
    return round(v, 7) if isinstance(v, float) else v


@dataclass
class Report:
    model: dict
    samples: dict
    targets: dict[str, TargetResult]
    packager_version: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        built = [r.status for r in self.targets.values() if r.status != NOT_BUILT]
        if any(s == FAIL for s in built):
            return FAIL
        if any(s != PASS for s in built):
            return UNVERIFIED
        return PASS if built else NOT_BUILT

    @property
    def exit_code(self) -> int:
        results = [r for r in self.targets.values() if r.status != NOT_BUILT]
        if any(r.conversion_failed for r in results):
            return ConversionError.exit_code
        if any(r.status == FAIL for r in results):
            return EXIT_VALIDATION_FAILED
        if any(r.status != PASS for r in results):
            return EXIT_UNVERIFIED
        return EXIT_OK

    def to_json(self) -> dict:
        return {
            "packager_version": self.packager_version,
            "status": self.status,
            "exit_code": self.exit_code,
            "model": self.model,
            "samples": self.samples,
            "targets": {name: r.to_json() for name, r in self.targets.items()},
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }

    @classmethod
    def from_json(cls, d: dict) -> Report:
        return cls(model=d["model"], samples=d["samples"], packager_version=d["packager_version"],
                   targets={n: TargetResult.from_json({"target": n, **t}) for n, t in d["targets"].items()},
                   timings=d.get("timings", {}))

    def write(self, out: Path, *, labels: tuple[str, ...] = (), thumbnails: dict[int, str] | None = None,
              pictures: dict | None = None) -> None:
        (out / "report.json").write_text(json.dumps(_finite(self.to_json()), indent=2, ensure_ascii=False,
                                                    allow_nan=False) + "\n", encoding="utf-8")
        from packager.report_html import render_report_html

        (out / "report.html").write_text(render_report_html(self, labels, thumbnails or {}, pictures or {}),
                                         encoding="utf-8")

    def summary_table(self) -> str:
        rows = [("target", "status", "mode", "size", "vs fp32", "top-1", "max err", "runtime")]
        for name, r in self.targets.items():
            m = r.metrics
            rows.append((
                name,
                r.status_line,  # a check that could not run here is named there, not only in the details below
                r.quantization or "-",
                _human(r.bytes) if r.bytes else "-",
                f"{r.bytes / r.float_bytes:.3f}" if r.bytes and r.float_bytes else "-",
                f"{m['top1_agreement']:.3f}" if m.get("top1_agreement") is not None
                else f"{m['decision_agreement']:.3f} (0.5)" if m.get("decision_agreement") is not None else "-",
                f"{m['max_abs_error']:.2e}" if m.get("max_abs_error") is not None else "-",
                r.runtime or "-",
            ))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        outputs = self.model.get("outputs", [])
        if any(o.get("kind") for o in outputs):
            primary = self.model.get("primary_output")
            lines.append("outputs: " + ", ".join(
                f"{o['name']} ({o.get('kind') or '?'}{', primary' if o['name'] == primary else ''})" for o in outputs))
        for name, r in self.targets.items():
            if r.reason:
                lines.append(f"{name}: {r.reason}")
            for w in r.warnings:
                lines.append(f"{name} warning: {w}")
            for c in r.checks:
                if c.status != PASS:
                    lines.append(f"{name} check {c.name}: {c.status} - {c.detail}")
        return "\n".join(lines)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _finite(value):
    """NaN and infinity are not JSON (``JSON.parse`` rejects them): written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
