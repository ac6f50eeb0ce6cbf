"""What a SIGTRAP means: a breakpoint (the client's, reported or passed by its condition; the
server's own), a single step's end, a hardware breakpoint or watchpoint, a range step still in
its range, or a SIGTRAP the program was sent.

A mixin of `Inferior`: it uses the process's breakpoints, debug registers, run control and the
step-over of breakpoints nobody is told of (stepover.py).
"""

from __future__ import annotations

import logging
import signal

from . import ptrace_calls as pt
from .events import StopEvent, StopKind
from .threads import Thread

SI_KERNEL = 0x80
TRAP_BRKPT = 1
TRAP_TRACE = 2
TRAP_HWBKPT = 4

log = logging.getLogger("gdbstub.process")


class TrapHandling:
    """SIGTRAP handling for `Inferior` (which provides `breakpoints`, `hardware_checks`,
    `on_internal_breakpoint`, `_interrupt_requested`, the hardware and step-over mixins,
    `_keeping_stopped`, `_resume_quietly` and `_passes_quietly`)."""

    def _on_sigtrap(self, thread: Thread) -> None:
        info = pt.siginfo(thread.tid)
        resume = thread.resume
        if info.code == SI_KERNEL or info.code == TRAP_BRKPT:
            pc = thread.pc() - 1
            if pc in self.breakpoints:
                thread.set_pc(pc)
                if self.breakpoints.is_client(pc) and self._reports_hit(thread, self.breakpoints.check_at(pc)):
                    thread.pending = StopEvent(StopKind.BREAKPOINT, thread.tid, signal.SIGTRAP)
                    return
                if self.breakpoints.is_internal(pc):
                    event = self.on_internal_breakpoint(thread, pc) if self.on_internal_breakpoint else None
                    if event is not None:
                        thread.pending = event
                        return
                self._pass_breakpoint(thread, pc)
                return
            if self.breakpoints.was_removed(pc):
                # Its breakpoint was taken out after the thread hit it, before this trap was
                # handled: the original instruction is back, and the thread runs it as if the
                # breakpoint had never been there (as gdbserver drops such an event). Reported,
                # the stop would leave the PC inside that instruction.
                thread.set_pc(pc)
                self._resume_quietly(thread)
                return
            if info.code == SI_KERNEL:
                thread.pending = StopEvent(StopKind.TRAP, thread.tid, signal.SIGTRAP)
                return
        if info.code == TRAP_HWBKPT or (info.code == TRAP_TRACE and self._hw_hit(thread)):
            event = self._hardware_event(thread)
            if event is not None:
                if event.kind == StopKind.HW_BREAKPOINT \
                        and not self._reports_hit(thread, self.hardware_checks.get(thread.pc())):
                    # Resumed with RF set (see _run_thread), it does not trap here again.
                    if not self._keeping_stopped():
                        self._set_resume_flag_if_needed(thread)
                        self._resume_quietly(thread)
                    return
                thread.pending = event
                return
        if info.code == TRAP_TRACE or (resume is not None and resume.kind != "continue" and info.code > 0):
            if resume is not None and resume.kind == "range" and resume.start <= thread.pc() < resume.end \
                    and not self._interrupt_requested and thread.stop_requested is None:
                pt.singlestep(thread.tid, 0)
                thread.running = True
                thread.single_stepped = True
                return
            if resume is not None and resume.kind != "continue":
                thread.pending = StopEvent(StopKind.STEP, thread.tid, signal.SIGTRAP)
                return
        # A SIGTRAP sent by kill/tgkill, or raised by the program itself.
        if self._passes_quietly(thread, signal.SIGTRAP) and info.code <= 0:
            self._resume_quietly(thread, signal.SIGTRAP)
            return
        thread.pending = StopEvent(StopKind.SIGNAL, thread.tid, signal.SIGTRAP)

    def _reports_hit(self, thread: Thread, check) -> bool:
        """Whether a hit on a client breakpoint is reported: always, unless it has a check
        (a condition evaluated here, commands run here) that says otherwise."""
        if check is None:
            return True
        try:
            return bool(check(self, thread))
        except Exception:  # a fault in a check must not stop the tracer: the client decides
            log.exception("breakpoint check at 0x%x failed; reporting the hit", thread.pc())
            return True
