"""PackageSpec: everything one build needs, from CLI flags and/or packager.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from packager.errors import UsageError

TARGET_NAMES = ("android", "ios", "web")
COLOR_MODES = ("rgb", "bgr", "grayscale")
CROP_POLICIES = ("stretch", "center-crop", "letterbox")
# step 7: "mean-std" x = (v - mean) / std with the given mean/std; "per-image" / "per-channel" standardise each
# image by its own statistics (packager.preprocessing.standardise: tf.image.per_image_standardization)
NORMALIZATIONS = ("mean-std", "per-image", "per-channel")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output. ``shape`` includes the batch dimension as ``None``."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (batch 1)."""
        return (1,) + tuple(int(d) for d in self.shape[1:])


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the model's input, the same on every target (packager.preprocessing,
    docs/preprocessing.md): upright by its EXIF orientation, alpha composited on ``background``, ``crop`` policy,
    antialiased bilinear resize, colour mode, then x = (pixel[0..255] - mean) / std per channel (``normalize``
"mean-std"), or each image standardised by its own mean and standard deviation ("per-image": over all its values,
"per-channel": per channel; packager.preprocessing.standardise). ``max_abs_diff``
    gates each target's own image code: its model input on the original files may differ from Python's by at
    most this many pixel levels (0..255, before mean/std)."""

    color: str = "rgb"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (255.0,)
    crop: str = "stretch"  # CROP_POLICIES: stretch | center-crop | letterbox
    background: tuple[int, int, int] = (255, 255, 255)  # under transparent pixels, and the letterbox bars
    max_abs_diff: float = 1.0
    normalize: str = "mean-std"  # NORMALIZATIONS

    @property
    def standardised(self) -> bool:
        """Each image is normalised by its own statistics (no fixed mean/std to apply or invert)."""
        return self.normalize != "mean-std"

    def per_channel(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        def expand(v: tuple[float, ...], what: str) -> tuple[float, ...]:
            if len(v) == 1:
                return v * channels
            if len(v) != channels:
                raise UsageError(
                    f"--{what} has {len(v)} values but the model's input has {channels} channels",
                    hint=f"give one value or {channels} comma-separated values",
                )
            return v

        return expand(self.mean, "mean"), expand(self.std, "std")


# "auto": the smallest mode that passes the gates (pipeline.AUTO_ORDER), every try reported
DEFAULT_QUANTIZATION = {"android": "auto", "ios": "auto", "web": "auto"}


@dataclass(frozen=True)
class PackageSpec:
    model: Path
    samples: Path
    out: Path = Path("dist")
    labels_file: Path | None = None
    labels: tuple[str, ...] = ()  # of the primary output (a labels file given without an output name)
    output_labels: dict = field(default_factory=dict)  # output name -> labels (--labels NAME=FILE, [labels])
    output_kinds: dict = field(default_factory=dict)  # output name -> kind: set in packager.toml, then resolved
    primary_output: str = ""  # resolved by the pipeline from the kinds (packager.kinds.primary_output)
    targets: tuple[str, ...] = TARGET_NAMES
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    quantization: dict = field(default_factory=lambda: dict(DEFAULT_QUANTIZATION))
    tolerances: dict = field(default_factory=dict)  # {mode_or_target: {metric: bound}}
    name: str = ""  # display/model name; defaults to the model file stem
    android_package: str = ""
    android_package_explicit: bool = False  # set with --android-package / [android] package, not a default
    android_abi_filters: tuple[str, ...] = ("arm64-v8a", "armeabi-v7a", "x86_64")
    android_runtime: str = "bundled"  # "bundled" LiteRT or "play-services" (targets/android/render.RUNTIMES)
    int8_io: bool = False
    optimize: str = "balanced"  # what --quantize auto weighs between passing modes (modes.OBJECTIVES)
    input_shapes: dict = field(default_factory=dict)  # name -> tuple, for frozen .pb / dynamic dims
    output_names: tuple[str, ...] = ()  # frozen .pb outputs
    ios_format: str = "neuralnetwork"  # or "mlprogram"
    web_shard_bytes: int = 4 * 1024 * 1024
    author: str = ""
    license: str = ""
    description: str = ""
    version: str = "1.0"
    force: bool = False
    custom_objects: tuple[str, ...] = ()  # modules imported before loading a Keras model (--custom-objects)
    custom_objects_dirs: tuple[Path, ...] = ()  # searched first for them: the model's and the config's folder
    unsafe_deserialization: bool = False  # --unsafe-deserialization: Keras Lambda bytecode may run
    bundle_samples: bool = True  # False (--no-bundled-samples): no sample data in OUT/web or OUT/ios
    web_runtime: str = "tfjs"  # "tfjs", "litert" (the Android .tflite on LiteRT.js) or "auto" (--web-runtime)
    # Set by the build session for a target that reads others (registry ``reads``), never by the user:
    # {target: {"result": its TargetResult, "root": the staging folder its result.artifact is relative to}}
    upstream: dict = field(default_factory=dict, compare=False)

    @property
    def display_name(self) -> str:
        return self.name or self.model.stem or self.model.name

    @property
    def identifier(self) -> str:
        """CamelCase identifier for class names (Kotlin/Swift): ``my-model_v2`` -> ``MyModelV2``."""
        words = re.findall(r"[A-Za-z0-9]+", self.display_name)
        ident = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
        if ident[0].isdigit():
            ident = "Model" + ident
        return ident

    def with_(self, **changes) -> PackageSpec:
        return replace(self, **changes)

