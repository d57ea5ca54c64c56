"""The web target's methods for the LiteRT.js runtime (``mode == "litert"``): WebTarget hands its calls here."""

from __future__ import annotations

from pathlib import Path

from packager.errors import PackagerError, ToolMissing
from packager.modes import judged_gates
from packager.targets.base import Artifact, Prediction, Unverified
from packager.targets.web.litert import bundle, convert, validate
from packager.targets.web.litert.runtime import MODE


def is_litert(mode: str) -> bool:
    return mode == MODE


class LiteRtWeb:
    def convert(self, source, spec, workdir: Path) -> Artifact:
        return convert.convert(source, spec, workdir)

    def render(self, spec, source, artifact: Artifact, samples, outdir: Path) -> Path:
        config = bundle.build_litert_bundle(spec, source, artifact, samples, Path(outdir))
        from packager.targets.web.bundle import bundled_note

        artifact.extra["bundled_samples"] = bundled_note(config)
        return Path(bundle.litert_manifest()["model_file"])

    def predict_and_check(self, run_in_browser, spec, source, artifact, samples, reference, outdir) -> Prediction:
        gates = judged_gates("web", artifact, artifact.mode, spec.tolerances)
        try:
            return run_in_browser(artifact, validate.validate_and_check, spec, source, artifact, samples, reference,
                                  Path(outdir), gates)
        except ToolMissing as e:
            raise Unverified(f"no browser to run the web demo: {e.message}") from e
        except PackagerError as e:
            raise PackagerError(validate.no_accelerator(e)) from e

    def predict(self, spec, source, artifact, samples) -> Prediction:
        """On a bundle of its own (``WORKDIR/web_bundle_litert``), as the TF.js predict does."""
        where = Path(artifact.path).parent / "web_bundle_litert"
        try:
            bundle.build_litert_bundle(spec, source, artifact, samples, where)
        except ToolMissing as e:
            raise Unverified(f"cannot build the web bundle here: {e.message}") from e
        from packager.source import reference_outputs

        reference = reference_outputs(source, samples)
        return self.predict_and_check(lambda _a, fn, *args: fn(*args), spec, source, artifact, samples, reference,
                                      where)

    def checks(self, run_in_browser, spec, source, artifact, samples, reference, outdir) -> list:
        try:
            return self.predict_and_check(run_in_browser, spec, source, artifact, samples, reference, outdir).checks
        except Unverified as e:
            from packager.checks import SKIPPED, Check

            return [Check("browser", SKIPPED, str(e))]
