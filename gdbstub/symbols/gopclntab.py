"""Reader for the Go runtime's own symbol table, `.gopclntab` (no DWARF needed).

It maps a PC to its function (name, entry), its file:line, the stack of inlined calls at
that PC, and the frame size used to unwind past it; and a function name to its entry.
Three layouts are decoded, told apart by the header magic (runtime/symtab.go of each
release):

    0xfffffffa  Go 1.16-1.17  functab holds (entry uintptr, funcoff uintptr); _func.entry
                              is a uintptr; funcdata are absolute pointers.
    0xfffffff0  Go 1.18-1.19  header gains textStart; functab holds (entryoff, funcoff)
                              uint32 pairs; funcdata are uint32 offsets from go:func.*
    0xfffffff1  Go 1.20+      _func gains startLine; the inline tree entry shrinks to 16 bytes
    0xfffffffb  Go 1.2-1.15   recognised, not decoded (UnsupportedPclntab)

Go 1.26+ writes 0 in the header's textStart: the caller passes the text start taken from
moduledata (see gobinary.py). The inline tree (FUNCDATA_InlTree) needs the address of
go:func.* (moduledata.gofunc) and a way to read static data at a link address.

pcvalue tables (pcsp, pcfile, pcln, pcdata) are sequences of (zig-zag varint value delta,
uvarint pc delta * quantum) pairs starting at value -1; they are decoded on demand.
Headers and `_func` are described with construct in gopclntab_layout.py (PC_HEADER,
func_struct(layout)); the hot paths (functab bisection, _func fields, varints) use struct,
array and bisect. Nothing is decoded when the table is opened except the header and the
functab array.

API:
    Pclntab(data, offset=0, size=None, *, addr=0, text_start=None, gofunc=None,
            read_static=None)                  (data: bytes or an mmap of the whole file)
        .layout ("1.16" | "1.18" | "1.20"), .nfunc, .quantum, .text_start, .text_end
        .func_at(pc) -> Func | None            .func_by_name(name) -> Func | None
        .funcs_by_name(name) -> list[Func]     (assembly functions and their ABI wrappers)
        .funcs() -> Iterator[Func]             .parse_func(func) (construct, for inspection)
        .line_at(pc) -> (file, line)           (file "?" and line 0 when unknown)
        .func_line(func, pc) -> (file, line)
        .frames_at(pc) -> list[SourceFrame]    (innermost first, inlined calls expanded)
        .inline_tree(func) -> int | None       .inline_call(tree, ix) -> (callee, parent pc offset)
        .pcdata_table(func, table) -> int      (a pctab offset, for pcvalue_runs)
        .inline_frames(func, sym_pc) -> list[SourceFrame]
        .sp_delta(func, pc) -> int             (-1 when the function has no pcsp table)
        .pcvalue_runs(table_off, entry) -> (starts, values)  (a whole table, decoded)
        .pcdata_value(func, table, pc) -> int  .funcdata_addr(func, index) -> int | None
    Func: entry, end, name, func_id, flag, and the raw _func fields
    SourceFrame: function, file, line, func_id, inlined
    PC_HEADER, func_struct(layout): the construct definitions
    PclntabError, UnsupportedPclntab, find_pclntab_magic(buffer) -> int
"""

from __future__ import annotations

import bisect
import struct
from array import array
from typing import Callable, Iterator

from gdbstub.symbols.gopclntab_layout import (  # noqa: F401  (re-exported: the reader's vocabulary)
    _FUNC_FIXED, _LAYOUTS, FUNC_FLAG_ASM, FUNC_FLAG_SPWRITE, FUNC_FLAG_TOPFRAME, FUNCDATA_INL_TREE,
    MAGIC_115, MAGIC_116, MAGIC_118, MAGIC_120, PC_HEADER, PCDATA_INL_TREE_INDEX, Func, PclntabError,
    SourceFrame, UnsupportedPclntab, find_pclntab_magic, func_struct,
)

ReadStatic = Callable[[int, int], bytes]
_PC_CACHE_SIZE = 1 << 16


