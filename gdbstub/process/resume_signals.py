"""The signal a resume gives a thread: the client's, one it passed earlier to a resume that left
the thread stopped (Thread.queued_signals), or one sent to the thread when the kernel would drop
it (an event stop).

A mixin of `Inferior`: it uses the process's pid.
"""

from __future__ import annotations

import dataclasses

from . import ptrace_calls as pt
from .threads import Resume, Thread


class ResumeSignals:
    """Signals given with resumes, for `Inferior` (which provides `pid`)."""

    def _signal_to_deliver(self, thread: Thread, action: Resume) -> int:
        """For PTRACE_CONT or PTRACE_SINGLESTEP of `thread` as `action` asks: its oldest queued
        signal first (the action's own, if any, queued behind it), else the action's."""
        sig = action.signal
        if thread.queued_signals:
            if sig:
                self._queue_signal(thread, action)
            sig, info = thread.queued_signals.pop(0)
            if info is not None and not thread.at_event_stop:
                # Stopped since with another signal, the thread would get this one with a
                # siginfo the kernel makes up (SI_USER, from us).
                try:
                    pt.set_siginfo(thread.tid, info)
                except pt.PtraceError as exc:
                    if not pt.is_gone(exc):
                        raise
        return self._signal_for_resume(thread, sig)

    def _queue_signal(self, thread: Thread, action: Resume) -> Resume:
        """Keep the signal `action` passes to a thread it does not run now (see
        Thread.queued_signals); returns the action without it."""
        if not action.signal:
            return action
        info = None
        if not thread.at_event_stop and not thread.awaiting_first_stop:
            try:
                current = pt.siginfo(thread.tid)
            except pt.PtraceError:
                current = None
            if current is not None and current.signo == action.signal:
                info = current.raw
        thread.queued_signals.append((action.signal, info))
        return dataclasses.replace(action, signal=0)

    def _signal_for_resume(self, thread: Thread, sig: int) -> int:
        """The signal to give PTRACE_CONT or PTRACE_SINGLESTEP. The kernel delivers one only
        from a signal-delivery stop; from an event stop (an interrupt, a new thread's first
        stop, exec) it drops it without a word. Then the signal is sent to the thread and
        passed on, unreported, when it arrives."""
        if sig and thread.at_event_stop:
            try:
                pt.tgkill(self.pid, thread.tid, sig)
            except ProcessLookupError:
                return sig  # gone: its exit status follows
            thread.injected_signal = sig
            return 0
        return sig
