"""``--custom-objects MODULE[,MODULE]``: import the modules that define a model's custom layers before loading.

Importing a module runs its code: this is an explicit opt-in by the user, who names the module. Keras safe mode
stays on. A module is looked up on ``sys.path`` plus the model's folder and the config file's folder (those two
first). Importing registers classes decorated with ``keras.saving.register_keras_serializable``; every class and
function defined at the module's top level is also passed to the loader as ``custom_objects`` under its name.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path

from packager.errors import InputError, UsageError

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_modules(value, where: str | None = None) -> tuple[str, ...]:
    """``"a,b.c"`` or ``["a", "b.c"]`` -> ``("a", "b.c")``; each must be a dotted Python module name."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))
    for n in names:
        if not _MODULE.match(n):
            raise UsageError(f"--custom-objects: {n!r} is not a Python module name", where=where,
                             hint="name the module like an import, e.g. --custom-objects my_layers "
                                  "(for my_layers.py beside the model)")
    if not names and value is not None:
        raise UsageError("--custom-objects is empty", where=where, hint="e.g. --custom-objects my_layers")
    return names


def _with_path(dirs):
    class _Ctx:
        def __enter__(self):
            self.added = [str(d) for d in dirs if str(d) not in sys.path]
            sys.path[:0] = self.added
            importlib.invalidate_caches()

        def __exit__(self, *exc):
            for d in self.added:
                if d in sys.path:
                    sys.path.remove(d)

    return _Ctx()


def module_files(modules: tuple[str, ...], dirs: tuple[Path, ...]) -> list[Path]:
    """The source files of ``modules`` (without importing them), for the cache key."""
    files = []
    with _with_path(dirs):
        for name in modules:
            try:
                found = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                found = None
            if found and found.origin and Path(found.origin).is_file():
                files.append(Path(found.origin))
    return files


def import_custom_objects(modules: tuple[str, ...], dirs: tuple[Path, ...], where: str) -> dict:
    """Import ``modules``; return ``{name: object}`` of the classes and functions they define."""
    objects: dict = {}
    with _with_path(dirs):
        for name in modules:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name and name.startswith(e.name):
                    searched = ", ".join(str(d) for d in dirs)
                    raise InputError(f"--custom-objects: no module named {name!r}", where=where,
                                     hint=f"put {name.split('.')[0]}.py in the model's folder or the config's "
                                          f"folder ({searched}), or on PYTHONPATH") from e
                raise InputError(f"--custom-objects: importing {name!r} failed: {e}", where=where,
                                 hint="install what the module imports") from e
            except Exception as e:
                frame = traceback.extract_tb(e.__traceback__)[-1]
                raise InputError(f"--custom-objects: importing {name!r} raised {type(e).__name__}: {e}",
                                 where=f"{frame.filename}:{frame.lineno}",
                                 hint="fix the module so that it imports cleanly") from e
            for attr, obj in vars(module).items():
                if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                if isinstance(obj, type) or callable(obj):
                    objects[attr] = obj
    return objects
