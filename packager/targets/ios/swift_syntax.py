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
