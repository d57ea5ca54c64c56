"""The web target's browser work in one Chromium: the backend validation (web_backends) and the page checks
(web_page_checks) on the rendered ``OUT/web/``, served under CHECK_PREFIX, in a fresh on-disk profile, service workers
allowed, as users open it.

1. The page opens as users open it and picks its backend (the first of metadata.json's that starts and runs the
   model); the backends it skipped are recorded with its reasons. Every sample runs on it: the target's figures.
2. The later backends' pages open beside it (``?backend=NAME``; fallbacks spot-checked, ``web_backends``) and run
   inside their pages while the first page is checked: service worker, manifest, image path (the tensors it ran
   already are not sent again), preprocessing.
3. With the fallbacks judged and closed: the network cut (reload offline, predict again) and the console.

If a backend fails, metadata.json is re-rendered without it and the page checks run again on the new bundle (in a
fresh profile). If the page cannot load its model on any backend, each backend is tried alone for its own reason.
One browser, one Playwright driver and one model load for both (they were two browsers: ~3 CPU s of the P1 build).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from packager.checks import FAIL, PASS, Check
from packager.errors import PackagerError
from packager.targets.web.backends import (
    BackendRun,
    backends_check,
    fallback_budget,
    fallbacks_check,
    judge,
    listed_backends,
    one_by_one,
    page_backends,
    run_backends,
    validate_backends,
)
from packager.targets.web.page import _predict_samples, _runtime_name, _served_page, browser_gone, known_outputs
from packager.targets.web.page_checks import _browser_checks, _file_checks, offline_checks, online_checks

if TYPE_CHECKING:
    from packager.samples import SampleSet
    from packager.source import Source
    from packager.spec import PackageSpec
    from packager.targets.base import Artifact


def validate_and_check(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet, reference: dict,
                       outdir: Path, gates: dict) -> tuple[list[BackendRun], tuple[str, ...], list[Check]]:
    """(every backend's run, the backends the page may pick, the checks: backends, files, page; the page's FAIL when
    it loads its model on no backend). ToolMissing when there is no browser.

    If Chromium itself goes away under the work (its process died: Playwright's "Target page, context or browser has
    been closed", seen once in a CI run under load), the whole browser work runs once more in a freshly launched
    browser, and a ``browser_restarted`` check says so; a second loss is reported as the crash it is."""
    try:
        return _validate_and_check(spec, source, artifact, samples, reference, outdir, gates)
    except Exception as e:
        if not browser_gone(e):
            raise
        first = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"
    runs, chosen, checks = _validate_and_check(spec, source, artifact, samples, reference, outdir, gates)
    note = Check("browser_restarted", PASS, f"Chromium closed under the first run of the browser checks ({first}); "
                 "everything ran again in a freshly launched browser, and these results are that second run's")
    return runs, chosen, [*checks, note]


def _validate_and_check(spec: PackageSpec, source: Source, artifact: Artifact, samples: SampleSet, reference: dict,
                        outdir: Path, gates: dict) -> tuple[list[BackendRun], tuple[str, ...], list[Check]]:
    from packager.targets.web.bundle import build_bundle

    outdir = Path(outdir)
    listed = listed_backends(outdir)
    page_checks: list[Check] = []
    with _served_page(outdir) as (session, server):
        t0 = time.perf_counter()
        try:
            backend = session.open()
        except PackagerError as e:
            backend, page_checks = None, _not_loaded(e)
        if backend is not None:
            version = session.browser_version()
            runs = _skipped(session, listed, backend)
            t_first = time.perf_counter()
            first = _predict_samples(session, source, samples, _runtime_name(version, backend, session.thread))
            runs.append(judge(backend, first, reference, gates, spec, len(samples)))
            budget = fallback_budget(time.perf_counter() - t_first)  # the fallbacks', by the model's measured cost
            known = known_outputs(samples, first.outputs, reference)
            online: dict = {}

            later = listed[listed.index(backend) + 1:] if backend in listed else ()
            rests = bool(later) and runs[-1].passed and one_by_one(spec)

            def check_page() -> None:  # while the fallbacks compute in their own pages
                online["checks"], online["first"] = online_checks(session, server, spec, source, samples, outdir, t0,
                                                                  known, first.latency_ms)
                if rests:
                    _rest(session)

            runs += run_backends(lambda: (session.context, False), server.url, later, runs, version, spec, source,
                                 samples, reference, gates, check_page, budget=budget)
            chosen = page_backends(runs)
            if chosen == listed:
                # a rested page comes back with the network cut (as a user returns offline): one model load, not a
                # wake online and then a reload offline
                page_checks = online["checks"] + offline_checks(session, server, samples, online["first"], backend,
                                                                away=rests)
    if backend is None:  # each backend alone, for its own reason
        runs = validate_backends(spec, source, samples, reference, artifact.mode, outdir, listed, gates)
        chosen = page_backends(runs)
    if chosen != listed:
        build_bundle(spec, source, artifact, samples, outdir, backends=chosen)
        if backend is not None:
            try:
                page_checks = page_checks_alone(spec, source, samples, outdir)
            except PackagerError as e:
                page_checks = _not_loaded(e)
    return runs, chosen, [backends_check(runs, chosen), *filter(None, [fallbacks_check(runs)]), *_file_checks(outdir),
                          *page_checks]


def _rest(session) -> None:
    """A large model's fallbacks run one after another, each page with its own copy of the weights: the first page,
    its checks done, leaves for about:blank (its model worker and the weights it holds go) so that the memory the
    browser holds at once is one page's, whatever the machine's speed (memory.LARGE_WEIGHTS, ``one_by_one``). It
    comes back for the network-cut check (``offline_checks(away=True)``): opened with the network cut, from its
    service worker."""
    session.page.goto("about:blank")


def _not_loaded(e: PackagerError) -> list[Check]:
    return [Check(name, FAIL, e.message) for name in ("service_worker", "offline_reload", "console_errors")]


def _skipped(session, listed: tuple[str, ...], backend: str) -> list[BackendRun]:
    """The backends the page tried before ``backend``, with the page's reasons."""
    said = dict(s.split(": ", 1) if ": " in s else (s, "did not start")
                for s in session.page.evaluate("() => window.packager.skippedBackends || []"))
    before = listed[:listed.index(backend)] if backend in listed else ()
    return [BackendRun(name, loaded=False, reason=said.get(name, "the page did not use it")) for name in before]


def page_checks_alone(spec: PackageSpec, source: Source, samples: SampleSet, outdir: Path) -> list[Check]:
    """The page checks (``web_page_checks._browser_checks``) in a browser of their own. PackagerError: the page did not
    load its model, nothing ran."""
    with _served_page(outdir) as (session, server):
        t0 = time.perf_counter()
        backend = session.open()
        return _browser_checks(session, server, spec, source, samples, outdir, backend, t0)
