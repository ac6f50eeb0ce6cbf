"""Encoders for the few DWARF 4 sections a symbol file needs: abbreviations, line programs,
call-frame information, ranges; the DIEs themselves are laid out by the caller (gosymfile.py).

Every encoder appends to a bytearray: a large Go binary has tens of thousands of functions and
hundreds of thousands of line rows, so nothing here builds an object per row.

API:
    uleb(n) / sleb(n) -> bytes
    AbbrevTable() .add(tag, children, [(attribute, form), ...]) -> code, .data
    LineProgram(files) .sequence(rows, end, prologue_end), .data (a whole unit, header included)
    FrameTable() .fde(start, end, cfa_runs), .data (.debug_frame: one CIE, then FDEs)
    constants: DW_TAG_*, DW_AT_*, DW_FORM_*, DW_LANG_GO, DW_INL_INLINED
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence

DW_TAG_COMPILE_UNIT = 0x11
DW_TAG_INLINED_SUBROUTINE = 0x1D
DW_TAG_SUBPROGRAM = 0x2E

DW_AT_NAME = 0x03
DW_AT_STMT_LIST = 0x10
DW_AT_LOW_PC = 0x11
DW_AT_HIGH_PC = 0x12
DW_AT_LANGUAGE = 0x13
DW_AT_COMP_DIR = 0x1B
DW_AT_INLINE = 0x20
DW_AT_PRODUCER = 0x25
DW_AT_ABSTRACT_ORIGIN = 0x31
DW_AT_EXTERNAL = 0x3F
DW_AT_RANGES = 0x55
DW_AT_TRAMPOLINE = 0x56
DW_AT_CALL_FILE = 0x58
DW_AT_CALL_LINE = 0x59

DW_FORM_ADDR = 0x01
DW_FORM_DATA1 = 0x0B
DW_FORM_DATA4 = 0x06
DW_FORM_STRING = 0x08
DW_FORM_FLAG = 0x0C
DW_FORM_UDATA = 0x0F
DW_FORM_STRP = 0x0E
DW_FORM_REF4 = 0x13
DW_FORM_SEC_OFFSET = 0x17
DW_FORM_FLAG_PRESENT = 0x19

DW_LANG_GO = 0x16
DW_INL_INLINED = 1

# Line program opcodes.
_LNS_COPY = 1
_LNS_ADVANCE_PC = 2
_LNS_ADVANCE_LINE = 3
_LNS_SET_FILE = 4
_LNS_CONST_ADD_PC = 8
_LNS_SET_PROLOGUE_END = 10
_LNE_END_SEQUENCE = 1
_LNE_SET_ADDRESS = 2
_LINE_BASE = -4
_LINE_RANGE = 10
_OPCODE_BASE = 13
_STANDARD_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
_CONST_ADD_PC = (255 - _OPCODE_BASE) // _LINE_RANGE

# Call-frame opcodes.
_CFA_ADVANCE_LOC = 0x40
_CFA_ADVANCE_LOC1 = 0x02
_CFA_ADVANCE_LOC2 = 0x03
_CFA_ADVANCE_LOC4 = 0x04
_CFA_OFFSET_EXTENDED = 0x05
_CFA_DEF_CFA = 0x0C
_CFA_DEF_CFA_EXPRESSION = 0x0F
_CFA_DEF_CFA_OFFSET_SF = 0x13
_CFA_OFFSET = 0x80
_CFA_RESTORE = 0xC0
_DATA_ALIGN = -4
_RSP = 7
_RIP = 16

# DWARF expression opcodes (for a CFA no register + offset describes).
DW_OP_DEREF = 0x06
DW_OP_MINUS = 0x1C
DW_OP_PLUS_UCONST = 0x23
DW_OP_BREG0 = 0x70


def uleb(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(n: int) -> bytes:
    if -0x40 <= n < 0x40:
        return bytes((n & 0x7F,))
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


class AbbrevTable:
    """.debug_abbrev: one table shared by every unit."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._count = 0

    def add(self, tag: int, children: bool, attributes: Sequence[tuple[int, int]]) -> int:
        self._count += 1
        self._data += uleb(self._count) + uleb(tag) + bytes((1 if children else 0,))
        for attribute, form in attributes:
            self._data += uleb(attribute) + uleb(form)
        self._data += b"\0\0"
        return self._count

    @property
    def data(self) -> bytes:
        return bytes(self._data) + b"\0"


