"""The web target's page driving: a served bundle in headless Chromium (the checks on it: web_page_checks).

- ``PageSession``: one page of the bundle, its ``window.packager`` hooks (predict, predict images; several a call), console errors.
- ``_served_page``: ``OUT/web/`` served under CHECK_PREFIX in a fresh Chromium profile, service workers allowed.
- ``_predict_samples``: every sample through the page's own ``window.packager.predict``.
- ``known_outputs``: the outputs a page gave for samples, for checks that would run them again.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from packager import interrupt
from packager.checks import FAIL, PASS, Check
from packager.errors import PackagerError
from packager.recurrent import LOOP_FIX
from packager.targets.base import Prediction
from packager.targets.web.bundle import TFJS_VERSION, _from_b64, b64_sample

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source

PAGE_TIMEOUT_MS = 120_000
# The build's browser checks serve the bundle under a sub-path, as GitHub Pages (/repo/) or an app (/demo/) would:
# a URL resolved against the origin's root instead of the page fails them.
CHECK_PREFIX = "/deployed/under/a-sub-path/"
PREDICT_IMAGES = """async (urls) => {
    const all = [];
    for (const url of urls) {
        const img = new Image();
        img.src = url;
        await img.decode();
        const r = await window.packager.predictImage(img);
        window.packager.showResult(r);
        const out = {};
        for (const [k, v] of Object.entries(r.outputs)) out[k] = {shape: v.shape, data: Array.from(v.data)};
        all.push({outputs: out, ms: r.ms});
    }
    return all;
}"""
JSON_PER_BYTE = 5  # an output float as JSON text (Array.from): up to ~20 characters for 4 bytes
PREDICT_MANY = """async (xs) => {
    const out = [];
    for (const x of xs) out.push(await window.packager.predictB64(x));
    return out;
}"""


# ---------------------------------------------------------------------------------------------
# driving the page


class PageSession:
    """One page of a served bundle in a Chromium context, recording console errors."""

    def __init__(self, context, url: str):
        self.context = context
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.url = url
        self.response = None
        self.thread: str | None = None  # where the page runs its model: "worker", "page (why)", None: not said

    def open(self, url: str | None = None) -> str:
        """Load the page and wait for the model; returns the backend. Raises PackagerError on failure."""
        self.response = self.page.goto(url or self.url, wait_until="load")
        return self.wait_ready()

    def reload(self) -> str:
        self.response = self.page.reload(wait_until="load")
        return self.wait_ready()

    def wait_ready(self) -> str:
        try:
            backend = self.page.evaluate("() => window.packager.ready")
            self.thread = self.page.evaluate("() => window.packager.thread || null")
            return backend
        except Exception as e:  # playwright.Error: the page reported why
            if browser_gone(e):  # not the page's doing: the caller runs the work again in a fresh browser
                raise
            shown = self.page.evaluate("() => (window.packager && window.packager.error) || ''") if not self.page.is_closed() else ""
            raise PackagerError(f"the web demo did not load its model: {shown or e}{_load_failure_fix(shown)}") from e

    def predict(self, sample: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        r = self.page.evaluate("(x) => window.packager.predictB64(x)", b64_sample(sample))
        return {k: _from_b64(v["b64"], v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])

    def predict_many(self, samples: list[dict[str, np.ndarray]]) -> list[tuple[dict[str, np.ndarray], float]]:
        """``predict`` of each sample in order, in one page call (``predictB64`` awaited one sample at a time)."""
        rs = self.page.evaluate(PREDICT_MANY, [b64_sample(s) for s in samples])
        return [({k: _from_b64(v["b64"], v["shape"]) for k, v in r["outputs"].items()}, float(r["ms"])) for r in rs]

    def predict_images(self, urls: list[str], out_bytes: int = 0) -> list[tuple[dict[str, np.ndarray], float]]:
        """Each image (its URL) through the page's ``predictImage`` and shown, in order: several a page call."""
        results = []
        for run in runs(urls, lambda url: len(url) + JSON_PER_BYTE * out_bytes):
            results += [({k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in r["outputs"].items()},
                         float(r["ms"])) for r in self.page.evaluate(PREDICT_IMAGES, run)]
        return results

    def browser_version(self) -> str:
        cdp = self.context.new_cdp_session(self.page)
        try:
            return cdp.send("Browser.getVersion")["product"].split("/", 1)[-1]
        finally:
            cdp.detach()

    def close(self) -> None:
        from packager.targets.web.browser.chromium import close

        close(self.page)


def browser_gone(e: BaseException) -> bool:
    """Whether ``e`` says the browser (or its page/context) was closed under the work, not by an interrupt."""
    return (not interrupt.seen() and type(e).__name__ in ("TargetClosedError", "Error")
            and "has been closed" in str(e))


