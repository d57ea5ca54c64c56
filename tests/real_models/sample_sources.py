"""Real sample data from files on disk or inside packages (never random tensors).

- photos: scikit-image's wheel ships `skimage/data/*.png|jpg` (astronaut, coffee, chelsea, camera, ...) and
  `skimage/data/lfw_subset.npy` (Labeled Faces in the Wild: 100 faces then 100 non-faces, 25x25 grayscale).
  Read straight from the wheel zip; scikit-image is not installed.
- speech: Debian's `alsa-utils` ships `/usr/share/sounds/alsa/*.wav` (a voice naming each speaker channel).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from .fetch import member

SKIMAGE = "scikit-image==0.24.0"
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "camera.png", "rocket.jpg", "motorcycle_left.png",
          "horse.png", "coins.png", "moon.png", "page.png", "retina.jpg", "brick.png"]
ALSA_DIR = Path("/usr/share/sounds/alsa")


def write_photos(folder: Path, names: list[str] | None = None) -> list[str]:
    """Copy skimage's photos (the original bytes) into `folder`; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or PHOTOS
    for name in names:
        (folder / name).write_bytes(member(SKIMAGE, f"skimage/data/{name}"))
    return names


def lfw_faces(count: int) -> np.ndarray:
    """The first `count` LFW face crops (uint8, count x 25 x 25), from skimage's lfw_subset.npy."""
    faces = np.load(io.BytesIO(member(SKIMAGE, "skimage/data/lfw_subset.npy")))
    faces = faces[:100][:count]  # the first 100 are faces
    return np.clip(np.rint(faces * 255.0 if faces.max() <= 1.0 else faces), 0, 255).astype(np.uint8)


def write_faces(folder: Path, count: int) -> list[str]:
    """LFW faces as PNG files (grayscale, 25x25 as shipped; packager resizes)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, face in enumerate(lfw_faces(count)):
        name = f"lfw_{i:03d}.png"
        Image.fromarray(face, "L").save(folder / name)
        names.append(name)
    return names


def speech_wavs() -> list[Path]:
    """alsa-utils' spoken channel names (Noise.wav left out: it is not speech)."""
    files = sorted(p for p in ALSA_DIR.glob("*.wav") if p.name != "Noise.wav")
    if not files:
        raise FileNotFoundError(f"no speech .wav in {ALSA_DIR}: install Debian's alsa-utils (listed in .ci/setup)")
    return files


def read_wav(path: Path, rate: int) -> np.ndarray:
    """Mono float32 in -1..1 at `rate` Hz (linear-interpolation resampling; 16-bit PCM files)."""
    with wave.open(str(path)) as w:
        n_ch, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit PCM, expected 16-bit")
    x = np.frombuffer(raw, "<i2").astype(np.float32).reshape(-1, n_ch).mean(axis=1) / 32768.0
    if src_rate != rate:
        t_out = np.arange(int(len(x) * rate / src_rate)) / rate
        x = np.interp(t_out, np.arange(len(x)) / src_rate, x).astype(np.float32)
    return x
