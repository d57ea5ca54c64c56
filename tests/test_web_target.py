"""Web target end to end: real tensorflowjs conversion, the real page in headless Chromium.

Models are tiny Keras models exported to SavedModels inside the tests. ``ExportedModel`` and
``Samples`` below hold the same data the spine's Source/SampleSet do (names from the
serving_default signature, preprocessed float32 samples); predictions are TensorFlow's own.
A screenshot of the demo page is written to tests/artifacts/web_demo.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from packager.checks import FAIL, PASS, SKIPPED  # noqa: E402
from packager.spec import PackageSpec, Preprocessing, TensorSpec  # noqa: E402
from packager.targets.web import target as web  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE = "</script><script>window.__pwned=1</script>"
HOSTILE_IMG = '<img src=x onerror="window.__pwned=2">'
LABELS = ("cat", HOSTILE, "dog & \"fox\"", HOSTILE_IMG, "\u732b \u2028 end")

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in (web.npm_web_dir() / rel for rel in web.VENDOR_FILES.values())),
    reason="vendored tf.js missing: run .ci/setup-web.sh",
)


class ExportedModel:
    """A SavedModel export plus its serving_default signature (what packager.source.Source exposes)."""

    def __init__(self, saved_model_dir: Path):
        import tensorflow as tf

        self.saved_model_dir = saved_model_dir
        self._fn = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
        ins = self._fn.structured_input_signature[1]
        self.inputs = [TensorSpec(k, tuple(v.shape.as_list())) for k, v in sorted(ins.items())]
        self.outputs = [TensorSpec(k, tuple(v.shape.as_list())) for k, v in sorted(self._fn.structured_outputs.items())]

    @property
    def is_image(self) -> bool:
        return len(self.inputs) == 1 and len(self.inputs[0].shape) == 4 and self.inputs[0].shape[-1] in (1, 3)

    def predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        return {k: v.numpy() for k, v in self._fn(**{k: tf.constant(v) for k, v in batch.items()}).items()}


class Samples:
    def __init__(self, rows: list[dict[str, np.ndarray]], image_paths: list[Path] | None = None):
        self.rows, self.image_paths = rows, image_paths

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def stacked(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([r[k] for r in self.rows]) for k in self.rows[0]}


@pytest.fixture(scope="module")
def image_case(tmp_path_factory):
    """An 8x8 RGB classifier with 5 (partly hostile) labels, 4 PNG samples of another size."""
    import keras
    from PIL import Image

    d = tmp_path_factory.mktemp("web_image")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(len(LABELS), activation="softmax")(keras.layers.Dense(16, activation="relu")(x))
    keras.Model(inp, out).export(str(d / "sm"), verbose=False)
    source = ExportedModel(d / "sm")

    rng = np.random.default_rng(1)
    (d / "images").mkdir()
    paths, rows = [], []
    spec = PackageSpec(model=d / "m.keras", samples=d / "images", labels=LABELS, name="Shapes <demo>",
                       preprocessing=Preprocessing(color="rgb", mean=(127.5,), std=(127.5,)))
    for i in range(4):
        p = d / "images" / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(p)
        paths.append(p)
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB").resize((8, 8), Image.BILINEAR), dtype=np.float32)
        rows.append({source.inputs[0].name: ((rgb - 127.5) / 127.5)[None].astype(np.float32)})
    samples = Samples(rows, paths)
    reference = source.predict(samples.stacked())
    return d, spec, source, samples, reference


@pytest.fixture(scope="module")
def vector_case(tmp_path_factory):
    """A non-image model: 6 features in, two named outputs."""
    import keras

    d = tmp_path_factory.mktemp("web_vector")
    keras.utils.set_random_seed(2)
    a = keras.Input((6,))
    h = keras.layers.Dense(8, activation="tanh")(a)
    keras.Model(a, [keras.layers.Dense(2)(h), keras.layers.Dense(4, activation="softmax")(h)]).export(
        str(d / "sm"), verbose=False)
    source = ExportedModel(d / "sm")
    rng = np.random.default_rng(3)
    samples = Samples([{source.inputs[0].name: rng.normal(size=(1, 6)).astype(np.float32)} for _ in range(3)])
    spec = PackageSpec(model=d / "m.keras", samples=d / "x.npy", name="tabular")
    return d, spec, source, samples, source.predict(samples.stacked())


def rendered(case, mode: str, tmp_path: Path, out: Path | None = None):
    """(target, artifact, out): ``mode`` converted into ``tmp_path/work``, the bundle rendered into ``out``
    (``tmp_path/web`` by default)."""
    _, spec, source, samples, reference = case
    target = web.WebTarget()
    art = target.convert(source, spec, mode, tmp_path / "work")
    out = out or tmp_path / "web"
    target.render(spec, source, art, samples, reference, out)
    return target, art, out


# Per-mode bound on max |TF.js - TF| for these softmax outputs (measured: fp32 ~1e-7,
# fp16 ~1e-4, uint16 ~1e-5, uint8 ~3e-3); top-1 must agree on every sample in every mode.
MODE_TOLERANCE = {"fp32": 1e-5, "fp16": 2e-3, "uint16": 5e-4, "uint8": 3e-2, "mixed": 3e-2}


@pytest.mark.slow
@pytest.mark.parametrize("mode", web.WebTarget.modes)
def test_each_weight_mode_matches_tensorflow_in_chromium(image_case, mode, tmp_path):
    _, spec, source, samples, reference = image_case
    target = web.WebTarget()
    art = target.convert(source, spec, mode, tmp_path)
    model_json = json.loads((art.path / "model.json").read_text())
    dtypes = {w.get("quantization", {}).get("dtype", w["dtype"]) for g in model_json["weightsManifest"] for w in g["weights"]}
    expected = {"fp32": {"float32"}, "fp16": {"float16"}, "uint16": {"uint16"}, "uint8": {"uint8"},
                "mixed": {"uint8", "float16"}}[mode]
    assert expected <= dtypes, dtypes
    assert art.extra["output_nodes"].keys() == {o.name for o in source.outputs}

    pred = target.predict(art, source, spec, samples)
    assert pred.runtime.startswith("Chromium ") and "tf.js 4.22.0" in pred.runtime
    assert "wasm backend" in pred.runtime, pred.runtime
    assert pred.latency_ms is not None and pred.latency_ms > 0
    assert [c.status for c in pred.checks] == [PASS], pred.checks
    for name, ref in reference.items():
        got = pred.outputs[name]
        assert got.shape == ref.shape
        err = float(np.max(np.abs(got - ref)))
        print(f"web {mode}: {name} max|diff| {err:.3g}, bytes {art.bytes}, latency {pred.latency_ms:.2f} ms")
        assert err <= MODE_TOLERANCE[mode]
        assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_mode_sizes_shrink_and_shards_follow_the_option(image_case, tmp_path):
    _, spec, source, _, _ = image_case
    target = web.WebTarget()
    sizes = {}
    for mode in ("fp32", "uint8"):
        sizes[mode] = target.convert(source, spec, mode, tmp_path).bytes
    assert sizes["uint8"] < sizes["fp32"]
    art = target.convert(source, spec.with_(web_shard_bytes=256), "fp32", tmp_path / "small_shards")
    assert len(art.extra["shards"]) > 1
    assert target.default_mode == "uint8"


@pytest.mark.slow
def test_bundle_checks_pass_offline_and_hostile_labels_stay_text(image_case, tmp_path):
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, spec, source, samples, reference = image_case
    target, art, out = rendered(image_case, "uint8", tmp_path, tmp_path / "out" / "web")

    for rel in ("index.html", "app.js", "style.css", "manifest.webmanifest", "sw.js", "model.json",
                "model.js", "model.d.ts", "package.json", "metadata.json",
                "tfjs/tf-runtime.js", "tfjs/tfjs-backend-wasm-simd.wasm", "tfjs/tfjs-backend-wasm.wasm",
                "icons/icon-192.png", "icons/icon-512.png", "icons/icon-maskable-512.png", "samples/sample_00.png"):
        assert (out / rel).is_file(), rel
    assert list(out.glob("group1-shard*of*.bin"))
    index = (out / "index.html").read_text()
    assert "cdn" not in index.lower()
    # tfjs-core + converter never evaluate strings: no 'unsafe-eval' (wasm still needs 'wasm-unsafe-eval')
    assert "'unsafe-eval'" not in index and "'wasm-unsafe-eval'" in index
    assert '<meta name="description"' in index and 'sizes="180x180" href="icons/apple-touch-icon.png"' in index
    from PIL import Image
    with Image.open(out / "icons" / "apple-touch-icon.png") as im:
        assert im.size == (180, 180)
    precache = web._precache_list(out)
    on_demand = {"sw.js", "model.d.ts", "package.json", "README.md",  # never or not always fetched
                 "tfjs/tfjs-backend-wasm.wasm"}
    assert set(precache) == {"./"} | {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - on_demand

    # Deterministic: the same inputs give the same bytes.
    again = tmp_path / "again"
    target.render(spec, source, art, samples, reference, again)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == \
           {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}

    checks = {c.name: c for c in target.checks(spec, source, art, samples, reference, out)}
    print("\n".join(f"{c.name}: {c.status} {c.detail}" for c in checks.values()))
    for name in ("service_worker", "offline_reload", "manifest_fields", "manifest_installable", "image_path",
                 "console_errors"):
        assert checks[name].status == PASS, checks[name]

    # Hostile labels are shown as text and nothing they contain runs; the file picker path works.
    with StaticServer(out) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        assert page.evaluate("() => window.packager.ready") == "wasm"
        assert page.locator("#backend").text_content() == "wasm"
        page.locator("#file-input").set_input_files(str(samples.image_paths[0]))
        page.wait_for_function("() => document.querySelectorAll('#results li').length === 5")
        shown = page.locator("#results .label").all_text_contents()
        assert sorted(shown) == sorted(LABELS)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("script").count() == 2  # page config (JSON, never run) + app.js (module)
        assert page.locator("#results img").count() == 0
        assert page.title() == "Shapes <demo>"
        assert "ms" in page.locator("#latency").text_content()
        page.locator("#sample-strip button").nth(1).click()
        page.wait_for_function("() => document.querySelector('#sample-strip button[aria-pressed=true]') !== null")
        page.wait_for_timeout(200)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "web_demo.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the web demo: {shot}")
        assert shot.stat().st_size > 5000
        assert errors == []


@pytest.mark.slow
def test_predict_and_check_runs_both_in_one_session(image_case, tmp_path):
    """The pipeline's path for one mode: predictions on the rendered bundle, then its checks, same page."""
    _, spec, source, samples, reference = image_case
    target, art, out = rendered(image_case, "fp32", tmp_path)
    pred = target.predict_and_check(spec, source, art, samples, reference, out)
    assert "wasm backend" in pred.runtime and pred.latency_ms > 0
    for name, ref in reference.items():
        assert float(np.max(np.abs(pred.outputs[name] - ref))) <= MODE_TOLERANCE["fp32"]
    checks = {c.name: c for c in pred.checks}
    print("\n".join(f"{c.name}: {c.status} {c.detail}" for c in pred.checks))
    assert set(checks) == {"page_console", "backends", "bundle_size", "manifest_fields", "preprocessing",
                           *web.BROWSER_CHECKS}
    assert all(c.status == PASS for c in checks.values()), pred.checks
    # every backend the page may pick ran the samples within the gates, each named with its figures
    for backend in ("wasm", "webgl", "cpu"):
        assert f"{backend}: PASS (top-1 1" in checks["backends"].detail, checks["backends"].detail
    assert json.loads((out / "metadata.json").read_text())["backends"] == ["wasm", "webgl", "cpu"]
    assert "from service worker: True" in checks["offline_reload"].detail


