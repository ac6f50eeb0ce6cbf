"""Unwinding C frames with the call-frame information of the objects mapped in a process.

A goroutine in a cgo call runs C code on its thread's system stack. Its C frames are unwound
here the way gdb and lldb unwind them: each object's .eh_frame (or .debug_frame when it has no
.eh_frame), decoded by pyelftools, gives the CFA and the saved registers at a pc. The walk
stops at the first pc in Go's text; gostack.py continues from there.

Only the rules C compilers emit for ordinary frames are evaluated (CFA = register + offset;
registers saved at CFA + n, or unchanged). A frame described by a DWARF expression (a PLT
stub, a signal trampoline) ends the walk: its caller is left out rather than guessed.
"""

from __future__ import annotations

import bisect
import io
import os
import struct
from dataclasses import dataclass
from typing import Callable, Iterable

from elftools.dwarf.callframe import FDE, CallFrameInfo, RegisterRule
from elftools.dwarf.structs import DWARFStructs

from gdbstub.symbols.elf_file import ElfFile, Mapping

RBP, RSP, RA = 6, 7, 16   # DWARF register numbers on x86-64 (RA: the return address column)
_WORD = struct.Struct("<Q")
_MAX_C_FRAMES = 128


@dataclass(frozen=True, slots=True)
class CFrame:
    pc: int                 # the trapped pc (innermost) or a return address
    function: str | None    # the ELF symbol containing pc, if any
    offset: int             # pc - the symbol's address (0 when unknown)
    object: str             # path of the mapped file holding pc ("" when none)
    line: tuple[str, int] | None = None   # file:line of the call (or of pc, innermost)


class ObjectFrames:
    """The call-frame information and function symbols of one mapped ELF object."""

    def __init__(self, elf: ElfFile, bias: int) -> None:
        self.path = elf.path
        self.bias = bias
        self._elf = elf
        self._lines: LineTable | None = None
        self._starts: list[int] = []
        self._fdes: list[tuple[int, int, FDE]] = []   # (start, end, fde), link addresses
        self._rows: dict[int, list[dict]] = {}
        # With .eh_frame_hdr's sorted table, only the entries a walk meets are parsed:
        # (link start, offset in .eh_frame) per FDE, and the section's parser.
        self._indexed: tuple[list[int], list[int], CallFrameInfo] | None = _eh_frame_index(elf)
        if self._indexed is None:
            self._load_cfi(elf)
        self._symbols = sorted(
            (value, size, name) for name, value, size in elf.function_symbols())
        self._symbol_starts = [s[0] for s in self._symbols]

    def _load_cfi(self, elf: ElfFile) -> None:
        for name, eh in ((".eh_frame", True), (".debug_frame", False)):
            section = elf.section(name)
            data = elf.section_data(name)
            if section is None or not data:
                continue
            structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
            cfi = CallFrameInfo(io.BytesIO(data), len(data), section.addr, structs,
                                for_eh_frame=eh)
            for entry in cfi.get_entries():
                if isinstance(entry, FDE):
                    start = entry.header["initial_location"]
                    self._fdes.append((start, start + entry.header["address_range"], entry))
            if self._fdes:
                break   # .eh_frame describes what runs; .debug_frame only when it is missing
        self._fdes.sort(key=lambda f: f[0])
        self._starts = [f[0] for f in self._fdes]

    def row_at(self, pc: int) -> dict | None:
        """The CFI row in effect at a runtime pc: {'cfa': CFARule, regnum: RegisterRule}."""
        link = pc - self.bias
        found = self._indexed_fde(link) if self._indexed is not None else self._parsed_fde(link)
        if found is None:
            return None
        start, fde = found
        rows = self._rows.get(start)
        if rows is None:
            try:
                rows = fde.get_decoded().table
            except Exception:  # noqa: BLE001 - an entry pyelftools cannot decode: no row
                rows = []
            self._rows[start] = rows
        found = None
        for row in rows:
            if row["pc"] > link:
                break
            found = row
        return found

    def _parsed_fde(self, link: int) -> tuple[int, FDE] | None:
        i = bisect.bisect_right(self._starts, link) - 1
        if i < 0 or not self._fdes[i][0] <= link < self._fdes[i][1]:
            return None
        return self._fdes[i][0], self._fdes[i][2]

    def _indexed_fde(self, link: int) -> tuple[int, FDE] | None:
        assert self._indexed is not None
        starts, offsets, cfi = self._indexed
        i = bisect.bisect_right(starts, link) - 1
        if i < 0:
            return None
        try:
            # pyelftools parses one entry (and its CIE, cached) only through this method;
            # the whole section's parse takes about 0.3 s for libc.
            entry = cfi._parse_entry_at(offsets[i])
        except Exception:  # noqa: BLE001 - an entry pyelftools cannot decode: no row
            return None
        if not isinstance(entry, FDE):
            return None
        start = entry.header["initial_location"]
        if not start <= link < start + entry.header["address_range"]:
            return None
        return start, entry

    def line_at(self, pc: int) -> tuple[str, int] | None:
        """file:line at a runtime pc, from the object's DWARF (None without it)."""
        if self._lines is None:
            dwarf = self._elf.dwarf_info()
            self._lines = LineTable(dwarf) if dwarf is not None else _NO_LINES
        try:
            return self._lines.line_at(pc - self.bias)
        except Exception:  # noqa: BLE001 - DWARF pyelftools cannot decode: no line
            return None

    def symbolize(self, pc: int) -> tuple[str, int] | None:
        link = pc - self.bias
        i = bisect.bisect_right(self._symbol_starts, link) - 1
        if i < 0:
            return None
        value, size, name = self._symbols[i]
        if size and link >= value + size:
            return None
        return name, link - value


