"""Stepping a thread over a breakpoint the client is not told of (one of the server's own, or a
client breakpoint whose condition was false or which ran its commands): the original byte goes
back for one single step, which nothing waits for; the step's stop, arriving through the
tracer like any status, puts the int3 back and lets the thread go on as asked.

While the byte is out no other thread may run, or one could pass that address unseen: a
resume holds the others back until the step is done, and a thread that passes a breakpoint
while others run first has them all stopped (it is the "holder" until they are), as
gdbserver does.

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
    `_signal_to_deliver`, `_unseen_signal`, `_send_interrupts`, `_all_stopped`,
    `_keeping_stopped` and `_stopping_all`)."""

    def _begin_step_over(self, thread: Thread, action: Resume) -> None:
        """Single-step the instruction under a breakpoint nobody is told of, with its original
        byte back; the step's stop (a status like any other) finishes it. Nothing waits."""
        pc = thread.pc()
        self.breakpoints.lift(pc)
        thread.invalidate()
        try:
            pt.singlestep(thread.tid, self._signal_to_deliver(thread, action))
        except pt.PtraceError as exc:
            self.breakpoints.restore(pc)
            if not pt.is_gone(exc):
                raise
            return
        thread.running = True
        thread.single_stepped = True
        self._stepping_over[thread.tid] = (pc, action)

    def _pass_breakpoint(self, thread: Thread, pc: int) -> None:
        """Let a thread stopped on the breakpoint at `pc` go on as if it had not been there."""
        thread.passed_breakpoint = pc
        if self._keeping_stopped():
            return  # it stays; the next resume steps it over (see Thread.passed_breakpoint)
        others_run = any(t.running and not t.unstoppable and t is not thread for t in self.threads.values())
        if not others_run and not self._stepping_over:
            thread.passed_breakpoint = None
            self._begin_step_over(thread, thread.resume or Resume("continue"))
            return
        self._holder = thread
        self._send_interrupts()
        self._check_hold()

    def _check_hold(self) -> None:
        """Once every thread has stopped for a holder, step it over its breakpoint and let
        the others go on after; if an event came meanwhile that stops the process (all-stop),
        everything stays stopped for it to be reported."""
        if not self._all_stopped():
            return
        holder, self._holder = self._holder, None
        if self._stopping_all():
            return
        waiting = [(t, t.resume) for t in self.threads.values()
                   if t is not holder and not t.running and t.pending is None and t.resume is not None
                   and not t.zombie and t.tid not in self._stepping_over and not self._stop_asked(t)]
        # Non-stop: a holder the client asked to stop meanwhile stays, told of it or to be;
        # the client's next resume steps it over.
        if holder.tid in self.threads and not holder.running and holder.passed_breakpoint is not None \
                and holder.pending is None and holder.resume is not None and not self._stop_asked(holder):
            holder.passed_breakpoint = None
            self._run_after_step_over.extend(waiting)
            self._begin_step_over(holder, holder.resume or Resume("continue"))
            return
        self._run_or_pass(waiting)

    def _run_or_pass(self, waiting: list[tuple[Thread, Resume]]) -> None:
        """Let threads held back go on; one left on a breakpoint it passed steps over it first
        (and holds the others again), rather than hitting it twice."""
        on_breakpoints = []
        for other, action in waiting:
            if other.running or other.pending is not None or other.tid not in self.threads \
                    or other.resume is None:
                continue  # it runs, has an event to tell, is gone, or the client holds it
            if self._stop_asked(other):
                continue
            passed = other.passed_breakpoint
            if passed is not None and passed in self.breakpoints and other.pc() == passed:
                on_breakpoints.append(other)
                continue
            other.passed_breakpoint = None
            self._run_thread(other, action)
        if on_breakpoints:
            self._pass_breakpoint(on_breakpoints[0], on_breakpoints[0].passed_breakpoint)

    @staticmethod
    def _stop_asked(thread: Thread) -> bool:
        """Non-stop: the client asked a thread held here to stop; it now has that stop to tell."""
        if thread.stop_requested is None:
            return False
        kind, stop_signal = thread.stop_requested
        thread.stop_requested = None
        thread.pending = StopEvent(kind, thread.tid, stop_signal)
        return True

    def _finish_step_over(self, thread: Thread, status: int) -> None:
        pc, action = self._stepping_over[thread.tid]
        if os.WIFSTOPPED(status) and status >> 16 == pt.PTRACE_EVENT_STOP:
            # An interrupt stopped the step before it began: one of ours (a hold), or one sent
            # just before an earlier trap, which the kernel kept. The byte is still out: step
            # again (one instruction; the thread stays stopped after it if it is to).
            thread.interrupt_sent = False
            thread.invalidate()
            pt.singlestep(thread.tid, 0)
            return
        if os.WIFSTOPPED(status) and status >> 16 == 0 and not thread.deferred_signal \
                and os.WSTOPSIG(status) != signal.SIGTRAP \
                and self._unseen_signal(thread, os.WSTOPSIG(status)):
            # A signal the program gets unseen (Go's preemption, one the client passes) came
            # before the instruction ran. Delivered now, its handler would return to the
            # breakpoint, which would be hit a second time (a condition evaluated again, a
            # dprintf printed twice, one of ours reported twice): it waits for the thread's
            # next continue, and the byte stays out for the step (see Thread.deferred_signal).
            thread.deferred_signal = os.WSTOPSIG(status)
            thread.invalidate()
            pt.singlestep(thread.tid, 0)
            return
        del self._stepping_over[thread.tid]
        if all(other_pc != pc for other_pc, _ in self._stepping_over.values()):
            # Threads stopped at one address step over it together: the int3 goes back after
            # the last, or one still to step would trap on it.
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
            elif thread.pending is not None or thread.resume is None:
                pass  # non-stop: the client asked it to stop during the step, and hears of it
            elif self._stepping_over:
                # Others still step over with a byte out: this one goes on with them after.
                self._run_after_step_over.append((thread, Resume(action.kind, 0, action.start, action.end)))
            else:
                self._resume_quietly(thread, resume=Resume(action.kind, 0, action.start, action.end))
        if not self._stepping_over:
            waiting, self._run_after_step_over = self._run_after_step_over, []
            if not self._keeping_stopped():
                self._run_or_pass(waiting)
