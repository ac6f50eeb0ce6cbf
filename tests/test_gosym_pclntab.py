"""The .gopclntab reader against the Go toolchain's own tools.

Ground truth: `go tool nm -size` (function ranges) and `go tool addr2line` of the *same*
toolchain, run on the DWARF build. The stripped twin (-ldflags='-s -w') is built from the
same source with the same flags otherwise; its .gopclntab and .text layout are checked to be
identical first, so the DWARF build's answers hold for it too (addr2line itself is wrong on
stripped cgo binaries: it takes .text as the text start).
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from gotoolchains import build, go_binary, go_tool
from gdbstub.symbols.elf_file import ElfFile
from gdbstub.symbols.gobinary import GoBinary, NotGoBinary
from gdbstub.symbols.gopclntab import (MAGIC_115, Pclntab, PclntabError, UnsupportedPclntab,
                                       func_struct)

BUILDS = [("1.19", False), ("1.21", False), ("1.24", False), ("1.25", False), ("1.27", False),
          ("1.27", True)]
SAMPLES = 2000


def _build_id(minor: str, cgo: bool) -> str:
    return f"go{minor}{'-cgo' if cgo else ''}"


@pytest.fixture(scope="module", params=BUILDS, ids=[_build_id(*b) for b in BUILDS])
def twin(request) -> tuple[str, bool, Path, Path]:
    minor, cgo = request.param
    return minor, cgo, build(minor, "waiters", cgo=cgo), build(minor, "waiters", cgo=cgo,
                                                                stripped=True)


def _nm_functions(minor: str, binary: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in go_tool(minor, "nm", "-size", "-sort", "address", str(binary)).splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in ("T", "t") and int(parts[1]) > 0:
            out.append((int(parts[0], 16), int(parts[1]), parts[3]))
    return out


def _addr2line(minor: str, binary: Path, pcs: list[int]) -> list[tuple[str, str, int]]:
    text = go_tool(minor, "addr2line", str(binary), stdin="".join(f"{pc:#x}\n" for pc in pcs))
    lines = text.splitlines()
    assert len(lines) == 2 * len(pcs)
    out = []
    for i in range(len(pcs)):
        file, _, line = lines[2 * i + 1].rpartition(":")
        # debug/gosym says ("", -1) for a function without pc-file/pc-line tables (such as
        # the go:textfipsend marker) where the runtime's funcline says ("?", 0); the
        # reader follows the runtime.
        if (file, line) == ("", "-1"):
            file, line = "?", "0"
        out.append((lines[2 * i], file, int(line)))
    return out


@pytest.fixture(scope="module")
def oracle(twin) -> tuple[list[int], list[tuple[str, str, int]]]:
    """SAMPLES random PCs inside nm's functions and addr2line's answers for them."""
    minor, cgo, dwarf, _ = twin
    funcs = _nm_functions(minor, dwarf)
    assert len(funcs) > 1000
    rng = random.Random(f"{minor}-{cgo}")
    pcs = []
    for _ in range(SAMPLES):
        addr, size, _name = rng.choice(funcs)
        pcs.append(addr + rng.randrange(size))
    return pcs, _addr2line(minor, dwarf, pcs)


def _ours(binary: GoBinary, pc: int) -> tuple[str, str, int]:
    f = binary.func_at(pc)
    if f is None:
        return "?", "?", 0
    file, line = binary.line_at(pc)
    return f.name, file, line


def test_stripped_twin_has_the_same_layout(twin):
    _, _, dwarf, stripped = twin
    with open(dwarf, "rb") as a, open(stripped, "rb") as b:
        ea, eb = ELFFile(a), ELFFile(b)
        assert eb.get_section_by_name(".symtab") is None
        assert eb.get_section_by_name(".debug_info") is None
        assert ea.get_section_by_name(".debug_info") is not None
        assert ea.get_section_by_name(".gopclntab").data() == \
            eb.get_section_by_name(".gopclntab").data()
        for name in (".text",):
            sa, sb = ea.get_section_by_name(name), eb.get_section_by_name(name)
            assert (sa["sh_addr"], sa["sh_size"]) == (sb["sh_addr"], sb["sh_size"])


@pytest.mark.parametrize("stripped", [False, True], ids=["dwarf", "stripped"])
def test_pc_to_function_file_line_matches_addr2line(twin, oracle, stripped):
    minor, _cgo, dwarf, stripped_path = twin
    binary = GoBinary(stripped_path if stripped else dwarf)
    pcs, expected = oracle
    mismatches = [(hex(pc), want, got) for pc, want in zip(pcs, expected)
                  if (got := _ours(binary, pc)) != want]
    assert not mismatches, f"{len(mismatches)}/{len(pcs)} differ, e.g. {mismatches[:5]}"
    # The sample must exercise real Go functions, not only "?" answers.
    assert sum(1 for e in expected if e[0] != "?") > 0.9 * len(pcs)


def test_function_names_resolve_to_nm_addresses(twin):
    minor, _cgo, dwarf, stripped = twin
    funcs = _nm_functions(minor, dwarf)
    starts = _addr2line(minor, dwarf, [addr for addr, _, _ in funcs])
    for binary in (GoBinary(dwarf), GoBinary(stripped)):
        checked = 0
        for (addr, _size, name), (a2l_name, _, _) in zip(funcs, starts):
            if a2l_name != name:
                continue  # a C function, or an alias that the Go table names differently
            # Assembly functions and their ABI wrappers share a name in .gopclntab.
            assert addr in [f.entry for f in binary.pclntab.funcs_by_name(name)], name
            checked += 1
        assert checked > 0.9 * len(funcs)


def test_symtab_lookup_matches_nm(twin):
    minor, _cgo, dwarf, _ = twin
    rows = [line.split(maxsplit=3) for line in
            go_tool(minor, "nm", "-size", str(dwarf)).splitlines()]
    rows = [r for r in rows if len(r) == 4 and r[0].strip()]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[3]] = counts.get(r[3], 0) + 1
    unique = [r for r in rows if counts[r[3]] == 1]
    elf = ElfFile(dwarf)
    for addr, size, _kind, name in random.Random(minor).sample(unique, 300):
        sym = elf.symbol(name)
        assert sym is not None, name
        assert (sym.value, sym.size) == (int(addr, 16), int(size)), name


def test_construct_definition_agrees_with_fast_path(twin):
    _, _, dwarf, _ = twin
    pcln = GoBinary(dwarf).pclntab
    for f in list(pcln.funcs())[::7]:
        parsed = pcln.parse_func(f)
        entry = parsed.entry if pcln.layout == "1.16" else parsed.entry + pcln.text_start
        assert (entry, parsed.name_off, parsed.pcsp, parsed.pcfile, parsed.pcln,
                parsed.npcdata, parsed.cu_offset, parsed.func_id, parsed.flag,
                parsed.nfuncdata) == (f.entry, f.name_off, f.pcsp, f.pcfile, f.pcln,
                                      f.npcdata, f.cu_offset, f.func_id, f.flag, f.nfuncdata)


def test_go_version_and_layout(twin):
    minor, _cgo, dwarf, stripped = twin
    for path in (dwarf, stripped):
        reported = subprocess.run([str(go_binary(minor)), "version", str(path)],
                                  capture_output=True, text=True, check=True).stdout
        binary = GoBinary(path)
        assert reported.split(": ", 1)[1].split()[0] == binary.version
        # The layout changed in 1.18 (magic 0xfffffff0) and 1.20 (0xfffffff1) and since.
        expected = "1.18" if tuple(map(int, minor.split("."))) < (1, 20) else "1.20"
        assert binary.pclntab.layout == expected


def test_go_build_id_matches_go_tool(twin):
    minor, _cgo, dwarf, stripped = twin
    for path in (dwarf, stripped):
        assert ElfFile(path).go_build_id() == go_tool(minor, "buildid", str(path)).strip()


def _without_section_headers(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(0x28)
        f.write(struct.pack("<Q", 0))      # e_shoff
        f.seek(0x3C)
        f.write(struct.pack("<HH", 0, 0))  # e_shnum, e_shstrndx
    return dst


def test_binary_without_section_headers(twin, oracle, tmp_path):
    minor, _cgo, _dwarf, stripped = twin
    bare = GoBinary(_without_section_headers(stripped, tmp_path / "bare"))
    assert bare.elf.sections() == []
    assert bare.version == GoBinary(stripped).version
    pcs, expected = oracle
    mismatches = [(hex(pc), want, got) for pc, want in zip(pcs[:500], expected)
                  if (got := _ours(bare, pc)) != want]
    assert not mismatches, mismatches[:5]


def test_inline_tree_expands_calls(twin):
    """main.inlineCaller inlines main.recvInline: some PC of it has both frames, and the
    outer frame's line is the line of the call in the source."""
    _, _, dwarf, stripped = twin
    source = (Path(__file__).parent / "goprograms" / "waiters" / "main.go").read_text()
    marks = {line.split("// MARK:")[1].strip(): n
             for n, line in enumerate(source.splitlines(), 1) if "// MARK:" in line}
    for path in (dwarf, stripped):
        binary = GoBinary(path)
        f = binary.func_by_name("main.inlineCaller")
        stacks = {tuple((s.function, s.line, s.inlined) for s in binary.frames_at(pc))
                  for pc in range(f.entry, f.end)}
        assert (("main.recvInline", marks["recvInline"], True),
                ("main.inlineCaller", marks["inlineCaller"], False)) in stacks