@pytest.mark.slow
def test_offline_check_fails_without_a_caching_service_worker(image_case, tmp_path):
    _, spec, source, samples, reference = image_case
    target, art, out = rendered(image_case, "fp16", tmp_path)
    text = (out / "sw.js").read_text()
    # Same cache name and precache list, but a worker that never caches anything.
    keep = [li for li in text.splitlines() if li.startswith(("const CACHE", "const PRECACHE"))]
    (out / "sw.js").write_text("\n".join(keep) + "\nself.addEventListener('fetch', () => {});\n")
    checks = {c.name: c for c in target.checks(spec, source, art, samples, reference, out)}
    assert checks["offline_reload"].status == FAIL, checks["offline_reload"]
    assert checks["service_worker"].status == FAIL, checks["service_worker"]


@pytest.mark.slow
def test_rebuilt_bundle_replaces_the_old_cache(image_case, tmp_path):
    from packager.targets.web.browser.chromium import StaticServer, chromium_profile

    _, spec, source, samples, reference = image_case
    target, art, out = rendered(image_case, "uint8", tmp_path)
    first = web._content_hash(out)
    with StaticServer(out) as server, chromium_profile() as context:
        page = context.new_page()
        page.goto(server.url)
        page.evaluate("() => window.packager.ready")
        assert web._service_worker_state(page)["cache"].endswith(":files")
        target.render(spec.with_(name="Renamed"), source, art, samples, reference, out)
        second = web._content_hash(out)
        assert second != first
        # one cache, holding exactly the new bundle's revisions once the new service worker is active
        line = next(li for li in (out / "sw.js").read_text().splitlines() if li.startswith("const REVISIONS = "))
        revisions = json.loads(line.removeprefix("const REVISIONS = ").rstrip(";"))
        line = next(li for li in (out / "sw.js").read_text().splitlines() if li.startswith("const ON_DEMAND = "))
        on_demand = json.loads(line.removeprefix("const ON_DEMAND = ").rstrip(";"))  # cached when first fetched
        wanted = sorted(server.url + ("" if url == "./" else url) + "?__rev=" + rev for url, rev in revisions.items()
                        if url not in on_demand)
        page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => r.update())")
        deadline = time.monotonic() + 30
        while True:
            keys = page.evaluate("() => caches.keys()")
            cached = page.evaluate("async (k) => (await (await caches.open(k)).keys()).map((r) => r.url).sort()",
                                   keys[0]) if len(keys) == 1 else None
            if cached == wanted:
                break
            assert time.monotonic() < deadline, (keys, sorted(set(cached or []) ^ set(wanted)))
            time.sleep(0.2)
        page.wait_for_selector("#update", state="visible", timeout=10_000)  # "a new version: reload"
        page.locator("#update-reload").click()
        page.wait_for_load_state("load")
        page.evaluate("() => window.packager.ready")
        assert page.title() == "Renamed"


