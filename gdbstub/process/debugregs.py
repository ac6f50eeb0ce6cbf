"""Hardware breakpoints and watchpoints through the x86 debug registers DR0-DR3, DR6, DR7.

Debug registers are per thread and not inherited by new threads, so the process keeps one table
of slots and writes it to every thread: when the table changes (all threads are stopped then) and
on each new thread's first stop. A range that is unaligned or longer than 8 bytes is split into
aligned pieces of 1, 2, 4 or 8 bytes; if the pieces do not fit in the free slots the request fails
as a whole and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ptrace_calls as pt

SLOTS = 4
DR6, DR7 = 6, 7
DR6_HIT_MASK = 0xF
DR7_RESERVED = 1 << 10  # reads back as 1; writing it is harmless

# RW field of DR7 per kind of access.
_RW = {"exec": 0b00, "write": 0b01, "access": 0b11, "read": 0b11}
_LEN = {1: 0b00, 2: 0b01, 4: 0b11, 8: 0b10}


class DebugRegisterError(Exception):
    """The request cannot be honoured (no free slot, bad length); the message says why."""


@dataclass(frozen=True)
class Watch:
    """One client request: kind is 'exec', 'write', 'read' or 'access'."""

    kind: str
    addr: int
    length: int


@dataclass(frozen=True)
class Slot:
    watch: Watch
    addr: int
    length: int


def split_range(addr: int, length: int) -> list[tuple[int, int]]:
    """Cover [addr, addr+length) with naturally aligned pieces of 1, 2, 4 or 8 bytes."""
    pieces = []
    end = addr + length
    while addr < end:
        for size in (8, 4, 2, 1):
            if addr % size == 0 and addr + size <= end:
                pieces.append((addr, size))
                addr += size
                break
    return pieces


class DebugRegisters:
    def __init__(self) -> None:
        self.slots: list[Slot | None] = [None] * SLOTS

    @property
    def active(self) -> bool:
        return any(self.slots)

    def watches(self) -> list[Watch]:
        seen: list[Watch] = []
        for slot in self.slots:
            if slot is not None and slot.watch not in seen:
                seen.append(slot.watch)
        return seen

    def add(self, watch: Watch) -> bool:
        """Reserve slots for `watch`; False if it was already there."""
        if watch in self.watches():
            return False
        if watch.length <= 0:
            raise DebugRegisterError("length must be positive")
        if watch.length > 8 * SLOTS:
            raise DebugRegisterError(f"{watch.length} bytes cannot be watched with {SLOTS} debug registers")
        if watch.kind == "exec":
            pieces = [(watch.addr, 1)]
        else:
            pieces = split_range(watch.addr, watch.length)
        free = [i for i, s in enumerate(self.slots) if s is None]
        if len(pieces) > len(free):
            raise DebugRegisterError(
                f"needs {len(pieces)} debug registers, {len(free)} free")
        for index, (addr, size) in zip(free, pieces):
            self.slots[index] = Slot(watch, addr, size)
        return True

    def remove(self, watch: Watch) -> bool:
        found = False
        for i, slot in enumerate(self.slots):
            if slot is not None and slot.watch == watch:
                self.slots[i] = None
                found = True
        return found

    def clear(self) -> None:
        self.slots = [None] * SLOTS

    def dr7(self) -> int:
        value = 0
        for i, slot in enumerate(self.slots):
            if slot is None:
                continue
            value |= 1 << (2 * i)  # local enable
            length_bits = 0 if slot.watch.kind == "exec" else _LEN[slot.length]
            value |= (_RW[slot.watch.kind] | (length_bits << 2)) << (16 + 4 * i)
        return value

    # -- per thread ------------------------------------------------------------------------
    def apply(self, tid: int) -> None:
        """Write the table to one stopped thread (DR7 last, after the addresses)."""
        pt.poke_user(tid, _offset(DR7), 0)
        for i, slot in enumerate(self.slots):
            pt.poke_user(tid, _offset(i), slot.addr if slot is not None else 0)
        pt.poke_user(tid, _offset(DR7), self.dr7())

    def take_hit(self, tid: int) -> tuple[int, Slot] | None:
        """Which slot fired in this thread (from DR6), clearing DR6 for the next time."""
        status = pt.peek_user(tid, _offset(DR6))
        if status & DR6_HIT_MASK:
            pt.poke_user(tid, _offset(DR6), 0)
        for i in range(SLOTS):
            slot = self.slots[i]
            if status & (1 << i) and slot is not None:
                return i, slot
        return None

    def exec_slot_at(self, pc: int) -> bool:
        return any(s is not None and s.watch.kind == "exec" and s.addr == pc for s in self.slots)


def _offset(index: int) -> int:
    return pt.DEBUGREG_OFFSET + 8 * index
