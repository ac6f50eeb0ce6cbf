"""Stopping every thread of a traced process: interrupting the running ones and collecting
their stops, within a bounded time.

A few threads' stops are collected by spinning on waitpid (faster than a trip through the
event loop); many come in batches through the tracer between turns of the loop. A thread that
cannot stop (uninterruptible sleep) is left out after STOP_TIMEOUT and said so.

A mixin of `Inferior`: it uses the process's threads, its tracer's `poll`, and its events.
"""

from __future__ import annotations

import logging
import os
import time

import trio

from . import procfs
from . import ptrace_calls as pt
from .events import StopEvent, StopKind
from .threads import Thread

# How many times to poll waitpid (yielding the CPU in between) before waiting on SIGCHLD.
SPINS = 64
# Above this many threads to stop, a stop is not spun for (see _spins_for_stop).
SPIN_THREADS = 32
# The longest a spin may keep the event loop (and a client's 0x03) waiting, in seconds.
SPIN_BUDGET = 0.002
# How long a stop request may go unanswered by a thread before the stop is reported without
# it (a thread in uninterruptible sleep, e.g. a vfork parent, stops only when it leaves it).
STOP_TIMEOUT = 5.0

log = logging.getLogger("gdbstub.process")


class AllStop:
    """All-stop support for `Inferior` (which provides `threads`, `pid`, `poll`, `exit_event`,
    `settings`, `_changed` and `_process_events`)."""

    def _spin_until(self, done, spins: int) -> None:
        poll = self.poll
        if poll is None or spins <= 0:
            return
        # A yield can hand the CPU to a busy tracee for a whole time slice: the spin is cut
        # short by time too, so a program that does not stop soon costs the client little.
        deadline = time.monotonic() + SPIN_BUDGET
        for _ in range(spins):
            if done():
                return
            poll()
            if done() or time.monotonic() > deadline:
                return
            os.sched_yield()

    def _spins_for_stop(self, spins: int) -> int:
        """Spinning pays for a few threads; many stops are collected in batches by the tracer
        between turns of the event loop instead, which stays free for the client."""
        running = sum(1 for t in self.threads.values() if t.running)
        return spins if running <= SPIN_THREADS else 0

    def _all_stopped(self) -> bool:
        for thread in self.threads.values():
            if thread.running and not thread.unstoppable:
                return False
        return True

    def _interrupt_running_threads(self) -> None:
        """Interrupt every running thread, then take the stops already there: with many
        threads, most have stopped by the time the last one is interrupted."""
        self._send_interrupts()
        if self.collect is not None:
            self.collect([t.tid for t in self.threads.values() if t.running and t.interrupt_sent])

    def _send_interrupts(self) -> None:
        leader = self.threads.get(self.pid)
        if leader is not None and leader.running and not leader.zombie \
                and procfs.task_state(self.pid, self.pid) in ("Z", "X", None):
            self._mark_exited(leader)
        for thread in list(self.threads.values()):
            if thread.running and not thread.interrupt_sent:
                self._interrupt(thread)

    def _interrupt(self, thread: Thread) -> None:
        try:
            pt.interrupt(thread.tid)
            thread.interrupt_sent = True
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
            if procfs.task_state(self.pid, thread.tid) in ("Z", "X", None):
                self._mark_exited(thread)

    async def stop_all(self) -> None:
        """Stop every running thread and wait for each stop (or exit), for STOP_TIMEOUT at
        most: a thread that cannot stop is then left out of this stop, and said so. They stay
        stopped until the next resume."""
        self._held = True
        self._interrupt_running_threads()
        self._spin_until(lambda: self.exit_event is not None or self._all_stopped(), self._spins_for_stop(SPINS))
        deadline = trio.current_time() + STOP_TIMEOUT
        while self.exit_event is None and not self._all_stopped():
            with trio.move_on_after(0.2):
                await self._changed.wait()
                continue
            self._reap_zombie_threads()
            if trio.current_time() >= deadline:
                self._leave_out_unstoppable_threads()
                return
            # A safety net: PTRACE_INTERRUPT is harmless to repeat on a thread still running.
            if log.isEnabledFor(logging.DEBUG):
                log.debug("process %d: not stopped after 0.2 s, interrupted again: %s", self.pid, [
                    (t.tid, procfs.task_state(self.pid, t.tid))
                    for t in self.threads.values() if t.running and not t.unstoppable])
            for thread in self.threads.values():
                if not thread.unstoppable:
                    thread.interrupt_sent = False
            self._interrupt_running_threads()

    def _leave_out_unstoppable_threads(self) -> None:
        for thread in self.threads.values():
            if thread.running and not thread.unstoppable:
                thread.unstoppable = True
                log.warning("thread %d of process %d did not stop within %.0f s (state %s): "
                            "reporting the stop without it; it stays stopped once it can stop",
                            thread.tid, self.pid, STOP_TIMEOUT, procfs.task_state(self.pid, thread.tid))

    def _reap_zombie_threads(self) -> None:
        """A thread that exited but cannot be reaped yet (the zombie leader) never stops."""
        for thread in list(self.threads.values()):
            if thread.running and procfs.task_state(self.pid, thread.tid) in ("Z", "X", None):
                self._mark_exited(thread)

    def _mark_exited(self, thread: Thread) -> None:
        """A thread found gone before its exit status came (that status is ignored later)."""
        thread.running = False
        thread.interrupt_sent = False
        if thread.tid != self.pid:
            del self.threads[thread.tid]
            if self.settings.report_thread_events:
                self._process_events.append(StopEvent(StopKind.THREAD_EXITED, thread.tid))
        else:
            # The leader's exit is reported only when the whole process ends; until then it
            # is a zombie that has no registers: out of every thread list.
            thread.zombie = True
