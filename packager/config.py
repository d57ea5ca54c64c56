"""Build a PackageSpec from packager.toml and/or CLI flags (flags win). Unknown keys are errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packager.compare import GATE_KEYS
from packager.custom_objects import module_files, parse_modules
from packager.errors import UsageError
from packager.flag_values import parse_floats, parse_labels_flags, parse_shape  # noqa: F401 (re-exported)
from packager.kinds import KINDS
from packager.labels import read_labels
from packager.modes import DEFAULT_OBJECTIVE, OBJECTIVES
from packager.outdir import check_out_against_inputs
from packager.paths import check_input_path
from packager.spec import COLOR_MODES, DEFAULT_QUANTIZATION, NORMALIZATIONS, PackageSpec, Preprocessing
from packager.targets import MODES, check_mode, check_target_name, did_you_mean
from packager.values import (
    check_abi_filters,
    check_gate,
    check_input_shape,
    check_name,
    check_preprocessing,
    check_shard_bytes,
)

# section -> key -> expected python type(s) (TOML-level)
SCHEMA: dict[str, dict[str, tuple]] = {
    "": {"model": (str,), "samples": (str,), "labels": (str,), "out": (str,), "targets": (list,), "name": (str,),
         "custom_objects": (list,), "bundle_samples": (bool,), "web_runtime": (str,), "optimize": (str,)},
    "preprocessing": {"color": (str,), "mean": (list, int, float), "std": (list, int, float), "crop": (str,),
                      "background": (str, list), "max_abs_diff": (int, float), "normalize": (str,)},
    "quantization": {t: (str,) for t in MODES},
    "android": {"package": (str,), "abi_filters": (list,), "int8_io": (bool,), "runtime": (str,)},
    "ios": {"format": (str,)},
    "web": {"shard_bytes": (int,), "runtime": (str,)},
    "model_input": {"input_shapes": (dict,), "output_names": (list,)},
    "metadata": {"author": (str,), "license": (str,), "description": (str,), "version": (str,)},
    "tolerances": {},  # checked separately: [tolerances.<mode|target>] with gate keys
    "outputs": {},  # checked separately: [outputs.<output name>] kind = "..."
    "labels": {},  # checked separately: [labels] <output name> = "file.txt"
}
OUTPUT_KEYS = ("kind",)


def read_toml(path: Path) -> dict:
    check_input_path(path, "config file", "--config takes a packager.toml file", error=UsageError, folder=False)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"packager.toml syntax error: {e}", where=str(path), hint="fix the TOML syntax") from e
    except UnicodeDecodeError as e:
        raise UsageError("config file is not UTF-8 text", where=str(path)) from e
    _validate(data, path)
    return data


def _validate(data: dict, path: Path) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and key in SCHEMA and key:
            section, items = key, value
        elif key in SCHEMA[""]:
            _check_type(key, value, SCHEMA[""][key], path)
            continue
        else:
            raise UsageError(f"unknown key {key!r} in packager.toml", where=str(path),
                             hint=f"{did_you_mean(key, [*SCHEMA[''], *[s for s in SCHEMA if s]])}"
                                  "see README for the keys packager.toml accepts")
        if section == "tolerances":
            _validate_tolerances(items, path)
            continue
        if section == "outputs":
            _validate_outputs(items, path)
            continue
        if section == "labels":
            for k, v in items.items():
                _check_type(f"labels.{k}", v, (str,), path)
            continue
        for k, v in items.items():
            if k not in SCHEMA[section]:
                raise UsageError(f"unknown key {k!r} in [{section}]", where=str(path),
                                 hint=f"{did_you_mean(k, SCHEMA[section])}[{section}] accepts: {', '.join(SCHEMA[section])}")
            _check_type(f"{section}.{k}", v, SCHEMA[section][k], path)


def _validate_tolerances(items: dict, path: Path) -> None:
    scopes = {*MODES, *(m for modes in MODES.values() for m in modes)}
    for scope, gates in items.items():
        if scope not in scopes or not isinstance(gates, dict):
            raise UsageError(f"unknown tolerance scope [tolerances.{scope}]", where=str(path),
                             hint=f"{did_you_mean(scope, scopes)}scopes: a target or a quantization mode")
        for k, v in gates.items():
            if k not in GATE_KEYS:
                raise UsageError(f"unknown gate {k!r} in [tolerances.{scope}]", where=str(path),
                                 hint=f"{did_you_mean(k, GATE_KEYS)}gates: {', '.join(GATE_KEYS)}")
            _check_type(f"tolerances.{scope}.{k}", v, (int, float), path)
            check_gate(k, v, f"{path} [tolerances.{scope}]")


def _validate_outputs(items: dict, path: Path) -> None:
    for output, table in items.items():
        if not isinstance(table, dict):
            raise UsageError(f"[outputs] takes one table per output, got outputs.{output} = {table!r}",
                             where=str(path), hint=f'write [outputs.{output}] then kind = "regression"')
        for k, v in table.items():
            if k not in OUTPUT_KEYS:
                raise UsageError(f"unknown key {k!r} in [outputs.{output}]", where=str(path),
                                 hint=f"{did_you_mean(k, OUTPUT_KEYS)}[outputs.<name>] accepts: {', '.join(OUTPUT_KEYS)}")
            _check_type(f"outputs.{output}.{k}", v, (str,), path)
            if v not in KINDS:
                raise UsageError(f"unknown output kind {v!r} for output {output!r}", where=str(path),
                                 hint=f"{did_you_mean(v, KINDS)}kinds: {', '.join(KINDS)}")


def _check_type(key: str, value, types: tuple, path: Path) -> None:
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        want = " or ".join({list: "array", str: "string", int: "integer", float: "number", bool: "boolean",
                            dict: "table"}[t] for t in types)
        raise UsageError(f"{key} must be {want}, got {type(value).__name__} {value!r}", where=str(path))


def image_preprocessing(args, cfg_crop, cfg_background, cfg_max_diff) -> dict:
    """crop, background and max_abs_diff of the Preprocessing, from the flags or packager.toml's [preprocessing]."""
    import math

    from packager.preprocessing import parse_background
    from packager.spec import CROP_POLICIES

    crop = getattr(args, "crop", None) or cfg_crop or "stretch"
    if crop not in CROP_POLICIES:
        raise UsageError(f"unknown crop policy {crop!r}",
                         hint=f"{did_you_mean(crop, CROP_POLICIES)}choose {', '.join(CROP_POLICIES)}")
    background = getattr(args, "background", None) or cfg_background or "white"
    try:
        rgb = parse_background(background)
    except ValueError as e:
        raise UsageError(f"--background / [preprocessing] background: {e}",
                         hint='give "#rrggbb", "white", "black", "R,G,B" or [R, G, B] with values 0..255') from e
    max_diff = getattr(args, "preprocessing_max_diff", None)
    max_diff = max_diff if max_diff is not None else cfg_max_diff if cfg_max_diff is not None else 1.0
    try:
        max_diff = float(max_diff)
    except ValueError as e:
        raise UsageError(f"--preprocessing-max-diff takes a number, got {max_diff!r}", hint="e.g. 1.0") from e
    if not math.isfinite(max_diff) or max_diff < 0:
        raise UsageError(f"the preprocessing gate max_abs_diff must be a finite number >= 0, got {max_diff}",
                         hint="pixel levels 0..255, e.g. 1.0 (the default)")
    return {"crop": crop, "background": rgb, "max_abs_diff": max_diff}


