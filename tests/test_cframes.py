"""The C frame unwinder (gdbstub/symbols/cframes.py) on a real process.

tests/programs/sleeper.c sleeps in main -> outer -> inner -> sleep. Stopped there (ptrace
attach, PTRACE_GETREGS), its thread unwinds through libc's .eh_frame into the program's own
functions in the order the source calls them, then into libc's start-up code. Registers
that point nowhere end the walk without an error.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest
from ptrace.binding import ptrace_attach, ptrace_detach, ptrace_getregs

from gdbstub.symbols.cframes import RA, RBP, RSP, MappedObjects, unwind_c_frames
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
