"""Class files from parsed declarations: every method body is ``aconst_null; athrow`` (compile-only stubs)."""

from __future__ import annotations

import re
import struct
import sys

from packager.targets.android.host.stubs.signatures import (
    Api,
    ClassDecl,
    JType,
    TypeParser,
    binary_name,
    split_top,
    split_type_params,
    strip_annotations,
)

PRIMITIVES = {"void": "V", "boolean": "Z", "byte": "B", "char": "C", "short": "S", "int": "I", "long": "J",
              "float": "F", "double": "D"}

ACC = {"public": 0x0001, "private": 0x0002, "protected": 0x0004, "static": 0x0008, "final": 0x0010,
       "synchronized": 0x0020, "volatile": 0x0040, "transient": 0x0080, "native": 0x0100, "abstract": 0x0400}
ACC_SUPER, ACC_INTERFACE, ACC_ABSTRACT, ACC_ANNOTATION, ACC_ENUM = 0x20, 0x200, 0x400, 0x2000, 0x4000
ACC_VARARGS, ACC_STATIC, ACC_FINAL, ACC_PUBLIC = 0x80, 0x8, 0x10, 0x1



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