def check_int8_io(int8_io: bool, targets: tuple[str, ...], quant: dict) -> None:
    """--int8-io / [android] int8_io changes the int8 model's input and output tensors only: with android not
    built, or built in a mode without integer I/O, it would be silently ignored."""
    if not int8_io:
        return
    mode = quant.get("android", "auto")
    if "android" not in targets or mode not in ("int8", "auto"):
        why = "android is not among the targets" if "android" not in targets else f"android is quantized {mode}"
        raise UsageError(f"--int8-io ([android] int8_io) applies to android int8 only, and {why}: it would be ignored",
                         hint="drop --int8-io, or add --quantize android=int8 (or auto, which may choose int8)")


def check_quantize_flag(target: str, mode: str, targets: tuple[str, ...], flagged: dict[str, str]) -> str:
    """A --quantize TARGET=MODE flag for a target that is not built, or a second one with another mode for the same
    target, would be silently ignored: refused instead (packager.toml's [quantization] may name every target)."""
    if target not in targets:
        raise UsageError(f"--quantize {target}={mode}: {target} is not among the targets ({', '.join(targets)}): "
                         "it would be ignored", hint=f"drop it, or add {target} to --targets")
    if flagged.setdefault(target, mode) != mode:
        raise UsageError(f"--quantize is given twice for {target}, with different modes ({flagged[target]} and "
                         f"{mode}): one would be ignored", hint=f"keep one --quantize {target}=MODE")
    return mode


