"""Command line: packager build | demo | serve."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile

from packager import interrupt
from packager.errors import EXIT_CODES, EXIT_INTERRUPTED, DiskFull, PackagerError, UsageError, disk_full
from packager.targets import commands as target_commands
from packager.version import __version__

EXIT_HELP = "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in sorted(EXIT_CODES.items()))

BUILD_EPILOG = """\
examples:
  packager build model.keras --samples samples/ --labels labels.txt
  packager build detector/ --samples imgs/ --labels detection_classes=coco.txt
  packager build model.h5 --samples x.npy --targets android --quantize android=fp16
  packager build frozen.pb --input-shape input=1,224,224,3 --output-names logits --samples imgs/
  packager build --config packager.toml

quantization modes (default: auto = the smallest mode that passes the gates, smallest tried first;
every try is in the report; auto stops at errors no other mode can fix; when android int8 passes, auto
converts dynamic too and keeps the smaller that passes):
  android: int8 (full integer, calibrated on the samples), mixed, dynamic, fp16, fp32
  ios:     palette4, palette6, 8bit, fp16, fp32
  web:     uint8, mixed, fp16, uint16, fp32

output kinds (inferred, or [outputs.NAME] kind = ... in packager.toml): probabilities, logits, sigmoid,
regression, other, image (a map the size of the input). Top-1/top-5 are measured on probabilities/logits,
decision agreement at 0.5 on sigmoid scores, PSNR on images, errors and cosine on all.

