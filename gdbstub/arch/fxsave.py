"""The FXSAVE / XSAVE area as Linux ptrace hands it out, and gdb's view of the x87 state in it.

PTRACE_GETFPREGS returns the 512-byte FXSAVE image; PTRACE_GETREGSET NT_X86_XSTATE returns the
whole XSAVE area in its standard (non-compacted) form, whose first 512 bytes are that same image
and whose bytes 464-471 (FXSAVE's software-available part) carry the kernel's XCR0, the set of
components the area describes (gdb and gdbserver read it from there too).
gdb does not see the FXSAVE fields as they are stored: the tag word is the full two-bits-per-
register form (FXSAVE keeps one "not empty" bit per register), fop has eleven bits, and the
32-bit FIP/FDP offsets and their 16-bit selectors are read as gdbserver reads them. An XSAVE area
may also hold components in their *init state* (their XSTATE_BV bit clear), whose bytes are
meaningless; `normalized` replaces such components by their architectural init values so that
every reader of the buffer can simply slice it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

# Offsets inside the legacy (FXSAVE) region.
FCTRL = 0  # u16 control word
FSTAT = 2  # u16 status word; bits 11-13 are TOP
FTAG = 4  # u8 abridged tag word: bit i set = physical register i is not empty
FOP = 6  # u16, eleven bits of opcode
FIOFF = 8  # u32 instruction pointer offset
FISEG = 12  # u16 instruction pointer selector (bits 32-47 of the 64-bit FIP)
FOOFF = 16  # u32 operand pointer offset
FOSEG = 20  # u16 operand pointer selector (bits 32-47 of the 64-bit FDP)
MXCSR = 24  # u32
ST_SPACE = 32  # eight 80-bit registers, each in a 16-byte slot
XMM_SPACE = 160  # sixteen 16-byte registers
FXSAVE_SIZE = 512

XCR0_OFFSET = 464  # u64 the kernel stores in the software-available bytes: its XCR0

# Offsets inside the XSAVE header and the extended region (standard format). Where the
# extended components sit is the CPU's choice, reported by CPUID leaf 0xD (sub-leaf i: size in
# EAX, offset in EBX); these are Intel's, which AMD shares for AVX only (see xsave_layout).
XSTATE_BV = 512  # u64: which components are not in their init state
YMMH_SPACE = 576  # upper halves of ymm0-15, 16 bytes each
YMMH_END = YMMH_SPACE + 16 * 16
OPMASK_SPACE = 1088  # k0-k7, 8 bytes each
ZMM_HI256_SPACE = 1152  # upper 256 bits of zmm0-15, 32 bytes each
HI16_ZMM_SPACE = 1664  # the whole of zmm16-31, 64 bytes each
PKRU_SPACE = 2688  # the 32-bit PKRU, then 4 reserved bytes

# XSTATE_BV (and XCR0) component bits.
X87 = 1 << 0
SSE = 1 << 1
AVX = 1 << 2
OPMASK = 1 << 5
ZMM_HI256 = 1 << 6
HI16_ZMM = 1 << 7
PKRU = 1 << 9
AVX512 = OPMASK | ZMM_HI256 | HI16_ZMM  # XCR0 enables the three together or none (SDM 13.3)

# Extended components whose init value is all zeros: bit -> (offset, size) where Intel puts
# them (another CPU may place them elsewhere: see xsave_layout).
INTEL_COMPONENTS = {
    AVX: (YMMH_SPACE, 16 * 16),
    OPMASK: (OPMASK_SPACE, 8 * 8),
    ZMM_HI256: (ZMM_HI256_SPACE, 16 * 32),
    HI16_ZMM: (HI16_ZMM_SPACE, 16 * 64),
    PKRU: (PKRU_SPACE, 8),  # the architectural init value of PKRU is 0
}

# Architectural init values (Intel SDM vol. 1, 13.6 "Processor tracking of XSAVE-managed state").
FCTRL_INIT = 0x037F
MXCSR_INIT = 0x1F80

_TAG_VALID, _TAG_ZERO, _TAG_SPECIAL, _TAG_EMPTY = 0, 1, 2, 3


def is_xsave(area: bytes | bytearray) -> bool:
    """True when `area` is an XSAVE area (it extends past the FXSAVE image)."""
    return len(area) > FXSAVE_SIZE


def xcr0(area: bytes | bytearray) -> int:
    """The XSAVE components the kernel's area describes (XCR0); 0 for a bare FXSAVE image."""
    if not is_xsave(area):
        return 0
    return int.from_bytes(area[XCR0_OFFSET : XCR0_OFFSET + 8], "little")