@pytest.mark.slow
def test_non_image_model_shows_raw_outputs(vector_case, tmp_path):
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, spec, source, samples, reference = vector_case
    assert len(source.outputs) == 2
    target = web.WebTarget()
    art = target.convert(source, spec, "fp32", tmp_path / "work")
    pred = target.predict(art, source, spec, samples)
    for name, ref in reference.items():
        np.testing.assert_allclose(pred.outputs[name], ref, atol=1e-5)
    out = tmp_path / "web"
    target.render(spec, source, art, samples, reference, out)
    assert (out / "samples" / "samples.json").is_file() and not list(out.glob("samples/*.png"))
    checks = {c.name: c for c in target.checks(spec, source, art, samples, reference, out)}
    assert checks["image_path"].status == SKIPPED
    assert checks["offline_reload"].status == PASS and checks["console_errors"].status == PASS, checks
    with StaticServer(out) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url)
        page.evaluate("() => window.packager.ready")
        assert page.locator("#file-input").count() == 0
        page.locator("#sample-strip button").first.click()
        page.wait_for_function("() => document.querySelectorAll('#raw-outputs pre').length === 2")
        assert page.locator("#results li").count() == 0
        headings = page.locator("#raw-outputs h3").all_text_contents()
        assert sorted(h.split(" ")[0] for h in headings) == sorted(reference)
        first_values = page.locator("#raw-outputs pre").first.text_content()
        name0 = headings[0].split(" ")[0]
        assert float(first_values.split(",")[0]) == pytest.approx(float(reference[name0][0, 0]), abs=1e-4)


