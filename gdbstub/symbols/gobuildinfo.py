"""The Go toolchain version (and main module path) recorded in a binary's `.go.buildinfo`.

Layout (cmd/go/internal/version, debug/buildinfo): a 32-byte header that starts with
`\\xff Go buildinf:`, then the pointer size (byte 14) and flags (byte 15). With flags&2
(Go >= 1.18) the version and the module info follow at offset 32 as two uvarint-prefixed
strings. Before 1.18 the header holds two pointers to Go string headers (ptr, len) that
live elsewhere in the file. It survives `-ldflags=-s -w`.

API:
    read_buildinfo(elf) -> BuildInfo | None
    BuildInfo.version ("go1.21.13"), .minor ((1, 21)), .main_path ("waiters" or "")
    parse_go_version("go1.27.3" / "devel go1.27-abcd ...") -> (major, minor) | None
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from gdbstub.symbols.elf_file import ElfFile

MAGIC = b"\xff Go buildinf:"
_VERSION_RE = re.compile(r"go(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class BuildInfo:
    version: str
    main_path: str

    @property
    def minor(self) -> tuple[int, int] | None:
        return parse_go_version(self.version)


def parse_go_version(version: str) -> tuple[int, int] | None:
    m = _VERSION_RE.search(version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def read_buildinfo(elf: ElfFile) -> BuildInfo | None:
    section = elf.section(".go.buildinfo")
    if section is not None and not section.nobits:
        start = section.offset
    else:
        # Section headers gone: the header sits 16-byte aligned somewhere in the data
        # (the same bytes may also appear unaligned as a string constant).
        start = elf.buffer.find(MAGIC)
        while start >= 0 and (start % 16 or elf.buffer[start + 14] != 8):
            start = elf.buffer.find(MAGIC, start + 1)
        if start < 0:
            return None
    buf = elf.buffer
    header = buf[start:start + 32]
    if len(header) < 32 or not header.startswith(MAGIC):
        return None
    ptr_size, flags = header[14], header[15]
    if flags & 2:
        length, pos = _uvarint(buf, start + 32)
        version = buf[pos:pos + length].decode("utf-8", "replace")
        pos += length
        length, pos = _uvarint(buf, pos)
        modinfo = buf[pos:pos + length].decode("utf-8", "replace")
    else:
        if ptr_size != 8:
            return None
        fmt = ">Q" if flags & 1 else "<Q"
        version = _read_go_string(elf, struct.unpack_from(fmt, header, 16)[0], fmt)
        modinfo = _read_go_string(elf, struct.unpack_from(fmt, header, 24)[0], fmt)
    return BuildInfo(version, _main_path(modinfo))


def _read_go_string(elf: ElfFile, header_addr: int, fmt: str) -> str:
    try:
        raw = elf.read_static(header_addr, 16)
        ptr, length = struct.unpack(fmt[0] + "QQ", raw)
        return elf.read_static(ptr, length).decode("utf-8", "replace") if length else ""
    except ValueError:
        return ""


def _main_path(modinfo: str) -> str:
    # modinfo is framed by 16-byte sentinels; the line "path\t<import path>" names main.
    for line in modinfo.splitlines():
        if line.startswith("path\t"):
            return line[5:]
    return ""
