"""A minimal ELF64 (x86-64, little-endian) writer for symbol files: sections only, no segments.

A symbol file needs no program headers: gdb and lldb place it by its section addresses (and
relocate a PIE by the executable's load bias), so only section headers are written. NOBITS
sections describe the program's code without carrying it.

API:
    Section(name, type, flags=0, addr=0, data=b"", size=None, link="", info=0, align=1,
            entsize=0)                         (link names another section)
    elf_symbols(symbols, strtab) -> bytes      (Elf64_Sym array; strtab collects the names)
    StringTable() .add(text) -> offset, .data
    write_elf(e_type, entry, sections) -> bytes
    constants: SHT_*, SHF_*, ET_EXEC, ET_DYN, STB_*, STT_*
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOTE = 7
SHT_NOBITS = 8

SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

STB_LOCAL = 0
STB_GLOBAL = 1
STT_NOTYPE = 0
STT_FUNC = 2
STT_SECTION = 3

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")


@dataclass
class Section:
    name: str
    type: int
    flags: int = 0
    addr: int = 0
    data: bytes = b""
    size: int | None = None     # of a NOBITS section (it has no data)
    link: str = ""              # the name of the linked section (a symtab's string table)
    info: int = 0
    align: int = 1
    entsize: int = 0


class StringTable:
    """An ELF string table: offset 0 is the empty string; equal strings are stored once."""

    def __init__(self) -> None:
        self._parts: list[bytes] = [b"\0"]
        self._size = 1
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        offset = self._offsets.get(text)
        if offset is None:
            raw = text.encode() + b"\0"
            offset = self._size
            self._parts.append(raw)
            self._size += len(raw)
            self._offsets[text] = offset
        return offset

    @property
    def data(self) -> bytes:
        return b"".join(self._parts)


def elf_symbols(symbols: Iterable[tuple[str, int, int, int, int]], strtab: StringTable) -> bytes:
    """An Elf64_Sym array (with the null symbol first) of (name, value, size, info, shndx)."""
    pack = _SYM.pack
    out = [bytes(_SYM.size)]
    add = strtab.add
    for name, value, size, info, shndx in symbols:
        out.append(pack(add(name), info, 0, shndx, value, size))
    return b"".join(out)


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment if alignment > 1 else offset


def write_elf(e_type: int, entry: int, sections: Sequence[Section]) -> bytes:
    """The bytes of an ELF file holding `sections` (after the null section) and .shstrtab."""
    names = StringTable()
    all_sections = [*sections, Section(".shstrtab", SHT_STRTAB)]
    name_offsets = [names.add(s.name) for s in all_sections]
    all_sections[-1].data = names.data
    index = {s.name: i + 1 for i, s in enumerate(all_sections)}

    chunks: list[bytes] = []
    offset = _EHDR.size
    headers = [bytes(_SHDR.size)]
    for s, name_off in zip(all_sections, name_offsets):
        if s.type == SHT_NOBITS:
            file_off, size = offset, s.size or 0
        else:
            file_off = _align(offset, s.align)
            chunks.append(bytes(file_off - offset))
            chunks.append(s.data)
            size = len(s.data)
            offset = file_off + size
        headers.append(_SHDR.pack(name_off, s.type, s.flags, s.addr, file_off, size,
                                  index[s.link] if s.link else 0, s.info, s.align, s.entsize))
    shoff = _align(offset, 8)
    chunks.append(bytes(shoff - offset))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1
    header = _EHDR.pack(ident, e_type, EM_X86_64, 1, entry, 0, shoff, 0, _EHDR.size, 0, 0,
                        _SHDR.size, len(headers), index[".shstrtab"])
    return b"".join([header, *chunks, *headers])
