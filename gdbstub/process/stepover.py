"""Stepping a thread over one of the server's own breakpoints (not the client's): the original
byte goes back for one single step, which nothing waits for; the step's stop, arriving
through the tracer like any status, puts the int3 back and lets the thread go on as asked.
While the byte is out, the other threads a resume wants running are held back.

A mixin of `Inferior`: it uses the process's threads, breakpoints and run control.
"""

from __future__ import annotations

import os
import signal

from . import ptrace_calls as pt
from .events import StopEvent, StopKind
from .threads import Resume, Thread


class InternalStepOver:
    """Step-over support for `Inferior` (which provides `breakpoints`, `_stepping_over`,
    `_run_after_step_over`, `_on_thread_status`, `_resume_quietly`, `_run_thread`,
    `_signal_for_resume` and `_stopping_all`)."""

    def _begin_step_over(self, thread: Thread, action: Resume) -> None:
        """Single-step the instruction under one of our own breakpoints with its original
        byte back; the step's stop (a status like any other) finishes it. Nothing waits."""
        pc = thread.pc()
        self.breakpoints.lift(pc)
        thread.invalidate()
        try:
            pt.singlestep(thread.tid, self._signal_for_resume(thread, action.signal))
        except pt.PtraceError as exc:
            self.breakpoints.restore(pc)
            if not pt.is_gone(exc):
                raise
            return
        thread.running = True
        thread.single_stepped = True
        self._stepping_over[thread.tid] = (pc, action)

    def _finish_step_over(self, thread: Thread, status: int) -> None:
        pc, action = self._stepping_over.pop(thread.tid)
        self.breakpoints.restore(pc)
        stepped = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP
                   and (status >> 16) == 0)
        if not stepped:
            self._on_thread_status(thread, status)  # a signal, an exit: handled as ever
        else:
            thread.running = False
            thread.at_event_stop = False  # a step's SIGTRAP: a signal-delivery stop
            thread.invalidate()
            if action.kind == "step" or (action.kind == "range" and not action.start <= thread.pc() < action.end):
                thread.pending = StopEvent(StopKind.STEP, thread.tid, signal.SIGTRAP)
            else:
                self._resume_quietly(thread, resume=Resume(action.kind, 0, action.start, action.end))
        if not self._stepping_over:
            waiting, self._run_after_step_over = self._run_after_step_over, []
            if not self._stopping_all():
                for other, other_action in waiting:
                    if not other.running and other.pending is None and other.tid in self.threads:
                        self._run_thread(other, other_action)
