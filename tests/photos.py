"""Camera-like test photos made with Pillow (nothing downloaded): JPEGs stored rotated with each EXIF orientation
1-8, RGBA and palette PNGs with transparency, 16-bit PNGs (grey and RGB), a CMYK JPEG, a greyscale JPEG, a JPEG and
a PNG carrying a wide-gamut (Adobe RGB primaries) ICC profile, tiny and huge images. ``make_photos(folder)`` writes them and returns {file name: kind}."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# EXIF orientation o: how to store an upright picture so that a viewer applying o shows it upright again
# (the inverse of the viewer's transform; 6 and 8 are each other's inverse, the others their own).
STORE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: a.transpose(1, 0, 2)[::-1, :],  # inverse of "rotate 90 CW to view": rotate 90 CCW
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: a.transpose(1, 0, 2)[:, ::-1],
}


def scene(w: int, h: int, seed: int = 0) -> np.ndarray:
    """An upright HxWx3 uint8 'photo': sky gradient, a sun, ground, a house, sensor noise, slight blur."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    sky = np.stack([90 + 80 * y + 0 * x, 140 + 60 * y + 0 * x, 230 - 40 * y + 0 * x], -1)
    im = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle((0, int(h * 0.62), w, h), fill=(70, 130, 50))
    d.ellipse((int(w * 0.72), int(h * 0.08), int(w * 0.86), int(h * 0.08) + int(w * 0.14)), fill=(255, 220, 90))
    d.rectangle((int(w * 0.15), int(h * 0.4), int(w * 0.45), int(h * 0.75)), fill=(180, 60, 40))
    d.polygon([(int(w * 0.12), int(h * 0.4)), (int(w * 0.3), int(h * 0.2)), (int(w * 0.48), int(h * 0.4))],
              fill=(110, 40, 30))
    d.rectangle((int(w * 0.27), int(h * 0.55), int(w * 0.33), int(h * 0.75)), fill=(60, 40, 20))
    im = im.filter(ImageFilter.GaussianBlur(max(0.5, w / 1500)))
    a = np.asarray(im, np.int16) + rng.integers(-6, 7, (h, w, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png16(path: Path, a: np.ndarray) -> None:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA by the last axis) written by hand: Pillow writes 16-bit grey only."""
    h, w = a.shape[:2]
    c = a.shape[2] if a.ndim == 3 else 1
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\0" + a[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def wide_gamut_icc() -> bytes:
    """A minimal ICC v2 RGB matrix/TRC display profile with Adobe RGB (1998)'s D50 primaries and gamma 2.2: what a
    camera set to Adobe RGB embeds. Decoders that colour-manage (Java ImageIO, Android's getPixels) convert it."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    text = b"wide-gamut test\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
            (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)), (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text" + bytes(4) + b"none\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def make_photos(folder: Path, *, big: tuple[int, int] = (1600, 1200), huge: tuple[int, int] = (4032, 3024)) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {}
    up = scene(*big)
    for o in range(1, 9):
        name = f"orient{o}.jpg"
        Image.fromarray(np.ascontiguousarray(STORE[o](up))).save(folder / name, quality=92, exif=_exif(o))
        kinds[name] = f"JPEG {big[0]}x{big[1]}, EXIF orientation {o}"
    png = scene(300, 200, 9)  # PNG with an eXIf orientation chunk
    Image.fromarray(np.ascontiguousarray(STORE[6](png))).save(folder / "orient6.png", exif=_exif(6))
    kinds["orient6.png"] = "PNG 300x200, eXIf orientation 6"
    # RGBA: a photo fading to transparent, hidden RGB under alpha 0
    w, h = 900, 700
    rgba = np.dstack([scene(w, h, 1), np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))])
    rgba[:, : w // 8, :3] = (255, 0, 255)  # hidden colour where alpha is ~0
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    kinds["rgba.png"] = "RGBA PNG (alpha gradient, hidden RGB)"
    # palette with a transparent entry
    pal = Image.fromarray(scene(640, 480, 2)).quantize(64)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    kinds["palette.png"] = "palette PNG (64 colours, tRNS)"
    # 16-bit
    g = (np.linspace(0, 65535, 500)[None, :] * np.linspace(0.2, 1, 400)[:, None]).astype(np.uint16)
    Image.fromarray(g).save(folder / "grey16.png")
    kinds["grey16.png"] = "16-bit greyscale PNG"
    rgb16 = (scene(480, 360, 3).astype(np.uint32) * 257 + np.random.default_rng(4).integers(0, 257, (360, 480, 3)))
    png16(folder / "rgb16.png", rgb16.astype(np.uint16))
    kinds["rgb16.png"] = "16-bit RGB PNG"
    rgba16 = np.dstack([rgb16, np.tile(np.linspace(0, 65535, 480), (360, 1))]).astype(np.uint16)
    png16(folder / "rgba16.png", rgba16)
    kinds["rgba16.png"] = "16-bit RGBA PNG"
    Image.fromarray(scene(800, 600, 5)).convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    kinds["cmyk.jpg"] = "CMYK JPEG"
    Image.fromarray(scene(800, 600, 6)).convert("L").save(folder / "grey.jpg", quality=90)
    kinds["grey.jpg"] = "greyscale JPEG"
    Image.fromarray(scene(640, 480, 9)).save(folder / "adobe_rgb.jpg", quality=92, icc_profile=wide_gamut_icc())
    kinds["adobe_rgb.jpg"] = "JPEG with a wide-gamut ICC profile"
    Image.fromarray(scene(320, 240, 10)).save(folder / "adobe_rgb.png", icc_profile=wide_gamut_icc())
    kinds["adobe_rgb.png"] = "PNG with a wide-gamut ICC profile"
    Image.fromarray(scene(3, 2, 7)).save(folder / "tiny.png")
    kinds["tiny.png"] = "tiny 3x2 PNG"
    Image.fromarray(scene(*huge, 8)).save(folder / "huge.jpg", quality=85)
    kinds["huge.jpg"] = f"huge {huge[0]}x{huge[1]} JPEG"
    return kinds
