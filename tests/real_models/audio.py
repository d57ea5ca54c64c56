"""Audio models on real speech (Debian alsa-utils' /usr/share/sounds/alsa/*.wav).

- basic-pitch 0.4.0 ships its SavedModel (`basic_pitch/saved_models/icassp_2022/nmp`, three outputs: contour,
  note, onset posteriorgrams) and the publisher's own .tflite/.onnx/CoreML conversions. Used as shipped.
  Input: (None, 43844, 1) mono audio at 22050 Hz (constants.AUDIO_N_SAMPLES / AUDIO_SAMPLE_RATE).
- musicnn 0.1.0 ships TF1 checkpoints (`musicnn/MTT_musicnn/`). Its own `models.py` (imported with the package
  folder on sys.path; `musicnn/__init__.py` is empty) builds the graph in tf.compat.v1, the checkpoint is
  restored, and the graph is frozen (is_training fixed to False) into a `.pb` with input `x` (None, 187, 96)
  and output `sigmoid` (50 MagnaTagATune tags). Its extractor computes the log-mel input with librosa, which is
  not installed: the same log-mel (16 kHz, n_fft 512, hop 256, 96 Slaney mels, log10(10000 x + 1)) is computed
  here in NumPy — close to librosa's, not bit-identical.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from . import sample_sources, signature
from .fetch import unpacked

BASIC_PITCH = "basic-pitch==0.4.0"
MUSICNN = "musicnn==0.1.0"


def _constant(source: str, name: str) -> int:
    return int(re.search(rf"^{name}\s*=\s*(\d+)\s*(?:#.*)?$", source, re.M).group(1))


def build_basic_pitch(out: Path) -> dict:
    pkg, fetch = unpacked(BASIC_PITCH)
    model = pkg / "basic_pitch" / "saved_models" / "icassp_2022" / "nmp"
    consts = (pkg / "basic_pitch" / "constants.py").read_text()
    rate = _constant(consts, "AUDIO_SAMPLE_RATE")
    hop = _constant(consts, "FFT_HOP")
    # AUDIO_N_SAMPLES = AUDIO_SAMPLE_RATE * AUDIO_WINDOW_LENGTH - FFT_HOP  (2 s windows)
    n = rate * _constant(consts, "AUDIO_WINDOW_LENGTH") - hop
    sig = signature.of_saved_model(model)
    wavs = sample_sources.speech_wavs()
    x = np.zeros((len(wavs), n, 1), np.float32)
    for i, w in enumerate(wavs):
        a = sample_sources.read_wav(w, rate)[:n]
        x[i, : len(a), 0] = a  # zero-padded like inference.window_audio_file
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: x})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": [], "signature": sig,
        "file_used": "basic_pitch/saved_models/icassp_2022/nmp (SavedModel, as shipped)",
        "sample_source": f"{len(wavs)} speech files /usr/share/sounds/alsa/*.wav (alsa-utils), {rate} Hz, "
                         f"zero-padded to {n} samples",
        "notes": "publisher also ships nmp.tflite, nmp.onnx and nmp.mlpackage beside the SavedModel",
        "fetch": {BASIC_PITCH: fetch},
    }


def _mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank with Slaney area normalisation (librosa.filters.mel defaults)."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        lin = f / (200.0 / 3)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3)

    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff, ramps = np.diff(mel_f), mel_f[:, None] - fft_f[None, :]
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    return w * (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, None]


def log_mel(audio: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) log10(10000 * mel power + 1), centred frames (zero padding), Hann window."""
    y = np.pad(audio, n_fft // 2)
    frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(y[idx] * window, axis=1)) ** 2
    return np.log10(10000.0 * (power @ _mel_filters(sr, n_fft, n_mels).T) + 1.0).astype(np.float32)


def build_musicnn(out: Path) -> dict:
    import tensorflow as tf

    pkg, fetch = unpacked(MUSICNN)
    cfg_src = (pkg / "musicnn" / "configuration.py").read_text()
    sr, n_fft, hop, n_mels = (_constant(cfg_src, k) for k in ("SR", "FFT_SIZE", "FFT_HOP", "N_MELS"))
    labels = eval(re.search(r"^MTT_LABELS\s*=\s*(\[.*?\])", cfg_src, re.M | re.S).group(1))  # a list literal
    n_frames = 187  # MTT_musicnn/config.json "n_frames" (3 s)
    sys.path.insert(0, str(pkg))
    from musicnn import models  # noqa: E402  (the package's own graph code)

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, n_mels], name="x")
        y = models.define_model(x, tf.constant(False), "MTT_musicnn", len(labels))[0]
        tf.nn.sigmoid(y, name="sigmoid")
        with tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.train.Saver().restore(sess, str(pkg / "musicnn" / "MTT_musicnn") + "/")
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["sigmoid"])
    model = out / "musicnn_mtt.pb"
    model.write_bytes(frozen.SerializeToString())
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    speech = np.concatenate([sample_sources.read_wav(w, sr) for w in sample_sources.speech_wavs()])
    mel = log_mel(speech, sr, n_fft, hop, n_mels)
    starts = range(0, mel.shape[0] - n_frames + 1, n_frames // 2)
    batch = np.stack([mel[s: s + n_frames] for s in starts])
    np.savez(out / "samples.npz", x=batch)
    return {
        "model": str(model), "samples": str(out / "samples.npz"),
        "flags": ["--input-shape", f"x=1,{n_frames},{n_mels}", "--output-names", "sigmoid",
                  "--labels", str(out / "labels.txt")],
        "signature": {"inputs": [["x", [None, n_frames, n_mels], "float32"]],
                      "outputs": [["sigmoid", [None, len(labels)], "float32"]]},
        "file_used": "musicnn/MTT_musicnn/ checkpoint + musicnn/models.py define_model(), frozen to .pb",
        "sample_source": f"{len(batch)} x 3 s log-mel patches (50% overlap) of the alsa-utils speech files, 16 kHz",
        "notes": "multi-label sigmoid tags (50); log-mel computed in NumPy (librosa not installed)",
        "fetch": {MUSICNN: fetch},
    }
