"""Helpers run by bench.py as separate processes (each invocation is one process, timed from outside).

    official.py prepare OUT --size 224 --alpha 1.0 --count 16 --seed 0
        MobileNetV2(weights=None) -> OUT/MobileNetV2.keras, OUT/saved_model/ (model.export), OUT/samples/*.png
        (random-noise images, fixed seed). Writes OUT/prepare.json with the export time.
    official.py tflite SAVED_MODEL SAMPLES OUT.tflite --mode int8|fp32
        tf.lite.TFLiteConverter.from_saved_model; int8 = full-integer quantization (TFLITE_BUILTINS_INT8,
        float I/O) calibrated with a representative dataset of the same sample images.
    official.py coreml SAVED_MODEL OUTDIR --modes fp16[,fp32,8bit]
        coremltools -> neuralnetwork .mlmodel (iOS14 deployment target) from the serving_default concrete
        function; weights quantized with quantization_utils.quantize_weights (16 bits / 8 bits linear).

    official.py corpus MODEL --target android|ios|web OUTDIR [--input-shape NAME=D,..] [--output-names N,..]
                  [--custom-objects MODULE] [--samples NPZ]
        The official converter alone on one corpus model (benchmarks/real_models.py), the way its docs say:
        a Keras file is loaded (Keras 3, else tf_keras) and exported as a SavedModel first; a frozen .pb goes to
        each converter's frozen-graph entry point. Prints one JSON line {ok, error, bytes, seconds, ran}.
        android: TFLiteConverter (TFLITE_BUILTINS, fp32), then the .tflite is run with ai-edge-litert on the
        first sample of an .npz (an image folder: not run). ios: coremltools.convert -> neuralnetwork .mlmodel
        (not run: Core ML needs macOS). web: the tensorflowjs_converter CLI (not run).

The official TF.js converter is run by bench.py directly as the tensorflowjs_converter CLI.
The preprocessing is MobileNetV2's: (pixel - 127.5) / 127.5, the same as bench.py passes to packager.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

MEAN, STD = 127.5, 127.5


def load_samples(folder: Path, size: int) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for p in sorted(folder.glob("*.png")):
        with Image.open(p) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            x = (np.asarray(im, np.float32) - MEAN) / STD
        out.append(x[None])
    return out


def prepare(a) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    rng = np.random.default_rng(a.seed)
    samples = out / "samples"
    samples.mkdir(exist_ok=True)
    for i in range(a.count):
        px = rng.integers(0, 256, size=(a.size, a.size, 3), dtype=np.uint8)
        Image.fromarray(px, "RGB").save(samples / f"noise_{i:02d}.png")

    import keras

    keras.utils.set_random_seed(a.seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(a.size, a.size, 3), alpha=a.alpha)
    model.save(out / "MobileNetV2.keras")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(out / "saved_model"))
    export_s = time.perf_counter() - t0
    (out / "prepare.json").write_text(json.dumps({"export_seconds": export_s, "params": int(model.count_params())}))


def tflite(a) -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(a.saved_model, signature_keys=["serving_default"])
    if a.mode == "int8":
        samples = load_samples(Path(a.samples), a.size)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x] for x in samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif a.mode != "fp32":
        sys.exit(f"unknown mode {a.mode}")
    Path(a.out).write_bytes(conv.convert())


def coreml(a) -> None:
    import coremltools as ct
    import tensorflow as tf
    from coremltools.models.neural_network import quantization_utils

    loaded = tf.saved_model.load(a.saved_model)  # keep a reference: the function needs its variables
    cf = loaded.signatures["serving_default"]
    model = ct.convert([cf], source="tensorflow", convert_to="neuralnetwork",
                       minimum_deployment_target=ct.target.iOS14)
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for mode in a.modes.split(","):
        if mode == "fp32":
            m = model
        elif mode == "fp16":
            m = quantization_utils.quantize_weights(model, nbits=16)
        elif mode == "8bit":
            m = quantization_utils.quantize_weights(model, nbits=8, quantization_mode="linear")
        else:
            sys.exit(f"unknown mode {mode}")
        m.save(str(out / f"MobileNetV2_{mode}.mlmodel"))


def _custom_objects(module: str | None) -> dict:
    if not module:
        return {}
    import importlib
    import inspect

    mod = importlib.import_module(module)
    return {n: c for n, c in vars(mod).items() if inspect.isclass(c) and c.__module__ == mod.__name__}


def _saved_model_of(model: Path, out: Path, custom: dict) -> Path:
    """A SavedModel folder for a Keras file (exported once per OUTDIR); a SavedModel folder as is."""
    if model.is_dir():
        return model
    import keras
    import tensorflow as tf

    dest = out / "saved_model"
    try:
        m = keras.models.load_model(model, compile=False, custom_objects=custom)
        with contextlib.redirect_stdout(io.StringIO()):
            m.export(str(dest), verbose=False)
    except Exception:
        if model.suffix != ".h5":
            raise
        import tf_keras

        m = tf_keras.models.load_model(model, compile=False, custom_objects=custom)
        tf.saved_model.save(m, str(dest))
    return dest


def _shapes(items: list[str]) -> dict:
    return {k: [int(d) for d in v.split(",")] for k, v in (i.split("=", 1) for i in items)}


def corpus(a) -> None:
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    model, shapes = Path(a.model), _shapes(a.input_shape or [])
    outputs = [n for n in (a.output_names or "").split(",") if n]
    result = {"target": a.target, "ok": False, "error": None, "bytes": None, "ran": None}
    t0 = time.perf_counter()
    try:
        custom = _custom_objects(a.custom_objects)
        frozen = model.suffix == ".pb"
        if a.target == "android":
            result["bytes"], result["ran"] = _official_tflite(model, out, frozen, shapes, outputs, custom, a.samples)
        elif a.target == "ios":
            result["bytes"] = _official_coreml(model, out, frozen, shapes, outputs, custom)
        else:
            result["bytes"] = _official_tfjs(model, out, frozen, outputs, custom)
            result["ran"] = _run_tfjs(out / "tfjs", a.samples)
        result["ok"] = True
    except Exception as e:  # the converter's own words are the result
        text = " ".join(str(e).split()) or type(e).__name__
        result["error"] = f"{type(e).__name__}: {text[-600:]}"
    result["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(result))


def _official_tflite(model, out, frozen, shapes, outputs, custom, samples):
    import tensorflow as tf

    if frozen:
        conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(model), list(shapes), outputs, shapes)
    else:
        conv = tf.lite.TFLiteConverter.from_saved_model(str(_saved_model_of(model, out, custom)),
                                                        signature_keys=["serving_default"])
    path = out / "model.tflite"
    path.write_bytes(conv.convert())
    if not samples or not samples.endswith(".npz"):
        return path.stat().st_size, "not run (image-folder samples)"
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(samples)
    interp = Interpreter(model_path=str(path))

    def sample(i: int, d: dict) -> np.ndarray:  # by name (serving_default_NAME:0), else by position
        bare = re.sub(r"^serving_default_|:\d+$", "", d["name"])
        key = bare if bare in data.files else data.files[min(i, len(data.files) - 1)]
        return data[key][:1].astype(d["dtype"])

    for i, d in enumerate(interp.get_input_details()):
        x = sample(i, d)
        if list(x.shape) != list(d["shape"]):
            interp.resize_tensor_input(d["index"], list(x.shape))
    interp.allocate_tensors()
    count = min(len(data[k]) for k in data.files)
    for row in range(count):  # every sample, one at a time, as packager runs them
        for i, d in enumerate(interp.get_input_details()):
            bare = re.sub(r"^serving_default_|:\d+$", "", d["name"])
            key = bare if bare in data.files else data.files[min(i, len(data.files) - 1)]
            interp.set_tensor(d["index"], data[key][row:row + 1].astype(d["dtype"]))
        interp.invoke()
    shapes_out = [list(interp.get_tensor(o["index"]).shape) for o in interp.get_output_details()]
    return path.stat().st_size, f"ran {count} samples with ai-edge-litert: outputs {shapes_out}"


def _official_coreml(model, out, frozen, shapes, outputs, custom):
    import coremltools as ct
    import tensorflow as tf

    inputs = [ct.TensorType(name=n, shape=s) for n, s in shapes.items()] or None
    with contextlib.redirect_stdout(io.StringIO()):
        if frozen:  # coremltools' TF2 front end takes concrete functions: wrap the GraphDef in one
            graph_def = tf.compat.v1.GraphDef.FromString(model.read_bytes())
            names = list(shapes)
            fn = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
            cf = fn.prune([fn.graph.get_tensor_by_name(f"{n}:0") for n in names],
                          [fn.graph.get_tensor_by_name(f"{n}:0") for n in outputs])
            ml = ct.convert([cf], source="tensorflow", inputs=inputs, convert_to="neuralnetwork",
                            minimum_deployment_target=ct.target.iOS14)
        else:
            loaded = tf.saved_model.load(str(_saved_model_of(model, out, custom)))
            cf = loaded.signatures["serving_default"]
            if shapes:  # dynamic dimensions fixed the same way packager's --input-shape does
                names = [k for k in cf.structured_input_signature[1]]
                sig = [tf.TensorSpec([None] + shapes[n][1:] if n in shapes else cf.structured_input_signature[1][n].shape,
                                     cf.structured_input_signature[1][n].dtype, name=n) for n in names]
                base = cf
                cf = tf.function(lambda *xs: base(**dict(zip(names, xs)))).get_concrete_function(*sig)
            ml = ct.convert([cf], source="tensorflow", convert_to="neuralnetwork",
                            minimum_deployment_target=ct.target.iOS14)
    path = out / "model.mlmodel"
    ml.save(str(path))
    return path.stat().st_size


def _official_tfjs(model, out, frozen, outputs, custom):
    import shutil
    import subprocess

    cli = shutil.which("tensorflowjs_converter") or str(Path(sys.executable).with_name("tensorflowjs_converter"))
    dest = out / "tfjs"
    if frozen:
        cmd = [cli, "--input_format=tf_frozen_model", f"--output_node_names={','.join(outputs)}", str(model), str(dest)]
    else:
        cmd = [cli, "--input_format=tf_saved_model", "--signature_name=serving_default",
               str(_saved_model_of(model, out, custom)), str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"tensorflowjs_converter exit {proc.returncode}: {' | '.join(lines[-3:])}")
    return sum(p.stat().st_size for p in dest.iterdir())


def _run_tfjs(dest: Path, samples: str | None) -> str:
    """The official TF.js output run on the first .npz sample by tf.js 4.22 (cpu backend) in Node."""
    import subprocess
    import tempfile

    if not samples or not samples.endswith(".npz"):
        return "not run (image-folder samples)"
    data = np.load(samples)
    sig = json.loads((dest / "model.json").read_text())["signature"]["inputs"]
    feed = {}
    for i, (name, d) in enumerate(sig.items()):
        bare = re.sub(r":\d+$", "", name)  # same-shape inputs are keyed by tensor name ("input_layer:0")
        key = bare if bare in data.files else data.files[min(i, len(data.files) - 1)]
        x = data[key][:1]
        dtype = "int32" if d.get("dtype") == "DT_INT32" else "float32"
        feed[name] = {"shape": list(x.shape), "dtype": dtype, "data": x.astype(dtype).ravel().tolist()}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(feed, f)
    runner = Path(__file__).with_name("tfjs_run.js")
    proc = subprocess.run(["node", str(runner), str(dest), f.name], capture_output=True, text=True, timeout=600)
    Path(f.name).unlink()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return f"tf.js run crashed: {proc.stderr.strip()[-300:]}"
    r = json.loads(lines[-1])
    return (f"ran 1 sample with tf.js (cpu, Node): outputs {r['outputs']}" if r["ok"]
            else f"tf.js cannot run the official output either: {r['error'][:300]}")


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("out")
    s.add_argument("--size", type=int, default=224)
    s.add_argument("--alpha", type=float, default=1.0)
    s.add_argument("--count", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=prepare)
    s = sub.add_parser("tflite")
    s.add_argument("saved_model")
    s.add_argument("samples")
    s.add_argument("out")
    s.add_argument("--mode", default="int8")
    s.add_argument("--size", type=int, default=224)
    s.set_defaults(fn=tflite)
    s = sub.add_parser("coreml")
    s.add_argument("saved_model")
    s.add_argument("outdir")
    s.add_argument("--modes", default="fp16")
    s.set_defaults(fn=coreml)
    s = sub.add_parser("corpus")
    s.add_argument("model")
    s.add_argument("--target", required=True, choices=["android", "ios", "web"])
    s.add_argument("outdir")
    s.add_argument("--input-shape", action="append")
    s.add_argument("--output-names")
    s.add_argument("--custom-objects")
    s.add_argument("--samples")
    s.set_defaults(fn=corpus)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
