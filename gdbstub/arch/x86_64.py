"""The x86-64 GNU/Linux register table: gdb's amd64-linux numbering over ptrace's register sets.

Numbers, names, sizes and types follow the description gdbserver serves for amd64 GNU/Linux:
features core, sse, linux and segments always; avx, avx512 and pkeys when the CPU and the kernel
provide them. Offsets are those of `struct user_regs_struct` (PTRACE_GETREGS, set 'gpr') and of
the FXSAVE/XSAVE area (PTRACE_GETFPREGS or PTRACE_GETREGSET NT_X86_XSTATE, set 'fp'); the
extended XSAVE components sit where this CPU puts them (see xsave_layout).
DWARF and .eh_frame numbers are the System V x86-64 psABI ones (the same for both).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Mapping
from typing import NamedTuple

from gdbstub.arch import fxsave
from gdbstub.arch.registers import Register, RegisterTable
from gdbstub.arch.xsave_layout import cpu_layout

CORE = "org.gnu.gdb.i386.core"
SSE = "org.gnu.gdb.i386.sse"
LINUX = "org.gnu.gdb.i386.linux"
SEGMENTS = "org.gnu.gdb.i386.segments"
AVX = "org.gnu.gdb.i386.avx"
AVX512 = "org.gnu.gdb.i386.avx512"
PKEYS = "org.gnu.gdb.i386.pkeys"

# struct user_regs_struct (<sys/user.h>): 27 unsigned longs in this order.
USER_REGS_FIELDS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
    "fs_base gs_base ds es fs gs"
).split()
USER_REGS_SIZE = 8 * len(USER_REGS_FIELDS)


def user_regs_offset(name: str) -> int:
    """Where a register sits in struct user_regs_struct (PTRACE_GETREGS), in bytes."""
    return 8 * USER_REGS_FIELDS.index(name)


_gpr = user_regs_offset


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
XMM16_DWARF, K0_DWARF = 67, 118  # psABI: xmm16-31 are 67-82, k0-k7 are 118-125

Layout = Mapping[int, tuple[int, int]]  # XSTATE_BV bit -> (offset, size) in the XSAVE area


def _registers(has_avx: bool, has_avx512: bool, has_pkeys: bool, layout: Layout) -> list[Register]:
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
        ymmh = layout[fxsave.AVX][0]
        for i in range(16):
            # The upper halves have no DWARF number of their own (DWARF's 17-32 name the
            # whole xmm/ymm register).
            add(f"ymm{i}h", 128, "uint128", AVX, "fp", ymmh + 16 * i, xstate=fxsave.AVX)
    if has_avx512:
        # gdb splits the 32 zmm registers as xmm16-31, ymm16h-31h and zmm0h-31h, and
        # numbers them in that order with k0-k7 in between.
        opmask = layout[fxsave.OPMASK][0]
        zmm_hi256 = layout[fxsave.ZMM_HI256][0]
        hi16_zmm = layout[fxsave.HI16_ZMM][0]  # zmm16-31 whole, 64 bytes each
        for i in range(16):
            add(f"xmm{16 + i}", 128, "vec128", AVX512, "fp", hi16_zmm + 64 * i,
                dwarf=XMM16_DWARF + i, xstate=fxsave.HI16_ZMM)  # fmt: skip
        for i in range(16):
            add(f"ymm{16 + i}h", 128, "uint128", AVX512, "fp", hi16_zmm + 64 * i + 16,
                xstate=fxsave.HI16_ZMM)  # fmt: skip
        for i in range(8):
            add(f"k{i}", 64, "uint64", AVX512, "fp", opmask + 8 * i, dwarf=K0_DWARF + i,
                xstate=fxsave.OPMASK)  # fmt: skip
        for i in range(16):
            add(f"zmm{i}h", 256, "v2ui128", AVX512, "fp", zmm_hi256 + 32 * i,
                xstate=fxsave.ZMM_HI256)  # fmt: skip
        for i in range(16):
            add(f"zmm{16 + i}h", 256, "v2ui128", AVX512, "fp", hi16_zmm + 64 * i + 32,
                xstate=fxsave.HI16_ZMM)  # fmt: skip
    if has_pkeys:
        add("pkru", 32, "uint32", PKEYS, "fp", layout[fxsave.PKRU][0], xstate=fxsave.PKRU)
    return regs


@functools.cache
def _cached_table(has_avx: bool, has_avx512: bool, has_pkeys: bool,
                  layout: tuple[tuple[int, tuple[int, int]], ...]) -> tuple[Register, ...]:  # fmt: skip
    return tuple(_registers(has_avx, has_avx512, has_pkeys, dict(layout)))


def x86_64_table(
    has_avx: bool | None = None,
    has_avx512: bool | None = None,
    has_pkeys: bool | None = None,
    *,
    layout: Layout | None = None,
) -> RegisterTable:
    """The amd64 GNU/Linux register table with the AVX upper halves (`has_avx`), the AVX-512
    registers (`has_avx512`) and PKRU (`has_pkeys`).

    A feature left as None is what this machine has (`cpu_has_avx` and friends). AVX-512 and
    PKRU are read from the XSAVE area, which the process controller fetches only with AVX, so
    they need `has_avx`; without it a detected feature is left out and a requested one is a
    ValueError. `layout` places the extended XSAVE components; by default, where this CPU does.
    """
    if has_avx is None:
        has_avx = cpu_has_avx()
    if has_avx512 is None:
        has_avx512 = has_avx and cpu_has_avx512()
    if has_pkeys is None:
        has_pkeys = has_avx and cpu_has_pkeys()
    if (has_avx512 or has_pkeys) and not has_avx:
        raise ValueError("AVX-512 and PKRU live in the XSAVE area, which is read only with AVX")
    places = tuple(sorted((layout if layout is not None else cpu_layout()).items()))
    return RegisterTable(
        registers=list(_cached_table(has_avx, has_avx512, has_pkeys, places)),
        has_avx=has_avx, has_avx512=has_avx512, has_pkeys=has_pkeys, components=dict(places),
    )  # fmt: skip


# -- what this machine has ----------------------------------------------------------------------

SYS_ARCH_PRCTL = 158
ARCH_GET_XCOMP_SUPP = 0x1021  # Linux 5.16+: the XSAVE components the kernel gives user space


@functools.cache
def kernel_xfeatures() -> int | None:
    """The XSAVE components (XCR0 bits) the kernel manages for user space, which are the ones
    NT_X86_XSTATE describes; None when the kernel is too old to say."""
    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_uint64()
    if libc.syscall(SYS_ARCH_PRCTL, ARCH_GET_XCOMP_SUPP, ctypes.byref(value)) != 0:
        return None
    return value.value


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _has(flag: str, components: int) -> bool:
    # The kernel drops a feature's /proc/cpuinfo flag when it does not manage its XSAVE state
    # (e.g. booted with noxsave); ARCH_GET_XCOMP_SUPP, where there is one, says so directly.
    xfeatures = kernel_xfeatures()
    return flag in _cpu_flags() and (xfeatures is None or xfeatures & components == components)


def cpu_has_avx() -> bool:
    """True when this machine's kernel exposes AVX state (so NT_X86_XSTATE carries ymm)."""
    return _has("avx", fxsave.AVX)


