"""Helpers run by bench.py as separate processes (each invocation is one process, timed from outside).

    official.py prepare OUT --size 224 --alpha 1.0 --count 16 --seed 0
        MobileNetV2(weights=None) -> OUT/MobileNetV2.keras, OUT/saved_model/ (model.export), OUT/samples/*.png
        (random-noise images, fixed seed). Writes OUT/prepare.json with the export time.
    official.py tflite SAVED_MODEL SAMPLES OUT.tflite --mode int8|fp32
        tf.lite.TFLiteConverter.from_saved_model; int8 = full-integer quantization (TFLITE_BUILTINS_INT8,
        float I/O) calibrated with a representative dataset of the same sample images.
    official.py coreml SAVED_MODEL OUTDIR --modes fp16[,fp32,8bit]
        coremltools -> neuralnetwork .mlmodel (iOS14 deployment target) from the serving_default concrete
        function; weights quantized with quantization_utils.quantize_weights (16 bits / 8 bits linear).

The official TF.js converter is run by bench.py directly as the tensorflowjs_converter CLI.
The preprocessing is MobileNetV2's: (pixel - 127.5) / 127.5, the same as bench.py passes to packager.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

MEAN, STD = 127.5, 127.5


def load_samples(folder: Path, size: int) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for p in sorted(folder.glob("*.png")):
        with Image.open(p) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            x = (np.asarray(im, np.float32) - MEAN) / STD
        out.append(x[None])
    return out


def prepare(a) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    rng = np.random.default_rng(a.seed)
    samples = out / "samples"
    samples.mkdir(exist_ok=True)
    for i in range(a.count):
        px = rng.integers(0, 256, size=(a.size, a.size, 3), dtype=np.uint8)
        Image.fromarray(px, "RGB").save(samples / f"noise_{i:02d}.png")

    import keras

    keras.utils.set_random_seed(a.seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(a.size, a.size, 3), alpha=a.alpha)
    model.save(out / "MobileNetV2.keras")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(out / "saved_model"))
    export_s = time.perf_counter() - t0
    (out / "prepare.json").write_text(json.dumps({"export_seconds": export_s, "params": int(model.count_params())}))


def tflite(a) -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(a.saved_model, signature_keys=["serving_default"])
    if a.mode == "int8":
        samples = load_samples(Path(a.samples), a.size)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x] for x in samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif a.mode != "fp32":
        sys.exit(f"unknown mode {a.mode}")
    Path(a.out).write_bytes(conv.convert())


def coreml(a) -> None:
    import coremltools as ct
    import tensorflow as tf
    from coremltools.models.neural_network import quantization_utils

    loaded = tf.saved_model.load(a.saved_model)  # keep a reference: the function needs its variables
    cf = loaded.signatures["serving_default"]
    model = ct.convert([cf], source="tensorflow", convert_to="neuralnetwork",
                       minimum_deployment_target=ct.target.iOS14)
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for mode in a.modes.split(","):
        if mode == "fp32":
            m = model
        elif mode == "fp16":
            m = quantization_utils.quantize_weights(model, nbits=16)
        elif mode == "8bit":
            m = quantization_utils.quantize_weights(model, nbits=8, quantization_mode="linear")
        else:
            sys.exit(f"unknown mode {mode}")
        m.save(str(out / f"MobileNetV2_{mode}.mlmodel"))


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("out")
    s.add_argument("--size", type=int, default=224)
    s.add_argument("--alpha", type=float, default=1.0)
    s.add_argument("--count", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=prepare)
    s = sub.add_parser("tflite")
    s.add_argument("saved_model")
    s.add_argument("samples")
    s.add_argument("out")
    s.add_argument("--mode", default="int8")
    s.add_argument("--size", type=int, default=224)
    s.set_defaults(fn=tflite)
    s = sub.add_parser("coreml")
    s.add_argument("saved_model")
    s.add_argument("outdir")
    s.add_argument("--modes", default="fp16")
    s.set_defaults(fn=coreml)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