class Pclntab:
    """A decoded view over the bytes of one .gopclntab (see the module docstring)."""

    def __init__(self, data: bytes, offset: int = 0, size: int | None = None, *, addr: int = 0,
                 text_start: int | None = None, gofunc: int | None = None,
                 read_static: ReadStatic | None = None) -> None:
        self._data = data
        self._base = offset
        self.size = len(data) - offset if size is None else size
        self.addr = addr
        if self.size < 8:
            raise PclntabError("too short for a .gopclntab header")
        magic, pad, min_lc, ptr_size = struct.unpack_from("<IHBB", data, offset)
        if magic == MAGIC_115:
            raise UnsupportedPclntab("Go 1.2-1.15 .gopclntab (magic 0xfffffffb) is not supported")
        if magic not in _LAYOUTS or pad != 0:
            raise PclntabError(f"not a .gopclntab (magic {magic:#x})")
        if ptr_size != 8:
            raise UnsupportedPclntab(f"pointer size {ptr_size} (only 64-bit targets)")
        self.layout = _LAYOUTS[magic]
        self.magic = magic
        self.quantum = min_lc
        header = PC_HEADER.parse(bytes(data[offset:offset + 72]))
        self.header = header
        self.nfunc: int = header.nfunc
        self.nfiles: int = header.nfiles
        self._funcnames = offset + header.funcname_offset
        self._cutab = offset + header.cu_offset
        self._filetab = offset + header.filetab_offset
        self._pctab = offset + header.pctab_offset
        self._pcln = offset + header.pcln_offset
        header_text = header.text_start or 0
        self.text_start: int = text_start if text_start is not None else header_text
        self.gofunc = gofunc
        self._read_static = read_static
        self._fixed = _FUNC_FIXED[self.layout]
        # functab: nfunc+1 (entry, funcoff) pairs; the last entry is the end of text.
        code = "Q" if self.layout == "1.16" else "I"
        width = 16 if self.layout == "1.16" else 8
        raw = data[self._pcln:self._pcln + (self.nfunc + 1) * width]
        table = array(code)
        table.frombytes(raw)
        self._entries = table[0::2]
        self._funcoffs = table[1::2]
        self._entry_base = 0 if self.layout == "1.16" else self.text_start
        self.text_end = self._entries[-1] + self._entry_base
        self._func_cache: dict[int, Func] = {}
        self._pc_cache: dict[tuple[int, int, int], int] = {}
        self._inline_cache: dict[tuple[int, int], list[SourceFrame]] = {}
        self._by_name: dict[str, list[int]] | None = None

    # --- functions ---------------------------------------------------------------------

    def func_index(self, pc: int) -> int:
        """Index of the function containing pc, or -1."""
        off = pc - self._entry_base
        if off < self._entries[0] or off >= self._entries[-1]:
            return -1
        return bisect.bisect_right(self._entries, off, 0, self.nfunc) - 1

    def func_at(self, pc: int) -> Func | None:
        i = self.func_index(pc)
        return None if i < 0 else self.func(i)

    def func(self, index: int) -> Func:
        f = self._func_cache.get(index)
        if f is None:
            off = self._pcln + self._funcoffs[index]
            fields = self._fixed.unpack_from(self._data, off)
            if self.layout == "1.20":
                (entry, name_off, args, deferreturn, pcsp, pcfile, pcln, npcdata, cu_offset,
                 start_line, func_id, flag, _pad, nfuncdata) = fields
            else:
                (entry, name_off, args, deferreturn, pcsp, pcfile, pcln, npcdata, cu_offset,
                 func_id, flag, _pad, nfuncdata) = fields
                start_line = 0
            entry += self._entry_base
            end = self._entries[index + 1] + self._entry_base
            f = Func(index, off - self._base, entry, end, name_off, args, deferreturn, pcsp,
                     pcfile, pcln, npcdata, cu_offset, start_line, func_id, flag, nfuncdata,
                     self._cstring(self._funcnames + name_off))
            self._func_cache[index] = f
        return f

    def funcs(self) -> Iterator[Func]:
        for i in range(self.nfunc):
            yield self.func(i)

    def func_entry(self, index: int) -> int:
        return self._entries[index] + self._entry_base

    def func_name_at_index(self, index: int) -> str:
        """The name of function `index` without decoding the rest of its _func."""
        off = self._pcln + self._funcoffs[index] + (8 if self.layout == "1.16" else 4)
        (name_off,) = struct.unpack_from("<i", self._data, off)
        return self._cstring(self._funcnames + name_off)

    def func_by_name(self, name: str) -> Func | None:
        """The lowest-addressed function of that name (see funcs_by_name)."""
        found = self.funcs_by_name(name)
        return found[0] if found else None

    def funcs_by_name(self, name: str) -> list[Func]:
        """All functions of a name, by address. Assembly functions share their name with
        their ABI wrapper (runtime.osyield and runtime.osyield.abi0 in the ELF symbols)."""
        if self._by_name is None:
            table: dict[str, list[int]] = {}
            for i in range(self.nfunc):
                table.setdefault(self.func_name_at_index(i), []).append(i)
            self._by_name = table
        return [self.func(i) for i in self._by_name.get(name, ())]

    def parse_func(self, func: Func):
        """The full construct parse of a _func (slow; for inspection and tests)."""
        start = self._base + func.offset
        return func_struct(self.layout).parse(bytes(self._data[start:start + 4096]))

    # --- pc-value tables ---------------------------------------------------------------

    def _pcvalue(self, table_off: int, entry: int, target: int) -> int:
        if table_off == 0:
            return -1
        # Goroutine stacks repeat the same few return addresses: memoise.
        key = (table_off, entry, target)  # tables are shared between functions
        cached = self._pc_cache.get(key)
        if cached is not None:
            return cached
        value = self._decode_pcvalue(table_off, entry, target)
        if len(self._pc_cache) >= _PC_CACHE_SIZE:
            self._pc_cache.clear()
        self._pc_cache[key] = value
        return value

    def _decode_pcvalue(self, table_off: int, entry: int, target: int) -> int:
        for value, end in self._pcvalue_steps(table_off, entry):
            if target < end:
                return value
        return -1

    def pcvalue_runs(self, table_off: int, entry: int) -> tuple[list[int], list[int]]:
        """A whole pcvalue table: (starts, values), where values[i] holds from starts[i] up
        to starts[i+1]; the last start is the end of the table (of the function's code), so
        len(starts) == len(values) + 1. Empty lists when there is no table."""
        if table_off == 0:
            return [], []
        starts, values = [entry], []
        for value, end in self._pcvalue_steps(table_off, entry):
            values.append(value)
            starts.append(end)
        return starts, values

    def _pcvalue_steps(self, table_off: int, entry: int):
        """Yield (value, end pc) for each run of a pcvalue table, as runtime.step decodes it:
        a zigzag varint value delta, then a varint pc delta in quanta; a 0 byte ends the
        table once the pc has moved past the entry."""
        data = self._data
        p = self._pctab + table_off
        quantum = self.quantum
        val = -1
        pc = entry
        while True:
            b = data[p]
            p += 1
            if b == 0 and pc != entry:
                return
            uv = b & 0x7F
            shift = 7
            while b & 0x80:
                b = data[p]
                p += 1
                uv |= (b & 0x7F) << shift
                shift += 7
            val += -(uv & 1) ^ (uv >> 1)
            b = data[p]
            p += 1
            pcd = b & 0x7F
            shift = 7
            while b & 0x80:
                b = data[p]
                p += 1
                pcd |= (b & 0x7F) << shift
                shift += 7
            pc += pcd * quantum
            yield val, pc

    def sp_delta(self, func: Func, pc: int) -> int:
        return self._pcvalue(func.pcsp, func.entry, pc)

    def pcdata_value(self, func: Func, table: int, pc: int) -> int:
        if table >= func.npcdata:
            return -1
        off = self._base + func.offset + self._fixed.size + 4 * table
        (table_off,) = struct.unpack_from("<I", self._data, off)
        return self._pcvalue(table_off, func.entry, pc)

    def funcdata_addr(self, func: Func, index: int) -> int | None:
        """Link address of funcdata `index`, or None."""
        if index >= func.nfuncdata:
            return None
        off = self._base + func.offset + self._fixed.size + 4 * func.npcdata
        if self.layout == "1.16":
            off += (self.addr + off - self._base) & 4  # align the pointer array to 8
            (ptr,) = struct.unpack_from("<Q", self._data, off + 8 * index)
            return ptr or None
        (rel,) = struct.unpack_from("<I", self._data, off + 4 * index)
        if rel == 0xFFFFFFFF or self.gofunc is None:
            return None
        return self.gofunc + rel

    # --- files and lines ---------------------------------------------------------------

    def file_name(self, func: Func, fileno: int) -> str:
        if fileno < 0:
            return "?"
        (off,) = struct.unpack_from("<I", self._data, self._cutab + 4 * (func.cu_offset + fileno))
        if off == 0xFFFFFFFF:
            return "?"
        return self._cstring(self._filetab + off)

    def func_line(self, func: Func, pc: int) -> tuple[str, int]:
        """file:line of pc inside func, as runtime.funcline1 computes it."""
        fileno = self._pcvalue(func.pcfile, func.entry, pc)
        line = self._pcvalue(func.pcln, func.entry, pc)
        if fileno == -1 or line == -1:
            return "?", 0
        return self.file_name(func, fileno), line

    def line_at(self, pc: int) -> tuple[str, int]:
        f = self.func_at(pc)
        return ("?", 0) if f is None else self.func_line(f, pc)

    # --- inlining ----------------------------------------------------------------------

    def _inline_entry(self, tree: int, ix: int) -> tuple[int, int, int]:
        """(func_id, name_off, parent_pc) of inline tree entry ix."""
        if self._read_static is None:
            raise PclntabError("no static-data reader: cannot read the inline tree")
        if self.layout == "1.20":
            func_id, _, _, _, name_off, parent_pc, _start = struct.unpack(
                "<BBBBiii", self._read_static(tree + 16 * ix, 16))
        else:
            _parent, func_id, _, _file, _line, name_off, parent_pc = struct.unpack(
                "<hBBiiii", self._read_static(tree + 20 * ix, 20))
        return func_id, name_off, parent_pc

    def inline_tree(self, func: Func) -> int | None:
        """Link address of func's inline tree, or None when nothing was inlined into it."""
        if func.nfuncdata <= FUNCDATA_INL_TREE or func.npcdata <= PCDATA_INL_TREE_INDEX:
            return None
        return self.funcdata_addr(func, FUNCDATA_INL_TREE)

    def inline_call(self, tree: int, ix: int) -> tuple[str, int]:
        """(callee, parent pc offset from the entry) of entry ix of an inline tree."""
        _, name_off, parent_pc = self._inline_entry(tree, ix)
        return self._cstring(self._funcnames + name_off), parent_pc

    def pcdata_table(self, func: Func, table: int) -> int:
        """Offset of func's pcdata table `table` in the pctab (for pcvalue_runs), 0 if none."""
        if table >= func.npcdata:
            return 0
        off = self._base + func.offset + self._fixed.size + 4 * table
        return struct.unpack_from("<I", self._data, off)[0]

    def inline_frames(self, func: Func, pc: int) -> list[SourceFrame]:
        """Logical frames at a symbolisation pc of func, innermost first (runtime's inlineUnwinder)."""
        key = (func.index, pc)
        cached = self._inline_cache.get(key)
        if cached is None:
            cached = self._inline_frames(func, pc)
            if len(self._inline_cache) >= _PC_CACHE_SIZE:
                self._inline_cache.clear()
            self._inline_cache[key] = cached
        return list(cached)

    def _inline_frames(self, func: Func, pc: int) -> list[SourceFrame]:
        frames: list[SourceFrame] = []
        tree = self.funcdata_addr(func, FUNCDATA_INL_TREE) \
            if func.nfuncdata > FUNCDATA_INL_TREE else None
        cur = pc
        if tree is not None:
            ix = self.pcdata_value(func, PCDATA_INL_TREE_INDEX, cur)
            while ix >= 0:
                func_id, name_off, parent_pc = self._inline_entry(tree, ix)
                file, line = self.func_line(func, cur)
                frames.append(SourceFrame(self._cstring(self._funcnames + name_off), file, line,
                                          func_id, True))
                cur = func.entry + parent_pc
                ix = self.pcdata_value(func, PCDATA_INL_TREE_INDEX, cur)
        file, line = self.func_line(func, cur)
        frames.append(SourceFrame(func.name, file, line, func.func_id, False))
        return frames

    def frames_at(self, pc: int) -> list[SourceFrame]:
        f = self.func_at(pc)
        return [] if f is None else self.inline_frames(f, pc)

    # --- helpers -----------------------------------------------------------------------

    def _cstring(self, pos: int) -> str:
        end = self._data.find(b"\0", pos)
        return self._data[pos:end].decode("utf-8", "replace")
