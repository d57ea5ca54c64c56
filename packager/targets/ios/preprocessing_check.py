"""The iOS target's ``preprocessing`` check. The Swift code cannot run here (no Swift toolchain or Apple frameworks on
Linux): its steps, transcribed into Python from the rendered ``<Name>Preprocessing.swift``'s own constants
(``swift_preprocessing``), run on the ORIGINAL sample files and are compared with ``packager.preprocessing``. The
check stays UNVERIFIED (the Swift itself did not run) unless the transcription exceeds the gate: FAIL."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from packager.checks import FAIL, UNVERIFIED, Check
from packager.preprocessing_checks import NAME, image_files, not_run_data

REMAINING = ("what the transcription cannot show: ImageIO's own decoders (JPEG IDCT; PNGs handed over premultiplied: "
             "composited from premultiplied values, about half a level), pixel layouts the Swift reader leaves to "
             "Core Graphics (indexed, float: colour-managed into sRGB) and camera formats other than 32BGRA (Core "
             "Image, colour management off)")


def compare(outdir: Path, name: str, files: list[Path], pre) -> tuple[list[float], dict]:
    """Per file: max |Swift transcription - packager.preprocessing| in pixel levels (model input, RGB order)."""
    from packager import preprocessing as pp
    from packager.targets.ios import swift_preprocessing as sp

    c = sp.constants(sp.source_file(outdir, name).read_text(encoding="utf-8"))
    diffs = []
    for path in files:
        ours = pp.model_pixels(pp.decode_rgba(path), c["width"], c["height"], c["channels"], color="rgb",
                               crop=pre.crop, background=pre.background)
        diffs.append(pp.max_abs_diff(sp.file_pixels(path, c), ours))
    return diffs, c


def ios_check(spec, samples, outdir: Path | None = None) -> Check | None:
    files = image_files(samples)
    if not files:
        return None
    t0 = time.perf_counter()
    name = spec.identifier
    if outdir is None or not (outdir / "Sources" / name / f"{name}Preprocessing.swift").exists():
        return Check(NAME, UNVERIFIED, "the Swift package's preprocessing was not rendered",
                     data=not_run_data(spec, "not run: no Swift toolchain here"))
    diffs, c = compare(outdir, name, files, spec.preprocessing)
    worst = max(diffs)
    gate = float(spec.preprocessing.max_abs_diff)
    data = {"files": len(diffs), "max_abs_diff": round(worst, 6), "gate": gate,
            "path": f"Sources/{name}/{name}Preprocessing.swift transcribed into Python (its constants read from "
                    "the source); the Swift code itself not run (no Swift toolchain here)",
            "per_file": {f.name: round(d, 6) for f, d in zip(files, diffs)}, "remaining_differences": REMAINING,
            "normalization": f"{getattr(spec.preprocessing, 'normalize', 'mean-std')}: step 7 is the Core ML "
                             "model's own (its image scale/bias, or its graph's standardisation), executed on every "
                             "sample by the validation"}
    detail = (f"the Swift code cannot run here; {name}Preprocessing.swift's steps (raw stored pixels, no colour "
              f"management; EXIF orientation; alpha composited on {tuple(int(v) for v in c['background'])}; "
              f"{c['cropPolicy']}; antialiased bilinear, support {c['filterSupport']:g}; 8-bit pixel buffer) "
              f"transcribed into Python from the source's own constants, on {len(diffs)} original sample files: "
              f"model input max |diff| vs packager.preprocessing {worst:.4g} pixel levels (gate {gate:g}; worst "
              f"{files[int(np.argmax(diffs))].name}); {REMAINING}")
    return Check(NAME, FAIL if worst > gate else UNVERIFIED, detail, time.perf_counter() - t0, data=data)
