"""The instrumented test's encoded golden images (src/androidTest/assets/<package>/golden_images/): up to two of the
user's sample files as given, and three made from one of them (``packager.golden_images``: EXIF-rotated, with
alpha, large and not square), with the model input packager's Python makes of each (golden_images.bin, float32
little-endian, as ``fromEncoded`` returns it) and the original model's top-1 where its margin allows
(golden_images.properties). The androidTest's ``<Class>GoldenImages`` asserts them through the module's
``fromEncoded()`` and ``classify(bitmap)``; ``run_on_host`` runs those same assertions on this machine's JVM."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from packager import golden_images as gi
from packager import preprocessing as pp

MAX_SAMPLE_FILES = 2
MAX_FILE_BYTES = 1024 * 1024  # a user's file bigger than this is not copied into the test APK
DIR = "golden_images"


def _base_pictures(spec, source, samples, ctx) -> list[tuple[str, bytes, str, int]]:
    """(name, encoded bytes, why, sample index) of the user's sample files to ship as they are (or PNGs of the
    pixels of array samples that came from whole pixels)."""
    paths = list(getattr(samples, "image_paths", None) or [])
    out = []
    for i in range(min(len(samples), MAX_SAMPLE_FILES)):
        if paths:
            data = Path(paths[i]).read_bytes()
            if len(data) <= MAX_FILE_BYTES:
                out.append((f"sample_{i}{Path(paths[i]).suffix.lower()}", data, f"sample {i} as given", i))
            continue
        x = np.asarray(samples[i][source.inputs[0].name], np.float64)[0]
        mean = np.asarray([float(v) for v in ctx["mean"]])
        std = np.asarray([float(v) for v in ctx["std"]])
        px = x * std + mean
        if x.shape[-1] != 3 or np.max(np.abs(px - np.rint(px))) > 1e-3 or px.min() < -0.5 or px.max() > 255.5:
            continue  # not whole pixels (or grey): no picture to encode
        rgb = np.rint(px).astype(np.uint8)
        if ctx.get("color") == "bgr":
            rgb = rgb[..., ::-1]
        out.append((f"sample_{i}.png", gi.png(rgb), f"sample {i}'s pixels", i))
    return out


def golden_images(spec, source, samples, reference, ctx, gates) -> tuple[list[tuple[str, bytes, str]], bytes, str]:
    """(files (name, bytes, why), golden_images.bin, golden_images.properties text); no files when the samples give
    no picture."""
    bases = _base_pictures(spec, source, samples, ctx)
    if not bases:
        return [], b"", "count=0\n"
    primary = ctx["primary_output"]
    margins = {}
    for _, _, _, i in bases:
        if primary in reference:
            top = np.sort(np.asarray(reference[primary][i], np.float64).ravel())[::-1]
            margins[i] = float(top[0] - top[1]) if top.size > 1 else 0.0
    best = max(bases, key=lambda b: margins.get(b[3], 0.0))
    files = [(n, d, why) for n, d, why, _ in bases]
    files += [(g.name, g.data, g.why) for g in gi.made_from(gi.upright_rgb(best[1]), f"sample {best[3]}")]
    w, h, c = ctx["width"], ctx["height"], ctx["channels"]
    mean = np.asarray([float(v) for v in ctx["mean"]], np.float32)
    std = np.asarray([float(v) for v in ctx["std"]], np.float32)
    inputs, lines = [], []
    # the original's top-1 is asserted where its lead is at least this: twice the shipped mode's error gate, and at
    # least 0.1 (classify scales a large bitmap down with Android's filter first: a few levels off Python's input)
    need = max(2 * float(gates["max_abs_error"]), 0.1)
    for k, (name, data, why) in enumerate(files):
        px = gi.model_pixels(data, w, h, c, spec.preprocessing)
        standardised = not ctx["pixel_input"] and spec.preprocessing.normalize in ("per-image", "per-channel")
        if ctx["pixel_input"]:
            x = np.clip(np.rint(px), 0, 255)
        else:
            x = pp.normalised(px, spec.preprocessing) if standardised else pp.normalise(px, mean, std)
        inputs.append(np.asarray(x, "<f4").tobytes())
        if standardised:  # levels per unit of input: this image's own deviation, not STD
            lines.append(f"scale.{k}=" + ",".join(repr(float(v)) for v in pp.level_scale(px, spec.preprocessing)))
        top1 = -1
        try:
            out = np.asarray(source.predict({source.inputs[0].name: x[None].astype(source.inputs[0].dtype)})[primary],
                             np.float64).ravel()
            order = np.argsort(out)[::-1]
            if out.size > 1 and out[order[0]] - out[order[1]] >= need:
                top1 = int(order[0])
        except Exception:  # noqa: BLE001 - no prediction: the input is still asserted, the top-1 is not
            top1 = -1
        lines += [f"name.{k}={name}", f"top1.{k}={top1}", f"why.{k}={_escape(why)}"]
    props = (f"# Written by packager: encoded golden images, their model inputs by packager's Python, the original "
             f"model's top-1 (-1: not asserted, its lead over the second is below {need:g})\n"
             f"count={len(files)}\nmax_levels={float(spec.preprocessing.max_abs_diff)!r}\n" + "\n".join(lines) + "\n")
    return files, b"".join(inputs), props


def _escape(text: str) -> str:
    """A java.util.Properties value: ASCII, backslash escapes."""
    out = []
    for ch in text:
        if ch in "\\=:#!":
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else "?")
    return "".join(out)


def write(spec, source, samples, reference, ctx, outdir: Path, assets: Path, gates) -> int:
    """Write the golden images into ``assets`` (the androidTest's asset folder of the package); returns the count."""
    files, blob, props = golden_images(spec, source, samples, reference, ctx, gates)
    if not files:
        return 0
    folder = assets / DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, data, _ in files:
        (folder / name).write_bytes(data)
    (assets / "golden_images.bin").write_bytes(blob)
    (assets / "golden_images.properties").write_text(props, encoding="ascii", newline="\n")
    return len(files)
