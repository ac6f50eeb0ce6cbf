"""The C frame unwinder (gdbstub/symbols/cframes.py) on a real process.

tests/programs/sleeper.c sleeps in main -> outer -> inner -> sleep. Stopped there (ptrace
attach, PTRACE_GETREGS), its thread unwinds through libc's .eh_frame into the program's own
functions in the order the source calls them, then into libc's start-up code. Registers
that point nowhere end the walk without an error.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from ptrace.binding import ptrace_attach, ptrace_detach, ptrace_getregs

from gdbstub.symbols import cframes
from gdbstub.symbols.cframes import RA, RBP, RSP, MappedObjects, ObjectFrames, unwind_c_frames
from gdbstub.symbols.elf_file import ElfFile, parse_proc_maps

_WALL = 0x40000000
_DWARF_GPRS = "rax rdx rcx rbx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip".split()


@pytest.fixture
def sleeping(programs):
    """(pid, registers in DWARF numbering, memory reader) of sleeper inside sleep()."""
    proc = subprocess.Popen([str(programs.sleeper)], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        # Wait until it blocks in the kernel (in nanosleep), not on its way there.
        for _ in range(500):
            if Path(f"/proc/{proc.pid}/stat").read_text().split(")")[1].split()[0] == "S":
                break
            os.sched_yield()
        ptrace_attach(proc.pid)
        os.waitpid(proc.pid, _WALL)
        regs = ptrace_getregs(proc.pid)
        mem = os.open(f"/proc/{proc.pid}/mem", os.O_RDONLY)
        try:
            yield (proc.pid, {n: getattr(regs, name) for n, name in enumerate(_DWARF_GPRS)},
                   lambda addr, size: _pread(mem, size, addr))
        finally:
            os.close(mem)
            ptrace_detach(proc.pid, 0)
    finally:
        proc.kill()
        proc.wait()


def _pread(fd: int, size: int, addr: int) -> bytes:
    try:
        return os.pread(fd, size, addr)
    except OSError:
        return b""


def _objects(pid: int) -> MappedObjects:
    objects = MappedObjects()
    objects.update(parse_proc_maps(Path(f"/proc/{pid}/maps").read_text()))
    return objects


def test_unwinds_from_libc_into_the_programs_calls(sleeping, programs):
    pid, regs, read = sleeping
    frames, at_end = unwind_c_frames(regs, read, _objects(pid), lambda pc: False)
    assert frames[0].pc == regs[RA]
    assert os.path.basename(frames[0].object).startswith("libc.so")
    names = [f.function for f in frames]
    ours = [f.function for f in frames if f.object == str(programs.sleeper)]
    # The program's frames, innermost first, as the source calls them; each at a return
    # address inside its function (an offset past its entry).
    assert ours[:3] == ["inner", "outer", "main"], names
    assert all(f.offset > 0 for f in frames[1:] if f.object == str(programs.sleeper))
    # Each of the program's frames is at the line of its call, in the source (built with -g):
    # inner calls sleep, outer calls inner, main calls outer.
    source = programs.source("sleeper.c")
    lines = source.read_text().splitlines()
    for f in frames:
        if f.object == str(programs.sleeper) and f.function in ("inner", "outer", "main"):
            assert f.line is not None and f.line[0] == str(source), f
            called = {"inner": "sleep(1000);", "outer": "inner();", "main": "outer();"}
            assert lines[f.line[1] - 1].strip() == called[f.function], f
    # An object without line tables gives none (Debian's libc keeps its debug info in a
    # separate file, which is not read).
    if ElfFile(frames[0].object).section(".debug_line") is None:
        assert frames[0].line is None
    assert "sleep" in names[:names.index("inner")], names
    # main returns into libc's start-up code; the walk ends there (no return address).
    below_main = frames[names.index("main") + 1:]
    assert below_main and all(os.path.basename(f.object).startswith("libc.so")
                              for f in below_main[:1]), frames
    assert at_end is None


def test_registers_that_point_nowhere_end_the_walk(sleeping):
    pid, regs, read = sleeping
    objects = _objects(pid)
    # A pc in no mapping: one frame, nothing known of it.
    frames, at_end = unwind_c_frames({RA: 0x1234, RSP: 0x1000}, read, objects, lambda pc: False)
    assert [(f.pc, f.function, f.object) for f in frames] == [(0x1234, None, "")]
    assert at_end is None
    # A real pc with a stack pointer that reads nothing: the frame, and no caller.
    frames, at_end = unwind_c_frames({**regs, RSP: 8, RBP: 8}, read, objects, lambda pc: False)
    assert len(frames) == 1 and frames[0].pc == regs[RA] and at_end is None
    # A stack of garbage words: the walk ends without an error, within its bound.
    garbage = dict(regs)
    garbage[RSP] = regs[RSP] - 4096   # below the stack pointer: stale or unmapped words
    frames, _ = unwind_c_frames(garbage, read, objects, lambda pc: False)
    assert 1 <= len(frames) <= 128
    # The walk stops at the first pc the caller calls its own (Go's text, for gocgo.py).
    main_pc = next(f.pc for f in unwind_c_frames(regs, read, objects, lambda pc: False)[0]
                   if f.function == "main")
    frames, at_end = unwind_c_frames(regs, read, objects, lambda pc: pc == main_pc)
    assert frames[-1].function == "outer" and at_end is not None and at_end[RA] == main_pc
    assert struct.unpack("<Q", read(at_end[RSP] - 8, 8))[0] == main_pc


_READELF_FDE = re.compile(r"^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)$", re.M)


@pytest.mark.parametrize("which", ["libc", "program"])
def test_each_fde_readelf_lists_is_found_at_its_addresses(which, programs, monkeypatch):
    """Through .eh_frame_hdr's table (only the entries asked for are parsed) and through a
    parse of the whole section (objects without the table), every FDE binutils' readelf
    lists in .eh_frame covers its first and last byte, and nothing covers the byte after
    a gap."""
    path = _libc_path() if which == "libc" else str(programs.sleeper)
    listing = subprocess.run(["readelf", "--debug-dump=frames", path], capture_output=True,
                             text=True).stdout  # exits 1 on warnings (a missing debuglink)
    # Only .eh_frame's part (a .debug_frame, if any, is listed after it).
    listing = listing.split("Contents of the .eh_frame section", 1)[1].split("Contents of the", 1)[0]
    fdes = [(int(o, 16), int(lo, 16), int(hi, 16)) for o, lo, hi in _READELF_FDE.findall(listing)]
    assert len(fdes) > (1000 if which == "libc" else 3), listing[:2000]
    covered = sorted((lo, hi) for _, lo, hi in fdes)
    gaps = [hi for (_, hi), (lo, _) in zip(covered, covered[1:]) if hi < lo][:50]
    indexed = ObjectFrames(ElfFile(path), 0)
    assert indexed._indexed is not None, "the object has an .eh_frame_hdr table"
    monkeypatch.setattr(cframes, "_eh_frame_index", lambda elf: None)
    parsed = ObjectFrames(ElfFile(path), 0)
    assert parsed._indexed is None
    for frames in (indexed, parsed):
        find = frames._indexed_fde if frames is indexed else frames._parsed_fde
        for offset, lo, hi in fdes:
            for link in (lo, hi - 1):
                found = find(link)
                assert found is not None and found[0] == lo and found[1].offset == offset, \
                    (hex(link), found)
        for after in gaps:
            assert find(after) is None, hex(after)


def _libc_path() -> str:
    for line in Path("/proc/self/maps").read_text().splitlines():
        if "/libc.so" in line or "/libc-" in line:
            return line.split()[-1]
    pytest.fail("no libc mapped in the test process")
