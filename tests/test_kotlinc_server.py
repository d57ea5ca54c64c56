"""The warm kotlinc (packager.targets.android.host.kotlinc_server) and the .keras signature read without TensorFlow
(packager.keras_config) that lets it compile the build's own module before the model is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_android_module import needs_tools

from packager.keras_config import config_preview
from packager.source import keras_preview
from packager.spec import PackageSpec, Preprocessing
from packager.targets.android.host import kotlinc_server


def _spec(model: Path, **kw) -> PackageSpec:
    return PackageSpec(model=model, samples=Path("samples"), labels=("cat", 'say "hi"', "dog"),
                       preprocessing=Preprocessing(color="rgb", mean=(127.5,), std=(127.5,)), name="warm-net", **kw)


def _signature(source):
    return source and ([(t.name, t.shape, t.dtype) for t in source.inputs], [t.name for t in source.outputs])


def _models(tmp: Path):
    import keras

    a = keras.Input((12, 10, 3), name="photo")
    yield "image", keras.Model(a, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(a)))
    a, b = keras.Input((4,), name="b_in"), keras.Input((6,), name="a_in")
    x = keras.layers.Concatenate()([a, b])
    yield "two-in-two-out", keras.Model([a, b], [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)])
    a = keras.Input((4,))
    yield "dict-out", keras.Model(a, {"zeta": keras.layers.Dense(2)(a), "alpha": keras.layers.Dense(1)(a)})
    a = keras.Input((None, 3))
    yield "dynamic", keras.Model(a, keras.layers.Dense(2)(a))
    yield "sequential", keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])


@pytest.mark.slow
def test_the_signature_read_from_config_json_is_what_the_loaded_model_gives(tmp_path):
    """Where config_preview guesses, it guesses what keras_preview reads off the loaded model; where it cannot be
    sure (a Sequential model's input is named at load time, a dynamic shape), it does not guess."""
    import keras

    for name, model in _models(tmp_path):
        path = tmp_path / f"{name}.keras"
        model.save(path)
        spec = _spec(path)
        guess = config_preview(spec)
        real = keras_preview(keras.models.load_model(path, compile=False), spec, "keras", tmp_path)
        if name in ("dynamic", "sequential"):
            assert guess is None, name
        else:
            assert guess is not None and _signature(guess) == _signature(real), name
    assert config_preview(_spec(tmp_path / "missing.keras")) is None
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    assert config_preview(_spec(tmp_path / "bad.keras")) is None


def test_same_inputs_wants_the_same_names_and_bytes(tmp_path):
    warm, real = tmp_path / "warm", tmp_path / "real"
    for d in (warm, real):
        (d / "m").mkdir(parents=True)
        (d / "m" / "A.kt").write_text("class A\n")
        (d / "stubs.jar").write_bytes(b"jar")
    args = lambda d: ["-cp", f"/s.jar{os.pathsep}{d / 'stubs.jar'}", "-d", str(d / "out"), str(d / "m" / "A.kt")]  # noqa: E731
    swaps = kotlinc_server.same_inputs(args(warm), args(real))
    assert swaps == {str(warm / "stubs.jar"): str(real / "stubs.jar"), str(warm / "m/A.kt"): str(real / "m/A.kt")}
    assert kotlinc_server._swapped(f"{warm / 'm/A.kt'}:1:7: warning", swaps) == f"{real / 'm/A.kt'}:1:7: warning"
    (real / "m" / "A.kt").write_text("class B\n")
    assert kotlinc_server.same_inputs(args(warm), args(real)) is None
    (real / "m" / "A.kt").write_text("class A\n")
    (real / "stubs.jar").write_bytes(b"other")
    assert kotlinc_server.same_inputs(args(warm), args(real)) is None
    (real / "stubs.jar").write_bytes(b"jar")
    (real / "m" / "A.kt").rename(real / "m" / "B.kt")
    moved = args(real)[:-1] + [str(real / "m" / "B.kt")]
    assert kotlinc_server.same_inputs(args(warm), moved) is None
    assert kotlinc_server.same_inputs(args(warm), args(warm)[:-1]) is None


@pytest.mark.slow
@needs_tools
def test_the_warm_kotlinc_compiles_the_module_ahead_and_then_serves_requests(tmp_path):
    """Started from the spec alone, the server compiles the module the build will render (its signature read from
    config.json); the build's compile of that module is its result, a different compile runs in the same JVM,
    errors come back as errors, a fork of the build does not use it, a broken one leaves plain kotlinc, and close
    ends the JVM and removes its folder."""
    import keras

    from packager.targets.android import module as am

    path = tmp_path / "net.keras"
    dict(_models(tmp_path))["image"].save(path)
    spec = _spec(path)
    kotlinc_server.start_ahead(spec)
    server = kotlinc_server.current()
    try:
        assert server is not None
        preview = keras_preview(keras.models.load_model(path, compile=False), spec, "keras", tmp_path)
        compiled = am.precompile(spec, preview, tmp_path / "build")
        kotlin = compiled.checks[0]
        assert kotlin.name == "kotlin-compiles" and kotlin.status == "PASS", kotlin.detail
        assert kotlinc_server.REUSED in kotlin.detail
        assert list((tmp_path / "build/precompiled/classes").rglob("WarmNetClassifier.class"))

        (tmp_path / "extra").mkdir()
        good, bad = tmp_path / "extra/Good.kt", tmp_path / "extra/Bad.kt"
        good.write_text("package extra\n\nfun twice(x: Int) = 2 * x\n")
        bad.write_text("package extra\n\nfun broken(): Int = \"text\"\n")
        res = kotlinc_server.compile_kotlin([good], tmp_path / "good-classes")
        assert res.returncode == 0 and res.note == "" and (tmp_path / "good-classes/extra/GoodKt.class").is_file()
        res = kotlinc_server.compile_kotlin([bad], tmp_path / "bad-classes")
        assert res.returncode != 0 and "Bad.kt" in res.output and "mismatch" in res.output.lower()

        pid = os.fork()
        if pid == 0:  # the forked worker of a build
            os._exit(0 if kotlinc_server.current() is None else 1)
        assert os.waitpid(pid, 0)[1] == 0

        server._proc.kill()
        server._proc.wait()
        assert server.compile(["-d", str(tmp_path / "x"), str(good)]) is None
        res = kotlinc_server.compile_kotlin([good], tmp_path / "fallback-classes")  # plain kotlinc
        assert res.returncode == 0 and (tmp_path / "fallback-classes/extra/GoodKt.class").is_file()
    finally:
        kotlinc_server.close_ahead()
    assert kotlinc_server.current() is None and server._proc.poll() is not None and not server._folder.exists()
