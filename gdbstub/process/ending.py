"""Ending the debugging of a process: killing it, detaching from it (leaving no int3 byte,
debug register or queued trap behind), and taking out what a departed client set.

A mixin of `Inferior` (which provides `pid`, `threads`, `exit_event`, `memory`,
`breakpoints`, `stop_all` and the hardware and status-handling methods).
"""

from __future__ import annotations

import errno
import os
import signal

import trio

from . import ptrace_calls as pt
from .breakpoints import SoftwareBreakpoints
from .events import StopEvent, StopKind


class Ending:
    # Being killed or detached at the client's request: nothing of it is reported any more
    # (non-stop mode would otherwise report the kill's end, or a stop met on the way out).
    ending = False

    async def kill(self) -> None:
        self.ending = True
        if self.exit_event is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            with trio.move_on_after(10):
                while self.exit_event is None:
                    await self._changed.wait()
        self.exit_reported = True

    async def detach(self) -> list[int]:
        """Remove every trace of the debugger and let the process run on. Returns the fork
        children whose fork was never reported (it waited on a thread here): the client does
        not know them, so they are for the caller to let go too."""
        if self.exit_event is not None:
            return []
        self.ending = True
        await self.stop_all()
        unreported = self.unreported_fork_children()
        self.cleanup_before_release()
        for thread in list(self.threads.values()):
            sig = 0
            if thread.pending is not None and thread.pending.kind == StopKind.SIGNAL:
                sig = thread.pending.signal  # never reported: the client's list decides
                program = self.settings.program_signals
                if program is not None and sig not in program:
                    sig = 0
            sig = sig or thread.deferred_signal
            queued = [queued_sig for queued_sig, _ in thread.queued_signals]
            if not sig and queued:
                sig = queued.pop(0)
            try:
                pt.detach(thread.tid, sig)
                for later in queued:  # the client passed them all: the program gets them all
                    pt.tgkill(self.pid, thread.tid, later)
            except (pt.PtraceError, ProcessLookupError) as exc:
                if getattr(exc, "errno", None) not in (errno.ESRCH,):
                    raise
        self.threads.clear()
        self.memory.close()
        self.exit_event = StopEvent(StopKind.EXITED, self.pid)  # gone from our point of view
        self.exit_reported = True
        return unreported

    def forget_client(self) -> None:
        """The client left: take out what it set (breakpoints, debug registers); ours stay."""
        if self.exit_event is None:
            self.breakpoints.remove_client()
            self._clear_debug_registers()

    def cleanup_before_release(self) -> None:
        """Restore the program's bytes and debug registers before letting it go (a vfork
        child's memory is its parent's: the parent's breakpoints stay)."""
        if self.exit_event is None:
            self.let_go_of_breakpoints()
            self._clear_debug_registers()

    def let_go_of_breakpoints(self) -> None:
        """Put the original bytes back, unless the memory is a vfork parent's (shared, with
        one breakpoint table): then the parent's breakpoints stay, and this process drops
        its hold on them."""
        if self.shares_memory:
            self.breakpoints = SoftwareBreakpoints(self.memory)
            self.shares_memory = False
        else:
            self.breakpoints.remove_all()
