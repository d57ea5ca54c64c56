"""What one build holds open, in one place: ``BuildSession`` opens every resource on entry and an ``ExitStack``
closes them in reverse order on exit, whether the build returned or raised.

Held, in the order opened:
- each local target's ``ahead`` hook (registry; android: the warm kotlinc), started before TensorFlow's import on
  the core that import leaves idle;
- TensorFlow imported up front when a worker will be forked (it then is a fork with TensorFlow loaded);
- the staging folder that replaces ``--out`` when the build returns (``outdir.staged_output``), and a work dir;
- the worker process building the first target (``worker``), killed if the build raises;
- a pool of background threads for each target's checks and ``prepare`` (compilers, linkers, a browser: mostly
  other processes), and what each ``prepare`` holds open (a browser launched ahead), closed after the checks;
  in the low-memory plan the ``prepare`` work is finished before the first conversion (``_settle_ahead``), so
  what runs beside a converter is set by the plan, not by how fast the machine is that day.

The speed plumbing lives behind these methods; ``pipeline.build`` reads as the build's steps.
"""

from __future__ import annotations

import dataclasses
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from packager import memory
from packager.frameworks import import_tensorflow
from packager.labels import check_labels_fit
from packager.outdir import staged_output
from packager.progress import Progress
from packager.source import Source
from packager.spec import PackageSpec
from packager.target_build import build_target, finish
from packager.targets import PROCESSING_ORDER, REGISTRY, hook, load_target, target_available
from packager.worker import TargetWorker, WorkerFailed, worker_targets


def processing_rank(name: str) -> int:
    return PROCESSING_ORDER.index(name) if name in PROCESSING_ORDER else len(PROCESSING_ORDER)


def reads_of(name: str, spec: PackageSpec) -> tuple[str, ...]:
    """The targets whose results ``name`` reads (registry ``reads``)."""
    registration = REGISTRY.get(name)
    return tuple(hook(registration.reads)(spec)) if registration and registration.reads else ()


def after_what_they_read(order: list[str], spec: PackageSpec) -> list[str]:
    """``order`` with each target moved after the targets it reads (the web target after android's .tflite)."""
    out = list(order)
    for name in order:
        deps = [d for d in reads_of(name, spec) if d in out]
        if deps and out.index(name) < max(out.index(d) for d in deps):
            out.remove(name)
            out.insert(max(out.index(d) for d in deps) + 1, name)
    return out


