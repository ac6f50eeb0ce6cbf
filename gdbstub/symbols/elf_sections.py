"""The section names of an ELF file, read with struct alone: cheap enough to ask of every program
the server starts (is it a Go program?) without loading the heavier ELF and Go readers."""

from __future__ import annotations

import struct

_ELF64_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")


def section_names(path: str) -> set[str] | None:
    """The names of the file's sections; None if it is not a 64-bit little-endian ELF file or
    its section headers are gone (then only a full read can tell)."""
    try:
        with open(path, "rb") as f:
            header = f.read(_ELF64_HEADER.size)
            if len(header) < _ELF64_HEADER.size or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                return None
            fields = _ELF64_HEADER.unpack(header)
            shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
            if not shoff or not shnum or shstrndx >= shnum or shentsize < _SECTION.size:
                return None
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            if len(table) < shentsize * shnum:
                return None
            strtab = _SECTION.unpack_from(table, shstrndx * shentsize)
            f.seek(strtab[4])
            names = f.read(strtab[5])
    except OSError:
        return None
    out = set()
    for i in range(shnum):
        name_off = _SECTION.unpack_from(table, i * shentsize)[0]
        end = names.find(b"\0", name_off)
        out.add(names[name_off:end if end >= 0 else None].decode(errors="replace"))
    return out


def may_be_go(path: str) -> bool:
    """False only when the section headers show no Go tables at all."""
    names = section_names(path)
    if names is None:
        return True
    return bool(names & {".gopclntab", ".go.buildinfo", ".data.rel.ro.gopclntab"})
