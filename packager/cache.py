"""Content-hash cache of whole builds: an unchanged re-run copies the previous output instead of
loading TensorFlow, converting and validating again.

The key covers the model bytes, the sample set, the labels, every spec field that shapes the
output, the packager code and templates themselves, the modules named by --custom-objects, the vendored
tf.js runtime and the versions of the converters and runtimes. Each entry holds a manifest of the content
hashes of its files (``manifest.json``), checked on every lookup: a damaged entry is dropped and rebuilt. Only clean builds are stored (exit code 0,
no SKIPPED check: a tool installed later must get its chance to run). ``--no-cache`` or
``PACKAGER_NO_CACHE=1`` turns it off; ``PACKAGER_CACHE_DIR`` moves it (default ~/.cache/packager).

The cache folder may hold other things (``PACKAGER_CACHE_DIR`` pointing at a project folder): packager only ever
deletes what it wrote itself, an entry (or a ``.store-*`` folder of a store in progress) that holds ``ENTRY_MARKER``,
a regular file written first thing when the entry was created, and whose name is one packager gives (a 32-digit hex
key). Any other file or folder there is left alone: not pruned, not replaced, not deleted when it looks damaged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from packager.version import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
MAX_ENTRIES = 8
MANIFEST = "manifest.json"
ENTRY_MARKER = ".packager-cache-entry"
ENTRY_MARKER_TEXT = "A build cache entry written by packager; packager may delete this folder as a whole.\n"
_KEY = re.compile(r"^[0-9a-f]{32}$")
LIBRARIES = ("tensorflow", "keras", "tf_keras", "tensorflowjs", "coremltools", "ai-edge-litert", "numpy", "pillow",
             "jinja2")


def cache_root() -> Path | None:
    if os.environ.get("PACKAGER_NO_CACHE"):
        return None
    base = os.environ.get("PACKAGER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "packager")
    return Path(base)


def _regular_files(path: Path, suffixes) -> list[Path]:
    """Regular files under ``path`` (of ``suffixes`` when given), symbolic links to folders not followed, never a
    device, pipe or /proc entry opened; a folder that cannot be read is an error (OSError)."""
    def fail(e: OSError) -> None:
        if not isinstance(e, FileNotFoundError):
            raise e

    found = []
    for root, dirs, names in os.walk(path, onerror=fail):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            p = Path(root) / name
            if suffixes is not None and p.suffix.lower() not in suffixes:
                continue
            try:
                if stat.S_ISREG(p.stat().st_mode):
                    found.append(p)
            except FileNotFoundError:
                pass
    return sorted(found)


def _hash_path(h, path: Path, suffixes=None) -> None:
    if path.is_dir():
        for p in _regular_files(path, suffixes):
            h.update(p.relative_to(path).as_posix().encode())
            h.update(b"\0")
            _hash_file(h, p)
    elif path.is_file():
        _hash_file(h, path)


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def _code_paths() -> list[Path]:
    from packager.render import template_dir
    from packager.targets import REGISTRY

    return [PACKAGE_DIR, *(template_dir(t) for t in REGISTRY if _exists(t))]


def _exists(target: str) -> bool:
    from packager.render import template_dir

    try:
        template_dir(target)
        return True
    except Exception:
        return False


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def _extra_paths(spec) -> list[Path]:
    """Inputs besides model/samples/labels/code: custom-object modules, what each target says it reads (the
    registry's ``cache_inputs``: the vendored tf.js runtime)."""
    paths: list[Path] = []
    if getattr(spec, "custom_objects", ()):
        from packager.custom_objects import module_files

        paths += module_files(spec.custom_objects, spec.custom_objects_dirs)
    from packager.targets import REGISTRY, hook

    for name in spec.targets:
        registration = REGISTRY.get(name)
        try:
            paths += hook(registration.cache_inputs)(spec) if registration and registration.cache_inputs else []
        except Exception:  # a target that cannot tell: its own build reports what is missing
            pass
    return paths


def build_key(spec) -> str:
    h = hashlib.sha256(f"packager {__version__}\n".encode())
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in ("out", "force")}
    h.update(json.dumps(fields, default=str, sort_keys=True).encode())
    h.update(json.dumps(_library_versions(), sort_keys=True).encode())
    from packager.samples import IMAGE_SUFFIXES

    for path in (spec.model, spec.samples, spec.labels_file, *_code_paths(), *_extra_paths(spec)):
        if path is not None:
            h.update(b"\x01" + str(path.name).encode())
            # a sample folder: only the images the build reads (what else it holds may be anything, even /proc)
            _hash_path(h, Path(path), IMAGE_SUFFIXES if path == spec.samples else None)
    return h.hexdigest()[:32]


def _manifest(out: Path) -> dict[str, str]:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        h = hashlib.sha256()
        _hash_file(h, p)
        files[p.relative_to(out).as_posix()] = h.hexdigest()
    return files


def _intact(entry: Path) -> bool:
    """Every file the manifest names, with its hash, and no other; report.json readable JSON."""
    try:
        expected = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        if _manifest(entry / "out") != expected or "report.json" not in expected:
            return False
        json.loads((entry / "out" / "report.json").read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def owned(entry: Path, *, store: bool = False) -> bool:
    """A folder packager wrote into the cache: a real folder (no symlink) named like one (a key, or ``.store-*``)
    holding ENTRY_MARKER as a regular file. Only such folders are ever deleted."""
    name_ok = entry.name.startswith(".store-") if store else bool(_KEY.match(entry.name))
    marker = entry / ENTRY_MARKER
    try:
        return (name_ok and entry.is_dir() and not entry.is_symlink() and marker.is_file()
                and not marker.is_symlink())
    except OSError:
        return False


def lookup(key: str) -> Path | None:
    root = cache_root()
    entry = root / key if root else None
    if not entry or not entry.is_dir() or not owned(entry):  # a folder packager did not write is not an entry
        return None
    if not _intact(entry):  # damaged (or written by an older packager): dropped, the build runs again
        shutil.rmtree(entry, ignore_errors=True)
        return None
    os.utime(entry)
    return entry / "out"


def store(key: str, out: Path, report) -> None:
    root = cache_root()
    if root is None or report.exit_code != 0:
        return
    if any(c.status == "SKIPPED" for r in report.targets.values() for c in r.checks):
        return
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".store-", dir=root))
        (tmp / ENTRY_MARKER).write_text(ENTRY_MARKER_TEXT, encoding="utf-8")
        shutil.copytree(out, tmp / "out")
        (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp / "out"), sort_keys=True), encoding="utf-8")
        final = root / key
        if final.exists() or final.is_symlink():
            if not owned(final) or _intact(final):  # not packager's: left alone; or a concurrent build stored it
                return
            shutil.rmtree(final)
        os.replace(tmp, final)
        entries = sorted((p for p in root.iterdir() if owned(p)), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            shutil.rmtree(old, ignore_errors=True)
        _remove_orphans(root)
    except OSError:
        pass  # a cache that cannot be written is not an error
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


ORPHAN_AGE = 3600  # seconds: a store in progress takes far less


def _remove_orphans(root: Path) -> None:
    """``.store-*`` folders of stores that died (killed, disk full), older than ORPHAN_AGE and holding
    ENTRY_MARKER (a ``.store-*`` folder packager did not write is left alone)."""
    import time

    now = time.time()
    for p in root.glob(".store-*"):
        try:
            if owned(p, store=True) and now - p.stat().st_mtime > ORPHAN_AGE:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