class BuildSession:
    def __init__(self, spec: PackageSpec, progress: Progress, plan: str = memory.PARALLEL):
        self.spec, self.progress, self.plan = spec, progress, plan
        self.order = after_what_they_read(sorted(spec.targets, key=processing_rank), spec)
        self.one_at_a_time = plan == memory.LOW_MEMORY
        self.staging: Path
        self.workdir: Path
        self.worker: TargetWorker | None = None
        self._prepared: dict[str, Future] = {}

    def __enter__(self) -> BuildSession:
        built = [n for n in self.order if target_available(n)]
        memory.check_fits(self.spec.model, len(built), self.plan, self.progress)  # before TensorFlow is imported
        self.remote = worker_targets(built) if self.plan == memory.PARALLEL else []
        with ExitStack() as stack:
            if self.plan == memory.PARALLEL:
                for name in built:
                    ahead = REGISTRY[name].ahead
                    if name not in self.remote and ahead:
                        stack.callback(hook(ahead)(self.spec) or (lambda: None))
            if self.remote:  # imported before the worker starts, which then is a fork of this process with it
                with self.progress.stage("importing TensorFlow"):
                    import_tensorflow()
            self.staging = stack.enter_context(staged_output(self.spec.out, force=self.spec.force))
            self.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="packager-work-")))
            # started first: the worker imports its converters while this process loads and exports the model
            self.worker = stack.enter_context(_worker(self.remote, self.progress)) if self.remote else None
            self.background = ThreadPoolExecutor(max_workers=3, thread_name_prefix="packager-checks")
            stack.callback(self._close_prepared)
            stack.callback(self.background.shutdown, wait=True, cancel_futures=True)  # the checks first
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    def prepare(self, preview: Source) -> None:
        """Start each local target's ``prepare`` once, from the first signature known (a Keras model's preview,
        during its export; else the loaded model's)."""
        spec = self.spec
        check_labels_fit(spec.labels, preview.outputs, str(spec.labels_file or spec.model))  # fail before any work
        if preview.keras_model is not None:  # the checks need the signature, not a copy of the weights
            preview = dataclasses.replace(preview, keras_model=None)
        for name in self.order:
            if name not in self.remote and name not in self._prepared and target_available(name):
                target = load_target(name)
                if hasattr(target, "prepare"):
                    self._prepared[name] = self.background.submit(target.prepare, spec, preview, self.workdir / name)

    def warm_facts(self) -> dict:
        """What the worker's warm-up read (coremltools' TF op list), or {} without a worker."""
        return self.worker.warm_facts() if self.worker else {}

    def late_preflight(self, saved_model_dir: Path, ops: dict) -> dict[str, Future]:
        """{target: Future of its preflight findings} for the targets whose op list the worker reads while it
        warms up (ios: Core ML's TF ops, from its coremltools import): found in the background, so that this
        process goes on with the samples, the reference and its own targets instead of waiting for that import
        (on a small model, seconds of a build's fixed cost). Without a worker: none, preflight reads them here."""
        from packager.preflight import TARGETS, preflight

        if not self.worker or "ios" not in self.spec.targets or "ios" not in TARGETS:
            return {}
        return {"ios": self.background.submit(lambda: preflight(saved_model_dir, ("ios",), ops=ops,
                                                                coreml_ops=self.warm_facts().get("coreml_ops"))["ios"])}

    def reference_extras(self, spec: PackageSpec, source: Source, samples, reference: dict) -> None:
        """What targets need of the model beside the reference, while it is loaded here."""
        for name in self.order:
            target = load_target(name) if target_available(name) else None
            if hasattr(target, "reference_extras"):
                target.reference_extras(spec, source, samples, reference)

    def build_targets(self, spec: PackageSpec, source: Source, samples, reference: dict) -> dict[str, Future]:
        """Every target started (the worker's in its process, the others converted, validated and rendered here,
        their checks in the background): a Future each, of a TargetResult or a Retry (``target_build.finish``)."""
        pending: dict[str, Future] = {}
        for name in self.order:
            if name in self.remote:
                try:
                    pending[name] = self.worker.build(name, spec, source, samples, reference, self.workdir,
                                                      self.staging)
                    self.progress.info(f"==> target {name}: building in a second process")
                except WorkerFailed as e:  # built below, in this process
                    self.progress.info(f"    {name}: the worker process is not usable ({e}); building it here")
        if self.worker:
            self.worker.no_more_jobs()
        if self.one_at_a_time:
            self._settle_ahead()
        for name in self.order:
            if name in pending:
                continue
            with self.progress.stage(f"target {name}"):
                pending[name] = build_target(name, self._with_upstream(name, spec, pending), source, samples, reference, self.workdir, self.staging,
                                             self.progress, self.background, self._prepared.get(name),
                                             low_memory=self.one_at_a_time)
                if self.one_at_a_time:  # its checks (a browser, compilers) end, and what it held is freed, first
                    finish(pending[name])
                    memory.release()
        return pending

    def _with_upstream(self, name: str, spec: PackageSpec, pending: dict[str, Future]) -> PackageSpec:
        """``spec`` with the finished results of the targets ``name`` reads (``spec.upstream``); each is finished
        first (its checks done, auto's retries settled), so what it hands over is what it ships."""
        deps = [d for d in reads_of(name, spec) if d in pending]
        if not deps:
            return spec
        handed = {}
        for dep in deps:
            self.progress.info(f"    {name}: waiting for {dep}'s finished result (it ships {dep}'s model)")
            result = finish(pending[dep])
            pending[dep] = Future()
            pending[dep].set_result(result)
            handed[dep] = {"result": result, "root": self.staging}
        return dataclasses.replace(spec, upstream=handed)

    def _settle_ahead(self) -> None:
        """The low-memory plan runs nothing beside a conversion: the work each target started ahead (``prepare``:
        compilers, a browser's launch), which overlaps the model's loading, is waited for before the first
        conversion. Idle, it has finished by then; on a busy machine it would otherwise still run beside the
        converter's peak, and the build's peak would depend on the load, not on the plan."""
        running = [name for name, future in self._prepared.items() if not future.done()]
        if running:
            with self.progress.stage("low-memory plan: waiting for the work started ahead ("
                                     + ", ".join(running) + ") before converting"):
                for name in running:
                    try:
                        self._prepared[name].result()
                    except Exception:  # its failure is the target's checks' to report
                        pass

    def _close_prepared(self) -> None:
        """What a target's ``prepare`` holds open (a browser launched ahead) is closed once the targets are done."""
        for future in self._prepared.values():
            try:
                held = future.result()
            except BaseException:  # its failure was the target's to report
                continue
            if hasattr(held, "close"):
                held.close()


@contextmanager
def _worker(names: list[str], progress: Progress):
    worker = TargetWorker(names, progress)
    try:
        yield worker
    except BaseException:
        worker.close(kill=True)  # an error or Ctrl-C here: do not wait for its conversion to finish
        raise
    worker.close()