def test_unsupported_and_foreign_tables(twin):
    _, _, dwarf, _ = twin
    elf = ElfFile(dwarf)
    section = elf.section(".gopclntab")
    data = bytearray(elf.buffer[section.offset:section.offset + section.size])
    Pclntab(bytes(data), addr=section.addr)  # the real one parses
    data[0:4] = struct.pack("<I", MAGIC_115)
    with pytest.raises(UnsupportedPclntab):
        Pclntab(bytes(data))
    data[0:4] = b"\x7fELF"
    with pytest.raises(PclntabError):
        Pclntab(bytes(data))


def test_not_a_go_binary(tmp_path):
    src = tmp_path / "c.c"
    src.write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "c"), str(src)], check=True)
    binary = GoBinary(tmp_path / "c")
    assert binary.version is None
    with pytest.raises(NotGoBinary):
        binary.pclntab


def test_func_struct_layouts_have_runtime_sizes():
    # Fixed part of runtime._func: 40 bytes (1.18-1.19), 44 (1.20+), 44 with uintptr entry (1.16).
    zero = bytes(64)
    assert len(func_struct("1.18").build(func_struct("1.18").parse(zero))) == 40
    assert len(func_struct("1.20").build(func_struct("1.20").parse(zero))) == 44
    assert len(func_struct("1.16").build(func_struct("1.16").parse(zero))) == 44


def test_loading_the_go_command():
    """The `go` command (~17 MB) opens and answers lookups right; prints how long it took (the
    time is a figure, not a check: it depends on the machine)."""
    go = go_binary("1.27").resolve()
    start = time.perf_counter()
    binary = GoBinary(go)
    f = binary.func_at(binary.pclntab.text_start + 0x1000)
    assert f is not None
    binary.line_at(f.entry)
    elapsed = time.perf_counter() - start
    print(f"\nopen + first lookup in {go.stat().st_size / 1e6:.1f} MB go binary: "
          f"{elapsed * 1000:.1f} ms ({binary.pclntab.nfunc} functions)")
    # And it is right: 200 PCs against that toolchain's addr2line.
    funcs = _nm_functions("1.27", go)
    rng = random.Random(7)
    pcs = [a + rng.randrange(s) for a, s, _ in (rng.choice(funcs) for _ in range(200))]
    assert [_ours(binary, pc) for pc in pcs] == _addr2line("1.27", go, pcs)