""" + EXIT_HELP


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", metavar="[OUTPUT=]FILE", action="append",
                   help="labels file, one class per line: of the primary (classification) output, or of the "
                        "output named OUTPUT (repeatable)")
    p.add_argument("--targets", metavar="LIST", help="comma-separated: android,ios,web (default: all three)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: dist/)")
    p.add_argument("--config", metavar="TOML", help="packager.toml with the same settings (flags win)")
    p.add_argument("--mean", metavar="M[,M,M]", help="per-channel mean subtracted from 0..255 pixels (default 0)")
    p.add_argument("--std", metavar="S[,S,S]", help="per-channel divisor after the mean (default 255 -> 0..1)")
    p.add_argument("--normalize", choices=("mean-std", "per-image", "per-channel"),
                   help="step 7 of the preprocessing: mean-std (default: (pixel - mean) / std), per-image "
                        "((x - mean(x)) / max(std(x), 1/sqrt(N)) over the whole image, as "
                        "tf.image.per_image_standardization) or per-channel (the same per channel)")
    p.add_argument("--color", choices=("rgb", "bgr", "grayscale"), help="channel layout the model expects (default rgb)")
    p.add_argument("--crop", choices=("stretch", "center-crop", "letterbox"),
                   help="how an image meets the input's aspect ratio: stretch (default, whole image, aspect not "
                        "kept), center-crop (largest centred region), letterbox (whole image, bars of --background)")
    p.add_argument("--background", metavar="COLOR",
                   help="colour under transparent pixels and of letterbox bars: #rrggbb, white (default), black "
                        "or R,G,B")
    p.add_argument("--preprocessing-max-diff", metavar="D", type=float,
                   help="fail a target whose own image code (page, Kotlin) gives a model input differing from "
                        "Python's by more than D pixel levels (0..255, default 1.0) on the sample files")
    p.add_argument("--quantize", metavar="TARGET=MODE", action="append",
                   help="quantization per target, repeatable (e.g. android=int8 ios=fp16 web=uint8); "
                        "default auto for every target")
    p.add_argument("--int8-io", action="store_true", help="android int8: integer input/output tensors too")
    p.add_argument("--optimize", choices=("balanced", "size", "speed"),
                   help="what --quantize auto weighs when several modes pass: balanced (default; android ships "
                        "full-integer int8 over dynamic-range unless dynamic saves more than 25%% of the bytes or "
                        "agrees on more samples at no more bytes), "
                        "size (the smallest that passes), speed (the fastest kernels on phones: full-integer > "
                        "float > hybrid)")
    p.add_argument("--input-shape", metavar="NAME=D0,D1,...", action="append",
                   help="fix an input's shape (frozen .pb inputs; models with dynamic dimensions)")
    p.add_argument("--output-names", metavar="NAMES", help="frozen .pb: comma-separated output node names")
    p.add_argument("--name", help="model name used for generated classes and titles (default: file name)")
    p.add_argument("--android-package", metavar="PKG", help="Java package / Gradle namespace of the Android module")
    p.add_argument("--android-runtime", choices=("bundled", "play-services"),
                   help="LiteRT bundled with the app (default; works on every device, its native path is verified "
                        "here) or LiteRT in Google Play services (smaller APK; needs Play services)")
    p.add_argument("--web-runtime", choices=("tfjs", "litert", "auto"),
                   help="tfjs (default: a TF.js graph model), litert (the Android target's very .tflite on "
                        "LiteRT.js, same PWA and module API; needs android among the targets) or auto (per model, "
                        "the one that passes the gates with the smaller first visit)")
    p.add_argument("--ios-format", choices=("neuralnetwork", "mlprogram"),
                   help="neuralnetwork (.mlmodel, default) or mlprogram (.mlpackage)")
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty --out folder that an earlier packager build wrote")
    p.add_argument("--custom-objects", metavar="MODULE[,MODULE]",
                   help="import these Python modules before loading a .keras/.h5 model: they define its custom "
                        "layers/models (registered with keras.saving.register_keras_serializable, or top-level "
                        "classes). Looked up in the model's folder, the config's folder, then on sys.path "
                        "(PYTHONPATH). Importing a module RUNS ITS CODE: name only modules you trust. Keras safe "
                        "mode stays on")
    p.add_argument("--no-bundled-samples", action="store_true",
                   help="ship none of the sample data: by default the web demo bundles up to 12 samples (its sample "
                        "strip) and the iOS package up to 4, plus 3 images made from one of them (EXIF-rotated, with "
                        "transparency, enlarged: its XCTest golden cases); the build still checks with them")
    p.add_argument("--unsafe-deserialization", action="store_true",
                   help="let Keras run Python code stored IN THE MODEL FILE (Lambda layers' bytecode), which safe "
                        "mode refuses: only for model files you trust")


def _add_console_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true",
                   help="rebuild even when model, samples, settings and packager are unchanged since a cached run")
    p.add_argument("--low-memory", action="store_true",
                   help="build in one process, one target at a time, freeing each target's memory before the next "
                        "(about 2/3 of the default peak, slower; taken by itself for models with 64 MB of weights or "
                        "more; also PACKAGER_LOW_MEMORY=1)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary and errors")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step (and tracebacks of failures)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="packager",
        description="Package one trained TensorFlow/Keras model for Android (.tflite), iOS (.mlmodel) and the "
                    "browser (TF.js), and prove each output predicts like the original on a shared sample set.",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"packager {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="convert, package and validate a model",
                       description="Convert MODEL for each target, package it in a drop-in folder, run every "
                                   "output on the sample set and compare with the original model.",
                       epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("model", nargs="?", metavar="MODEL",
                   help=".keras, .h5, a SavedModel folder or a frozen .pb (or model = ... in --config)")
    b.add_argument("--samples", metavar="PATH", help="folder of images, or .npy/.npz arrays shaped like the inputs")
    _add_build_options(b)
    _add_console_options(b)

    d = sub.add_parser("demo", help="build the bundled demo classifier end to end",
                       description="Build the bundled shapes classifier (trained offline on drawn shapes) for every "
                                   "target and validate it.", epilog=EXIT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--out", metavar="DIR", default="dist", help="output folder (default: dist/); a previous "
                   "packager output there is replaced")
    d.add_argument("--targets", metavar="LIST", help="comma-separated subset of android,ios,web")
    d.add_argument("--quantize", metavar="TARGET=MODE", action="append", help="as for build")
    d.add_argument("--optimize", choices=("balanced", "size", "speed"), help="as for build (default balanced)")
    d.add_argument("--web-runtime", choices=("tfjs", "litert", "auto"),
                   help="as for build (default tfjs; litert ships the Android target's .tflite on LiteRT.js)")
    _add_console_options(d)

    for command in target_commands():  # packager serve (web)
        command.add_arguments(sub.add_parser(command.COMMAND, help=command.HELP, description=command.DESCRIPTION))
    return parser


def quiet_framework_logs(verbose: bool) -> None:
    """Without --verbose, TensorFlow's and the converters' native (C++) logging is dropped: file
    descriptor 2 goes to /dev/null while Python's sys.stderr keeps writing to the terminal."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # converters' library warnings (coremltools, absl); our output is print()
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    from packager.paths import reserve_std_streams

    reserve_std_streams()  # first: before anything is opened onto a closed standard stream
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        _check_working_folder()
        for command in target_commands():
            if args.command == command.COMMAND:
                return command.run(args)
        quiet_framework_logs(args.verbose)
        interrupt.install()
        from packager.tempdirs import private_temp

        with private_temp():  # before TensorFlow/Keras are imported: their files go there too
            return _run_build(args)
    except PackagerError as e:
        if isinstance(e, DiskFull) and not e.where:
            e = disk_full(e, (getattr(args, "out", None) or "dist", tempfile.gettempdir())) or e
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except OSError as e:
        full = disk_full(e, (getattr(args, "out", None) or "dist", tempfile.gettempdir()))
        if full is None:
            raise
        print(full.render(), file=sys.stderr)
        return full.exit_code
    except KeyboardInterrupt:
        from packager.outdir import WRITTEN

        if WRITTEN:
            print(f"interrupted after the build finished: {WRITTEN[-1]} is complete (see its report.json)",
                  file=sys.stderr)
        else:
            print("interrupted: no output folder was written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _check_working_folder() -> None:
    """Relative paths (flags, config, tools run in subprocesses) need a current folder that still exists."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UsageError("the current folder no longer exists (it was deleted or moved after the shell entered it)",
                         where=os.environ.get("PWD"),
                         hint="cd into an existing folder (e.g. cd ~) and run the command again") from None


def _run_build(args) -> int:
    from packager.config import build_spec
    from packager.progress import Progress

    if args.command == "demo":
        from packager.demo import demo_args

        args = demo_args(args)
    spec = build_spec(args)
    progress = Progress(quiet=args.quiet, verbose=args.verbose)
    from packager.pipeline import build

    report = build(spec, progress, use_cache=not args.no_cache, low_memory=getattr(args, "low_memory", False))
    print(report.summary_table())
    print(f"\nreport: {spec.out / 'report.json'}  and  {spec.out / 'report.html'}")
    print(next_steps(spec, report))
    return report.exit_code


def next_steps(spec, report) -> str:
    out = spec.out
    lines = ["", "next:"]
    if "web" in report.targets and (out / "web").is_dir():
        lines.append(f"  packager serve {out / 'web'}        # try the web demo in a browser")
    if "android" in report.targets and (out / "android").is_dir():
        lines.append(f"  copy {out / 'android'} into your Android project (see its README.md)")
    if "ios" in report.targets and (out / "ios").is_dir():
        lines.append(f"  add {out / 'ios'} as a Swift package in Xcode (see its README.md)")
    return "\n".join(lines)


def remove_autograph_files() -> None:
    """TensorFlow's autograph writes ``__autograph_generated_file*.py`` into TMPDIR and removes them in an atexit
    hook, which ``os._exit`` skips: remove them here (they are the modules of that name this process loaded)."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith("__autograph_generated_file") and path and os.path.basename(path).startswith(name):
            try:
                os.remove(path)
            except OSError:
                pass


def entry() -> None:
    code = main()
    # Done: a Ctrl-C (SIGTERM) from now on would only turn this exit into a traceback; what main() said stands.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # Everything is written and closed by now (output folder, report, browsers, worker process). Python's
    # own teardown of a process that loaded TensorFlow takes 1.5-2 s here and does nothing for the user:
    # flush and leave.
    import logging

    remove_autograph_files()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
