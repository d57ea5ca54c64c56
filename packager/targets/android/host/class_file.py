"""The methods of a compiled Java/Kotlin class, read from its .class file (JVM spec, chapter 4 "The class File
Format"): what ``javap -p -s`` prints for them, without starting a JVM (javap cost the Android checks ~1 CPU s)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

ACC_STATIC = 0x0008
ACC_NATIVE = 0x0100
_MAGIC = 0xCAFEBABE
# constant pool tag -> size of its entry after the tag byte (Utf8, tag 1, is length-prefixed)
_SIZES = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2, 17: 4, 18: 4, 19: 2, 20: 2}


@dataclass(frozen=True)
class Method:
    name: str
    descriptor: str
    access: int

    @property
    def native(self) -> bool:
        return bool(self.access & ACC_NATIVE)

    @property
    def static(self) -> bool:
        return bool(self.access & ACC_STATIC)


class ClassFileError(ValueError):
    pass


def methods(path: Path) -> list[Method]:
    """Every method declared in the class file ``path`` (name, descriptor, access flags), in file order."""
    data = Path(path).read_bytes()
    try:
        return _methods(data)
    except (struct.error, IndexError, KeyError) as e:
        raise ClassFileError(f"{path}: not a readable class file ({e})") from e


def _methods(data: bytes) -> list[Method]:
    magic, = struct.unpack_from(">I", data, 0)
    if magic != _MAGIC:
        raise ClassFileError("bad magic number")
    count, = struct.unpack_from(">H", data, 8)
    utf8: dict[int, bytes] = {}
    pos, i = 10, 1
    while i < count:
        tag = data[pos]
        if tag == 1:
            n, = struct.unpack_from(">H", data, pos + 1)
            utf8[i] = data[pos + 3:pos + 3 + n]
            pos += 3 + n
        elif tag in _SIZES:
            pos += 1 + _SIZES[tag]
        else:
            raise ClassFileError(f"unknown constant pool tag {tag}")
        i += 2 if tag in (5, 6) else 1  # long and double take two entries
    pos += 6  # access_flags, this_class, super_class
    interfaces, = struct.unpack_from(">H", data, pos)
    pos += 2 + 2 * interfaces
    found: list[Method] = []
    for members in ("fields", "methods"):
        n, = struct.unpack_from(">H", data, pos)
        pos += 2
        for _ in range(n):
            access, name, desc, attrs = struct.unpack_from(">HHHH", data, pos)
            pos += 8
            for _ in range(attrs):
                length, = struct.unpack_from(">I", data, pos + 2)
                pos += 6 + length
            if members == "methods":
                found.append(Method(_text(utf8[name]), _text(utf8[desc]), access))
    return found


def _text(raw: bytes) -> str:
    """Modified UTF-8 (JVM spec 4.4.7): NUL as C0 80, characters beyond the BMP as two encoded surrogates."""
    text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
    return text.encode("utf-16", "surrogatepass").decode("utf-16")