@pytest.mark.slow
def test_page_says_so_when_the_model_fails_to_load(vector_case, tmp_path):
    from packager.targets.web.browser.chromium import StaticServer, chromium

    _, spec, source, samples, reference = vector_case
    target, art, out = rendered(vector_case, "uint8", tmp_path)
    shards = sorted(out.glob("group1-shard*.bin"))
    shards[0].unlink()
    with StaticServer(out) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_function("() => window.packager && window.packager.error !== null", timeout=60_000)
        status = page.locator("#status")
        assert "error" in status.get_attribute("class")
        assert status.text_content().startswith("The model failed to load")
        assert f"{shards[0].name}: HTTP 404" in status.text_content()
        (out / "model.json").unlink()
        page.reload()
        page.wait_for_function("() => window.packager && window.packager.error !== null", timeout=60_000)
        assert "model.json: HTTP 404" in page.locator("#status").text_content()
    shutil.rmtree(out)


def test_short_name_keeps_whole_words_without_an_ellipsis():
    assert web._short_name("Shapes") == "Shapes"
    assert web._short_name("Flower species classifier") == "Flower"
    assert web._short_name("Supercalifragilistic") == "Supercalifra"
    assert "\u2026" not in web._short_name("A very long model name indeed")


def test_icons_are_deterministic_pngs_of_the_right_size():
    import io

    from PIL import Image

    for size, maskable in ((192, False), (512, False), (512, True)):
        data = web.make_icon(size, maskable=maskable)
        assert data == web.make_icon(size, maskable=maskable)
        with Image.open(io.BytesIO(data)) as im:
            assert im.size == (size, size) and im.format == "PNG"


def test_missing_runtime_is_reported_as_a_missing_tool(monkeypatch, tmp_path):
    from packager.errors import ToolMissing

    monkeypatch.setenv("PACKAGER_TOOLS", str(tmp_path))
    with pytest.raises(ToolMissing, match="setup-web.sh|tf.js"):
        web.vendored_runtime()


def test_the_browser_launched_ahead_serves_the_first_profile_of_its_thread_only():
    """BrowserHost's browser (launched_ahead) is the first chromium_profile() of that thread, once: the next one is a
    fresh browser on the same Playwright; both closed, and the work runs in the host's thread."""
    import threading

    from packager.targets.web.browser import chromium as browser
    from packager.targets.web.browser.host import BrowserHost

    host = BrowserHost()
    try:
        def use() -> tuple:
            ahead = browser._local.ahead[0]
            with browser.chromium_profile() as first:
                pass
            with browser.chromium_profile() as second:
                pass
            return first is ahead, second is not ahead, threading.current_thread().name

        assert host.call(use) == (True, True, "packager-browser")
    finally:
        host.close()
    assert host.call(lambda: threading.current_thread().name) == threading.current_thread().name  # closed: here