# .eh_frame_hdr's encodings (DW_EH_PE_*): a 4-byte value, signed or not, for the pointer to
# .eh_frame and the count; the table's (location, FDE) pairs as signed 4-byte offsets from the
# header's start, which is what linkers write.
_EH_PE_4_BYTES = {0x03, 0x0B, 0x13, 0x1B, 0x33, 0x3B}
_EH_PE_DATAREL_SDATA4 = 0x3B
_EH_HEADER = struct.Struct("<BBBB")
_EH_TABLE_ENTRY = struct.Struct("<ii")


def _eh_frame_index(elf: ElfFile) -> tuple[list[int], list[int], CallFrameInfo] | None:
    """From .eh_frame_hdr: each FDE's start (link address) and offset in .eh_frame, in
    address order, with a parser of .eh_frame; None when the object has no such table or
    one in an encoding other than linkers' (the whole section is then parsed)."""
    header, eh_frame = elf.section(".eh_frame_hdr"), elf.section(".eh_frame")
    table, data = elf.section_data(".eh_frame_hdr"), elf.section_data(".eh_frame")
    if header is None or eh_frame is None or not table or not data or len(table) < 12:
        return None
    version, pointer_encoding, count_encoding, table_encoding = _EH_HEADER.unpack_from(table)
    if version != 1 or pointer_encoding not in _EH_PE_4_BYTES or count_encoding != 0x03 \
            or table_encoding != _EH_PE_DATAREL_SDATA4:
        return None
    (count,) = struct.unpack_from("<I", table, 8)
    if 12 + count * _EH_TABLE_ENTRY.size > len(table):
        return None
    starts, offsets = [], []
    delta = header.addr - eh_frame.addr
    for location, fde in _EH_TABLE_ENTRY.iter_unpack(table[12:12 + count * _EH_TABLE_ENTRY.size]):
        offset = fde + delta
        if not 0 <= offset < len(data):
            return None
        starts.append(header.addr + location)
        offsets.append(offset)
    if starts != sorted(starts):
        return None
    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    cfi = CallFrameInfo(io.BytesIO(data), len(data), eh_frame.addr, structs, for_eh_frame=True)
    return starts, offsets, cfi


class LineTable:
    """file:line of link addresses from an object's DWARF line programs (pyelftools), found
    through .debug_aranges: what a program's own C code built with -g has. Each compile
    unit's program is decoded once, on first use."""

    def __init__(self, dwarf) -> None:
        self._dwarf = dwarf
        self._aranges = dwarf.get_aranges()
        self._units: dict[int, tuple[list[int], list[tuple[int, str | None, int]]]] = {}

    def line_at(self, link: int) -> tuple[str, int] | None:
        if self._aranges is None:
            return None
        offset = self._aranges.cu_offset_at_addr(link)
        if offset is None:
            return None
        unit = self._units.get(offset)
        if unit is None:
            unit = self._units[offset] = self._decode(offset)
        starts, rows = unit
        i = bisect.bisect_right(starts, link) - 1
        if i < 0 or rows[i][1] is None:      # before the unit's code, or past a sequence end
            return None
        return rows[i][1], rows[i][2]

    def _decode(self, offset: int):
        cu = self._dwarf.get_CU_at(offset)
        program = self._dwarf.line_program_for_CU(cu)
        rows: list[tuple[int, str | None, int]] = []
        if program is not None:
            names = _file_names(program, cu)
            for entry in program.get_entries():
                state = entry.state
                if state is None:
                    continue
                name = None if state.end_sequence else names.get(state.file)
                rows.append((state.address, name, state.line))
        # A sequence's end and the next one's start may share an address: the start wins.
        rows.sort(key=lambda row: (row[0], row[1] is not None))
        return [row[0] for row in rows], rows


