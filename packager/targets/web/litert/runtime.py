"""The vendored LiteRT.js runtime (``.ci/setup-web-litert.sh``: @litertjs/core + @litertjs/wasm-utils bundled by
esbuild, and the core's single-thread wasm binaries) and the names of the web runtimes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from packager.errors import ToolMissing
from packager.render import REPO_ROOT

LITERTJS_VERSION = "2.5.3"
RUNTIMES = ("tfjs", "litert", "auto")
DEFAULT_RUNTIME = "tfjs"
MODE = "litert"  # the web target's "mode" that ships the Android .tflite (--web-runtime litert)

# bundle file name -> file under .tools/npm-web-litert/runtime/
VENDOR_FILES = {
    "litert-runtime.js": "litert-runtime.js",
    "litert_wasm_internal.js": "litert_wasm_internal.js",
    "litert_wasm_internal.wasm": "litert_wasm_internal.wasm",
    "litert_wasm_compat_internal.js": "litert_wasm_compat_internal.js",
    "litert_wasm_compat_internal.wasm": "litert_wasm_compat_internal.wasm",
}
# Fetched only by browsers without relaxed SIMD: not precached (cached by the service worker when first fetched).
ON_DEMAND = ("litert_wasm_compat_internal.js", "litert_wasm_compat_internal.wasm")


def runtime_dir() -> Path:
    base = Path(os.environ["PACKAGER_TOOLS"]) if os.environ.get("PACKAGER_TOOLS") else REPO_ROOT / ".tools"
    return base / "npm-web-litert" / "runtime"


def vendored_runtime() -> dict[str, Path]:
    """Bundle file name -> vendored file; ToolMissing when the set-up has not built them."""
    root = runtime_dir()
    files = {name: root / rel for name, rel in VENDOR_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ToolMissing(f"the vendored LiteRT.js {LITERTJS_VERSION} runtime is missing: {missing[0]}",
                          hint="run .ci/setup-web-litert.sh (npm ci of @litertjs/core + esbuild)")
    versions = root / "versions.json"
    version = json.loads(versions.read_text()).get("litertjs") if versions.is_file() else None
    if version != LITERTJS_VERSION:
        raise ToolMissing(f"{root} holds LiteRT.js {version}, expected {LITERTJS_VERSION}",
                          hint="delete it and run .ci/setup-web-litert.sh again")
    return files


def cache_inputs(spec=None) -> list[Path]:
    """What the web target's build reads beside the code (the registry's ``cache_inputs``): the tf.js runtime, and
    the LiteRT.js runtime when the spec may ship it."""
    from packager.targets.web.bundle import vendored_files

    files = list(vendored_files(spec))
    if getattr(spec, "web_runtime", DEFAULT_RUNTIME) != "tfjs":
        files += [runtime_dir() / rel for rel in VENDOR_FILES.values()]
    return files


def reads(spec) -> tuple[str, ...]:
    """The targets the web target reads (registry ``reads``): android's, when it may ship android's .tflite."""
    return ("android",) if getattr(spec, "web_runtime", DEFAULT_RUNTIME) != "tfjs" else ()