def build_spec(args, *, base_dir: Path | None = None) -> PackageSpec:
    """Merge packager.toml (``args.config``) and CLI flags into a PackageSpec."""
    cfg: dict = {}
    cfg_dir = Path.cwd()
    if getattr(args, "config", None):
        cfg_path = Path(args.config)
        cfg = read_toml(cfg_path)
        cfg_dir = cfg_path.resolve().parent

    def from_cfg(section: str, key: str, default=None):
        table = cfg if not section else cfg.get(section, {})
        return table.get(key, default)

    def refuse_empty(values: tuple, hint: str) -> None:
        """(flag, value) pairs: an empty value would silently be the default (or a folder): a usage error."""
        for flag, value in values:
            if value is not None and not str(value).strip():
                raise UsageError(f"{flag} is empty", where=str(getattr(args, "config", "") or "") or None, hint=hint)

    def cfg_path(key: str, v) -> Path | None:
        """A path value of packager.toml, relative to its folder; an empty one would be that folder itself."""
        refuse_empty(((f"{key} in packager.toml", v),), f"give a path, relative to the config's folder, or leave {key} out")
        return (cfg_dir / v) if v is not None else None

    def cfg_path_value(key: str) -> Path | None:
        return cfg_path(key, from_cfg("", key))

    model = Path(args.model) if getattr(args, "model", None) else cfg_path_value("model")
    samples = Path(args.samples) if getattr(args, "samples", None) else cfg_path_value("samples")
    if model is None:
        raise UsageError("no model given", hint="packager build MODEL --samples PATH (or model = ... in packager.toml)")
    if samples is None:
        raise UsageError("no sample set given", hint="--samples takes a folder of images or a .npy/.npz file")
    labels_args = getattr(args, "labels", None) or []
    plain_label, named_labels = parse_labels_flags([labels_args] if isinstance(labels_args, str) else labels_args)
    cfg_labels = cfg.get("labels")  # labels = "file" (the primary output's) or a [labels] table per output
    labels_file = Path(plain_label) if plain_label else (
        cfg_path("labels", cfg_labels) if isinstance(cfg_labels, str) else None)
    label_files = {k: cfg_path(f"[labels] {k}", v) for k, v in cfg_labels.items()} if isinstance(cfg_labels, dict) else {}
    label_files.update({k: Path(v) for k, v in named_labels.items()})
    refuse_empty((("--out", getattr(args, "out", None)), ("out in packager.toml", from_cfg("", "out"))),
                 "give the output folder, e.g. --out dist (or leave --out out for dist/)")
    out = Path(args.out) if getattr(args, "out", None) else (cfg_path_value("out") or Path("dist"))

    targets_value = getattr(args, "targets", None)
    if targets_value is None:
        targets_value = from_cfg("", "targets")
    if targets_value is None:
        targets_value = list(MODES)
    if isinstance(targets_value, str):
        targets_value = [t.strip() for t in targets_value.split(",") if t.strip()]
    targets = tuple(dict.fromkeys(check_target_name(str(t)) for t in targets_value))
    if not targets:
        raise UsageError("--targets / targets in packager.toml is empty: no target to build",
                         where=str(getattr(args, "config", "") or "") or None,
                         hint=f"name at least one of {', '.join(MODES)} (leave it out to build all of them)")

    color = getattr(args, "color", None) or from_cfg("preprocessing", "color", "rgb")
    if color not in COLOR_MODES:
        raise UsageError(f"unknown colour mode {color!r}", hint=f"{did_you_mean(color, COLOR_MODES)}choose {', '.join(COLOR_MODES)}")

    def floats(flag: str, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        v = getattr(args, key, None)
        if v is not None:
            return parse_floats(v, flag)
        v = from_cfg("preprocessing", key)
        if v is None:
            return default
        return parse_floats(",".join(map(str, v if isinstance(v, list) else [v])), flag)

    normalize = getattr(args, "normalize", None) or from_cfg("preprocessing", "normalize", "mean-std")
    if normalize not in NORMALIZATIONS:
        raise UsageError(f"unknown normalisation {normalize!r}",
                         hint=f"{did_you_mean(normalize, NORMALIZATIONS)}choose {', '.join(NORMALIZATIONS)}")
    if normalize != "mean-std":
        given = [f for f, k in (("--mean", "mean"), ("--std", "std"))
                 if getattr(args, k, None) is not None or from_cfg("preprocessing", k) is not None]
        if given:
            raise UsageError(f"--normalize {normalize} standardises each image by its own statistics: "
                             f"{' and '.join(given)} cannot apply too",
                             where=str(getattr(args, "config", "") or "") or None,
                             hint=f"drop {' and '.join(given)}, or use --normalize mean-std")
    pre = Preprocessing(color=color, mean=floats("--mean", "mean", (0.0,)), std=floats("--std", "std", (255.0,)),
                        normalize=normalize,
                        **image_preprocessing(args, from_cfg("preprocessing", "crop"),
                                              from_cfg("preprocessing", "background"),
                                              from_cfg("preprocessing", "max_abs_diff")))
    check_preprocessing(pre.mean, pre.std)

    quant = dict(DEFAULT_QUANTIZATION)
    quant.update({t: check_mode(check_target_name(t), m) for t, m in cfg.get("quantization", {}).items()})
    flagged: dict[str, str] = {}  # TARGET=MODE flags given so far
    for item in getattr(args, "quantize", None) or []:
        target, sep, mode = item.partition("=")
        if not sep:  # "--quantize fp16" applies to every target that has the mode
            if item == "auto":
                quant = {t: "auto" for t in MODES}
                continue
            holders = [t for t in MODES if item in MODES[t]]
            if not holders:
                raise UsageError(f"unknown quantization mode {item!r}",
                                 hint=f"use TARGET=MODE, e.g. android=int8; modes: {MODES}")
            if not set(holders) & set(targets):
                raise UsageError(f"--quantize {item} is a mode of {', '.join(holders)} only, which is not among the "
                                 f"targets ({', '.join(targets)}): it would be ignored",
                                 hint="drop it, or add that target to --targets")
            quant.update({t: item for t in holders})
            continue
        if not target or not mode:
            raise UsageError(f"--quantize takes TARGET=MODE, got {item!r}", hint="e.g. --quantize android=int8")
        target = check_target_name(target)  # before the mode: an unknown target has no modes
        quant[target] = check_quantize_flag(target, check_mode(target, mode), targets, flagged)

    optimize = getattr(args, "optimize", None) or from_cfg("", "optimize", DEFAULT_OBJECTIVE)
    if optimize not in OBJECTIVES:
        raise UsageError(f"unknown optimize objective {optimize!r}", where=str(getattr(args, "config", "") or "") or None,
                         hint=f"{did_you_mean(optimize, OBJECTIVES)}choose {', '.join(OBJECTIVES)}")
    check_int8_io(bool(getattr(args, "int8_io", False) or from_cfg("android", "int8_io", False)), targets, quant)
    labels: tuple[str, ...] = read_labels(labels_file) if labels_file else ()
    output_labels = {k: read_labels(p) for k, p in label_files.items()}
    output_kinds = {k: t["kind"] for k, t in cfg.get("outputs", {}).items() if "kind" in t}

    input_shapes = dict(from_cfg("model_input", "input_shapes", {}) or {})
    input_shapes = {k: check_input_shape(k, v, str(getattr(args, "config", ""))) for k, v in input_shapes.items()}
    for item in getattr(args, "input_shape", None) or []:
        name, shape = parse_shape(item)
        input_shapes[name] = shape
    output_names = getattr(args, "output_names", None)
    output_names = tuple(n.strip() for n in output_names.split(",") if n.strip()) if output_names else tuple(
        from_cfg("model_input", "output_names", []))

    from packager.names import default_android_package, validate_android_package

    refuse_empty((("--name", getattr(args, "name", None)), ("name in packager.toml", from_cfg("", "name")),
                  ("--android-package", getattr(args, "android_package", None)),
                  ("package in packager.toml's [android]", from_cfg("android", "package"))),
                 "give a value, or leave it out for the default (from the model's file name)")
    name = getattr(args, "name", None) or from_cfg("", "name", "") or ""
    if name:
        check_name(name, "--name / name in packager.toml")
    else:
        check_name(model.stem or model.name, str(model), from_file=True)
    custom_value = getattr(args, "custom_objects", None)
    if custom_value is None:
        custom_value = from_cfg("", "custom_objects")
    custom = parse_modules(custom_value, "--custom-objects / custom_objects") if custom_value is not None else ()
    spec = PackageSpec(
        model=model,
        samples=samples,
        out=out,
        labels_file=labels_file,
        labels=labels,
        output_labels=output_labels,
        output_kinds=output_kinds,
        targets=targets,
        preprocessing=pre,
        quantization=quant,
        tolerances=cfg.get("tolerances", {}),
        name=name,
        android_abi_filters=check_abi_filters(from_cfg("android", "abi_filters", ["arm64-v8a", "armeabi-v7a", "x86_64"]),
                                              str(getattr(args, "config", ""))),
        int8_io=bool(getattr(args, "int8_io", False) or from_cfg("android", "int8_io", False)),
        optimize=optimize,
        input_shapes=input_shapes,
        output_names=output_names,
        ios_format=getattr(args, "ios_format", None) or from_cfg("ios", "format", "neuralnetwork"),
        web_shard_bytes=check_shard_bytes(from_cfg("web", "shard_bytes", 4 * 1024 * 1024), str(getattr(args, "config", ""))),
        author=from_cfg("metadata", "author", ""),
        license=from_cfg("metadata", "license", ""),
        description=from_cfg("metadata", "description", ""),
        version=from_cfg("metadata", "version", "1.0"),
        force=bool(getattr(args, "force", False)),
        custom_objects=custom,
        custom_objects_dirs=tuple(dict.fromkeys(p.resolve() for p in (model.parent, cfg_dir))) if custom else (),
        unsafe_deserialization=bool(getattr(args, "unsafe_deserialization", False)),
        bundle_samples=not getattr(args, "no_bundled_samples", False) and from_cfg("", "bundle_samples", True),
    )
    check_out_against_inputs(out, [model, samples, labels_file, *label_files.values(),
                                   Path(args.config) if getattr(args, "config", None) else None,
                                   *(f.parent if f.name == "__init__.py" else f  # a package: its folder
                                     for f in module_files(custom, spec.custom_objects_dirs))], force=spec.force)
    explicit = getattr(args, "android_package", None) or from_cfg("android", "package", "")
    package = validate_android_package(explicit) if explicit else default_android_package(spec)
    runtime = getattr(args, "android_runtime", None) or from_cfg("android", "runtime", "bundled")
    if runtime not in ("bundled", "play-services"):
        raise UsageError(f"unknown Android runtime {runtime!r} ([android] runtime in {getattr(args, 'config', '')})",
                         hint="choose bundled (LiteRT in the APK) or play-services (LiteRT in Google Play services)")
    spec = spec.with_(android_runtime=runtime)
    if spec.ios_format not in ("neuralnetwork", "mlprogram"):
        raise UsageError(f"unknown iOS format {spec.ios_format!r}", hint="choose neuralnetwork (.mlmodel) or mlprogram (.mlpackage)")
    spec = web_runtime_of(spec, getattr(args, "web_runtime", None) or from_cfg("", "web_runtime")
                          or from_cfg("web", "runtime"), str(getattr(args, "config", "") or "") or None)
    return spec.with_(android_package=package, android_package_explicit=bool(explicit))


WEB_RUNTIMES = ("tfjs", "litert", "auto")  # --web-runtime; litert ships the android .tflite (quantization "litert")


def web_runtime_of(spec: PackageSpec, value: str | None, where: str | None) -> PackageSpec:
    """The spec with its web runtime: ``litert`` sets the web target's quantization to "litert" (not a TF.js weight
    mode: the Android target's .tflite on LiteRT.js), which needs the android target built; a TF.js weight mode asked
    for beside it is a contradiction."""
    runtime = value or "tfjs"
    if runtime not in WEB_RUNTIMES:
        raise UsageError(f"unknown web runtime {runtime!r}", where=where,
                         hint=f"{did_you_mean(runtime, WEB_RUNTIMES)}choose tfjs (default), litert or auto")
    if runtime == "tfjs" or "web" not in spec.targets:
        return spec.with_(web_runtime=runtime)
    if runtime == "litert" and "android" not in spec.targets:
        raise UsageError("--web-runtime litert ships the Android target's .tflite, and android is not among the "
                         "targets", where=where, hint="add android to --targets (e.g. --targets android,web), or use "
                                                      "--web-runtime tfjs")
    web_mode = spec.quantization.get("web", "auto")
    if runtime == "litert" and web_mode not in ("auto", "litert"):
        raise UsageError(f"--quantize web={web_mode} is a TF.js weight mode, and --web-runtime litert ships the "
                         "Android .tflite (its quantization is android's)", where=where,
                         hint="drop --quantize web=..., or use --web-runtime tfjs / auto")
    if runtime == "litert":
        return spec.with_(web_runtime=runtime, quantization={**spec.quantization, "web": "litert"})
    return spec.with_(web_runtime=runtime)
