"""The layouts of the Go runtime's `.gopclntab` (see gopclntab.py): header magics, the header
and `_func` described once with construct (with struct twins for the hot path), the values
the reader hands out (Func, SourceFrame), its errors, and finding a table by its magic."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import Array, Bytes, If, Int8ul, Int32sl, Int32ul, Int64sl, Int64ul, Struct, this

MAGIC_115 = 0xFFFFFFFB
MAGIC_116 = 0xFFFFFFFA
MAGIC_118 = 0xFFFFFFF0
MAGIC_120 = 0xFFFFFFF1
_LAYOUTS = {MAGIC_116: "1.16", MAGIC_118: "1.18", MAGIC_120: "1.20"}

PCDATA_INL_TREE_INDEX = 2
FUNCDATA_INL_TREE = 3
FUNC_FLAG_TOPFRAME = 1
FUNC_FLAG_SPWRITE = 2
FUNC_FLAG_ASM = 4



class PclntabError(ValueError):
    """The data is not a .gopclntab this reader understands."""


class UnsupportedPclntab(PclntabError):
    """A real .gopclntab, but of a layout this reader does not decode (Go <= 1.15)."""


# --- layouts, described once with construct ----------------------------------------------

PC_HEADER = Struct(
    "magic" / Int32ul,
    "pad" / Bytes(2),
    "min_lc" / Int8ul,       # pc quantum: 1 on x86
    "ptr_size" / Int8ul,
    "nfunc" / Int64sl,
    "nfiles" / Int64ul,
    "text_start" / If(this.magic != MAGIC_116, Int64ul),  # 0 from Go 1.26 on
    "funcname_offset" / Int64ul,
    "cu_offset" / Int64ul,
    "filetab_offset" / Int64ul,
    "pctab_offset" / Int64ul,
    "pcln_offset" / Int64ul,
)


def func_struct(layout: str) -> Struct:
    """The runtime's `_func` for a layout, including its trailing pcdata and funcdata arrays."""
    return Struct(
        "entry" / (Int64ul if layout == "1.16" else Int32ul),  # address, or offset from text
        "name_off" / Int32sl,
        "args" / Int32sl,
        "deferreturn" / Int32ul,
        "pcsp" / Int32ul,
        "pcfile" / Int32ul,
        "pcln" / Int32ul,
        "npcdata" / Int32ul,
        "cu_offset" / Int32ul,
        "start_line" / If(layout == "1.20", Int32sl),
        "func_id" / Int8ul,
        "flag" / Int8ul,          # a pad byte (0) in Go 1.16
        "pad" / Int8ul,
        "nfuncdata" / Int8ul,
        "pcdata" / Array(this.npcdata, Int32ul),
        # Go 1.16-1.17: uintptr pointers after 8-byte alignment (see Pclntab.funcdata_addr).
        "funcdata" / If(layout != "1.16", Array(this.nfuncdata, Int32ul)),
    )


# Hot-path twins of the construct definitions above (fixed part of _func only).
_FUNC_FIXED = {
    "1.16": struct.Struct("<QiiIIIIII BBBB"),
    "1.18": struct.Struct("<IiiIIIIII BBBB"),
    "1.20": struct.Struct("<IiiIIIIIIi BBBB"),
}


@dataclass(frozen=True, slots=True)
class Func:
    """One function of the table: its range and the raw `_func` fields."""
    index: int
    offset: int          # of the _func inside the table
    entry: int
    end: int
    name_off: int
    args: int
    deferreturn: int
    pcsp: int
    pcfile: int
    pcln: int
    npcdata: int
    cu_offset: int
    start_line: int      # 0 before Go 1.20
    func_id: int
    flag: int
    nfuncdata: int
    name: str


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One logical frame at a PC: a real function or a call inlined into it."""
    function: str
    file: str
    line: int
    func_id: int
    inlined: bool


def find_pclntab_magic(buffer: bytes) -> int:
    """File offset of a .gopclntab found by its header (for binaries without section headers)."""
    for magic in (MAGIC_120, MAGIC_118, MAGIC_116, MAGIC_115):
        pattern = struct.pack("<I", magic) + b"\0\0\x01\x08"
        pos = buffer.find(pattern)
        while pos >= 0:
            if pos % 8 == 0:
                return pos
            pos = buffer.find(pattern, pos + 1)
    return -1
