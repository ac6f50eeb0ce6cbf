"""Registers as gdb numbers them, and how each one maps onto the register sets ptrace reads.

A `Register` says where its value lives in one of the thread's register sets ('gpr' or 'fp')
and how the stored bytes become the value a client sees. A `RegisterTable` turns that into
single-register reads and writes (p/P) and the concatenated image of all registers (g/G),
always going through a `RegisterSets`, the process controller's view of one stopped thread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from gdbstub.arch import fxsave
from gdbstub.arch import target_xml as _xml

Regset = Literal["gpr", "fp"]

# How stored bytes become a register value:
#   plain  the value is the stored bytes (slot size == register size);
#   zext   little-endian integer stored in a slot of another width: zero-extended when read
#          from a narrower slot, only its own bytes written into a wider one;
#   fop    the eleven-bit x87 opcode in a 16-bit slot (a write keeps the slot's upper bits);
#   ftag   the full x87 tag word, computed from FXSAVE's abridged tag byte and the registers.
Codec = Literal["plain", "zext", "fop", "ftag"]


class RegisterSets(Protocol):
    """One stopped thread's register sets, as the process controller reads and writes them."""

    def read(self, regset: str) -> bytes: ...

    def write(self, regset: str, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    bitsize: int
    type: str  # gdb type name in target.xml
    group: str | None  # gdb register group, when gdb's own description names one
    feature: str  # target.xml feature, e.g. "org.gnu.gdb.i386.core"
    regnum: int  # gdb's (remote) register number
    regset: Regset
    offset: int  # byte offset inside the register set
    dwarf: int | None = None  # System V psABI DWARF number
    ehframe: int | None = None  # .eh_frame number (equal to DWARF on x86-64)
    generic: str | None = None  # lldb generic role: pc, sp, fp, flags, arg1..arg6
    codec: Codec = "plain"
    slot_size: int = 0  # bytes the value occupies in the register set; 0 means bitsize/8
    xstate: int = 0  # XSTATE_BV component bits that must be set once this register is written

    @property
    def size(self) -> int:
        return self.bitsize // 8

    @property
    def slot(self) -> int:
        return self.slot_size or self.size

    @property
    def lldb_encoding(self) -> str:
        """lldb's encoding name (qRegisterInfo `encoding:`), as lldb-server reports it."""
        return "vector" if self.bitsize > 64 else "uint"

    @property
    def lldb_format(self) -> str:
        """lldb's display format name (qRegisterInfo `format:`)."""
        return "vector-uint8" if self.bitsize > 64 else "hex"

    @property
    def lldb_set(self) -> str:
        """The register set name lldb groups this register under."""
        if self.feature.endswith(".avx"):
            return "Advanced Vector Extensions"
        if self.regset == "fp":
            return "Floating Point Registers"
        return "General Purpose Registers"

    def decode(self, area: bytes | bytearray) -> bytes:
        """The register's value (little-endian, `size` bytes) from its (normalized) set."""
        end = self.offset + self.slot
        if len(area) < end:
            raise ValueError(f"{self.regset} set of {len(area)} bytes has no room for {self.name}")
        if self.codec == "plain":
            return bytes(area[self.offset : end])
        if self.codec == "zext":
            return bytes(area[self.offset : end]).ljust(self.size, b"\0")[: self.size]
        if self.codec == "fop":
            value = int.from_bytes(area[self.offset : end], "little") & 0x7FF
            return value.to_bytes(self.size, "little")
        if self.codec == "ftag":
            return fxsave.full_tag_word(area).to_bytes(self.size, "little")
        raise AssertionError(self.codec)

    def encode(self, area: bytearray, value: bytes) -> bool:
        """Store `value` (little-endian, `size` bytes) into its set, in place; True if that
        changed the stored bytes."""
        if len(value) != self.size:
            raise ValueError(f"{self.name} takes {self.size} bytes, got {len(value)}")
        end = self.offset + self.slot
        if len(area) < end:
            raise ValueError(f"{self.regset} set of {len(area)} bytes has no room for {self.name}")
        before = bytes(area[self.offset : end])
        if self.codec == "plain":
            area[self.offset : end] = value
        elif self.codec == "zext" and self.slot > self.size:
            # A 32-bit register in a 64-bit slot: the kernel keeps the upper half zero, and
            # like gdbserver we write only the value's own bytes.
            area[self.offset : self.offset + self.size] = value
        elif self.codec == "zext":
            area[self.offset : end] = value[: self.slot]
        elif self.codec == "fop":
            (old,) = struct.unpack_from("<H", area, self.offset)
            new = (int.from_bytes(value, "little") & 0x7FF) | (old & 0xF800)
            struct.pack_into("<H", area, self.offset, new)
        elif self.codec == "ftag":
            area[self.offset] = fxsave.abridged_tag(int.from_bytes(value, "little"))
        else:
            raise AssertionError(self.codec)
        return area[self.offset : end] != before


@dataclass
class RegisterTable:
    registers: list[Register]
    has_avx: bool
    has_avx512: bool = False
    has_pkeys: bool = False
    # Where the extended XSAVE components are (bit -> (offset, size)), to put those in their
    # init state at their init value when reading.
    components: Mapping[int, tuple[int, int]] = field(default_factory=lambda: dict(fxsave.INTEL_COMPONENTS))
    # Registers gdb wants in every stop reply (T packet), by gdb number: rbp, rsp, rip.
    expedite: tuple[int, ...] = (6, 7, 16)
    _by_number: dict[int, Register] = field(init=False, repr=False)
    _by_name: dict[str, Register] = field(init=False, repr=False)
    _g_offsets: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.registers = sorted(self.registers, key=lambda r: r.regnum)
        numbers = [r.regnum for r in self.registers]
        # The g packet is the registers in number order with nothing in between, so the
        # numbers must be dense from 0.
        if numbers != list(range(len(numbers))):
            raise ValueError(f"register numbers must be 0..n-1 without gaps, got {numbers}")
        self._by_number = {r.regnum: r for r in self.registers}
        self._by_name = {r.name: r for r in self.registers}
        offset, self._g_offsets = 0, {}
        for r in self.registers:
            self._g_offsets[r.regnum] = offset
            offset += r.size

    def by_number(self, n: int) -> Register | None:
        return self._by_number.get(n)

    def by_name(self, name: str) -> Register | None:
        return self._by_name.get(name)

    def g_offset(self, regnum: int) -> int:
        """Where a register's value starts in the 'g' packet's register image (lldb's
        qRegisterInfo offset). KeyError if unknown."""
        return self._g_offsets[regnum]

    @property
    def g_size(self) -> int:
        """Bytes in the 'g' packet's register image."""
        return sum(r.size for r in self.registers)

    def _lookup(self, regnum: int) -> Register:
        reg = self._by_number.get(regnum)
        if reg is None:
            raise KeyError(f"no register number {regnum}")
        return reg

    def _read_set(self, regs: RegisterSets, regset: str) -> bytearray:
        data = regs.read(regset)
        # Only the fp set has init-state components; normalizing a gpr set would be a copy.
        return fxsave.normalized(data, self.components) if regset == "fp" else bytearray(data)

    def read_register(self, regs: RegisterSets, regnum: int) -> bytes:
        """One register's value, little-endian, bitsize/8 bytes. KeyError if unknown."""
        reg = self._lookup(regnum)
        return reg.decode(self._read_set(regs, reg.regset))

    def read_registers(self, regs: RegisterSets, regnums: Sequence[int]) -> list[bytes]:
        """Several registers' values, reading each register set once (e.g. the expedited ones)."""
        wanted = [self._lookup(n) for n in regnums]
        areas = {name: self._read_set(regs, name) for name in {r.regset for r in wanted}}
        return [r.decode(areas[r.regset]) for r in wanted]

    def write_register(self, regs: RegisterSets, regnum: int, value: bytes) -> None:
        """Set one register. KeyError if unknown, ValueError if `value` has the wrong size."""
        reg = self._lookup(regnum)
        area = self._read_set(regs, reg.regset)
        if reg.encode(area, value):
            fxsave.mark_in_use(area, reg.xstate)
            regs.write(reg.regset, bytes(area))

    def read_all(self, regs: RegisterSets) -> bytes:
        """The 'g' packet's raw bytes: every register's value, in register-number order."""
        areas = {name: self._read_set(regs, name) for name in self._regset_names()}
        return b"".join(r.decode(areas[r.regset]) for r in self.registers)

    def write_all(self, regs: RegisterSets, data: bytes) -> None:
        """Apply a 'G' packet's raw bytes. ValueError if `data` is not exactly g_size bytes."""
        if len(data) != self.g_size:
            raise ValueError(f"register image must be {self.g_size} bytes, got {len(data)}")
        for name in self._regset_names():
            area = self._read_set(regs, name)
            changed = False
            touched = 0
            pos = 0
            for reg in self.registers:
                if reg.regset == name and reg.encode(area, data[pos : pos + reg.size]):
                    changed = True
                    touched |= reg.xstate
                pos += reg.size
            if changed:
                fxsave.mark_in_use(area, touched)
                regs.write(name, bytes(area))

    def _regset_names(self) -> list[str]:
        return sorted({r.regset for r in self.registers}, key=["gpr", "fp"].index)

    def target_xml(self, architecture: str = "i386:x86-64", lldb_attributes: bool = False) -> str:
        """The whole target description as one document (see `target_xml.render`)."""
        return _xml.render(self, architecture, lldb_attributes=lldb_attributes)
