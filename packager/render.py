"""The one place templates are rendered.

A template folder is copied into an output folder: files ending in ``.j2`` are rendered with one
jinja2 environment (StrictUndefined, so a missing context key is an error) and lose the suffix;
every other file is copied byte for byte. Path segments may hold ``__key__`` placeholders that are
replaced by ``context["paths"][key]`` (a value may contain ``/``, e.g. a Kotlin package path).

Text that comes from users (labels, model names, descriptions) must go through the escape filter of
the language it lands in: ``kotlin_string``, ``swift_string``, ``js_string``, ``cpp_string``,
``json``, ``html``, ``xml``. Each returns a complete quoted literal (except html/xml, which escape
text for element content and attribute values).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jinja2
from markupsafe import Markup

from packager.errors import PackagerError

REPO_ROOT = Path(__file__).resolve().parent.parent


def template_dir(target: str) -> Path:
    """Folder holding a target's template: inside the package when installed, else the repo root."""
    from packager.targets import REGISTRY

    for base in (Path(__file__).resolve().parent / "_templates", REPO_ROOT):
        d = base / REGISTRY[target].template
        if d.is_dir():
            return d
    raise PackagerError(f"template folder for {target!r} not found", hint="reinstall packager")


def _escape_c_like(s: str, *, dollar: bool, unicode_escape) -> str:
    """Backslash-escape quotes, backslashes and control characters (and ``$`` for Kotlin templates)."""
    simple = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in s:
        o = ord(ch)
        if ch in simple:
            out.append(simple[ch])
        elif dollar and ch == "$":
            out.append("\\$")
        elif o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF:
            out.append(unicode_escape(o))
        else:
            out.append(ch)
    return "".join(out)


def kotlin_string(value: object) -> str:
    """A Kotlin string literal: quotes, backslashes, ``$`` (templates) and control chars escaped."""
    return '"' + _escape_c_like(str(value), dollar=True, unicode_escape=lambda o: "\\u%04x" % o) + '"'


def swift_string(value: object) -> str:
    """A Swift string literal: ``\\(`` interpolation is neutralised by escaping the backslash."""
    return '"' + _escape_c_like(str(value), dollar=False, unicode_escape=lambda o: "\\u{%x}" % o) + '"'


def _script_safe_json(value: object, **kw) -> Markup:
    """JSON that is also safe inside an inline <script> (``<``, ``>``, ``&``, U+2028/2029 escaped)."""
    s = json.dumps(value, ensure_ascii=False, **kw)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(ch, rep)
    return Markup(s)


def js_string(value: object) -> Markup:
    """A JavaScript string literal, safe inside an inline <script> too."""
    return _script_safe_json(str(value))


def json_value(value: object) -> Markup:
    """Canonical JSON (sorted keys), also safe inside an inline <script>."""
    return _script_safe_json(value, sort_keys=True)


def cpp_string(value: object) -> str:
    """A C++ narrow string literal; non-ASCII as UTF-8 via \\U escapes is avoided: bytes as octal."""
    out = []
    for b in str(value).encode("utf-8"):
        ch = chr(b)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def html_escape(value: object) -> Markup:
    """Text for HTML element content or a quoted attribute value."""
    return Markup(
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def xml_escape(value: object) -> str:
    """Text for XML element content or a quoted attribute value (control chars removed)."""
    s = "".join(ch for ch in str(value) if ch in "\t\n\r" or ord(ch) >= 0x20)
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def comment_safe(value: object) -> str:
    """Text safe inside a /* */ or // comment and on one line (for generated-code banners)."""
    return re.sub(r"[\r\n]+", " ", str(value)).replace("*/", "* /")


FILTERS = {
    "kotlin_string": kotlin_string,
    "swift_string": swift_string,
    "js_string": js_string,
    "cpp_string": cpp_string,
    "json": json_value,
    "html": html_escape,
    "xml": xml_escape,
    "comment": comment_safe,
}

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(FILTERS)


def render_string(text: str, context: dict) -> str:
    return _ENV.from_string(text).render(**context)


_PLACEHOLDER = re.compile(r"__([a-z_]+)__")


def _render_path(rel: Path, context: dict) -> Path:
    paths = context.get("paths", {})

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in paths:
            raise PackagerError(f"template path {rel} uses __{key}__ but the context has no paths[{key!r}]")
        return str(paths[key])

    return Path(_PLACEHOLDER.sub(sub, rel.as_posix()))


def render_tree(src: Path, dst: Path, context: dict) -> list[Path]:
    """Render template folder ``src`` into ``dst``; returns the written files (relative, sorted). A subfolder with a
    ``template.toml`` of its own is a variant of the template (web_template/litert/), rendered by its own call."""
    written = []
    nested = [d for d in src.rglob("*") if d.is_dir() and (d / "template.toml").is_file()]  # variants: rendered alone
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if rel.name == "template.toml" or "__pycache__" in rel.parts or any(d in path.parents for d in nested):
            continue
        out_rel = _render_path(rel, context)
        if out_rel.suffix == ".j2":
            out_rel = out_rel.with_suffix("")
        target = dst / out_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".j2":
            try:
                text = _ENV.from_string(path.read_text(encoding="utf-8")).render(**context)
            except jinja2.TemplateError as e:
                raise PackagerError(f"template {rel} failed to render: {e}") from e
            target.write_text(text, encoding="utf-8", newline="\n")
        else:
            shutil.copyfile(path, target)
        written.append(out_rel)
    return written
