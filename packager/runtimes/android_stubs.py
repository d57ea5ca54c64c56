"""Compile-only Android API stubs generated from AOSP's public API signature file (``api/current.txt``).

No ``android.jar`` can be downloaded here, but Debian's source package ``android-platform-frameworks-base``
ships AOSP's signature file (format 2.0, API 29). This module turns it into class files directly (no Java
source, so no compiler to satisfy about inherited abstract methods): every class, interface, enum and
annotation type of the Android packages, with their constructors, methods and fields, generic signatures and
nested-class attributes. Every method body is ``aconst_null; athrow``: the jar is for ``kotlinc``/``javac`` to
compile against — a misspelt or post-API-29 call fails to compile — never to run.

Packages the JDK already provides (``java.*``, most ``javax.*``, ``org.w3c``/``org.xml``) are parsed (their
interface-ness matters for generic bounds) but not emitted.

Usage: ``python -m packager.runtimes.android_stubs current.txt android-stubs.jar``
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

JDK_PACKAGE_PREFIXES = ("java.", "javax.", "org.w3c.", "org.xml.", "org.ietf.")
ANDROID_ONLY_UNDER_JDK_PREFIXES = ("javax.microedition.",)

# The few Google Play services classes the generated Kotlin calls (LiteRT in Play services and its Task API),
# written from their published reference pages, in the same signature format.
PLAY_SERVICES_TFLITE_API = """
package com.google.android.gms.tasks {
  public interface OnFailureListener {
    method public void onFailure(Exception);
  }
  public interface OnSuccessListener<TResult> {
    method public void onSuccess(TResult);
  }
  public abstract class Task<TResult> {
    ctor public Task();
    method public abstract com.google.android.gms.tasks.Task<TResult> addOnFailureListener(com.google.android.gms.tasks.OnFailureListener);
    method public abstract com.google.android.gms.tasks.Task<TResult> addOnSuccessListener(com.google.android.gms.tasks.OnSuccessListener<? super TResult>);
    method public abstract Exception getException();
    method public abstract TResult getResult();
    method public abstract boolean isCanceled();
    method public abstract boolean isComplete();
    method public abstract boolean isSuccessful();
  }
  public final class Tasks {
    method public static <TResult> TResult await(com.google.android.gms.tasks.Task<TResult>) throws java.util.concurrent.ExecutionException, java.lang.InterruptedException;
  }
}
package com.google.android.gms.tflite.java {
  public class TfLiteNative {
    method public static com.google.android.gms.tasks.Task<Void> initialize(android.content.Context);
  }
}
"""

PRIMITIVES = {"void": "V", "boolean": "Z", "byte": "B", "char": "C", "short": "S", "int": "I", "long": "J",
              "float": "F", "double": "D"}

ACC = {"public": 0x0001, "private": 0x0002, "protected": 0x0004, "static": 0x0008, "final": 0x0010,
       "synchronized": 0x0020, "volatile": 0x0040, "transient": 0x0080, "native": 0x0100, "abstract": 0x0400}
ACC_SUPER, ACC_INTERFACE, ACC_ABSTRACT, ACC_ANNOTATION, ACC_ENUM = 0x20, 0x200, 0x400, 0x2000, 0x4000
ACC_VARARGS, ACC_STATIC, ACC_FINAL, ACC_PUBLIC = 0x80, 0x8, 0x10, 0x1



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


class Scope:
    """Resolves names in one declaration: type variables (with their erasure) and class names."""

    def __init__(self, api: Api, tvars: dict[str, JType | None]):
        self.api = api
        self.tvars = tvars

    def class_binary(self, name: str) -> str:
        if "." not in name:
            return "java/lang/" + name
        return binary_name(name)

    def descriptor(self, t: JType) -> str:
        arr = "[" * t.dims
        if t.name in PRIMITIVES:
            return arr + PRIMITIVES[t.name]
        if t.name in self.tvars:
            bound = self.tvars[t.name]
            return arr + (self.descriptor(bound) if bound is not None else "Ljava/lang/Object;")
        return arr + "L" + self.class_binary(t.name) + ";"

    def signature(self, t: JType) -> str:
        if t.wildcard == "*":
            return "*"
        prefix = t.wildcard if t.wildcard in "+-" else ""
        arr = "[" * t.dims
        if t.name in PRIMITIVES:
            return prefix + arr + PRIMITIVES[t.name]
        if t.name in self.tvars:
            return prefix + arr + "T" + t.name + ";"
        args = ""
        if t.args:
            args = "<" + "".join(self.signature(a) for a in t.args) + ">"
        return prefix + arr + "L" + self.class_binary(t.name) + args + ";"

    def type_params_signature(self, params: list[tuple[str, list[JType]]]) -> str:
        out = "<"
        for name, bounds in params:
            if not bounds:
                out += name + ":Ljava/lang/Object;"
                continue
            out += name
            for k, b in enumerate(bounds):
                is_iface = b.name not in self.tvars and self.api.is_interface(self.class_binary(b.name))
                out += ("::" if (k == 0 and is_iface) else ":") + self.signature(b)
        return out + ">"


# ---- the API model -------------------------------------------------------------------------------------------

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

class ConstantPool:
    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.index: dict[tuple, int] = {}

    def _add(self, key: tuple, data: bytes) -> int:
        if key not in self.index:
            self.entries.append(data)
            self.index[key] = len(self.entries)
        return self.index[key]

    def utf8(self, s: str) -> int:
        b = s.encode("utf-8")  # names here are ASCII; modified UTF-8 equals UTF-8 for them
        return self._add(("u", s), b"\x01" + struct.pack(">H", len(b)) + b)

    def cls(self, binary: str) -> int:
        return self._add(("c", binary), b"\x07" + struct.pack(">H", self.utf8(binary)))

    def bytes(self) -> bytes:
        return struct.pack(">H", len(self.entries) + 1) + b"".join(self.entries)


def _attr(cp: ConstantPool, name: str, payload: bytes) -> bytes:
    return struct.pack(">HI", cp.utf8(name), len(payload)) + payload


def _flags(mods: set[str] | list[str], allowed: int = 0xFFFF) -> int:
    f = 0
    for m in mods:
        f |= ACC.get(m, 0)
    return f & allowed


_METHOD = re.compile(r"^(?P<pre>.*?)\s*(?P<name>[\w$<>]+)\((?P<args>.*?)\)(?:\s+throws\s+(?P<throws>.+?))?(?:\s+default\s+.*)?$")
_MODS = {"public", "protected", "private", "static", "final", "abstract", "synchronized", "native", "default",
         "volatile", "transient", "deprecated"}


def _split_mods(pre: str) -> tuple[set[str], str, str]:
    """``public static <T> java.util.List<T>`` -> ({public, static}, "<T>", "java.util.List<T>")."""
    mods: set[str] = set()
    rest = pre.strip()
    while True:
        word = rest.split(" ", 1)[0]
        if word in _MODS:
            mods.add(word)
            rest = rest[len(word):].strip()
        else:
            break
    tparams, rest = split_type_params(rest)
    return mods, tparams, rest


def _class_tvars(api: Api, decl: ClassDecl) -> dict[str, JType | None]:
    """Type variables visible in a class: its own, and those of enclosing classes unless it is static."""
    tvars: dict[str, JType | None] = {}
    chain = [decl]
    c = decl
    while "." in c.simple and "static" not in c.modifiers and c.kind == "class":
        outer = api.classes.get(c.binary.rsplit("$", 1)[0])
        if outer is None:
            break
        chain.append(outer)
        c = outer
    for c in reversed(chain):
        if c.type_params:
            for name, bounds in TypeParser(c.type_params).type_params():
                tvars[name] = bounds[0] if bounds else None
    return tvars


def class_file(api: Api, decl: ClassDecl) -> bytes:
    cp = ConstantPool()
    tvars = _class_tvars(api, decl)
    scope = Scope(api, tvars)
    is_iface = decl.kind in ("interface", "@interface")

    access = ACC_PUBLIC if "public" in decl.modifiers or "protected" in decl.modifiers else 0
    if decl.kind == "class":
        access |= ACC_SUPER | _flags(decl.modifiers & {"final", "abstract"})
    elif decl.kind == "enum":
        access |= ACC_SUPER | ACC_ENUM | ACC_FINAL
    elif decl.kind == "interface":
        access |= ACC_INTERFACE | ACC_ABSTRACT
    else:
        access |= ACC_INTERFACE | ACC_ABSTRACT | ACC_ANNOTATION

    own_params = TypeParser(decl.type_params).type_params() if decl.type_params else []
    if decl.kind == "enum":
        super_t = JType("java.lang.Enum", args=[JType(decl.package + "." + decl.simple)])
        ifaces = [TypeParser(t).type() for t in decl.implements]
    elif is_iface:
        super_t = JType("java.lang.Object")
        ifaces = [TypeParser(t).type() for t in decl.extends + decl.implements]
        if decl.kind == "@interface":
            ifaces.append(JType("java.lang.annotation.Annotation"))
    else:
        super_t = TypeParser(decl.extends[0]).type() if decl.extends else JType("java.lang.Object")
        ifaces = [TypeParser(t).type() for t in decl.implements]

    this_idx = cp.cls(decl.binary)
    super_idx = cp.cls(scope.class_binary(super_t.name))
    iface_idx = [cp.cls(scope.class_binary(t.name)) for t in ifaces]

    class_sig = (scope.type_params_signature(own_params) if own_params else "") + scope.signature(super_t) + "".join(
        scope.signature(t) for t in ifaces)
    plain_sig = "".join(scope.descriptor(t) for t in [super_t, *ifaces])

    fields_out: list[bytes] = []
    methods_out: list[bytes] = []
    seen: set[tuple[str, str]] = set()
    for mem in decl.members:
        try:
            text = strip_annotations(mem.text)
            if mem.kind in ("field", "enum_constant"):
                decl_part = text.split(" = ", 1)[0].strip()
                mods, _, rest = _split_mods(decl_part)
                type_text, _, name = rest.rpartition(" ")
                t = TypeParser(type_text).type()
                f = _flags(mods) | (ACC_ENUM if mem.kind == "enum_constant" else 0)
                if is_iface:
                    f |= ACC_PUBLIC | ACC_STATIC | ACC_FINAL
                attrs = []
                sig = scope.signature(t)
                if sig != scope.descriptor(t):
                    attrs.append(_attr(cp, "Signature", struct.pack(">H", cp.utf8(sig))))
                if (name, "F") in seen:
                    continue
                seen.add((name, "F"))
                fields_out.append(struct.pack(">HHHH", f, cp.utf8(name), cp.utf8(scope.descriptor(t)), len(attrs))
                                  + b"".join(attrs))
                continue
            m = _METHOD.match(text)
            if not m:
                raise ValueError(f"unparsed member {text!r}")
            mods, tparams_text, ret_text = _split_mods(m.group("pre"))
            name = m.group("name")
            mscope = scope
            mparams = []
            if tparams_text:
                mparams = TypeParser(tparams_text).type_params()
                mtv = dict(tvars)
                mtv.update({n: (b[0] if b else None) for n, b in mparams})
                mscope = Scope(api, mtv)
            arg_texts = split_top(m.group("args")) if m.group("args").strip() else []
            varargs = bool(arg_texts) and arg_texts[-1].rstrip().endswith("...")
            args = [TypeParser(a).type() for a in arg_texts]
            if mem.kind == "ctor":
                name, ret = "<init>", JType("void")
                if decl.kind == "enum":
                    continue  # enum constructors are private
                if "." in decl.simple and "static" not in decl.modifiers and decl.kind == "class":
                    outer = decl.package + "." + decl.simple.rsplit(".", 1)[0]
                    args = [JType(outer)] + args  # inner class: the outer instance comes first
            else:
                ret = TypeParser(ret_text).type()
            desc = "(" + "".join(mscope.descriptor(a) for a in args) + ")" + mscope.descriptor(ret)
            if (name, desc) in seen:
                continue
            seen.add((name, desc))
            f = _flags(mods) | (ACC_VARARGS if varargs else 0)
            abstract = "abstract" in mods or (is_iface and not ({"default", "static"} & mods))
            if is_iface:
                f |= ACC_PUBLIC
                f &= ~ACC["protected"]
            if abstract:
                f |= ACC_ABSTRACT
                f &= ~(ACC["final"] | ACC["native"] | ACC["synchronized"])
            attrs = []
            if not abstract:
                slots = (0 if "static" in mods else 1) + sum(
                    2 if (a.name in ("long", "double") and a.dims == 0) else 1 for a in args)
                code = b"\x01\xbf"  # aconst_null; athrow
                attrs.append(_attr(cp, "Code", struct.pack(">HHI", 1, slots, len(code)) + code
                                   + struct.pack(">HH", 0, 0)))
            sig = ((mscope.type_params_signature(mparams) if mparams else "") + "("
                   + "".join(mscope.signature(a) for a in args[(1 if name == "<init>" and len(args) > len(arg_texts) else 0):])
                   + ")" + mscope.signature(ret))
            if sig != desc:
                attrs.append(_attr(cp, "Signature", struct.pack(">H", cp.utf8(sig))))
            if m.group("throws"):
                exc = [TypeParser(x.strip()).type() for x in split_top(m.group("throws"))]
                idx = [cp.cls(mscope.class_binary(e.name)) for e in exc if e.name not in mscope.tvars]
                attrs.append(_attr(cp, "Exceptions", struct.pack(f">H{len(idx)}H", len(idx), *idx)))
            methods_out.append(struct.pack(">HHHH", f, cp.utf8(name), cp.utf8(desc), len(attrs)) + b"".join(attrs))
        except (ValueError, IndexError) as e:  # one odd member must not sink the whole class
            print(f"android_stubs: skipped {decl.package}.{decl.simple}: {mem.text[:100]} ({e})", file=sys.stderr)

    class_attrs = []
    if class_sig != plain_sig or own_params:
        class_attrs.append(_attr(cp, "Signature", struct.pack(">H", cp.utf8(class_sig))))
    inner_entries = []
    related = []
    if "." in decl.simple:
        related.append(decl)
    prefix = decl.binary + "$"
    related += [c for b, c in api.classes.items() if b.startswith(prefix) and "$" not in b[len(prefix):]]
    for c in related:
        outer_bin, inner_name = c.binary.rsplit("$", 1)
        f = _flags(c.modifiers & {"public", "protected", "private", "static", "final", "abstract"})
        if c.kind in ("interface", "@interface"):
            f |= ACC_INTERFACE | ACC_ABSTRACT | ACC_STATIC | (ACC_ANNOTATION if c.kind == "@interface" else 0)
        elif c.kind == "enum":
            f |= ACC_ENUM | ACC_STATIC | ACC_FINAL
        if is_iface and c is not decl:
            f |= ACC_PUBLIC | ACC_STATIC
        inner_entries.append(struct.pack(">HHHH", cp.cls(c.binary), cp.cls(outer_bin), cp.utf8(inner_name), f))
    if inner_entries:
        class_attrs.append(_attr(cp, "InnerClasses", struct.pack(">H", len(inner_entries)) + b"".join(inner_entries)))

    body = struct.pack(">HHH", access, this_idx, super_idx)
    body += struct.pack(">H", len(iface_idx)) + b"".join(struct.pack(">H", i) for i in iface_idx)
    body += struct.pack(">H", len(fields_out)) + b"".join(fields_out)
    body += struct.pack(">H", len(methods_out)) + b"".join(methods_out)
    body += struct.pack(">H", len(class_attrs)) + b"".join(class_attrs)
    return b"\xca\xfe\xba\xbe" + struct.pack(">HH", 0, 52) + cp.bytes() + body


def write_stub_jar(current_txt: Path, jar: Path) -> int:
    """Generate ``jar`` from ``current_txt``; returns the number of classes written."""
    api = parse_api(current_txt.read_text(encoding="utf-8") + PLAY_SERVICES_TFLITE_API)
    tmp = jar.with_suffix(".tmp")
    n = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: packager android_stubs\n\n")
        for binary, decl in sorted(api.classes.items()):
            if _jdk_package(decl.package):
                continue
            info = zipfile.ZipInfo(binary + ".class", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, class_file(api, decl))
            n += 1
    tmp.replace(jar)
    return n


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m packager.runtimes.android_stubs current.txt out.jar", file=sys.stderr)
        return 2
    n = write_stub_jar(Path(argv[0]), Path(argv[1]))
    print(f"android_stubs: wrote {n} classes to {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
