"""Forked and vforked children: held for the client, or let go without the parent's int3 bytes.

A fork copies the parent's memory, breakpoints included. With the client's fork events on
(gdb's fork-events+, vfork-events+) the fork is reported on the parent's thread and the child
joins the process set held stopped, with a copy of the parent's breakpoint and debug-register
tables, so the client can take them out and detach it, or keep debugging it. Otherwise the
child is let go at its first stop, its int3 bytes put back first. A vfork child shares the
parent's memory until it execs or exits: it shares the parent's breakpoint table too (one
int3 is both processes'), and letting it go leaves the parent's breakpoints in place.

A mixin of `Inferior` (which provides `threads`, `pid`, `settings`, `breakpoints`, `memory`,
`debug_registers` and the status-handling methods).
"""

from __future__ import annotations

import copy
import signal

from . import ptrace_calls as pt
from .events import StopEvent, StopKind
from .threads import Thread


class ForkHandling:
    def _on_fork(self, parent: Thread, vfork: bool) -> None:
        child_pid = pt.event_message(parent.tid)
        report = self.settings.report_vfork_events if vfork else self.settings.report_fork_events
        if self.on_fork is not None:
            self.on_fork(self, child_pid, vfork, report)
        if report:
            kind = StopKind.VFORKED if vfork else StopKind.FORKED
            parent.pending = StopEvent(kind, parent.tid, signal.SIGTRAP, child_pid=child_pid)
            return
        self._resume_quietly(parent)

    def unreported_fork_children(self) -> list[int]:
        """Children whose fork (or vfork) waits on a thread here, not reported yet: processes
        the client has not heard of (gdbserver's thread_pending_child)."""
        return [t.pending.child_pid for t in self.threads.values()
                if t.pending is not None and t.pending.kind in (StopKind.FORKED, StopKind.VFORKED)]

    def _on_vfork_done(self, thread: Thread) -> None:
        if self.settings.report_vfork_events:
            thread.pending = StopEvent(StopKind.VFORK_DONE, thread.tid, signal.SIGTRAP)
            return
        self._resume_quietly(thread)

    def become_fork_child_of(self, parent, vfork: bool, held: bool) -> None:
        """Set up a process just forked from `parent` (its first stop may not have come yet)."""
        thread = self.threads[self.pid]
        thread.running = thread.awaiting_first_stop = True
        self.breakpoints = parent.breakpoints if vfork else parent.breakpoints.copy_for(self.memory)
        self.debug_registers = copy.deepcopy(parent.debug_registers)
        self.quiet_runtime_sigurg = parent.quiet_runtime_sigurg
        self.shares_memory = vfork
        self.let_go_at_first_stop = not held
        self._held = True  # stopped until the client resumes it
        self.last_event = StopEvent(StopKind.SIGNAL, self.pid, signal.SIGSTOP)

    def _let_fork_child_go(self, thread: Thread) -> None:
        """The child nobody asked for, at its first stop: put the parent's int3 bytes back
        (they are the parent's too while a vfork child shares its memory) and detach it."""
        self.let_go_of_breakpoints()
        try:
            pt.detach(thread.tid, 0)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
        self.threads.clear()
        self.memory.close()
        self.exit_event = StopEvent(StopKind.EXITED, self.pid, pid=self.pid)  # gone for us
        self.exit_reported = True
        if self.on_released is not None:
            self.on_released(self)
