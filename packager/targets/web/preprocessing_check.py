"""The web target's ``preprocessing`` check: ``web/preprocess.js`` imported by the served page in Chromium
(createImageBitmap decode, its own resampler) on every original sample file."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from packager.checks import Check
from packager.preprocessing import file_pixels
from packager.preprocessing_checks import _geometry, _verdict, image_files, input_diff

PAGE_SCRIPT = """async ([b64, image]) => {
    const m = await import(new URL("preprocess.js", location.href).href);
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    let px;
    try {
        px = m.modelPixels(await m.decodeImage(new Blob([bytes])), image);
    } catch (e) {
        return {error: String(e && e.message ? e.message : e)};
    }
    const enc = (a) => {
        const out = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        let s = "";
        for (let i = 0; i < out.length; i += 0x8000) s += String.fromCharCode.apply(null, out.subarray(i, i + 0x8000));
        return btoa(s);
    };
    return {b64: enc(px), input: enc(m.normalise(px, image))};
}"""


def web_check(page, spec, samples, browser: str = "Chromium",
              geometry: tuple[int, int, int] | None = None, pixels: bool = False) -> Check | None:
    """``preprocess.js`` in the served page (``page``: a Playwright page of the bundle) on every sample file.
    ``pixels``: the input takes whole pixel levels (uint8; metadata.json's ``image.pixels``), no mean/std."""
    files = image_files(samples)
    if not files:
        return None
    t0 = time.perf_counter()
    w, h, c = _geometry(samples, geometry)
    pre = spec.preprocessing
    if pixels:
        pre = replace(pre, mean=(0.0,), std=(1.0,), normalize="mean-std")
    mean, std = pre.per_channel(c)
    image_cfg = {"width": w, "height": h, "channels": c, "color": pre.color, "crop": pre.crop,
                 "background": list(pre.background), "mean": list(mean), "std": list(std),
                 "normalize": pre.normalize, **({"pixels": True} if pixels else {})}
    diffs, skipped, done = [], [], []
    for f, r in _page_results(page, files, image_cfg):
        if r.get("error"):
            skipped.append(f"{Path(f).name}: the browser could not decode it ({r['error']})")
            continue
        got = np.frombuffer(base64.b64decode(r["b64"]), np.float32)
        got_input = np.frombuffer(base64.b64decode(r["input"]), np.float32)
        diffs.append(input_diff(got, got_input, file_pixels(f, w, h, c, spec.preprocessing), pre))
        done.append(Path(f))
    return _verdict(spec, done, diffs, f"web/preprocess.js in {browser} (createImageBitmap decode, its own "
                                       "resampler, " + ("whole pixel levels for the uint8 input)" if pixels
                                                        else "normalise)"), t0, skipped)


# The files go to the page in runs of at most this many bytes (with their pixels back): one page call a run, each
# file through PAGE_SCRIPT in turn as one call each would, without a Playwright round trip per file.
CALL_BYTES = 4 << 20
PAGE_MANY = "async ([files, image]) => { const one = %s; const out = []; " \
            "for (const b64 of files) out.push(await one([b64, image])); return out; }" % PAGE_SCRIPT


def _page_results(page, files, image_cfg: dict):
    """(file, PAGE_SCRIPT's result on it) for each of ``files``, in order."""
    back = 8 * image_cfg["width"] * image_cfg["height"] * image_cfg["channels"]  # pixels + input, float32
    run, size = [], 0
    for f in [*files, None]:
        data = base64.b64encode(Path(f).read_bytes()).decode("ascii") if f is not None else ""
        if run and (f is None or size + len(data) + back > CALL_BYTES):
            yield from zip([g for g, _ in run], page.evaluate(PAGE_MANY, [[d for _, d in run], image_cfg]))
            run, size = [], 0
        if f is not None:
            run.append((f, data))
            size += len(data) + back
