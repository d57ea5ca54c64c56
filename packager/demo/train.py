"""Train the bundled demo classifier and write model.keras, labels.txt and samples/ beside this file.

    .venv/bin/python -m packager.demo.train

Deterministic (fixed seeds), offline, ~1 minute on 2 CPU cores. The float model must classify the
bundled samples with >= 90 % accuracy; the script refuses to write a worse model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from packager.demo.shapes import LABELS, SIZE, dataset

HERE = Path(__file__).parent
N_TRAIN_PER_CLASS = 1000
N_SAMPLES_PER_CLASS = 16  # 64 bundled sample images
MEAN, STD = 127.5, 127.5


def build_model():
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(32, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(48, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    out = layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(inp, out, name="shapes")


def to_array(images) -> np.ndarray:
    return (np.stack([np.asarray(im, np.float32) for im in images]) - MEAN) / STD


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(7)
    train_images, y_train = dataset(N_TRAIN_PER_CLASS, seed=1)
    sample_images, y_samples = dataset(N_SAMPLES_PER_CLASS, seed=2)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(to_array(train_images), y_train, epochs=30, batch_size=64, verbose=0, validation_split=0.1,
              callbacks=[keras.callbacks.ReduceLROnPlateau(patience=3, factor=0.5)])
    acc = float((model.predict(to_array(sample_images), verbose=0).argmax(1) == y_samples).mean())
    print(f"accuracy on the bundled samples: {acc:.3f}")
    if acc < 0.9:
        raise SystemExit("demo model is below 90 % accuracy on its samples; not written")
    model.save(HERE / "model.keras")
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    samples = HERE / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    samples.mkdir()
    for i, (im, y) in enumerate(zip(sample_images, y_samples)):
        im.save(samples / f"{i:03d}_{LABELS[y]}.png", optimize=True)
    print(f"wrote {HERE / 'model.keras'} ({(HERE / 'model.keras').stat().st_size} bytes) and {len(sample_images)} samples")


if __name__ == "__main__":
    main()
