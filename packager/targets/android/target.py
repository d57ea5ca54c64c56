"""Android target: a quantized .tflite, executed here with ai-edge-litert (the Android kernels),
inside a Gradle library module (rendered by ``module``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from packager.errors import ConversionError
from packager.targets.android.tflite import MODES, convert_tflite, dynamic_floor, run_tflite, xnnpack_coverage
from packager.targets.base import Artifact, Prediction

__all__ = ["AndroidTarget", "MODES", "convert_tflite", "run_tflite"]


class AndroidTarget:
    name = "android"
    modes = MODES
    default_mode = "int8"
    # Checks that run the shipped model on the device's runtime (the module's JNI core on LiteRT's C API): under
    # --quantize auto a mode that passed validation but fails one of these is a failed try (target_build).
    device_checks = ("jni-runs-shipped-model",)

    def convert(self, source, spec, mode: str, workdir: Path) -> Artifact:
        checks = []
        if mode == "mixed":  # int8 with the worst ops kept float (packager/targets/android/mixed.py)
            from packager.targets.android.mixed import convert_mixed

            try:
                models, mixed = convert_mixed(source, spec, source.samples)
            except ConversionError as e:  # the fallback modes it converted for its bound are auto's next tries,
                # finished as a conversion of their own finishes them (float weights on dynamic-range)
                e.by_products = self._finish(dict(e.by_products or {}), source, spec, workdir)
                raise
            checks.append(mixed.check())
        else:
            models = convert_tflite(source, spec, mode, samples=source.samples)
        made = self._finish(models, source, spec, workdir)
        artifact = made.pop(mode)
        artifact.extra["quantization_checks"] = checks + artifact.extra.get("quantization_checks", [])
        if made:
            artifact.extra["by_products"] = made
        return artifact

    def _finish(self, models: dict[str, bytes], source, spec, workdir: Path) -> dict[str, Artifact]:
        """Each converted model as the module ships it, whichever conversion made it: int8 with its biases corrected
        against the float model it was quantized from, dynamic-range with the weights whose int8 rounding flips
        samples kept float32 (not under --optimize size: fewest bytes); written, with their checks and notes."""
        notes: dict[str, tuple[list, str]] = {}
        if "int8" in models and "fp32" in models:
            from packager.targets.android.bias_correction import correct_biases

            corrected = correct_biases(models["int8"], models["fp32"], source.samples)
            models["int8"] = corrected.data
            notes["int8"] = ([corrected.check()], corrected.note())
        if "dynamic" in models and getattr(spec, "optimize", "balanced") != "size":
            from packager.targets.android.float_weights import keep_float_weights

            models.update({} if (workdir / "model_fp32.tflite").exists() else convert_tflite(source, spec, "fp32"))
            float_model = models.get("fp32") or (workdir / "model_fp32.tflite").read_bytes()
            refined = keep_float_weights(models["dynamic"], float_model, source.samples)
            models["dynamic"] = refined.data
            notes["dynamic"] = ([refined.check()], refined.note())
        made = {m: self._write(m, data, source, spec, workdir) for m, data in models.items()}
        for m, (checks, note) in notes.items():
            made[m].extra.update(quantization_checks=checks, try_note=note)
        return made

    def _write(self, mode: str, data: bytes, source, spec, workdir: Path) -> Artifact:
        path = workdir / f"model_{mode}.tflite"
        path.write_bytes(data)
        if importlib.util.find_spec("packager.targets.android.metadata"):
            from packager.targets.android.metadata import embed_metadata

            embed_metadata(path, spec, source)
        return Artifact(self.name, mode, path, path.stat().st_size, {"int8_io": mode == "int8" and spec.int8_io})

    def predict(self, artifact: Artifact, source, spec, samples) -> Prediction:
        outputs, latency, version = run_tflite(artifact.path, source, samples)
        return Prediction(outputs, f"ai-edge-litert {version}", latency)

    def kernel_profile(self, artifact: Artifact) -> dict:
        """How many of the shipped graph's ops XNNPACK delegates (the rest run LiteRT's reference kernels)."""
        return {"xnnpack": xnnpack_coverage(artifact.path)}

    def rival_floor(self, artifact: Artifact, rival: str) -> int | None:
        """The least bytes ``rival`` can take, known from ``artifact`` without converting it (modes.rival_cannot_win):
        dynamic-range stores each weight of an int8 model in at least as many bytes, a small one as float32."""
        return dynamic_floor(artifact.path) if artifact.mode == "int8" and rival == "dynamic" else None

    def render(self, spec, source, artifact, samples, reference, outdir: Path) -> None:
        from packager.names import android_package_note
        from packager.targets.android.module import render_module

        artifact.extra["notes"] = [android_package_note(spec)]
        return render_module(spec, source, artifact, samples, reference, outdir)

    def prepare(self, spec, preview, workdir: Path):
        from packager.targets.android.module import precompile

        return precompile(spec, preview, workdir)

    def checks(self, spec, source, artifact, samples, reference, outdir: Path):
        from packager.targets.android.module import module_checks

        return module_checks(spec, source, artifact, samples, reference, outdir)
