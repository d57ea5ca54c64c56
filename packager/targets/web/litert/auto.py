"""``--web-runtime auto``: the TF.js ladder with the LiteRT.js try ("litert") placed by first-visit bytes (model +
runtime, gzip-compressed as a static host serves them), so the ladder keeps, per model, the runtime that passes the
gates with the smaller first visit. Each try's ``note`` (report ``tries``) says its first visit.

The ladder stays smallest-first: TF.js modes whose estimated first visit (android's fp32 .tflite size x the mode's
bytes per weight, + the tf.js runtime) is at most LiteRT.js's (android's shipped .tflite + the LiteRT.js runtime,
both measured) come first, then litert, then the larger TF.js modes. A TF.js failure on every mode (a graph tf.js
cannot run) reaches litert as the ladder goes on."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

from packager.targets.web.litert.runtime import MODE, ON_DEMAND, runtime_dir

# bytes per fp32 byte of each TF.js weight mode (mixed: uint8 with some tensors float16)
TFJS_WEIGHT_FACTOR = {"uint8": 0.25, "mixed": 0.3, "fp16": 0.5, "uint16": 0.5, "fp32": 1.0}


@functools.lru_cache(maxsize=64)
def _gzip_size(path: str, size: int, mtime: float) -> int:
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6))


def gzip_size(path: Path) -> int:
    st = Path(path).stat()
    return _gzip_size(str(path), st.st_size, st.st_mtime)


def litert_runtime_bytes() -> int:
    return sum(gzip_size(p) for p in sorted(runtime_dir().iterdir()) if p.is_file() and p.name not in ON_DEMAND
               and p.name.startswith("litert"))


def tfjs_runtime_bytes() -> int:
    from packager.targets.web.bundle import ON_DEMAND as TFJS_ON_DEMAND
    from packager.targets.web.bundle import vendored_runtime

    return sum(gzip_size(p) for name, p in vendored_runtime().items() if name not in TFJS_ON_DEMAND)


def usable_android(spec):
    handed = (getattr(spec, "upstream", None) or {}).get("android")
    if not handed:
        return None
    result = handed["result"]
    path = Path(handed["root"]) / result.artifact if result.artifact else None
    return (result, path) if path is not None and path.is_file() and result.status != "FAIL" else None


def auto_order(spec, tfjs_ladder: tuple[str, ...]) -> tuple[str, ...]:
    """The web ladder for ``--quantize web=auto``: with ``--web-runtime auto`` and android's .tflite handed over,
    litert placed by first-visit bytes; else the TF.js ladder."""
    android = usable_android(spec) if getattr(spec, "web_runtime", "tfjs") == "auto" else None
    if android is None:
        return tfjs_ladder
    result, path = android
    litert = gzip_size(path) + litert_runtime_bytes()
    tfjs_runtime = tfjs_runtime_bytes()
    fp32 = int(result.float_bytes or path.stat().st_size)
    before = [m for m in tfjs_ladder if fp32 * TFJS_WEIGHT_FACTOR.get(m, 1.0) + tfjs_runtime <= litert]
    return (*before, MODE, *(m for m in tfjs_ladder if m not in before))


def first_visit_note(artifact, spec=None) -> str:
    """The try's first visit, gzip-compressed: model + runtime; for a TF.js try, LiteRT.js's beside it (why the
    ladder comes to litert only after this try, or before it)."""
    if artifact.mode == MODE:
        model, runtime, name = gzip_size(Path(artifact.extra["tflite"])), litert_runtime_bytes(), "LiteRT.js"
    else:
        model = sum(gzip_size(p) for p in sorted(Path(artifact.path).iterdir()) if p.is_file())
        runtime, name = tfjs_runtime_bytes(), "tf.js"
    note = f"first visit {model + runtime} B gzip: model {model} B + {name} runtime {runtime} B"
    android = usable_android(spec) if spec is not None and artifact.mode != MODE else None
    if android is not None:
        tflite = gzip_size(android[1])
        note += (f"; litert's would be {tflite + litert_runtime_bytes()} B (android's .tflite {tflite} B + LiteRT.js "
                 f"runtime {litert_runtime_bytes()} B)")
    return note + " (--web-runtime auto: the ladder goes by first visit, the first try that passes is kept)"