def physical_tag(area: bytes | bytearray, physical: int) -> int:
    """The two-bit tag of a non-empty physical register i, classified from its contents.

    FXSAVE's abridged tag only records "empty or not"; the full tag word distinguishes valid,
    zero and special values, which is what FSAVE would have stored and what gdb displays.
    """
    top = (area[FSTAT] | area[FSTAT + 1] << 8) >> 11 & 7
    # FXSAVE stores the stack in ST(i) order, so physical register p lives in ST((p - top) & 7).
    base = ST_SPACE + 16 * ((physical - top) & 7)
    mantissa = int.from_bytes(area[base : base + 8], "little")
    exponent = int.from_bytes(area[base + 8 : base + 10], "little") & 0x7FFF
    integer_bit = mantissa >> 63
    if exponent == 0x7FFF:
        return _TAG_SPECIAL
    if exponent == 0:
        return _TAG_ZERO if mantissa == 0 else _TAG_SPECIAL
    return _TAG_VALID if integer_bit else _TAG_SPECIAL


def full_tag_word(area: bytes | bytearray) -> int:
    """The 16-bit tag word (two bits per physical register) gdb calls ftag."""
    abridged = area[FTAG]
    word = 0
    for physical in range(8):
        tag = physical_tag(area, physical) if abridged >> physical & 1 else _TAG_EMPTY
        word |= tag << (2 * physical)
    return word


def abridged_tag(word: int) -> int:
    """The FXSAVE tag byte for a full tag word: a register is present unless its tag is 3."""
    return sum(1 << physical for physical in range(8) if (word >> (2 * physical)) & 3 != _TAG_EMPTY)


def normalized(
    area: bytes | bytearray, components: Mapping[int, tuple[int, int]] = INTEL_COMPONENTS
) -> bytearray:
    """A copy of `area` in which every XSAVE component in its init state holds its init value.

    `components` places the extended components (bit -> (offset, size)), all zero-initialized.
    An FXSAVE image has no init-state notion and comes back as is.
    """
    out = bytearray(area)
    if not is_xsave(out):
        return out
    (bv,) = struct.unpack_from("<Q", out, XSTATE_BV)
    if not bv & X87:
        struct.pack_into("<HHBxHIHxxIHxx", out, 0, FCTRL_INIT, 0, 0, 0, 0, 0, 0, 0)
        out[ST_SPACE:XMM_SPACE] = bytes(XMM_SPACE - ST_SPACE)
    if not bv & SSE:
        out[XMM_SPACE : XMM_SPACE + 256] = bytes(256)
    if not bv & (SSE | AVX):
        # MXCSR belongs to both components; it is only in its init state when both are.
        struct.pack_into("<I", out, MXCSR, MXCSR_INIT)
    for bit, (offset, size) in components.items():
        # A component past the end of the area is one the kernel does not manage.
        if not bv & bit and len(out) >= offset + size:
            out[offset : offset + size] = bytes(size)
    return out


def mark_in_use(area: bytearray, components: int) -> None:
    """Set XSTATE_BV bits so that the kernel's XRSTOR loads those components from `area`."""
    if components and is_xsave(area):
        (bv,) = struct.unpack_from("<Q", area, XSTATE_BV)
        struct.pack_into("<Q", area, XSTATE_BV, bv | components)
