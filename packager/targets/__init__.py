"""Target registry: name -> factory. Adding a target is one line here."""

from __future__ import annotations

import difflib
import importlib

from ..errors import UsageError

TARGETS = {
    "android": "packager.targets.android:AndroidTarget",
    "ios": "packager.targets.ios:IOSTarget",
    "web": "packager.targets.web:WebTarget",
}


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


def load_target(name: str):
    module, cls = TARGETS[check_target_name(name)].split(":")
    return getattr(importlib.import_module(module), cls)()


MODES = {
    "android": ("fp32", "fp16", "dynamic", "mixed", "int8"),
    "ios": ("fp32", "fp16", "8bit", "palette6", "palette4"),
    "web": ("fp32", "fp16", "uint16", "mixed", "uint8"),
}


def check_mode(target: str, mode: str) -> str:
    modes = MODES[target]
    if mode not in modes and mode != "auto":
        raise UsageError(
            f"unknown quantization mode {mode!r} for target {target!r}",
            hint=f"{did_you_mean(mode, modes)}{target} modes: {', '.join(modes)}",
        )
    return mode
