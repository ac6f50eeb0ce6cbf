"""Software breakpoints: int3 bytes in the program's text, with the original bytes kept.

A breakpoint belongs to the client, to the server itself (internal: e.g. the Go runtime's fatal
panic entry points), or to both; its int3 stays while either owner wants it. Memory reads through
`shadow` show the original bytes, as gdb expects; writes over a breakpoint update the saved byte
and keep the int3 in place.

An int3 can vanish without a word to us: a library unloaded and another mapped at the same
address, or code the program rewrites. Where the int3 is gone, memory is shown as it is, an
insertion puts it back over the new bytes, and a removal leaves the new bytes alone (as
gdbserver's validate_inserted_breakpoint does).
"""

from __future__ import annotations

from collections.abc import Callable

from .memory import ProcessMemory

INT3 = b"\xcc"
# How many removed breakpoint addresses are remembered (see `was_removed`).
REMOVED_KEPT = 64


class BreakpointError(Exception):
    pass


# Asked when a thread hits a client breakpoint that has one: (process, thread) -> whether the
# client is told of the hit (its condition held) or the thread goes on.
Check = Callable[..., bool]


class SoftwareBreakpoints:
    def __init__(self, memory: ProcessMemory) -> None:
        self._memory = memory
        self._saved: dict[int, bytes] = {}
        self._client: set[int] = set()
        self._internal: set[int] = set()
        # Addresses whose int3 was taken out lately, oldest first.
        self._removed: dict[int, None] = {}
        self._checks: dict[int, Check] = {}
        # Inserted, with the original byte put back for a moment (see `lift`).
        self._lifted: set[int] = set()

    def __contains__(self, addr: int) -> bool:
        return addr in self._saved

    def __len__(self) -> int:
        return len(self._saved)

    def addresses(self) -> list[int]:
        return sorted(self._saved)

    def is_client(self, addr: int) -> bool:
        return addr in self._client

    def check_at(self, addr: int) -> Check | None:
        return self._checks.get(addr) if self._checks else None

    def set_check(self, addr: int, check: Check | None) -> None:
        """The client breakpoint at `addr` reports only when `check` says so (None: always)."""
        if check is None:
            self._checks.pop(addr, None)
        elif addr in self._client:
            self._checks[addr] = check

    @property
    def has_internal(self) -> bool:
        return bool(self._internal)

    def is_internal(self, addr: int) -> bool:
        return addr in self._internal

    def insert(self, addr: int, internal: bool = False) -> None:
        if addr in self._saved and addr not in self._lifted and self._memory.read(addr, 1) != INT3:
            del self._saved[addr]  # its int3 vanished (see the module's docstring): insert anew
        if addr not in self._saved:
            original = self._memory.read(addr, 1)
            if len(original) != 1:
                raise BreakpointError(f"cannot read memory at 0x{addr:x}")
            if self._memory.write(addr, INT3) != 1:
                raise BreakpointError(f"cannot write memory at 0x{addr:x}")
            self._saved[addr] = original
            self._removed.pop(addr, None)
        (self._internal if internal else self._client).add(addr)

    def remove(self, addr: int, internal: bool = False) -> bool:
        """Drop this owner's claim on `addr`, and the int3 with the last claim; False if this
        owner had no breakpoint there. BreakpointError if the memory there is gone (unmapped):
        the breakpoint is forgotten, but nothing could be put back."""
        owners = self._internal if internal else self._client
        if addr not in owners:
            return False
        owners.discard(addr)
        if not internal:
            self._checks.pop(addr, None)
        if addr in self._client or addr in self._internal:
            return True
        original = self._saved.pop(addr, None)
        if original is not None:
            self._put_back(addr, original)
            self._removed[addr] = None
            if len(self._removed) > REMOVED_KEPT:
                del self._removed[next(iter(self._removed))]
        return True

    def was_removed(self, addr: int) -> bool:
        """Whether a breakpoint of ours at `addr` was taken out lately and nothing put an int3
        back there: a thread that hit it just before (its trap not yet handled, threads
        running in non-stop mode) trapped on an int3 that is gone."""
        return addr in self._removed and addr not in self._saved and self._memory.read(addr, 1) != INT3

    def remove_client(self) -> None:
        """Take out every breakpoint the client set (its own will be re-sent if it comes back)."""
        for addr in list(self._client):
            try:
                self.remove(addr)
            except BreakpointError:
                pass  # its memory is gone, and its int3 with it

    def remove_all(self) -> None:
        for addr in list(self._saved):
            try:
                self._put_back(addr, self._saved.pop(addr))
            except BreakpointError:
                pass
        self._client.clear()
        self._internal.clear()
        self._checks.clear()

    def copy_for(self, memory: ProcessMemory) -> SoftwareBreakpoints:
        """The same breakpoints in a forked child's memory (which holds the same int3 bytes)."""
        twin = SoftwareBreakpoints(memory)
        twin._saved = dict(self._saved)
        twin._client = set(self._client)
        twin._internal = set(self._internal)
        twin._checks = dict(self._checks)
        twin._lifted = set(self._lifted)
        return twin

    def forget_all(self) -> None:
        """After exec the old text is gone: nothing to restore."""
        self._saved.clear()
        self._lifted.clear()
        self._client.clear()
        self._internal.clear()
        self._checks.clear()

    def _put_back(self, addr: int, original: bytes) -> None:
        """The original byte over our int3, unless the int3 is gone (lifted, its byte is back;
        or other bytes are there now). BreakpointError if the memory itself is gone."""
        if addr in self._lifted:
            self._lifted.discard(addr)
            return
        current = self._memory.read(addr, 1)
        if len(current) != 1:
            raise BreakpointError(f"cannot remove the breakpoint at 0x{addr:x}: its memory is gone")
        if current == INT3:
            self._memory.write(addr, original)

    def lift(self, addr: int) -> None:
        """Put the original byte back for a moment (stepping over an internal breakpoint)."""
        if addr in self._saved:
            self._memory.write(addr, self._saved[addr])
            self._lifted.add(addr)

    def restore(self, addr: int) -> None:
        self._lifted.discard(addr)
        if addr in self._saved:
            self._memory.write(addr, INT3)

    def shadow(self, addr: int, data: bytes) -> bytes:
        """Replace our int3 bytes in `data` (read from `addr`) by the original bytes."""
        if not self._saved or not data:
            return data
        end = addr + len(data)
        hits = [a for a in self._saved if addr <= a < end]
        if not hits:
            return data
        out = bytearray(data)
        for a in hits:
            if out[a - addr] == INT3[0]:  # else the int3 is gone: memory as it is now
                out[a - addr] = self._saved[a][0]
        return bytes(out)

    def write_through(self, addr: int, data: bytes) -> int:
        """Write program memory, keeping inserted breakpoints inserted."""
        end = addr + len(data)
        hits = [a for a in self._saved if addr <= a < end]
        if not hits:
            return self._memory.write(addr, data)
        out = bytearray(data)
        for a in hits:
            self._saved[a] = bytes([out[a - addr]])
            if a not in self._lifted:
                out[a - addr] = INT3[0]
        return self._memory.write(addr, bytes(out))
