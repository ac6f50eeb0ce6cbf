"""Lazy, read-only access to one ELF file on disk: sections, segments, symbols, build id.

The file is memory-mapped once; section and symbol tables are parsed on first use, so
opening a 20 MB binary costs only the section headers. `.symtab` is decoded with `struct`
(Go binaries carry tens of thousands of symbols), other structures with pyelftools.

Addresses here are link-time virtual addresses. A position-independent executable runs at
`link address + load bias`; `load_bias_from_entry` / `load_bias_from_maps` compute the bias
from what a debugger knows about the running process (AT_ENTRY, /proc/PID/maps).

API:
    ElfFile(path)
        .path, .is_pie, .entry
        .section(name) -> Section | None            .sections() -> list[Section]
        .section_data(name) -> bytes | None          (None for SHT_NOBITS or missing)
        .segments() -> list[Segment]                 .tls_segment() -> Segment | None
        .read_static(addr, size) -> bytes            (file-backed bytes at a link address)
        .addr_to_offset(addr) / .offset_to_addr(offset) -> int | None
        .symbol(name) -> Symbol | None               .has_symtab
        .function_symbols() -> [(name, addr, size)]  (functions of .symtab and .dynsym)
        .dwarf_info() -> pyelftools DWARFInfo | None
        .build_id() -> str | None                    (GNU build id, hex)
        .go_build_id() -> str | None                 (.note.go.buildid)
        .load_bias_from_entry(at_entry) -> int
        .load_bias_from_maps(mappings) -> int | None
        .buffer -> mmap of the whole file (read-only)
    parse_proc_maps(text) -> list[Mapping]
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from elftools.elf.elffile import ELFFile

PT_LOAD = 1
PT_TLS = 7
SHT_NOBITS = 8
STT_FUNC = 2
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    addr: int
    offset: int
    size: int
    type: str
    nobits: bool


@dataclass(frozen=True, slots=True)
class Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    flags: int


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int     # STT_* (low nibble of st_info)
    binding: int  # STB_*


class Mapping(NamedTuple):
    """One line of /proc/PID/maps."""
    start: int
    end: int
    perms: str
    offset: int
    path: str


def parse_proc_maps(text: str) -> list[Mapping]:
    out: list[Mapping] = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        out.append(Mapping(start, end, parts[1], int(parts[2], 16),
                           parts[5] if len(parts) > 5 else ""))
    return out


class ElfFile:
    """One ELF64 little-endian file, mapped read-only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        with open(self.path, "rb") as f:
            self.buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.buffer[:4] != b"\x7fELF" or self.buffer[4] != 2 or self.buffer[5] != 1:
            raise ValueError(f"{self.path}: not a little-endian ELF64 file")
        self._elf = ELFFile(_MmapReader(self.buffer))
        self.is_pie = self._elf.header.e_type == "ET_DYN"
        self.entry: int = self._elf.header.e_entry
        self._sections: dict[str, Section] | None = None
        self._segments: list[Segment] | None = None
        self._symbols: dict[str, Symbol] | None = None
        self._dynamic_symbols: dict[str, Symbol] | None = None

    def close(self) -> None:
        self.buffer.close()

    # --- sections and segments -------------------------------------------------------

    def sections(self) -> list[Section]:
        if self._sections is None:
            table: dict[str, Section] = {}
            for s in self._elf.iter_sections():
                if s.name and s.name not in table:
                    table[s.name] = Section(s.name, s["sh_addr"], s["sh_offset"], s["sh_size"],
                                            s["sh_type"], s["sh_type"] == "SHT_NOBITS")
            self._sections = table
        return list(self._sections.values())

    def section(self, name: str) -> Section | None:
        if self._sections is None:
            self.sections()
        assert self._sections is not None
        return self._sections.get(name)

    def section_data(self, name: str) -> bytes | None:
        s = self.section(name)
        if s is None or s.nobits:
            return None
        if self._elf.get_section_by_name(name)["sh_flags"] & 0x800:  # SHF_COMPRESSED
            return self._elf.get_section_by_name(name).data()
        return self.buffer[s.offset:s.offset + s.size]

    def segments(self) -> list[Segment]:
        if self._segments is None:
            self._segments = [
                Segment(_ptype(p["p_type"]), p["p_offset"], p["p_vaddr"], p["p_filesz"],
                        p["p_memsz"], p["p_align"], p["p_flags"])
                for p in self._elf.iter_segments()]
        return self._segments

    def tls_segment(self) -> Segment | None:
        return next((s for s in self.segments() if s.type == PT_TLS), None)

    def addr_to_offset(self, addr: int) -> int | None:
        for s in self.segments():
            if s.type == PT_LOAD and s.vaddr <= addr < s.vaddr + s.filesz:
                return s.offset + addr - s.vaddr
        return None

    def offset_to_addr(self, offset: int) -> int | None:
        for s in self.segments():
            if s.type == PT_LOAD and s.offset <= offset < s.offset + s.filesz:
                return s.vaddr + offset - s.offset
        return None

    def read_static(self, addr: int, size: int) -> bytes:
        """Initial contents at a link address: file bytes, zeros for .bss; ValueError if unmapped."""
        for s in self.segments():
            if s.type == PT_LOAD and s.vaddr <= addr and addr + size <= s.vaddr + s.memsz:
                start = addr - s.vaddr
                in_file = max(0, min(size, s.filesz - start))
                data = self.buffer[s.offset + start:s.offset + start + in_file]
                return data + bytes(size - in_file)
        raise ValueError(f"{addr:#x}+{size} is not inside one loadable segment")

    # --- symbols ---------------------------------------------------------------------

    @property
    def has_symtab(self) -> bool:
        return self.section(".symtab") is not None

    def symbol(self, name: str) -> Symbol | None:
        if self._symbols is None:
            self._symbols = self._load_symbols()
        return self._symbols.get(name)

    def dynamic_symbol(self, name: str) -> Symbol | None:
        """A symbol of .dynsym (what a stripped shared library still has)."""
        if self._dynamic_symbols is None:
            self._dynamic_symbols = self._load_symbols(".dynsym")
        return self._dynamic_symbols.get(name)

    def dwarf_info(self):
        """pyelftools' DWARFInfo of the file, or None when it has no DWARF."""
        return self._elf.get_dwarf_info() if self._elf.has_dwarf_info() else None

    def function_symbols(self) -> list[tuple[str, int, int]]:
        """(name, link address, size) of every defined function in .symtab and .dynsym (a
        stripped shared library keeps its exported functions in .dynsym)."""
        seen: set[tuple[str, int]] = set()
        out = []
        for section in (".symtab", ".dynsym"):
            for sym in self._load_symbols(section).values():
                if sym.type == STT_FUNC and sym.value and (sym.name, sym.value) not in seen:
                    seen.add((sym.name, sym.value))
                    out.append((sym.name, sym.value, sym.size))
        return out

    def _load_symbols(self, section: str = ".symtab") -> dict[str, Symbol]:
        symtab = self.section(section)
        if symtab is None:
            return {}
        sh = self._elf.get_section_by_name(section)
        strtab = self._elf.get_section(sh["sh_link"])
        strs = self.buffer[strtab["sh_offset"]:strtab["sh_offset"] + strtab["sh_size"]]
        raw = self.buffer[symtab.offset:symtab.offset + symtab.size]
        table: dict[str, Symbol] = {}
        for st_name, info, _other, _shndx, value, size in _SYM.iter_unpack(raw):
            if not st_name:
                continue
            end = strs.find(b"\0", st_name)
            name = strs[st_name:end].decode("utf-8", "replace")
            # First definition wins; later duplicates are local statics from other objects.
            if name not in table:
                table[name] = Symbol(name, value, size, info & 0xF, info >> 4)
        return table

    # --- identity and load address ---------------------------------------------------

    def build_id(self) -> str | None:
        return self._note_desc(".note.gnu.build-id", 3, b"GNU\0")

    def go_build_id(self) -> str | None:
        desc = self._note_desc(".note.go.buildid", 4, b"Go\0\0")
        return None if desc is None else bytes.fromhex(desc).decode("ascii", "replace")

    def _note_desc(self, section: str, note_type: int, owner: bytes) -> str | None:
        data = self.section_data(section)
        if not data or len(data) < 12:
            return None
        namesz, descsz, ntype = struct.unpack_from("<III", data)
        name = data[12:12 + namesz]
        if ntype != note_type or name[:len(owner)] != owner[:namesz]:
            return None
        start = 12 + ((namesz + 3) & ~3)
        return data[start:start + descsz].hex()

    def load_bias_from_entry(self, at_entry: int) -> int:
        """The load bias from the auxiliary vector's AT_ENTRY (0 for a fixed executable)."""
        return at_entry - self.entry

    def load_bias_from_maps(self, mappings: Iterable[Mapping]) -> int | None:
        """The load bias from the process's mappings of this file (matched by path)."""
        own = os.path.realpath(self.path)
        for m in sorted(mappings, key=lambda m: m.offset):
            if m.path != self.path and os.path.realpath(m.path or "/nonexistent") != own:
                continue
            for s in self.segments():
                if s.type == PT_LOAD and s.offset - s.offset % 4096 <= m.offset < s.offset + s.filesz:
                    return m.start - (s.vaddr - s.offset + m.offset)
        return None


def _ptype(value: int | str) -> int:
    names = {"PT_LOAD": PT_LOAD, "PT_TLS": PT_TLS, "PT_NULL": 0, "PT_DYNAMIC": 2,
             "PT_INTERP": 3, "PT_NOTE": 4, "PT_PHDR": 6}
    return value if isinstance(value, int) else names.get(value, -1)


class _MmapReader:
    """A file-like view of an mmap for pyelftools (it seeks and reads)."""

    def __init__(self, buf: mmap.mmap) -> None:
        self._buf = buf
        self._pos = 0

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._buf))[whence]
        self._pos = base + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), self._pos + n)
        data = self._buf[self._pos:end]
        self._pos = end
        return data
