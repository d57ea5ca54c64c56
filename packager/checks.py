"""Statuses and the Check record shared by every target."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PASS = "PASS"
FAIL = "FAIL"
UNVERIFIED = "UNVERIFIED"  # could not be executed here; never shown as success
SKIPPED = "SKIPPED"  # a tool this check needs is missing on this machine
NOT_BUILT = "NOT_BUILT"

STATUSES = (PASS, FAIL, UNVERIFIED, SKIPPED, NOT_BUILT)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str = ""
    seconds: float | None = None
    data: dict | None = None  # figures a check reports (the preprocessing check: files, max_abs_diff, path)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")

    def to_json(self) -> dict:
        d = asdict(self)
        if d["seconds"] is None:
            d.pop("seconds")
        else:
            d["seconds"] = round(d["seconds"], 3)
        if d["data"] is None:
            d.pop("data")
        return d
