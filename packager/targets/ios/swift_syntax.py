"""Swift syntax checks without a Swift compiler: the tree-sitter Swift grammar.

``parse_errors`` lists the ERROR / MISSING nodes of a parse (a syntax error each). It checks
syntax only — no type checking, no name resolution. ``string_constants`` reads the string-literal
constants declared in one ``enum`` (how the generated code names Core ML features), so they can be
compared with the model's spec.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path


class SwiftParserMissing(Exception):
    """``tree-sitter`` / ``tree-sitter-swift`` are not installed."""


@lru_cache(maxsize=1)
def _parser():
    try:
        import tree_sitter
        import tree_sitter_swift
    except ImportError as e:  # pragma: no cover - both are project dependencies
        raise SwiftParserMissing(f"tree-sitter Swift grammar not available: {e}") from e
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))


def parse(source: str | bytes):
    data = source.encode("utf-8") if isinstance(source, str) else source
    return _parser().parse(data)


def parse_errors(source: str | bytes) -> list[str]:
    """``"line:col: unexpected 'text'"`` / ``"line:col: missing X"`` for every syntax error."""
    tree = parse(source)
    errors: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            r, c = node.start_point
            errors.append(f"{r + 1}:{c + 1}: missing {node.type!r}")
        elif node.type == "ERROR":
            r, c = node.start_point
            text = node.text.decode("utf-8", "replace")
            errors.append(f"{r + 1}:{c + 1}: unexpected {text[:60]!r}")
            continue
        if node.has_error:
            stack.extend(reversed(node.children))
    return sorted(errors, key=lambda e: tuple(int(v) for v in e.split(":")[:2]))


def check_files(paths: list[Path]) -> dict[str, list[str]]:
    """File -> its syntax errors (only files with errors are listed)."""
    bad = {}
    for p in paths:
        errs = parse_errors(Path(p).read_bytes())
        if errs:
            bad[str(p)] = errs
    return bad


_ESCAPE = re.compile(r'\\(u\{([0-9a-fA-F]{1,8})\}|.)', re.S)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def unescape(literal_body: str) -> str:
    """The value of a Swift single-line string literal body (between the quotes)."""

    def sub(m: re.Match) -> str:
        if m.group(2):
            return chr(int(m.group(2), 16))
        ch = m.group(1)
        if ch == "(":
            raise ValueError("string interpolation in a constant")
        return _SIMPLE.get(ch, ch)

    return _ESCAPE.sub(sub, literal_body)


def _literal_value(node) -> str | list | None:
    if node.type == "line_string_literal":
        text = node.text.decode("utf-8")
        return unescape(text[1:-1])
    if node.type == "array_literal":
        values = [_literal_value(c) for c in node.named_children]
        return values if all(isinstance(v, str) for v in values) else None
    return None


def string_constants(source: str | bytes, enum_name: str) -> dict[str, str | list[str]]:
    """``static let name = "literal"`` / ``["a", "b"]`` declared directly in ``enum <enum_name>``."""
    tree = parse(source)
    found: dict[str, str | list[str]] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "class_declaration":
            name = node.child_by_field_name("name")
            name_text = name.text.decode() if name is not None else ""
            if name_text == enum_name:
                body = next((c for c in node.children if c.type.endswith("body")), None)
                for decl in body.named_children if body is not None else []:
                    if decl.type != "property_declaration":
                        continue
                    pattern = next((c for c in decl.named_children if c.type == "pattern"), None)
                    value = next((_literal_value(c) for c in decl.named_children
                                  if c.type in ("line_string_literal", "array_literal")), None)
                    if pattern is not None and value is not None:
                        found[pattern.text.decode()] = value
                continue
        stack.extend(node.children)
    return found


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def multiarray_subscripts(source: str | bytes) -> list[str]:
    """Every subscript (``x[i]``, ``x![i]``) of a name declared as an ``MLMultiArray`` anywhere in the source (a
    parameter or property typed ``MLMultiArray``, or bound to ``MLMultiArray(...)`` / ``.multiArrayValue``): a
    linear index that ignores the array's strides. Scope-blind, so it errs on the side of reporting."""
    tree = parse(source)
    names: set[str] = set()
    for n in _walk(tree.root_node):
        text = n.text.decode("utf-8")
        if n.type == "parameter" and "MLMultiArray" in text:
            ident = next((c for c in n.children if c.type == "simple_identifier"
                          and n.field_name_for_child(n.children.index(c)) == "name"), None)
            if ident is not None:
                names.add(ident.text.decode())
        elif n.type == "property_declaration" and ("MLMultiArray" in text or "multiArrayValue" in text):
            ident = next((c for c in _walk(n) if c.type == "simple_identifier"), None)
            if ident is not None:
                names.add(ident.text.decode())
        elif n.type in ("if_statement", "guard_statement") and "multiArrayValue" in text:
            for c in _walk(n):  # `if let x = ....multiArrayValue` / `guard let x = ...`
                if c.type == "value_binding_pattern" and c.next_named_sibling is not None:
                    names.add(c.next_named_sibling.text.decode())
    found = []
    for n in _walk(tree.root_node):
        if n.type != "call_expression" or len(n.children) < 2:
            continue
        callee, suffix = n.children[0], n.children[-1]
        if suffix.type != "call_suffix" or not suffix.text.startswith(b"["):
            continue
        base = callee.children[0] if callee.type == "postfix_expression" and callee.children else callee
        if base.type == "simple_identifier" and base.text.decode() in names:
            found.append(n.text.decode("utf-8"))
    return found


def switch_cases(source: str | bytes, function: str, subject: str) -> dict[str, str]:
    """``case`` pattern -> returned expression of the ``switch <subject>`` in ``func <function>`` (``default``
    left out): which branch each value takes, e.g. each ``MLMultiArrayDataType``."""
    tree = parse(source)
    cases: dict[str, str] = {}
    for fn in _walk(tree.root_node):
        name = fn.child_by_field_name("name") if fn.type == "function_declaration" else None
        if name is None or name.text.decode() != function:
            continue
        for sw in _walk(fn):
            if sw.type != "switch_statement" or len(sw.named_children) < 1 or sw.named_children[0].text.decode() != subject:
                continue
            for entry in (c for c in sw.named_children if c.type == "switch_entry"):
                body = next((c for c in entry.named_children if c.type == "statements"), None)
                value = body.text.decode().strip().removeprefix("return").strip() if body is not None else ""
                for pattern in (c for c in entry.named_children if c.type == "switch_pattern"):
                    cases[pattern.text.decode().strip()] = value
    return cases
