"""The x86-64 GNU/Linux register table: gdb's amd64-linux numbering over ptrace's register sets.

Numbers, names, sizes and types follow the description gdbserver serves for amd64 GNU/Linux
(features core, sse, linux, segments and, with AVX, avx; the avx512 and pkeys features are left
out). Offsets are those of `struct user_regs_struct` (PTRACE_GETREGS, set 'gpr') and of the
FXSAVE/XSAVE area (PTRACE_GETFPREGS or PTRACE_GETREGSET NT_X86_XSTATE, set 'fp').
DWARF and .eh_frame numbers are the System V x86-64 psABI ones (the same for both).
"""

from __future__ import annotations

import functools

from gdbstub.arch import fxsave
from gdbstub.arch.registers import Register, RegisterTable

CORE = "org.gnu.gdb.i386.core"
SSE = "org.gnu.gdb.i386.sse"
LINUX = "org.gnu.gdb.i386.linux"
SEGMENTS = "org.gnu.gdb.i386.segments"
AVX = "org.gnu.gdb.i386.avx"

# struct user_regs_struct (<sys/user.h>): 27 unsigned longs in this order.
USER_REGS_FIELDS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
    "fs_base gs_base ds es fs gs"
).split()
USER_REGS_SIZE = 8 * len(USER_REGS_FIELDS)


def _gpr(name: str) -> int:
    return 8 * USER_REGS_FIELDS.index(name)


# gdb's general registers 0-15 with their psABI DWARF numbers and lldb roles.
_GENERAL = [
    ("rax", 0, None), ("rbx", 3, None), ("rcx", 2, "arg4"), ("rdx", 1, "arg3"),
    ("rsi", 4, "arg2"), ("rdi", 5, "arg1"), ("rbp", 6, "fp"), ("rsp", 7, "sp"),
    ("r8", 8, "arg5"), ("r9", 9, "arg6"), ("r10", 10, None), ("r11", 11, None),
    ("r12", 12, None), ("r13", 13, None), ("r14", 14, None), ("r15", 15, None),
]  # fmt: skip
_POINTER_TYPES = {"rbp": "data_ptr", "rsp": "data_ptr"}
# 32-bit in gdb, a zero-extended unsigned long in user_regs_struct; psABI numbers 49-55.
_SEGMENT_DWARF = {"cs": 51, "ss": 52, "ds": 53, "es": 50, "fs": 54, "gs": 55}
# x87 control registers 32-39: (name, offset in FXSAVE, slot bytes, codec, psABI number).
_X87_CONTROL = [
    ("fctrl", fxsave.FCTRL, 2, "zext", 65),
    ("fstat", fxsave.FSTAT, 2, "zext", 66),
    ("ftag", fxsave.FTAG, 1, "ftag", None),
    ("fiseg", fxsave.FISEG, 2, "zext", None),
    ("fioff", fxsave.FIOFF, 4, "plain", None),
    ("foseg", fxsave.FOSEG, 2, "zext", None),
    ("fooff", fxsave.FOOFF, 4, "plain", None),
    ("fop", fxsave.FOP, 2, "fop", None),
]
MXCSR_DWARF = 64
FS_BASE_DWARF, GS_BASE_DWARF = 58, 59


def _registers(has_avx: bool) -> list[Register]:
    regs: list[Register] = []

    def add(name: str, bitsize: int, type_: str, feature: str, regset: str, offset: int, *,
            group: str | None = None, dwarf: int | None = None, generic: str | None = None,
            codec: str = "plain", slot_size: int = 0, xstate: int = 0) -> None:  # fmt: skip
        regs.append(Register(
            name=name, bitsize=bitsize, type=type_, group=group, feature=feature,
            regnum=len(regs), regset=regset, offset=offset, dwarf=dwarf, ehframe=dwarf,
            generic=generic, codec=codec, slot_size=slot_size, xstate=xstate,
        ))  # fmt: skip

    for name, dwarf, generic in _GENERAL:
        type_ = _POINTER_TYPES.get(name, "int64")
        add(name, 64, type_, CORE, "gpr", _gpr(name), dwarf=dwarf, generic=generic)
    add("rip", 64, "code_ptr", CORE, "gpr", _gpr("rip"), dwarf=16, generic="pc")
    add("eflags", 32, "i386_eflags", CORE, "gpr", _gpr("eflags"), dwarf=49, generic="flags",
        codec="zext", slot_size=8)  # fmt: skip
    for name in ("cs", "ss", "ds", "es", "fs", "gs"):
        add(name, 32, "int32", CORE, "gpr", _gpr(name), dwarf=_SEGMENT_DWARF[name],
            codec="zext", slot_size=8)  # fmt: skip
    for i in range(8):
        offset = fxsave.ST_SPACE + 16 * i
        add(f"st{i}", 80, "i387_ext", CORE, "fp", offset, dwarf=33 + i, xstate=fxsave.X87)
    for name, offset, slot, codec, dwarf in _X87_CONTROL:
        add(name, 32, "int", CORE, "fp", offset, group="float", dwarf=dwarf,
            codec=codec, slot_size=slot, xstate=fxsave.X87)  # fmt: skip
    for i in range(16):
        offset = fxsave.XMM_SPACE + 16 * i
        add(f"xmm{i}", 128, "vec128", SSE, "fp", offset, dwarf=17 + i, xstate=fxsave.SSE)
    add("mxcsr", 32, "i386_mxcsr", SSE, "fp", fxsave.MXCSR, group="vector", dwarf=MXCSR_DWARF,
        xstate=fxsave.SSE)  # fmt: skip
    add("orig_rax", 64, "int", LINUX, "gpr", _gpr("orig_rax"))
    add("fs_base", 64, "int", SEGMENTS, "gpr", _gpr("fs_base"), dwarf=FS_BASE_DWARF)
    add("gs_base", 64, "int", SEGMENTS, "gpr", _gpr("gs_base"), dwarf=GS_BASE_DWARF)
    if has_avx:
        for i in range(16):
            # The upper halves have no DWARF number of their own (DWARF's 17-32 name the
            # whole xmm/ymm register).
            offset = fxsave.YMMH_SPACE + 16 * i
            add(f"ymm{i}h", 128, "uint128", AVX, "fp", offset, xstate=fxsave.AVX)
    return regs


@functools.cache
def _cached_table(has_avx: bool) -> tuple[Register, ...]:
    return tuple(_registers(has_avx))


def x86_64_table(has_avx: bool) -> RegisterTable:
    """The amd64 GNU/Linux register table, with the AVX upper halves when `has_avx`."""
    return RegisterTable(registers=list(_cached_table(has_avx)), has_avx=has_avx)


@functools.cache
def cpu_has_avx() -> bool:
    """True when this machine's kernel exposes AVX state (so NT_X86_XSTATE carries ymm).

    The kernel drops the `avx` flag from /proc/cpuinfo when it does not manage the AVX
    component with XSAVE, so the flag is exactly the condition we need.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False