def _file_names(program, cu) -> dict[int, str]:
    """The line program's file index -> path (DWARF 5 counts from 0, earlier versions from 1,
    where directory 0 is the unit's own)."""
    version = program.header.version
    top = cu.get_top_DIE().attributes.get("DW_AT_comp_dir")
    comp_dir = top.value.decode(errors="replace") if top is not None else ""
    dirs = [d.decode(errors="replace") for d in program["include_directory"]]
    out = {}
    for i, entry in enumerate(program["file_entry"]):
        name = entry.name.decode(errors="replace")
        if version >= 5:
            index, directory = i, dirs[entry.dir_index] if entry.dir_index < len(dirs) else ""
        else:
            index = i + 1
            directory = dirs[entry.dir_index - 1] if 0 < entry.dir_index <= len(dirs) else comp_dir
        out[index] = name if name.startswith("/") else os.path.join(directory, name)
    return out


class _NoLines:
    def line_at(self, link: int) -> None:
        return None


_NO_LINES = _NoLines()


class MappedObjects:
    """The executable mappings of a process, each with its ObjectFrames (built on first use
    and kept: the same library keeps its tables across stops)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], ObjectFrames | None] = {}
        self._ranges: list[tuple[int, int, str, int]] = []

    def update(self, mappings: Iterable[Mapping]) -> None:
        mappings = list(mappings)
        ranges = []
        biases: dict[str, int | None] = {}
        for m in mappings:
            if "x" not in m.perms or not m.path.startswith("/"):
                continue
            if m.path not in biases:
                biases[m.path] = _bias_of(m.path, mappings)
            bias = biases[m.path]
            if bias is not None:
                ranges.append((m.start, m.end, m.path, bias))
        self._ranges = sorted(ranges)

    def object_at(self, pc: int) -> tuple[str, ObjectFrames | None] | None:
        for start, end, path, bias in self._ranges:
            if start <= pc < end:
                key = (path, bias)
                if key not in self._by_key:
                    try:
                        self._by_key[key] = ObjectFrames(ElfFile(path), bias)
                    except Exception:  # noqa: BLE001 - any file, any damage: no CFI from it
                        self._by_key[key] = None
                return path, self._by_key[key]
        return None


def _bias_of(path: str, mappings: list[Mapping]) -> int | None:
    try:
        elf = ElfFile(path)
    except (OSError, ValueError):
        return None
    try:
        return elf.load_bias_from_maps(mappings)
    finally:
        elf.close()


def unwind_c_frames(regs: dict[int, int], read_memory: Callable[[int, int], bytes],
                    objects: MappedObjects, is_go_pc: Callable[[int], bool]
                    ) -> tuple[list[CFrame], dict[int, int] | None]:
    """The C frames from a thread's registers (DWARF numbering, RA = pc) outwards, up to the
    first pc in Go's text. Returns the frames and the registers at that Go pc (its 'sp' is
    the CFA of the last C frame), or None for the registers when the walk ended before
    reaching Go (no CFI, an expression rule, an unreadable stack, the outermost frame)."""
    frames: list[CFrame] = []
    pc = regs.get(RA, 0)
    innermost = True
    for _ in range(_MAX_C_FRAMES):
        if not pc:
            return frames, None
        if is_go_pc(pc):
            return frames, regs
        found = objects.object_at(pc)
        obj = found[1] if found else None
        # A return address is just past its call: the call's own rows are one byte earlier.
        at = pc if innermost else pc - 1
        named = obj.symbolize(pc) if obj else None
        frames.append(CFrame(pc, named[0] if named else None, named[1] if named else 0,
                             found[0] if found else "", obj.line_at(at) if obj else None))
        if obj is None:
            return frames, None
        row = obj.row_at(at)
        if row is None:
            return frames, None
        caller = _caller_registers(row, regs, read_memory)
        if caller is None:
            return frames, None
        regs, pc, innermost = caller, caller.get(RA, 0), False
    return frames, None


def _caller_registers(row: dict, regs: dict[int, int],
                      read_memory: Callable[[int, int], bytes]) -> dict[int, int] | None:
    cfa_rule = row["cfa"]
    if RA not in row or cfa_rule.expr is not None or cfa_rule.reg not in regs:
        return None
    cfa = regs[cfa_rule.reg] + cfa_rule.offset
    caller = dict(regs)
    caller[RSP] = cfa
    for reg, rule in row.items():
        if not isinstance(reg, int):
            continue
        kind = rule.type
        if kind == RegisterRule.OFFSET:
            try:
                data = read_memory(cfa + rule.arg, 8)
            except OSError:
                return None
            if len(data) != 8:
                return None
            caller[reg] = _WORD.unpack(data)[0]
        elif kind == RegisterRule.VAL_OFFSET:
            caller[reg] = cfa + rule.arg
        elif kind == RegisterRule.REGISTER:
            if rule.arg not in regs:
                return None
            caller[reg] = regs[rule.arg]
        elif kind == RegisterRule.UNDEFINED:
            caller.pop(reg, None)
        elif kind != RegisterRule.SAME_VALUE:
            return None     # expressions and architectural rules: not evaluated
    if RA not in caller or (caller[RSP], caller[RA]) == (regs.get(RSP), regs.get(RA)):
        return None     # no return address, or a frame that would repeat itself
    return caller


def object_name(path: str) -> str:
    return os.path.basename(path) if path else "??"
