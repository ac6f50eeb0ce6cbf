"""The Go symbol file (gdbstub/symbols/gosymfile.py) of a stripped build, against its DWARF twin.

Every check builds the symbol file from the *stripped* binary (-ldflags=-s -w: no .symtab, no
DWARF) and compares it with what Go's own tools made for the unstripped build of the same
source (same toolchain, same flags otherwise, so the same text layout and a byte-identical
.gopclntab, which is checked first):

- ELF and DWARF well-formed: readelf (sections, symbols, info, lines, frames) says nothing
  is wrong and pyelftools reads every DIE, line row and frame entry; the ELF type is the
  program's (ET_DYN for a PIE, so the symbols move with the load bias), as is the entry;
- .symtab: every function of the twin's .symtab (Go's linker's) at the same address with
  the same size and name (a few names .gopclntab cannot give are allowed to differ: the
  shapes of generic functions, and `.abi0` on a few assembly functions of Go <= 1.21);
- .debug_line: file:line at random PCs equal to `go tool addr2line`, and to the twin's own
  DWARF line table (Go's linker's, allowed a few rows' difference);
- .debug_info: the calls inlined into main.* (callee, call line, address ranges) equal to
  the twin's DW_TAG_inlined_subroutine entries;
- .debug_frame: the CFA rules equal to the twin's .debug_frame, function by function;
- write_symbol_file: an unwritable path raises and leaves nothing behind; a C program is
  refused.
"""

from __future__ import annotations

import bisect
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.dwarf.callframe import FDE
from elftools.elf.elffile import ELFFile

from gotoolchains import build, go_tool
from gdbstub.symbols.gobinary import GoBinary, NotGoBinary
from gdbstub.symbols.gosymfile import SymbolFile, write_symbol_file

# (Go minor, PIE): the three .gopclntab layouts (1.19; 1.21 and later), the ABI0 naming
# rules that changed after 1.21, and position-independent builds.
BUILDS = [("1.19", False), ("1.21", False), ("1.24", False), ("1.27", False), ("1.21", True),
          ("1.27", True)]
PROGRAM = "waiters"
SAMPLES = 1500
# Go's DWARF line table is made from the same tables as .gopclntab, but not by the same
# code: a handful of rows differ (addr2line, which reads .gopclntab, is the exact oracle).
DWARF_LINE_AGREEMENT = 0.99

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class Case:
    minor: str
    pie: bool
    twin: Path            # the unstripped build: Go's own .symtab and DWARF
    stripped: Path
    symbols: Path         # the symbol file, built from the stripped build
    built: SymbolFile


def _id(build_: tuple[str, bool]) -> str:
    return f"go{build_[0]}{'-pie' if build_[1] else ''}"


@pytest.fixture(scope="module", params=BUILDS, ids=[_id(b) for b in BUILDS])
def case(request, tmp_path_factory) -> Case:
    minor, pie = request.param
    twin = build(minor, PROGRAM, pie=pie)
    stripped = build(minor, PROGRAM, pie=pie, stripped=True)
    path = tmp_path_factory.mktemp(_id(request.param)) / "waiters.gosym"
    return Case(minor, pie, twin, stripped, path, write_symbol_file(GoBinary(stripped), path))


# --- readers of the two files (pyelftools: nothing of the project) --------------------------

def _functions(path: Path) -> list[tuple[str, int, int]]:
    """(name, address, size) of every STT_FUNC symbol."""
    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return [(s.name, s["st_value"], s["st_size"]) for s in symtab.iter_symbols()
                if s["st_info"]["type"] == "STT_FUNC"]


def _norm_file(name: str) -> str:
    return name[2:] if name.startswith("./") else name


