"""The target registry: name -> Registration. Adding a target is one package under ``targets/``, one template
folder at the repository root and one line here; nothing else in ``packager/`` names a target.

Each hook is a ``"module:attribute"`` string, imported only when used (a registry that imported its targets
would pull every converter into every command, and shared code that imports this module into an import circle).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass

from packager.errors import UsageError


@dataclass(frozen=True)
class Registration:
    target: str  # "module:Class" implementing targets.base.Target
    modes: tuple[str, ...]  # quantization modes, smallest error first ("auto" is added by the CLI)
    template: str  # its template folder at the repository root (render.template_dir)
    ahead: str | None = None  # "module:function(spec)": started before TensorFlow's import; returns a close callable
    cache_inputs: str | None = None  # "module:function(spec)": files beside the code a build reads (cache key)
    command: str | None = None  # "module": a CLI command of its own (COMMAND, HELP, DESCRIPTION, add_arguments, run)
    # "module:function(spec)": the targets whose finished results (and shipped files) this target reads; the build
    # session builds them first and hands them over as ``spec.upstream`` (web --web-runtime litert: android's .tflite)
    reads: str | None = None


REGISTRY = {
    "android": Registration("packager.targets.android.target:AndroidTarget",
                            ("fp32", "fp16", "dynamic", "mixed", "int8"), "android_template",
                            ahead="packager.targets.android.host.kotlinc_server:start_ahead"),
    "ios": Registration("packager.targets.ios.target:IOSTarget",
                        ("fp32", "fp16", "8bit", "palette6", "palette4"), "ios_template"),
    "web": Registration("packager.targets.web.target:WebTarget",
                        ("fp32", "fp16", "uint16", "mixed", "uint8"), "web_template",
                        cache_inputs="packager.targets.web.litert.runtime:cache_inputs",
                        command="packager.targets.web.serve",
                        reads="packager.targets.web.litert.runtime:reads"),
}
# The order targets are built in. ios first: the worker process takes it, or, without one, its validation on NumPy
# (Core ML executor) runs here before any target's checks load the CPU in the background and distort the measured
# latency. Then web, whose browser session (predictions and checks, in the background) is the longest work left
# after its conversion, then android, whose compile checks started during the model's export (MobileNetV2 224:
# 22.4 s vs 23.3 s with android before web, three builds each). A target not named here goes last.
PROCESSING_ORDER = ("ios", "web", "android")
TARGETS = {name: r.target for name, r in REGISTRY.items()}
MODES = {name: r.modes for name, r in REGISTRY.items()}


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def check_target_name(name: str) -> str:
    if name not in TARGETS:
        raise UsageError(
            f"unknown target {name!r}",
            hint=f"{did_you_mean(name, TARGETS)}targets: {', '.join(TARGETS)}",
        )
    return name


def target_available(name: str) -> bool:
    module = TARGETS[name].split(":")[0]
    return importlib.util.find_spec(module) is not None


def hook(reference: str | None):
    """The object a ``"module:attribute"`` string names (None for None)."""
    if reference is None:
        return None
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)


def commands() -> list:
    """The modules of the targets' own CLI commands (``packager serve``), those that import."""
    found = []
    for registration in REGISTRY.values():
        if registration.command:
            try:
                found.append(importlib.import_module(registration.command))
            except ImportError:
                continue
    return found


def load_target(name: str):
    return hook(TARGETS[check_target_name(name)])()


def check_mode(target: str, mode: str) -> str:
    modes = MODES[target]
    if mode not in modes and mode != "auto":
        raise UsageError(
            f"unknown quantization mode {mode!r} for target {target!r}",
            hint=f"{did_you_mean(mode, modes)}{target} modes: {', '.join(modes)}",
        )
    return mode
