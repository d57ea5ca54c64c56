"""Parsing AOSP's API signature format (``api/current.txt``, format 2.0): declarations, types, generics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

JDK_PACKAGE_PREFIXES = ("java.", "javax.", "org.w3c.", "org.xml.", "org.ietf.")
ANDROID_ONLY_UNDER_JDK_PREFIXES = ("javax.microedition.",)


def split_type_params(rest: str) -> tuple[str, str]:
    """``"<K, V<X>> extends Y"`` -> ``("<K, V<X>>", "extends Y")``; no leading ``<``: ``("", rest)``."""
    if not rest.startswith("<"):
        return "", rest
    depth = 0
    for k, ch in enumerate(rest):
        depth += ch == "<"
        depth -= ch == ">"
        if depth == 0:
            return rest[: k + 1], rest[k + 1:].strip()
    return "", rest

def _jdk_package(pkg: str) -> bool:
    p = pkg + "."
    return p.startswith(JDK_PACKAGE_PREFIXES) and not p.startswith(ANDROID_ONLY_UNDER_JDK_PREFIXES)


def strip_annotations(text: str) -> str:
    """Remove ``@Name`` and ``@Name(...)`` (balanced parentheses) from a declaration."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "@" and i + 1 < len(text) and (text[i + 1].isalpha()):
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] in "._"):
                j += 1
            if text[i + 1:j] == "interface":  # "@interface" is a keyword, not an annotation
                out.append(text[i:j])
                i = j
                continue
            if j < len(text) and text[j] == "(":
                depth = 0
                while j < len(text):
                    if text[j] == '"':
                        j = text.index('"', j + 1) if '"' in text[j + 1:] else len(text)
                    elif text[j] == "(":
                        depth += 1
                    elif text[j] == ")":
                        depth -= 1
                        if depth == 0:
                            j += 1
                            break
                    j += 1
            i = j
            continue
        out.append(text[i])
        i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip()


# ---- types ---------------------------------------------------------------------------------------------------

@dataclass
class JType:
    name: str  # primitive, type variable, or dotted class name as written
    args: list[JType | str] = field(default_factory=list)  # JType, or wildcard tuple encoded as str prefix
    dims: int = 0
    wildcard: str = ""  # "", "*", "+", "-"


def binary_name(dotted: str) -> str:
    """``android.graphics.Bitmap.Config`` -> ``android/graphics/Bitmap$Config`` (packages are lower-case)."""
    parts = dotted.split(".")
    for i, p in enumerate(parts):
        if p[:1].isupper():
            return "/".join(parts[:i] + ["$".join(parts[i:])])
    return "/".join(parts)


class TypeParser:
    _TOKEN = re.compile(r"\s*(\.\.\.|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*|[<>,?\[\]&])")

    def __init__(self, text: str):
        self.tokens = self._TOKEN.findall(text)
        rest = self._TOKEN.sub("", text).strip()
        if rest:
            raise ValueError(f"cannot tokenize type {text!r}")
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expect: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expect is not None and tok != expect):
            raise ValueError(f"expected {expect!r}, got {tok!r} in {self.tokens}")
        self.i += 1
        return tok

    def type(self) -> JType:
        if self.peek() == "?":
            self.take()
            if self.peek() == "extends":
                self.take()
                t = self.type()
                t.wildcard = "+"
                return t
            if self.peek() == "super":
                self.take()
                t = self.type()
                t.wildcard = "-"
                return t
            return JType("?", wildcard="*")
        t = JType(self.take())
        if self.peek() == "<":
            self.take()
            t.args.append(self.type())
            while self.peek() == ",":
                self.take()
                t.args.append(self.type())
            self.take(">")
        while self.peek() == "[":
            self.take()
            self.take("]")
            t.dims += 1
        if self.peek() == "...":
            self.take()
            t.dims += 1
            t.name += ""  # varargs handled by the caller
        return t

    def type_params(self) -> list[tuple[str, list[JType]]]:
        """``<T extends A & B, U>`` -> [(T, [A, B]), (U, [])]."""
        params = []
        self.take("<")
        while True:
            name = self.take()
            bounds = []
            if self.peek() == "extends":
                self.take()
                bounds.append(self.type())
                while self.peek() == "&":
                    self.take()
                    bounds.append(self.type())
            params.append((name, bounds))
            if self.peek() == ",":
                self.take()
                continue
            self.take(">")
            return params


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside angle brackets."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


@dataclass
class Member:
    kind: str  # ctor, method, field, enum_constant
    text: str


@dataclass
class ClassDecl:
    package: str
    simple: str  # "Bitmap.Config"
    header: str  # annotations stripped
    kind: str = "class"  # class, interface, enum, @interface
    modifiers: set[str] = field(default_factory=set)
    type_params: str = ""
    extends: list[str] = field(default_factory=list)
    implements: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)

    @property
    def binary(self) -> str:
        return self.package.replace(".", "/") + "/" + self.simple.replace(".", "$")


_HEADER = re.compile(
    r"^(?P<mods>(?:(?:public|protected|private|static|final|abstract|sealed)\s+)*)"
    r"(?P<kind>class|interface|enum|@interface)\s+(?P<name>[\w.]+)(?P<rest>.*)\{$")


class Api:
    def __init__(self) -> None:
        self.classes: dict[str, ClassDecl] = {}

    def is_interface(self, binary: str) -> bool:
        c = self.classes.get(binary)
        return c is not None and c.kind in ("interface", "@interface")


def parse_api(text: str) -> Api:
    api = Api()
    pkg = None
    cur: ClassDecl | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("package ") and line.endswith("{"):
            pkg = line[len("package "):-1].strip()
            continue
        if cur is None and line == "}":
            pkg = None
            continue
        if cur is not None and line == "}":
            api.classes[cur.binary] = cur
            cur = None
            continue
        if cur is None:
            header = strip_annotations(line)
            m = _HEADER.match(header)
            if not m or pkg is None:
                raise ValueError(f"unrecognised class header: {line[:120]}")
            cur = ClassDecl(package=pkg, simple=m.group("name"), header=header, kind=m.group("kind"),
                            modifiers=set(m.group("mods").split()))
            rest = m.group("rest").strip()
            type_params, rest = split_type_params(rest)
            if type_params:
                cur.type_params = type_params
            ext = re.search(r"\bextends\s+(.*?)(?:\bimplements\b|$)", rest)
            imp = re.search(r"\bimplements\s+(.*)$", rest)
            if ext:
                cur.extends = split_top(ext.group(1).strip(), " ")
            if imp:
                cur.implements = split_top(imp.group(1).strip(), " ")
            continue
        kind, _, rest = line.partition(" ")
        if kind in ("ctor", "method", "field", "enum_constant"):
            cur.members.append(Member(kind, rest.rstrip(";").strip()))
    return api


# ---- class file writer ---------------------------------------------------------------------------------------

