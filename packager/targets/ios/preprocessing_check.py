"""The iOS target's ``preprocessing`` check: UNVERIFIED here (no Swift toolchain or Apple frameworks on Linux)."""

from __future__ import annotations

from packager.checks import UNVERIFIED, Check
from packager.preprocessing_checks import NAME, image_files, not_run_data

SWIFT_FIELDS = ("color", "mean", "std", "crop", "background")


def ios_check(spec, samples) -> Check | None:
    files = image_files(samples)
    if not files:
        return None
    return Check(NAME, UNVERIFIED,
                 "the Swift package's image code cannot run here (no Swift toolchain or Apple frameworks on Linux); "
                 "it implements the documented algorithm (docs/preprocessing.md) from the spec's preprocessing "
                 f"fields ({', '.join(SWIFT_FIELDS)})",
                 data=not_run_data(spec, "not run: no Swift toolchain here"))