# tf.js' words when it cannot run a graph's control flow, on every backend: seen with the while loop of a Keras 3
# LSTM export (the official tensorflowjs_converter's output fails the same way; an unrolled LSTM runs).
_CONTROL_FLOW = "Cannot compute the outputs"


def _load_failure_fix(shown: str) -> str:
    if _CONTROL_FLOW in shown and "no tf.js backend could run" in shown:
        return (" — fix: tf.js cannot execute this graph's loop (as exported for Keras 3 recurrent layers); "
                f"{LOOP_FIX}; or use a different target")
    return ""


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([r[k] for r in rows], axis=0) for k in rows[0]} if rows else {}


def _max_abs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0 for k in a)


def sample_key(sample: dict[str, np.ndarray]) -> bytes:
    """Identifies a sample by its exact float32 values (and input names)."""
    h = hashlib.sha256()
    for name in sorted(sample):
        h.update(name.encode() + b"\0" + np.ascontiguousarray(sample[name], np.float32).tobytes())
    return h.digest()


def known_outputs(samples, page: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """{sample_key: (the page's outputs, the original model's)} of the samples a page has predicted (rows of
    ``page``, in the samples' order), for checks that would run them again."""
    count = len(next(iter(page.values())))
    return {sample_key(sample): ({k: v[i:i + 1] for k, v in page.items()}, {k: v[i:i + 1] for k, v in reference.items()})
            for i, sample in zip(range(count), samples)}


def known_outputs_of(known: dict, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    hit = known.get(sample_key(sample))
    return hit[0] if hit else None


def _runtime_name(browser_version: str, backend: str, thread: str | None = None) -> str:
    return f"Chromium {browser_version} (headless, Playwright) + tf.js {TFJS_VERSION} {backend} backend{where(thread)}"


def where(thread: str | None) -> str:
    """Where the demo page ran its model (window.packager.thread), as the runtime's name says it."""
    if not thread:
        return ""
    return ", in a Worker" if thread == "worker" else f", on the page's main thread{thread[len('page'):]}"


@contextlib.contextmanager
def _served_page(outdir: Path):
    """(page session, server): ``outdir`` served on 127.0.0.1 and a page for it (not opened yet) in a fresh
    Chromium profile, service workers allowed; all closed on exit. ToolMissing when there is no browser."""
    from packager.targets.web.browser.chromium import StaticServer, chromium_profile

    server = StaticServer(outdir, prefix=CHECK_PREFIX, compress=True).start()  # gzip, as static hosts serve it
    try:
        with chromium_profile() as context:
            session = PageSession(context, server.url)
            try:
                yield session, server
            finally:
                session.close()
    finally:
        server.stop()


def _predict_samples(session: PageSession, source: Source, samples: SampleSet, runtime: str) -> Prediction:
    """Every sample through the page's own ``window.packager.predict``; a page_console check of the run."""
    rows, times = [], []
    for chunk in sample_chunks(samples, output_bytes(source)):
        for out, ms in session.predict_many(chunk):
            rows.append(out)
            times.append(ms)
    return _prediction(rows, times, list(session.errors), source, runtime)


# One page call carries at most this many bytes of samples and outputs: the page runs them one after another, as
# one call each would, without a Playwright round trip per sample (64 samples of the demo: 0.31 -> 0.11 s wall).
CALL_BYTES = 4 << 20


def output_bytes(source: Source) -> int:
    """One sample's float32 outputs in bytes; CALL_BYTES (one sample a call) when an output's shape is not fixed."""
    try:
        return sum(4 * int(np.prod(t.sample_shape)) for t in source.outputs)
    except (TypeError, ValueError, AttributeError):
        return CALL_BYTES


def sample_chunks(samples, out_bytes: int = 0, limit: int | None = None):
    """``samples`` in runs of consecutive samples whose inputs and ``out_bytes`` of outputs each take at most
    ``limit`` (CALL_BYTES) bytes together (a larger sample alone)."""
    return runs(samples, lambda sample: sum(np.asarray(v).nbytes for v in sample.values()) + out_bytes, limit)


def runs(items, size_of, limit: int | None = None):
    """``items`` in runs of consecutive items whose ``size_of`` add up to at most ``limit`` (CALL_BYTES; a larger
    item alone)."""
    limit = CALL_BYTES if limit is None else limit
    chunk, size = [], 0
    for item in items:
        nbytes = size_of(item)
        if chunk and size + nbytes > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += nbytes
    if chunk:
        yield chunk


def _prediction(rows: list[dict[str, np.ndarray]], times: list[float], errors: list[str], source: Source,
                runtime: str) -> Prediction:
    stacked = _stack(rows)
    return Prediction(
        outputs={t.name: stacked[t.name] for t in source.outputs},
        runtime=runtime,
        latency_ms=float(np.mean(times)) if times else None,
        checks=[Check("page_console", PASS if not errors else FAIL,
                      "no console errors while predicting" if not errors else "; ".join(errors[:5]))],
    )
