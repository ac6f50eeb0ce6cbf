"""An ELF symbol file for a Go program, built from its `.gopclntab`, for clients to load.

A Go binary linked with `-ldflags=-s -w` has no .symtab and no DWARF, so gdb and lldb show
`??` for every frame and cannot break by name or by line. Its .gopclntab still holds every
function's range, name, pc-to-file and pc-to-line tables, frame sizes and inlined calls; this
module turns them into what the clients read:

    .symtab/.strtab  an STT_FUNC symbol per function (entry, size of its code), named as Go's
                     linker names them (an assembly function's ABI0 body is `NAME.abi0` when
                     an ABIInternal function of the same name exists; Go <= 1.21 gets a few
                     of these wrong, see gofuncfacts.abi0_names; generic shapes stay `[...]`)
    .debug_info      a compile unit per Go package (pclntab's own units), a subprogram per
                     function (wrappers marked DW_AT_trampoline, as Go does), and the calls
                     inlined into it as DW_TAG_inlined_subroutine (so bt shows them)
    .debug_line      the pc-to-file and pc-to-line tables, one sequence per function, with
                     prologue_end where the frame set-up ends (gdb puts `break FUNC` there)
    .debug_frame     the CFA from the pcsp tables, as Go's linker derives it; for
                     runtime.asmcgocall's call into C, a CFA that leads back to the
                     goroutine's stack (gocgo.asmcgocall_frame_rows)
    .eh_frame        the program's own (its C code's frames, in a cgo program)
    .debug_abbrev, .debug_str, .debug_ranges
    .text            SHT_NOBITS at the program's address (nothing of the code is copied)
    notes            the program's GNU and Go build-id notes; without a GNU build id, a
                     .gnu_debuglink holding the program's CRC-32, which lldb takes as the
                     program's UUID, so `target symbols add` matches the two

The ELF type is the program's (ET_EXEC or ET_DYN), so a PIE's symbols move with its load
bias. There are no types and no variables: what .gopclntab does not have cannot be given.
Where .gopclntab lacks what DWARF has, this follows Go's own DWARF as far as the code
allows: every line row is a statement, and prologue_end is found from the pcsp table and
the instruction that allocates the frame (`sub`/`add` on rsp, or `mov rbp, rsp`).

API:
    build_symbol_file(binary: GoBinary) -> SymbolFile       (.data bytes, .functions, ...)
    write_symbol_file(binary, path) -> SymbolFile           (writes the file atomically)
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass

from gdbstub.symbols import dwarf_writer as dw
from gdbstub.symbols.elf_writer import (
    ET_DYN, ET_EXEC, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_NOTE, SHT_PROGBITS, SHT_STRTAB,
    SHT_SYMTAB, STB_GLOBAL, STT_FUNC, Section, StringTable, elf_symbols, write_elf,
)
from gdbstub.symbols.gobinary import GoBinary
from gdbstub.symbols.gocgo import asmcgocall_frame_rows
from gdbstub.symbols.gofuncfacts import Function, abi0_names, inline_tree, line_rows, package, prologue
from gdbstub.symbols.gopclntab import FUNC_FLAG_ASM

_FUNC_INFO = (STB_GLOBAL << 4) | STT_FUNC


@dataclass(frozen=True)
class SymbolFile:
    data: bytes
    functions: int
    compile_units: int
    inlined_calls: int
    line_rows: int


# --- the file ---------------------------------------------------------------------------

class _Builder:
    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self.pcln = binary.pclntab
        self.abbrev = dw.AbbrevTable()
        self.info = bytearray()
        self.line = bytearray()
        self.ranges = bytearray()
        self.frame = dw.FrameTable()
        self.debug_str = StringTable()
        self.line_rows = 0
        self.inlined_calls = 0
        a = self.abbrev
        self.ab_cu = a.add(dw.DW_TAG_COMPILE_UNIT, True, [
            (dw.DW_AT_NAME, dw.DW_FORM_STRP), (dw.DW_AT_LANGUAGE, dw.DW_FORM_DATA1),
            (dw.DW_AT_STMT_LIST, dw.DW_FORM_SEC_OFFSET), (dw.DW_AT_LOW_PC, dw.DW_FORM_ADDR),
            (dw.DW_AT_RANGES, dw.DW_FORM_SEC_OFFSET), (dw.DW_AT_COMP_DIR, dw.DW_FORM_STRING),
            (dw.DW_AT_PRODUCER, dw.DW_FORM_STRP)])
        self.ab_abstract = a.add(dw.DW_TAG_SUBPROGRAM, False, [
            (dw.DW_AT_NAME, dw.DW_FORM_STRP), (dw.DW_AT_INLINE, dw.DW_FORM_DATA1),
            (dw.DW_AT_EXTERNAL, dw.DW_FORM_FLAG_PRESENT)])
        # subprogram abbrevs by (has children, trampoline)
        self.ab_sub = {}
        for children in (False, True):
            for trampoline in (False, True):
                attrs = [(dw.DW_AT_NAME, dw.DW_FORM_STRP), (dw.DW_AT_LOW_PC, dw.DW_FORM_ADDR),
                         (dw.DW_AT_HIGH_PC, dw.DW_FORM_DATA4),
                         (dw.DW_AT_EXTERNAL, dw.DW_FORM_FLAG_PRESENT)]
                if trampoline:
                    attrs.append((dw.DW_AT_TRAMPOLINE, dw.DW_FORM_FLAG))
                self.ab_sub[children, trampoline] = a.add(dw.DW_TAG_SUBPROGRAM, children, attrs)
        # inlined-call abbrevs by (has children, one range)
        self.ab_inl = {}
        for children in (False, True):
            for single in (False, True):
                where = [(dw.DW_AT_LOW_PC, dw.DW_FORM_ADDR), (dw.DW_AT_HIGH_PC, dw.DW_FORM_DATA4)] \
                    if single else [(dw.DW_AT_RANGES, dw.DW_FORM_SEC_OFFSET)]
                self.ab_inl[children, single] = a.add(dw.DW_TAG_INLINED_SUBROUTINE, children, [
                    (dw.DW_AT_ABSTRACT_ORIGIN, dw.DW_FORM_REF4), *where,
                    (dw.DW_AT_CALL_FILE, dw.DW_FORM_UDATA), (dw.DW_AT_CALL_LINE, dw.DW_FORM_UDATA)])

    # --- facts ---

    def functions(self) -> list[Function]:
        pcln = self.pcln
        funcs = [pcln.func(i) for i in range(pcln.nfunc)]
        wrapper_id = self.binary.wrapper_func_id
        abi0, twins = abi0_names(pcln, funcs, wrapper_id)
        base = pcln.text_start
        text = self.binary.elf.read_static(base, pcln.text_end - base)
        out: list[Function] = []
        styles: Counter[str] = Counter()
        runs = pcln.pcvalue_runs
        for f in funcs:
            sp_starts, sp_values = runs(f.pcsp, f.entry)
            file_runs = runs(f.pcfile, f.entry)
            line_runs = runs(f.pcln, f.entry)
            # A function without tables is a marker (go:textfipsstart): Go's linker gives
            # it one byte.
            end = (sp_starts or line_runs[0] or [min(f.entry + 1, f.end)])[-1]
            rows = line_rows(f.entry, end, file_runs, line_runs)
            style, prologue_end = prologue(text, base, sp_starts, sp_values) \
                if sp_values else (None, None)
            if style and not f.flag & FUNC_FLAG_ASM:
                styles[style] += 1
            inlined = inline_tree(pcln, f, file_runs, line_runs) if f.nfuncdata else {}
            max_file = max(file_runs[1], default=-1) + 1
            for call in inlined.values():
                max_file = max(max_file, call.call_file)
            # The ELF name is the linker's: `·` (which .gopclntab keeps in a few generated
            # names, such as type:.eq.T·1) is written `.` there.
            symbol = f.name.replace("\u00b7", ".")
            out.append(Function(
                f, symbol + ".abi0" if f.index in abi0 else symbol, end, rows,
                prologue_end, sp_starts, sp_values,
                f.func_id == wrapper_id and f.func_id > 0 and f.name not in twins,
                inlined, max_file, style))
        # Hand-written assembly frames (signal trampolines) get no prologue_end from Go: an
        # assembly function whose set-up is not the compiler's style is one of them.
        usual = styles.most_common(1)[0][0] if styles else None
        for fn in out:
            if fn.func.flag & FUNC_FLAG_ASM and fn.style != usual:
                fn.prologue_end = None
        return out

    # --- DWARF ---

    def compile_unit(self, fns: list[Function], next_entries: dict[int, int]) -> None:
        pcln = self.pcln
        first = fns[0].func
        nfiles = max(fn.max_file for fn in fns)
        files = [pcln.file_name(first, i) for i in range(nfiles)]
        files = [name if name != "?" else "<unknown>" for name in files]
        # .debug_line
        program = dw.LineProgram(files)
        for fn in fns:
            if fn.rows:
                program.sequence(fn.rows, fn.end, fn.prologue_end)
                self.line_rows += len(fn.rows)
        stmt_list = len(self.line)
        self.line += program.data
        # .debug_ranges: the unit's functions, adjacent ones merged
        ranges_off = len(self.ranges)
        spans: list[list[int]] = []
        for fn in fns:
            lo, hi = fn.func.entry, next_entries.get(fn.func.entry, fn.end)
            if spans and spans[-1][1] == lo:
                spans[-1][1] = hi
            else:
                spans.append([lo, hi])
        self.ranges += b"".join(struct.pack("<QQ", lo, hi) for lo, hi in spans) + bytes(16)
        # .debug_info
        packages = Counter(package(fn.func.name) for fn in fns
                           if not fn.func.name.startswith(("type:", "type.", "go:", "go.")))
        name = packages.most_common(1)[0][0] if packages else package(first.name)
        producer = f"gdbstub, from the .gopclntab of {self.binary.version or 'Go'}"
        unit = bytearray()
        strp = self.debug_str.add
        unit += dw.uleb(self.ab_cu) + struct.pack("<IBIQI", strp(name), dw.DW_LANG_GO, stmt_list,
                                                  0, ranges_off)
        unit += b".\0" + struct.pack("<I", strp(producer))
        header_size = 11  # unit_length, version, abbrev offset, address size
        origins: dict[str, int] = {}
        for fn in fns:
            for call in fn.inlined.values():
                if call.callee not in origins:
                    origins[call.callee] = header_size + len(unit)
                    unit += dw.uleb(self.ab_abstract) + struct.pack("<IB", strp(call.callee),
                                                                    dw.DW_INL_INLINED)
        for fn in fns:
            f = fn.func
            children: dict[int, list[int]] = {}
            for ix, call in fn.inlined.items():
                children.setdefault(call.parent, []).append(ix)
            unit += dw.uleb(self.ab_sub[bool(children), fn.trampoline])
            unit += struct.pack("<IQI", strp(f.name), f.entry, fn.end - f.entry)
            if fn.trampoline:
                unit.append(1)
            if children:
                self._inlined(unit, fn, children, -1, origins)
                unit.append(0)
        unit.append(0)
        self.info += struct.pack("<IHIB", len(unit) + 7, 4, 0, 8) + unit

    def _inlined(self, unit: bytearray, fn: Function, children: dict[int, list[int]],
                 parent: int, origins: dict[str, int]) -> None:
        for ix in sorted(children.get(parent, ()), key=lambda i: fn.inlined[i].ranges[0][0]):
            call = fn.inlined[ix]
            self.inlined_calls += 1
            nested = ix in children
            single = len(call.ranges) == 1
            unit += dw.uleb(self.ab_inl[nested, single]) + struct.pack("<I", origins[call.callee])
            if single:
                lo, hi = call.ranges[0]
                unit += struct.pack("<QI", lo, hi - lo)
            else:
                unit += struct.pack("<I", len(self.ranges))
                self.ranges += b"".join(struct.pack("<QQ", lo, hi) for lo, hi in call.ranges)
                self.ranges += bytes(16)
            unit += dw.uleb(call.call_file) + dw.uleb(call.call_line)
            if nested:
                self._inlined(unit, fn, children, ix, origins)
                unit.append(0)

    def _stack_switch_rows(self, fn: Function) -> list[tuple[int, bytes]]:
        """Rows that unwind runtime.asmcgocall's switch to the system stack (gocgo.py), so a
        client's backtrace of a thread in a cgo call goes on into the goroutine's frames."""
        if fn.func.name != "runtime.asmcgocall" or not fn.func.flag & FUNC_FLAG_ASM:
            return []
        code = self.binary.elf.read_static(fn.func.entry, fn.end - fn.func.entry)
        return asmcgocall_frame_rows(code, fn.func.entry, fn.sp_starts[:-1], fn.sp_values)

    # --- ELF ---

    def build(self) -> SymbolFile:
        binary, pcln = self.binary, self.pcln
        fns = self.functions()
        entries = sorted(fn.func.entry for fn in fns)
        next_entries = dict(zip(entries, entries[1:] + [pcln.text_end]))
        units: dict[int, list[Function]] = {}
        for fn in fns:
            units.setdefault(fn.func.cu_offset, []).append(fn)
        for cu in sorted(units.values(), key=lambda u: u[0].func.entry):
            self.compile_unit(cu, next_entries)
        for fn in fns:
            if fn.sp_values:
                self.frame.fde(fn.func.entry, fn.end, fn.sp_starts[:-1], fn.sp_values,
                               self._stack_switch_rows(fn))

        elf = binary.elf
        sections: list[Section] = []
        for note in (".note.gnu.build-id", ".note.go.buildid"):
            s = elf.section(note)
            if s is not None and not s.nobits:
                sections.append(Section(note, SHT_NOTE, SHF_ALLOC, s.addr,
                                        bytes(elf.buffer[s.offset:s.offset + s.size]), align=4))
        eh_frame = elf.section_data(".eh_frame")
        if eh_frame:
            # The C code of a cgo program: once a client takes this file for the program's
            # symbols, this is where it finds how to unwind those frames.
            sections.append(Section(".eh_frame", SHT_PROGBITS, SHF_ALLOC,
                                    elf.section(".eh_frame").addr, bytes(eh_frame), align=8))
        text = elf.section(".text")
        text_addr, text_size = (text.addr, text.size) if text is not None else \
            (pcln.text_start, pcln.text_end - pcln.text_start)
        sections.append(Section(".text", SHT_NOBITS, SHF_ALLOC | SHF_EXECINSTR, text_addr,
                                size=text_size, align=64))
        text_index = len(sections)
        strtab = StringTable()
        symbols = [(fn.symbol, fn.func.entry, fn.end - fn.func.entry, _FUNC_INFO, text_index)
                   for fn in sorted(fns, key=lambda fn: fn.func.entry)]
        sections.append(Section(".symtab", SHT_SYMTAB, data=elf_symbols(symbols, strtab),
                                link=".strtab", info=1, align=8, entsize=24))
        sections.append(Section(".strtab", SHT_STRTAB, data=strtab.data))
        for name, data in ((".debug_abbrev", self.abbrev.data), (".debug_info", self.info),
                           (".debug_line", self.line), (".debug_str", self.debug_str.data),
                           (".debug_ranges", self.ranges), (".debug_frame", self.frame.data)):
            sections.append(Section(name, SHT_PROGBITS, data=bytes(data)))
        if elf.section(".note.gnu.build-id") is None:
            # lldb's UUID of an ELF file without a GNU build id is the CRC-32 of the file; of
            # one with a .gnu_debuglink, the CRC that section holds.
            name = b"gdbstub-go-symbols\0"
            name += bytes(-len(name) % 4)
            sections.append(Section(".gnu_debuglink", SHT_PROGBITS,
                                    data=name + struct.pack("<I", zlib.crc32(elf.buffer)),
                                    align=4))
        data = write_elf(ET_DYN if elf.is_pie else ET_EXEC, elf.entry, sections)
        return SymbolFile(data, len(fns), len(units), self.inlined_calls, self.line_rows)


def build_symbol_file(binary: GoBinary) -> SymbolFile:
    """The symbol file of a Go program (NotGoBinary if it has no .gopclntab)."""
    return _Builder(binary).build()


def write_symbol_file(binary: GoBinary, path: str | os.PathLike[str]) -> SymbolFile:
    """Build the symbol file and write it to `path` (replaced whole, never half-written)."""
    built = build_symbol_file(binary)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gosym-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(built.data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return built