class LineProgram:
    """One unit of .debug_line (DWARF 4): a file table and one sequence per function.

    `files` are the unit's file names, numbered from 1 as DWARF 4 numbers them. Every row is a
    statement (gdb breaks on statements only; .gopclntab does not tell which are not).
    """

    def __init__(self, files: Sequence[str]) -> None:
        self._files = files
        self._body = bytearray()

    def sequence(self, rows: Sequence[tuple[int, int, int]], end: int,
                 prologue_end: int | None = None) -> None:
        """Rows (address, file, line) in address order, then the end of the code. The row at
        `prologue_end` (the first address past the function's frame set-up; a row repeating
        the line is added when none starts there) carries the prologue_end flag."""
        if prologue_end is not None and rows[0][0] <= prologue_end < end:
            i = bisect.bisect_right(rows, prologue_end, key=lambda row: row[0])
            if rows[i - 1][0] != prologue_end:
                rows = [*rows[:i], (prologue_end, *rows[i - 1][1:]), *rows[i:]]
        else:
            prologue_end = None
        out = self._body
        address = rows[0][0]
        out += b"\0\x09" + bytes((_LNE_SET_ADDRESS,)) + struct.pack("<Q", address)
        cur_file, cur_line = 1, 1
        for row_addr, file, line in rows:
            if row_addr == prologue_end:
                out.append(_LNS_SET_PROLOGUE_END)
            if file != cur_file:
                out.append(_LNS_SET_FILE)
                out += uleb(file)
                cur_file = file
            self._row(row_addr - address, line - cur_line)
            address, cur_line = row_addr, line
        if end > address:
            out.append(_LNS_ADVANCE_PC)
            out += uleb(end - address)
        out += b"\0\x01" + bytes((_LNE_END_SEQUENCE,))

    def _row(self, addr_delta: int, line_delta: int) -> None:
        out = self._body
        if not _LINE_BASE <= line_delta < _LINE_BASE + _LINE_RANGE:
            out.append(_LNS_ADVANCE_LINE)
            out += sleb(line_delta)
            line_delta = 0
        opcode = line_delta - _LINE_BASE + _LINE_RANGE * addr_delta + _OPCODE_BASE
        if opcode <= 255:
            out.append(opcode)
            return
        if addr_delta - _CONST_ADD_PC <= (255 - _OPCODE_BASE - (line_delta - _LINE_BASE)) \
                // _LINE_RANGE:
            out.append(_LNS_CONST_ADD_PC)
            out.append(line_delta - _LINE_BASE + _LINE_RANGE * (addr_delta - _CONST_ADD_PC)
                       + _OPCODE_BASE)
            return
        out.append(_LNS_ADVANCE_PC)
        out += uleb(addr_delta)
        if line_delta:
            out.append(line_delta - _LINE_BASE + _OPCODE_BASE)
        else:
            out.append(_LNS_COPY)

    @property
    def data(self) -> bytes:
        files = bytearray()
        for name in self._files:
            files += name.encode() + b"\0\0\0\0"  # directory 0 (the unit's), no time, no size
        header = (bytes((1, 1, 1)) + struct.pack("<bB", _LINE_BASE, _LINE_RANGE)
                  + bytes((_OPCODE_BASE,)) + _STANDARD_LENGTHS
                  + b"\0"                           # no include directories
                  + bytes(files) + b"\0")
        after_length = struct.pack("<HI", 4, len(header)) + header + self._body
        return struct.pack("<I", len(after_length)) + after_length


class FrameTable:
    """.debug_frame as Go's linker writes it: the CFA is rsp + (frame size so far) + 8 and
    the return address sits just below it; one FDE per function from its pcsp table."""

    def __init__(self) -> None:
        initial = (bytes((_CFA_DEF_CFA,)) + uleb(_RSP) + uleb(8)
                   + bytes((_CFA_OFFSET_EXTENDED,)) + uleb(_RIP) + uleb(8 // -_DATA_ALIGN))
        body = (struct.pack("<IB", 0xFFFFFFFF, 3) + b"\0" + uleb(1) + sleb(_DATA_ALIGN)
                + uleb(_RIP) + initial)
        self._data = bytearray(self._padded(body))

    @staticmethod
    def _padded(body: bytes | bytearray) -> bytes:
        pad = -(len(body) + 4) % 8
        return struct.pack("<I", len(body) + pad) + bytes(body) + bytes(pad)  # pad: DW_CFA_nop

    def fde(self, start: int, end: int, starts: Sequence[int], values: Sequence[int],
            extra_rows: Sequence[tuple[int, bytes]] = ()) -> None:
        """An FDE for [start, end) from a pcsp table: values[i] (the SP delta) holds from
        starts[i] on. `extra_rows` (pc, CFA instructions) apply after the pcsp row of the
        same pc (see cfa_expression and cfa_at_sp)."""
        body = bytearray(struct.pack("<IQQ", 0, start, end - start))
        address = start
        rows = [(pc, bytes((_CFA_DEF_CFA_OFFSET_SF,)) + sleb((value + 8) // _DATA_ALIGN))
                for pc, value in zip(starts, values)]
        rows += extra_rows
        rows.sort(key=lambda row: row[0])   # stable: an extra row follows its pc's pcsp row
        for pc, instructions in rows:
            delta = pc - address
            if delta:
                if delta < 0x40:
                    body.append(_CFA_ADVANCE_LOC | delta)
                elif delta < 0x100:
                    body += bytes((_CFA_ADVANCE_LOC1, delta))
                elif delta < 0x10000:
                    body += struct.pack("<BH", _CFA_ADVANCE_LOC2, delta)
                else:
                    body += struct.pack("<BI", _CFA_ADVANCE_LOC4, delta)
                address = pc
            body += instructions
        self._data += self._padded(body)

    @staticmethod
    def cfa_expression(expression: bytes, saved: Sequence[tuple[int, int]] = ()) -> bytes:
        """Instructions: the CFA is the value of a DWARF expression, and each (register,
        offset) of `saved` was saved at CFA + offset."""
        out = bytes((_CFA_DEF_CFA_EXPRESSION,)) + uleb(len(expression)) + expression
        for reg, offset in saved:
            out += bytes((_CFA_OFFSET | reg,)) + uleb(offset // _DATA_ALIGN)
        return out

    @staticmethod
    def cfa_at_sp(value: int, restored: Sequence[int] = ()) -> bytes:
        """Instructions: back to CFA = rsp + value + 8 (Go's rule), the `restored` registers
        back to their initial rule."""
        return (bytes((_CFA_DEF_CFA,)) + uleb(_RSP) + uleb(value + 8)
                + bytes(_CFA_RESTORE | reg for reg in restored))

    @property
    def data(self) -> bytes:
        return bytes(self._data)
