"""Non-stop run control: a thread that stops stays stopped alone while the others run on,
and its event is handed over on its own (`take_event`); the client stops threads one by one.

All-stop (inferior.py, allstop.py) stops every thread at the first event and picks one to
report. In non-stop mode nothing is stopped on the client's behalf but what it names: a
thread with an event keeps it (and stays stopped) until `take_event` hands it over, and the
thread is then stopped in the client's view too (`Thread.resume` None) until it resumes it.

A mixin of `Inferior` (which provides `threads`, `pid`, `_with_pending`, `_process_events`,
`exit_event`, `exit_reported`, `last_event` and `_notify`).
"""

from __future__ import annotations

import signal

from . import ptrace_calls as pt
from .events import StopEvent, StopKind
from .threads import Resume


class NonStop:
    non_stop = False

    def take_event(self) -> StopEvent | None:
        """The next event to report, if any: a stop of a thread the client believes running
        (stopped for the client too from now on), then threads' exits, then the end."""
        if self.ending:
            return None
        for tid in sorted(self._with_pending):
            thread = self.threads.get(tid)
            if thread is None or thread.pending is None or thread.resume is None:
                continue
            event, thread.pending = thread.pending, None
            thread.resume = None
            thread.stop_requested = None  # whatever stopped it, the client hears of a stop
            return self._handed_over(event)
        if self._process_events:
            return self._handed_over(self._process_events.pop(0))
        if self.exit_event is not None and not self.exit_reported:
            self.exit_reported = True
            self.client_resumed = False
            return self._handed_over(self.exit_event)
        return None

    def _handed_over(self, event: StopEvent) -> StopEvent:
        event.pid = self.pid
        self.last_event = event
        return event

    def request_thread_stop(self, tid: int, kind: StopKind = StopKind.STOPPED, sig: int = 0) -> None:
        """Stop one thread for the client (vCont;t, or an interrupt), which then hears of a
        stop of `kind` with `sig`. A thread already stopped in the client's view is left alone."""
        thread = self.threads.get(tid)
        if thread is None or thread.zombie or thread.resume is None:
            return
        if thread.running:
            thread.stop_requested = (kind, sig)
            if not thread.interrupt_sent:
                try:
                    pt.interrupt(tid)
                except pt.PtraceError as exc:
                    if not pt.is_gone(exc):
                        raise
                    return  # its exit status follows
                thread.interrupt_sent = True
        elif thread.pending is None:
            # Stopped on our side only (waiting for another thread's step over one of our
            # breakpoints): the client hears of the stop it asked for now.
            thread.pending = StopEvent(kind, tid, sig)
        self._notify()

    def interrupt_one_thread(self) -> None:
        """Non-stop's interrupt (vCtrlC, 0x03): one running thread stops with SIGINT, as if
        the program got a Ctrl-C (the leader if it runs, as the terminal's SIGINT would go)."""
        running = [t.tid for t in self.threads.values() if t.running and t.resume is not None and not t.zombie]
        if running:
            self.request_thread_stop(self.pid if self.pid in running else min(running),
                                     StopKind.INTERRUPTED, signal.SIGINT)

    def count_unreported_as_running(self) -> None:
        """Entering non-stop mode: the threads stopped in fact whose stop no client heard of
        (all but the last stop's thread: an attach or a launch stopped them) count as running
        for the client, as gdbserver counts them. gdb then stops each with vCont;t, and hears
        of its stop, or resumes it."""
        reported = self.last_event.tid if self.last_event is not None else self.pid
        for thread in self.threads.values():
            if thread.tid != reported and not thread.zombie and thread.resume is None and not thread.running:
                thread.resume = Resume("continue")

    def announce_attach(self) -> None:
        """Non-stop attach (vAttach is answered OK at once): the attached thread's stop comes
        as an event of its own, and the other threads count as running for the client until
        it stops them (as gdbserver does)."""
        self.count_unreported_as_running()
        leader = self.threads.get(self.pid)
        if leader is not None and not leader.zombie and self.last_event is not None:
            leader.resume = Resume("continue")
            leader.pending = self.last_event
        self._notify()

    def stopped_thread_ids(self) -> list[int]:
        """The threads stopped in the client's view (non-stop `?` reports each)."""
        return sorted(tid for tid, t in self.threads.items()
                      if not t.zombie and t.resume is None and not t.running)