def cpu_has_avx512() -> bool:
    """True when NT_X86_XSTATE carries the AVX-512 state (opmask, ZMM_Hi256, Hi16_ZMM)."""
    return _has("avx512f", fxsave.AVX512)


def cpu_has_pkeys() -> bool:
    """True when NT_X86_XSTATE carries PKRU: the kernel enabled protection keys (`ospke`,
    not merely `pku`, which only says the CPU has them)."""
    return _has("ospke", fxsave.PKRU)


class XStateFeatures(NamedTuple):
    has_avx: bool
    has_avx512: bool
    has_pkeys: bool


def xstate_features(area: bytes, layout: Layout | None = None) -> XStateFeatures:
    """The features an NT_X86_XSTATE area really holds: those in the XCR0 the kernel wrote into
    it, whose components also fit in its length. `x86_64_table(*xstate_features(area))` is then
    a table every register of which can be read from `area`."""
    places = layout if layout is not None else cpu_layout()
    xcr0 = fxsave.xcr0(area)

    def holds(components: int) -> bool:
        return xcr0 & components == components and all(
            len(area) >= places[bit][0] + places[bit][1]
            for bit in places
            if bit & components
        )

    avx = holds(fxsave.AVX)
    return XStateFeatures(avx, avx and holds(fxsave.AVX512), avx and holds(fxsave.PKRU))
