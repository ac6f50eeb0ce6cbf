"""Hardware breakpoints and watchpoints of a traced process: its debug-register table written
to every thread, the resume flag, and the decoding of a debug trap into a stop event.

A mixin of `Inferior`: it uses the process's threads and its `debug_registers` table.
"""

from __future__ import annotations

import signal

from . import ptrace_calls as pt
from .debugregs import DebugRegisterError, Watch
from .events import StopEvent, StopKind
from .threads import Thread


class HardwareBreakpoints:
    """Debug-register support for `Inferior` (which provides `threads` and `debug_registers`)."""

    def insert_watch(self, watch: Watch) -> None:
        """Reserve debug registers for `watch` and write them to every thread."""
        if not self.debug_registers.add(watch):
            return
        try:
            self._write_debug_registers()
        except pt.PtraceError as exc:
            self.debug_registers.remove(watch)
            self._write_debug_registers()
            raise DebugRegisterError(f"cannot set debug registers: {exc}") from None

    def remove_watch(self, watch: Watch) -> bool:
        """Take a watch out; False if no such watch was inserted."""
        if not self.debug_registers.remove(watch):
            return False
        self._write_debug_registers()
        return True

    def _write_debug_registers(self) -> None:
        for thread in self.threads.values():
            if not thread.running and not thread.awaiting_first_stop:
                self._apply_debug_registers(thread)

    def _apply_debug_registers(self, thread: Thread) -> None:
        try:
            self.debug_registers.apply(thread.tid)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise

    def _hw_hit(self, thread: Thread) -> bool:
        return self.debug_registers.active

    def _hardware_event(self, thread: Thread) -> StopEvent | None:
        hit = self.debug_registers.take_hit(thread.tid)
        if hit is None:
            return None
        index, slot = hit
        if slot.watch.kind == "exec":
            return StopEvent(StopKind.HW_BREAKPOINT, thread.tid, signal.SIGTRAP)
        kind = {"write": "watch", "read": "rwatch", "access": "awatch"}[slot.watch.kind]
        return StopEvent(StopKind.WATCHPOINT, thread.tid, signal.SIGTRAP,
                         watch_addr=slot.watch.addr, watch_type=kind, watch_slot=index)

    def _set_resume_flag_if_needed(self, thread: Thread) -> None:
        """An execution breakpoint at the PC would fire again at once: RF skips it one time."""
        if self.debug_registers.active and self.debug_registers.exec_slot_at(thread.pc()):
            gpr = bytearray(thread.gpr())
            eflags = int.from_bytes(gpr[18 * 8:18 * 8 + 8], "little") | (1 << 16)
            gpr[18 * 8:18 * 8 + 8] = eflags.to_bytes(8, "little")
            thread.set_gpr(bytes(gpr))

    def _clear_debug_registers(self) -> None:
        if self.debug_registers.active:
            self.debug_registers.clear()
            self._write_debug_registers()