@dataclass
class LineTable:
    """Rows as [start, end) address spans with their (file, line), sorted by address."""
    spans: list[tuple[int, int, str, int]]

    def __post_init__(self) -> None:
        self.spans.sort()
        self._starts = [s[0] for s in self.spans]

    def at(self, pc: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0 and self.spans[i][0] <= pc < self.spans[i][1]:
            return self.spans[i][2], self.spans[i][3]
        return None


def _line_table(path: Path) -> LineTable:
    spans = []
    with path.open("rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            version = program.header.version
            files, dirs = program["file_entry"], program["include_directory"]
            rows: list[tuple[int, str, int]] = []
            for entry in program.get_entries():
                state = entry.state
                if state is None:
                    continue
                if state.end_sequence:
                    ends = [r[0] for r in rows[1:]] + [state.address]
                    spans += [(a, end, n, ln) for (a, n, ln), end in zip(rows, ends) if end > a]
                    rows = []
                    continue
                # DWARF 5 numbers files and directories from 0; DWARF 4 from 1.
                fe = files[state.file] if version >= 5 else files[state.file - 1]
                name = fe.name.decode()
                if not name.startswith("/"):
                    if version >= 5:
                        name = dirs[fe.dir_index].decode() + "/" + name
                    elif fe.dir_index:
                        name = dirs[fe.dir_index - 1].decode() + "/" + name
                rows.append((state.address, _norm_file(name), state.line))
    return LineTable(spans)


def _merged(ranges) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and out[-1][1] == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _name(die) -> str:
    while "DW_AT_name" not in die.attributes:
        die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
    return die.attributes["DW_AT_name"].value.decode()


def _ranges(dwarf, cu, die) -> tuple[tuple[int, int], ...]:
    if "DW_AT_low_pc" in die.attributes:
        lo = die.attributes["DW_AT_low_pc"].value
        high = die.attributes["DW_AT_high_pc"]
        return ((lo, high.value if high.form == "DW_FORM_addr" else lo + high.value),)
    base = cu.get_top_DIE().attributes["DW_AT_low_pc"].value
    out = []
    for r in dwarf.range_lists().get_range_list_at_offset(die.attributes["DW_AT_ranges"].value,
                                                           cu=cu):
        if hasattr(r, "base_address"):
            base = r.base_address
            continue
        offset = 0 if getattr(r, "is_absolute", False) else base
        out.append((r.begin_offset + offset, r.end_offset + offset))
    return _merged(out)


def _inlined_calls(path: Path, prefix: str = "main.") -> set[tuple]:
    """(function, caller, callee, call line, ranges) of every call inlined into a function
    whose name starts with `prefix`."""
    found = set()
    with path.open("rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                if die.tag != "DW_TAG_subprogram" or "DW_AT_low_pc" not in die.attributes:
                    continue
                function = _name(die)
                if not function.startswith(prefix):
                    continue
                stack = [(child, function) for child in die.iter_children()]
                while stack:
                    child, caller = stack.pop()
                    if child.tag != "DW_TAG_inlined_subroutine":
                        continue
                    callee = _name(child)
                    found.add((function, caller, callee, child.attributes["DW_AT_call_line"].value,
                               _ranges(dwarf, cu, child)))
                    stack += [(grandchild, callee) for grandchild in child.iter_children()]
    return found


def _frame_rules(path: Path) -> dict[int, tuple[int, list[tuple[int, int, int]]]]:
    """FDE start -> (end, [(pc, CFA register, CFA offset)] where the rule changes)."""
    out = {}
    with path.open("rb") as f:
        for entry in ELFFile(f).get_dwarf_info().CFI_entries():
            if not isinstance(entry, FDE):
                continue
            start = entry["initial_location"]
            rules: list[tuple[int, int, int]] = []
            for row in entry.get_decoded().table:
                rule = (row["cfa"].reg, row["cfa"].offset)
                if not rules or rules[-1][1:] != rule:
                    rules.append((row["pc"], *rule))
            out[start] = (start + entry["address_range"], rules)
    return out


def _addr2line(case: Case, pcs: list[int]) -> list[tuple[str, int] | None]:
    """file:line of each pc from `go tool addr2line` on the twin; None where it has no line
    (the padding after a function's code: Go's tool says `:-1` there)."""
    lines = go_tool(case.minor, "addr2line", str(case.twin),
                    stdin="".join(f"{pc:#x}\n" for pc in pcs)).splitlines()
    assert len(lines) == 2 * len(pcs)
    out: list[tuple[str, int] | None] = []
    for where in lines[1::2]:
        file, _, line = where.rpartition(":")
        out.append(None if int(line) <= 0 else (file, int(line)))
    return out


# --- the checks -------------------------------------------------------------------------

def test_stripped_twin_shares_the_layout(case: Case) -> None:
    """The premise of every other check: the twin's answers hold for the stripped build."""
    with case.twin.open("rb") as a, case.stripped.open("rb") as b:
        twin, stripped = ELFFile(a), ELFFile(b)
        assert stripped.get_section_by_name(".symtab") is None
        assert stripped.get_section_by_name(".debug_info") is None
        # A PIE's is .data.rel.ro.gopclntab.
        pclntab = next(s.name for s in twin.iter_sections() if s.name.endswith(".gopclntab"))
        assert twin.get_section_by_name(pclntab).data() == \
            stripped.get_section_by_name(pclntab).data()
        for name in (".text",):
            sa, sb = twin.get_section_by_name(name), stripped.get_section_by_name(name)
            assert (sa["sh_addr"], sa["sh_size"]) == (sb["sh_addr"], sb["sh_size"])


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")
def test_readelf_reads_it_without_complaint(case: Case) -> None:
    run = subprocess.run(["readelf", "-W", "-h", "-S", "-s", "--debug-dump=info,rawline,"
                          "decodedline,frames,ranges,abbrev,str", str(case.symbols)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr.lower() and "error" not in run.stderr.lower(), run.stderr
    assert re.search(r"Type:\s+" + ("DYN" if case.pie else "EXEC"), run.stdout)
    assert "main.worker" in run.stdout


def test_elf_header_and_sections_follow_the_program(case: Case) -> None:
    with case.symbols.open("rb") as a, case.stripped.open("rb") as b:
        ours, program = ELFFile(a), ELFFile(b)
        assert ours.header.e_type == ("ET_DYN" if case.pie else "ET_EXEC")
        assert ours.header.e_entry == program.header.e_entry
        text, their_text = ours.get_section_by_name(".text"), program.get_section_by_name(".text")
        assert text["sh_type"] == "SHT_NOBITS"  # the code is not copied
        assert (text["sh_addr"], text["sh_size"]) == (their_text["sh_addr"],
                                                      their_text["sh_size"])
        # Every DIE and frame entry parses.
        dwarf = ours.get_dwarf_info()
        dies = sum(1 for cu in dwarf.iter_CUs() for _ in cu.iter_DIEs())
        assert dies > case.built.functions
        assert sum(1 for e in dwarf.CFI_entries() if isinstance(e, FDE)) > 0.95 * case.built.functions
    assert case.built.functions == GoBinary(case.stripped).pclntab.nfunc


def _same_name(ours: str, theirs: str, minor: str) -> bool:
    if ours == theirs:
        return True
    # .gopclntab writes a generic function's shape arguments as `[...]`.
    if "[...]" in ours:
        pattern = ".*".join(re.escape(part) for part in ours.split("[...]"))
        return re.fullmatch(pattern, theirs) is not None
    # Go <= 1.21 marks no assembly function as ABI0-only; the rule guesses (see gosymfile).
    old = tuple(map(int, minor.split("."))) <= (1, 21)
    return old and ours.removesuffix(".abi0") == theirs.removesuffix(".abi0")


def test_functions_match_the_twins_symtab(case: Case) -> None:
    theirs = {(addr, size): name for name, addr, size in _functions(case.twin)
              # the linker's markers of the text's bounds, not functions
              if name not in ("runtime.text", "runtime.etext")}
    ours = {(addr, size): name for name, addr, size in _functions(case.symbols)}
    assert len(ours) == case.built.functions
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:10]
    differ = [(ours[k], theirs[k]) for k in theirs if not _same_name(ours[k], theirs[k], case.minor)]
    assert not differ, differ[:10]
    exact = sum(1 for k in theirs if ours[k] == theirs[k])
    assert exact >= 0.98 * len(theirs)
    main = {k: name for k, name in theirs.items() if name.startswith("main.")}
    assert len(main) > 20
    assert all(ours[k] == name for k, name in main.items() if "[" not in name)


def test_lines_match_go_tool_addr2line(case: Case) -> None:
    ours = _line_table(case.symbols)
    functions = [(addr, size, name) for name, addr, size in _functions(case.twin) if size]
    rng = random.Random(_id((case.minor, case.pie)))
    pcs = [addr for addr, _, name in functions if name.startswith("main.")]
    for _ in range(SAMPLES):
        addr, size, _ = rng.choice(functions)
        pcs.append(addr + rng.randrange(size))
    expected = _addr2line(case, pcs)
    differ = [(hex(pc), want, got) for pc, want in zip(pcs, expected) if (got := ours.at(pc)) != want]
    assert not differ, f"{len(differ)}/{len(pcs)} differ, e.g. {differ[:5]}"
    assert sum(1 for e in expected if e is not None) > 0.9 * len(pcs)


def test_lines_match_the_twins_dwarf(case: Case) -> None:
    ours, theirs = _line_table(case.symbols), _line_table(case.twin)
    rng = random.Random(_id((case.minor, case.pie)))
    lo, hi = ours.spans[0][0], ours.spans[-1][1]
    pcs = [rng.randrange(lo, hi) for _ in range(SAMPLES)]
    compared = [(pc, want) for pc in pcs if (want := theirs.at(pc)) is not None]
    assert len(compared) > 0.9 * len(pcs)
    same = sum(1 for pc, want in compared if ours.at(pc) == want)
    assert same >= DWARF_LINE_AGREEMENT * len(compared), (same, len(compared))


def test_inlined_calls_match_the_twins_dwarf(case: Case) -> None:
    ours, theirs = _inlined_calls(case.symbols), _inlined_calls(case.twin)
    assert ours == theirs, (sorted(ours - theirs)[:5], sorted(theirs - ours)[:5])
    # sync.Mutex.Lock is inlined into main.locker in every release.
    assert any(call[:3] == ("main.locker", "main.locker", "sync.(*Mutex).Lock") for call in ours)


def test_frame_rules_match_the_twins_debug_frame(case: Case) -> None:
    """Every FDE says what Go's own does, but for runtime.asmcgocall's call into C: from that
    call to the instruction it returns to, the CFA is an expression that leads back to the
    goroutine's stack (checked on live processes in test_goroutines_live.py)."""
    ours, theirs = _frame_rules(case.symbols), _frame_rules(case.twin)
    assert set(ours) == set(theirs)
    asmcgocall = GoBinary(case.stripped).func_by_name("runtime.asmcgocall").entry
    differ = [hex(start) for start in theirs if ours[start] != theirs[start]]
    assert differ == [hex(asmcgocall)]
    end, rules = ours[asmcgocall]
    assert end == theirs[asmcgocall][0]
    switched = [pc for pc in range(asmcgocall, end) if _rule_at(rules, pc)[0] is None]
    assert switched and switched == list(range(switched[0], switched[-1] + 1))
    assert len(switched) in (2 + 1, 5 + 1)   # CALL AX or CALL rel32, and one byte after it
    assert all(_rule_at(rules, pc) == _rule_at(theirs[asmcgocall][1], pc)
               for pc in range(asmcgocall, end) if pc not in switched)


def _rule_at(rules: list[tuple[int, int, int]], pc: int) -> tuple[int, int]:
    return next(rule[1:] for rule in reversed(rules) if rule[0] <= pc)


def test_write_errors_leave_nothing_behind(case: Case, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_symbol_file(GoBinary(case.stripped), tmp_path / "missing" / "x.gosym")
    target = tmp_path / "x.gosym"
    target.write_bytes(b"old")
    write_symbol_file(GoBinary(case.stripped), target)
    assert target.read_bytes() == case.symbols.read_bytes()   # replaced whole, deterministic
    assert [p.name for p in tmp_path.iterdir()] == ["x.gosym"]


def test_a_c_program_is_refused(programs, tmp_path: Path) -> None:
    with pytest.raises(NotGoBinary):
        write_symbol_file(GoBinary(programs.simple), tmp_path / "c.gosym")
    assert not list(tmp_path.iterdir())
