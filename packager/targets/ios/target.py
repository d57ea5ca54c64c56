"""iOS target: a Core ML model inside a drop-in Swift package.

convert  ``ios_convert``: coremltools -> ``.mlmodel`` (NeuralNetwork, the default) or ``.mlpackage``
         (``spec.ios_format == "mlprogram"``); weight modes fp32, fp16, 8bit.
predict  here: Core ML through coremltools on macOS; elsewhere a NumPy executor of the saved model
         (``local_runner`` below is the one place that picks it). Unknown layers -> ``Unverified`` naming
         every unknown type.
render   ``render``: ``ios_template/`` -> Swift package with the model, the wrapper and an XCTest with
         golden samples.
checks   ``ios_checks``: Swift syntax (tree-sitter), feature names used by the Swift code vs the model spec,
         golden values vs the reference; ``ios_swift_build``: a real Swift toolchain builds and tests the
         package (UNVERIFIED where there is none, or no Apple SDK).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from packager.checks import Check
from packager.targets.base import Artifact, Prediction, watch
from packager.targets.ios import checks as ios_checks
from packager.targets.ios import convert as ios_convert
from packager.targets.ios import render as ios_render
from packager.targets.ios import swift_build as ios_swift_build
from packager.targets.ios.convert import DEPLOYMENT, read_features  # noqa: F401  (DEPLOYMENT: part of this module's API)
from packager.targets.ios.golden_runs import input_digest
from packager.targets.ios.inputs import feed
from packager.targets.ios.pixels import pixel_view
from packager.targets.ios.runner import (  # noqa: F401
    _CoreMLRunner,
    coreml_runtime_available,
    local_runner,
    one_blas_thread,
    unsupported_reason,
)


class IOSTarget:
    name = "ios"
    modes = ("fp32", "fp16", "8bit", "palette6", "palette4")
    default_mode = "fp16"

    def convert(self, source, spec, mode: str, workdir: Path) -> Artifact:
        source, spec = pixel_view(source, spec)
        return ios_convert.convert(source, spec, mode, self.modes, workdir)

    @staticmethod
    def reference_extras(spec, source, samples, reference) -> None:
        """Run by the build where the model is loaded, before this target is built (maybe in a worker that has
        not loaded it): the original model's outputs the golden cases need beside ``reference``."""
        from packager.targets.ios.render import turned_reference

        source, spec = pixel_view(source, spec)
        source.turned_reference = turned_reference(spec, source, samples, reference)

    # ------------------------------------------------------------------ predict

    @staticmethod
    def coreml_runtime_available() -> bool:
        return coreml_runtime_available()

    def predict(self, artifact: Artifact, source, spec, samples) -> Prediction:
        source, spec = pixel_view(source, spec)
        runner, runtime = local_runner(artifact.path, coreml=self.coreml_runtime_available())
        features = read_features(artifact.path)
        rows: dict[str, list[np.ndarray]] = {o.name: [] for o in source.outputs}
        seconds, digests = [], []
        labels = list(spec.labels)
        # One BLAS thread: the executor's results then do not depend on the machine's core count (OpenBLAS
        # splits sums differently per thread count), and it does not spin against a converter running at the
        # same time in the other process.
        with one_blas_thread():
            for sample in samples:
                inputs = feed(sample, source, spec, features, exact_pixels=runner.__class__ is not _CoreMLRunner)
                t0 = time.perf_counter()
                out = runner(inputs)
                seconds.append(time.perf_counter() - t0)
                digests.append(input_digest(inputs, pixels=source.is_image))
                for tensor in source.outputs:
                    value = out[features["outputs"][tensor.name]]
                    if isinstance(value, dict):  # Core ML classifier probabilities: label -> p
                        value = np.asarray([value[label] for label in labels], np.float32)
                    rows[tensor.name].append(_one_row(np.asarray(value, np.float32), tensor.shape))
                if "stop_early" in artifact.extra:  # auto: a failure no later sample can undo ends the run here
                    watch(artifact, {name: np.concatenate(v) for name, v in rows.items()}, len(samples))
        outputs = {name: np.concatenate(v) for name, v in rows.items()}
        artifact.extra["predicted"] = outputs  # render picks the golden samples it got wrong (render.py)
        # the golden cases reuse these runs for the same inputs and bound the rest by this cost (golden_runs.py)
        artifact.extra["predicted_inputs"] = digests
        artifact.extra["seconds_per_run"] = float(np.median(seconds)) if seconds else None
        latency = 1000 * float(np.mean(seconds)) if seconds else None
        return Prediction(outputs, runtime, latency)

    feed = staticmethod(feed)

    def render(self, spec, source, artifact: Artifact, samples, reference, outdir: Path) -> Path:
        source, spec = pixel_view(source, spec)
        return ios_render.render(spec, source, artifact, samples, reference, outdir)

    def checks(self, spec, source, artifact: Artifact, samples, reference, outdir: Path) -> list[Check]:
        from packager.targets.ios.preprocessing_check import ios_check

        source, spec = pixel_view(source, spec)
        return [
            ios_checks.check_swift_syntax(outdir),
            ios_checks.check_feature_names(spec, outdir),
            ios_checks.check_golden(spec, source, samples, outdir, reference),
            ios_swift_build.check_swift_build(outdir, spec.identifier),
            *filter(None, [ios_check(spec, samples, outdir) if getattr(source, "is_image", False) else None]),
        ]


# ---------------------------------------------------------------------- helpers


def _one_row(value: np.ndarray, shape) -> np.ndarray:
    """One sample's output with its batch axis: reshaped to the static shape, or, when some dimension is
    dynamic, kept as produced with a leading batch of 1."""
    if all(d is not None for d in shape[1:]):
        row = (1,) + tuple(int(d) for d in shape[1:])
        # an output with no batch dimension (shape (6,) from a reduction over the batch): flat, as the reference
        return value.reshape(row) if value.size == int(np.prod(row)) else value.reshape(-1)
    rank = len(shape)
    while value.ndim > rank and value.shape[0] == 1:
        value = value[0]
    return value[None] if value.ndim == rank - 1 else value
