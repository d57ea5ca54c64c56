"""Every tf.js backend the page may pick, validated on the samples (issue 19).

The page tries wasm, then webgl, then cpu, and runs on the first that starts and runs the model. Each of them is
run here in headless Chromium (``index.html?backend=NAME``; WebGL runs on SwiftShader), the first on every sample,
the later ones (fallbacks) on the first FALLBACK_SAMPLES, and compared with the reference under the target's
gates. The bundle's metadata.json then lists only the backends that passed, so a backend that loads but computes
wrong numbers is never picked by the page; one that cannot run the graph (e.g. wasm's fused convolution refusing a
rank-4 bias) is left out too, with its reason in the ``backends`` check.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packager.checks import FAIL, PASS, UNVERIFIED, Check
from packager.compare import compare, gates_for
from packager.errors import PackagerError
from packager.memory import LARGE_WEIGHTS, weights_bytes
from packager.targets.base import Prediction
from packager.targets.web.bundle import BACKENDS, _from_b64, b64_sample
from packager.targets.web.page import CHECK_PREFIX, PageSession, _prediction, _runtime_name
from packager.targets.web.page import _predict_samples as _predict_all

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec


@dataclass
class BackendRun:
    name: str
    loaded: bool
    passed: bool = False
    reason: str = ""
    prediction: Prediction | None = None
    metrics: dict = field(default_factory=dict)
    samples: int = 0  # how many samples it ran (a fallback runs FALLBACK_SAMPLES)
    of: int = 0
    unverified: bool = False  # a fallback whose spot check did not finish within the budget (fallback_budget)

    def summary(self) -> str:
        if self.unverified:
            return f"{self.name}: UNVERIFIED ({self.reason}; listed for the page unchecked)"
        if not self.loaded:
            return f"{self.name}: cannot run the model ({self.reason}), left out"
        m = self.metrics
        figures = ", ".join(f"{k} {v:.3f}" if k != "max |diff|" else f"{k} {v:.3g}"
                            for k, v in (("top-1", m.get("top1_agreement")), ("max |diff|", m.get("max_abs_error")),
                                         ("cosine", m.get("cosine"))) if v is not None)
        ms = self.prediction.latency_ms if self.prediction and self.prediction.latency_ms is not None else None
        timing = f", {ms:.1f} ms/sample" if ms is not None else ""
        if self.samples and self.samples < self.of:
            timing += f", on {self.samples} of {self.of} samples (a fallback's spot check)"
        if self.passed:
            return f"{self.name}: PASS ({figures}{timing})"
        what = "numerically wrong" if not self.reason.startswith("console errors") else "errors on the page"
        return f"{self.name}: {what} ({self.reason}; {figures}), left out"


# A backend after the one the page picks first is a fallback: it is spot-checked on the first FALLBACK_SAMPLES
# samples (the figures come from the first backend, which runs every sample): it must load the model and agree with
# the reference on them. Its page skips the demo's warm-up run (``?warmup=0``), which its first sample does in
# effect. Measured on an idle machine (2026-11-28), per sample: MobileNetV2 wasm 0.04 s, webgl (SwiftShader) 0.56 s
# + 5 s to compile its shaders, cpu 1.4 s; ResNet50 wasm 0.35 s, webgl 4.5 s, cpu 10.8 s. Every sample on every
# fallback took 30 s of MobileNetV2's 70 s build; a 2 s budget (at least 2 samples) after the warm-up still cost
# the P1 build ~10 CPU s of its 56 (2026-12-06: webgl's GPU process 6.3 CPU s, the cpu page 3.5).
FALLBACK_SAMPLES = 1

# The fallbacks' spot checks together get a wall-clock budget set by the model's own measured cost: what the first
# backend took to run every sample here (FALLBACK_SHARE of it), never under FALLBACK_FLOOR_S (a page's fixed costs:
# WebGL's shader compilation, a small model's first run). A fallback that has not finished its spot check by then is
# closed and is UNVERIFIED with its measured cost (never PASS); one not started by then is UNVERIFIED without running.
# Both scale with the machine's load alike, so the verdict does not hang on the load. Measured (2026-12-07, hed, a
# VGG16-based 256x256 image-to-image model): wasm 0.9 s a sample (12 samples: 10.8 s); its webgl (SwiftShader)
# spot check 14.8 s, cpu 19.4 s, one after another (each page holds its own copy of the weights).
FALLBACK_SHARE = 1.0
FALLBACK_FLOOR_S = 15.0


def fallback_budget(first_seconds: float) -> float:
    """Seconds the fallbacks' spot checks may take together, after the first backend ran every sample in
    ``first_seconds``."""
    return max(FALLBACK_FLOOR_S, FALLBACK_SHARE * first_seconds)


def validate_backends(spec: PackageSpec, source: Source, samples: SampleSet, reference: dict, mode: str,
                      bundle: Path, backends: tuple[str, ...] = BACKENDS, gates: dict | None = None) -> list[BackendRun]:
    """Run each backend of the bundle's page on the samples (a fallback on the first FALLBACK_SAMPLES); compare
    each with the reference (the target's gates). ToolMissing when there is no browser.

    The first backend runs every sample from here, alone in the browser (its figures are the target's latency); a
    page is closed once its backend is judged. Once one has passed, every later backend's page opens at once, each
    in its own context (its own renderer process): their models load (no warm-up: the first sample is one; WebGL
    compiles its shaders) and their runs go on inside the pages side by side; they are collected in the page's order. A model of
    memory.LARGE_WEIGHTS or more (each page holds a copy of its weights) has its fallbacks run one after another."""
    from packager.targets.web.browser.chromium import StaticServer, chromium

    gates = gates or gates_for("web", mode, getattr(spec, "tolerances", None))
    with StaticServer(bundle, prefix=CHECK_PREFIX, compress=True) as server, chromium() as browser:
        def new_context():
            return browser.new_context(service_workers="block"), True

        return run_backends(new_context, server.url, backends, [], browser.version, spec, source, samples, reference,
                            gates)


def backend_url(base: str, name: str, fallback: bool) -> str:
    """The page pinned to one backend; a fallback's without the warm-up run (its first sample is one)."""
    return base + "index.html?backend=" + name + ("&warmup=0" if fallback else "")


def judge(name: str, prediction: Prediction, reference: dict, gates: dict, spec, of: int) -> BackendRun:
    """One backend's predictions (all samples, or a fallback's first ones) against the reference and the gates
    (outputs compared by ``spec``'s output kinds)."""
    kinds = getattr(spec, "output_kinds", None) or None
    count = len(next(iter(prediction.outputs.values())))
    cmp = compare({k: v[:count] for k, v in reference.items()}, prediction.outputs, gates, kinds)
    console = next((c for c in prediction.checks if c.name == "page_console" and c.status != PASS), None)
    reason = "; ".join(x for x in (cmp.reason, console and f"console errors: {console.detail}") if x)
    return BackendRun(name, loaded=True, passed=cmp.ok and console is None, reason=reason, prediction=prediction,
                      metrics=dict(cmp.metrics), samples=count, of=of)


def run_backends(new_context, base_url: str, backends: tuple[str, ...], before: list[BackendRun], version: str, spec,
                 source: Source, samples: SampleSet, reference: dict, gates: dict, meanwhile=None,
                 budget: float | None = None) -> list[BackendRun]:
    """Run ``backends`` in the page's order, each in a page of the bundle at ``base_url`` in the context
    ``new_context()`` returns (with True if the page owns it); ``before``: the runs of the backends the page tried
    first. A backend after one that passed is a fallback (FALLBACK_SAMPLES, run inside its page); the others run
    every sample from here. ``meanwhile()`` is called once, while the fallbacks run side by
    side (else before they run, or at the end): other work for the browser while their pages compute. ``budget``:
    seconds the fallbacks may take together from the first one's opening (``fallback_budget``); None: no bound."""
    runs: list[BackendRun] = []
    clock = _FallbackClock(budget)
    side_by_side = not one_by_one(spec)
    pages: dict[str, _BackendPage] = {}
    handed: list[dict] = []
    pending = [meanwhile] if meanwhile else []

    def open_one(name: str, fallback: bool) -> _BackendPage:
        nonlocal handed
        if fallback:
            handed = handed or _handed(samples)
            clock.start(before + runs)  # from the first fallback page's opening (after ``meanwhile`` when one by one)
        context, own = new_context()
        pages[name] = _BackendPage(context, name, backend_url(base_url, name, fallback), own, handed if fallback else None)
        return pages[name]

    try:
        for i, name in enumerate(backends):
            fallback = any(r.passed for r in before + runs)  # a backend before this one already runs the model
            for done in [n for n in pages if n in {r.name for r in runs}]:  # its memory back before the next
                pages.pop(done).close()
            if fallback and name not in pages and clock.spent():  # the budget is gone: not started
                runs.append(clock.not_started(name, len(samples)))
                continue
            if fallback and name not in pages and side_by_side:  # every fallback at once
                for later in backends[i:]:
                    open_one(later, True)
            if fallback and pending:
                pending.pop()()
            page = pages.get(name) or open_one(name, fallback)
            try:
                if page.handed and not page.finished_by(clock.deadline):
                    runs.append(clock.not_finished(name, len(samples)))
                    pages.pop(name).close()  # its run stops with its page
                    continue
                got = page.ready()
            except PackagerError as e:
                runs.append(BackendRun(name, loaded=False, reason=_why(e.message, name)))
                continue
            runtime = _runtime_name(version, got, page.session.thread)
            prediction = (page.collect(source, runtime) if page.handed
                          else _predict_all(page.session, source, samples, runtime))
            runs.append(judge(name, prediction, reference, gates, spec, len(samples)))
    finally:
        for page in pages.values():
            page.close()
    if pending:
        pending.pop()()
    return runs


class _FallbackClock:
    """The fallbacks' shared budget (``fallback_budget``), counted from the first fallback's turn."""

    def __init__(self, budget: float | None):
        self.budget, self.begun, self.cost = budget, None, ""

    def start(self, judged: list[BackendRun]) -> None:
        if self.begun is None:
            self.begun = time.monotonic()
            first = next((r for r in judged if r.passed and r.prediction is not None), None)
            if first is not None and first.prediction.latency_ms is not None:
                self.cost = f"; {first.name} ran each sample in {first.prediction.latency_ms:.0f} ms here"

    @property
    def deadline(self) -> float | None:
        return None if self.budget is None or self.begun is None else self.begun + self.budget

    def spent(self) -> bool:
        """Whether the budget is gone (never before the first fallback page opened)."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def not_finished(self, name: str, of: int) -> BackendRun:
        ran = time.monotonic() - self.begun
        return BackendRun(name, loaded=True, unverified=True, of=of, reason=(
            f"its {FALLBACK_SAMPLES}-sample spot check had not finished when the fallbacks' budget of "
            f"{self.budget:.1f} s ran out ({ran:.1f} s after the first fallback page opened; the budget is the first "
            f"backend's run on every sample, at least {FALLBACK_FLOOR_S:.0f} s)"
            f"{self.cost}"))

    def not_started(self, name: str, of: int) -> BackendRun:
        return BackendRun(name, loaded=True, unverified=True, of=of, reason=(
            f"not spot-checked: the fallbacks' budget of {self.budget:.1f} s (the first backend's run on every "
            f"sample, at least {FALLBACK_FLOOR_S:.0f} s) was spent before its turn{self.cost}"))


def one_by_one(spec) -> bool:
    """Each page holds its own copy of the weights: a model of memory.LARGE_WEIGHTS or more has its fallbacks run one
    after another (and the first page rests meanwhile: session._rest)."""
    return _weights(spec) >= LARGE_WEIGHTS


def _weights(spec) -> int:
    try:
        return weights_bytes(spec.model)
    except (OSError, AttributeError, TypeError):
        return LARGE_WEIGHTS


HOOKS_TIMEOUT_MS = 30_000  # app.js defines window.packager as it runs, before the model loads: a page without it is broken


def _handed(samples: SampleSet) -> list[dict]:
    """The first FALLBACK_SAMPLES samples as the page's predictB64 takes them."""
    return [b64_sample(sample) for sample in itertools.islice(samples, FALLBACK_SAMPLES)]


# A fallback page's run, added to the page before it loads (an init script: nothing waits for the page's busy main
# thread to take the samples): once app.js has defined window.packager and the model is ready, the handed samples.
_RUN = """window.__packagerRun = (async (xs) => {
  while (!window.packager) await new Promise((resolve) => setTimeout(resolve, 20));
  await window.packager.ready;
  const out = [];
  for (const x of xs) out.push(await window.packager.predictB64(x));
  return out;
})(%s);
window.__packagerRun.catch(() => {}).finally(() => { window.__packagerDone = true; });
"""


class _BackendPage:
    """One backend's page: opened (loading its model) when made; with ``handed`` samples (``_handed``) it runs them
    by itself once its model is ready, and ``collect`` takes the outputs."""

    def __init__(self, context, name: str, url: str, own_context: bool, handed: list[dict] | None = None):
        self.context, self.name, self.own_context, self.handed = context, name, own_context, handed
        self.session = PageSession(context, url)
        self.error: PackagerError | None = None
        try:
            if handed:
                self.session.page.add_init_script(script=_RUN % json.dumps(handed))
            self.session.response = self.session.page.goto(url, wait_until="commit")  # goto returns at once; ready() waits
        except Exception as e:  # the page never loaded: ready() says so
            self.error = PackagerError(f"the web demo did not load its model: {e}")

    def close(self) -> None:
        from packager.targets.web.browser.chromium import close

        close(self.context if self.own_context else self.session.page)

    def _hooks(self) -> None:
        """Wait for the page's ``window.packager`` (app.js defines it before the model loads)."""
        if self.error is None:
            try:
                self.session.page.wait_for_function("() => window.packager !== undefined", timeout=HOOKS_TIMEOUT_MS)
            except Exception as e:  # the page never ran its script: ready() says so
                self.error = PackagerError(f"the web demo did not load its model: {e}")

    def ready(self) -> str:
        self._hooks()
        if self.error is not None:
            raise self.error
        return self.session.wait_ready()

    def finished_by(self, deadline: float | None) -> bool:
        """Whether the page's run of its handed samples ends (with outputs or an error) by ``deadline``
        (time.monotonic(); None: waits as long as it takes)."""
        if deadline is None:
            return True
        self._hooks()
        if self.error is not None:
            return True  # ready() says why
        left_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            self.session.page.wait_for_function("() => window.__packagerDone === true", timeout=left_ms)
        except Exception as e:
            from packager.targets.web.page import browser_gone

            if browser_gone(e):
                raise
            return False
        return True

    def collect(self, source: Source, runtime: str) -> Prediction:
        """The outputs of the run the page made of its handed samples."""
        results = self.session.page.evaluate("() => window.__packagerRun")
        rows = [{k: _from_b64(v["b64"], v["shape"]) for k, v in r["outputs"].items()} for r in results]
        return _prediction(rows, [float(r["ms"]) for r in results], list(self.session.errors), source, runtime)


def _why(message: str, backend: str) -> str:
    """The page's words for one backend's failure, without the wrapping of the one-backend load."""
    message = message.removeprefix("the web demo did not load its model: ").removeprefix("The model failed to load: ")
    m = re.search(r"no tf\.js backend could run the model \(" + re.escape(backend) + r": (.*)\)", message, re.S)
    return m.group(1) if m else message


def page_backends(runs: list[BackendRun]) -> tuple[str, ...]:
    """The backends the page may pick: those that passed, in the page's order. None passed: those that load (the
    target FAILs on the first one's figures; the demo still shows something)."""
    passed = tuple(r.name for r in runs if r.passed or r.unverified)
    return passed or tuple(r.name for r in runs if r.loaded) or BACKENDS


def fallbacks_check(runs: list[BackendRun]) -> Check | None:
    """UNVERIFIED naming each fallback whose spot check did not run to its end within the budget; None when
    every backend was judged."""
    left = [r for r in runs if r.unverified]
    if not left:
        return None
    return Check("backend_fallbacks", UNVERIFIED, "; ".join(r.summary() for r in left))


def backends_check(runs: list[BackendRun], chosen: tuple[str, ...]) -> Check:
    ok = any(r.passed for r in runs)
    detail = "; ".join(r.summary() for r in runs)
    detail += f". The page tries {', '.join(chosen)}" + (" (figures above: " + chosen[0] + ")" if chosen else "")
    return Check("backends", PASS if ok else FAIL, detail if ok else "no tf.js backend runs the model within the "
                 "gates: " + detail)


def first_prediction(runs: list[BackendRun], chosen: tuple[str, ...]) -> Prediction | None:
    """The figures of the backend the page picks first (a machine like this one runs every backend)."""
    by_name = {r.name: r for r in runs}
    for name in chosen:
        if by_name.get(name) and by_name[name].prediction is not None:
            return by_name[name].prediction
    return None


def listed_backends(bundle: Path) -> tuple[str, ...]:
    return tuple(json.loads((Path(bundle) / "metadata.json").read_text(encoding="utf-8"))["backends"])
