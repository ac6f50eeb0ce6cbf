"""Non-stop mode's stop reports: each stop, as it happens, becomes a `%Stop` notification.

gdb answers a notification with `vStopped` and drains the stops that came meanwhile with more
`vStopped` packets, each answered with the next stop reply, until the reply is `OK`. Only one
`%Stop` is outstanding at a time (the remote protocol manual, "Notification Packets"). The
controller runs in non-stop mode meanwhile: a thread that stops stays stopped alone, with its
event, until the event is taken (`ProcessSet.take_event`) to be told: an event is taken only
when it goes out, never to wait in a queue here, so a thread the client has not heard of
stopping is still running for it, and a resume of "every thread" leaves it alone (it was
resumed, then reported stopped where it had stopped before: gdb took that second report for
the end of a displaced step and moved the PC into nowhere).
"""

from __future__ import annotations

from collections import deque

import trio

from .process import StopEvent, StopKind


class StopNotifier:
    """The queue of stops a non-stop client has not heard of yet, and the task that fills it."""

    def __init__(self, session) -> None:
        self.session = session
        # Stops made up for `?` (threads already stopped for the client), told first.
        self._queue: deque[StopEvent] = deque()
        self._outstanding = False  # a %Stop went out and the vStopped drain has not ended
        self._drained = trio.Event()
        self._scope: trio.CancelScope | None = None  # the reporting task's, while it runs

    def switch(self, on: bool, nursery: trio.Nursery) -> None:
        """Start reporting in the session's nursery (non-stop mode on), or stop (off)."""
        if on and self._scope is None:
            self._scope = trio.CancelScope()
            nursery.start_soon(self._report, self._scope, nursery)
        elif not on and self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _report(self, scope: trio.CancelScope, nursery: trio.Nursery) -> None:
        with scope:
            try:
                await self.run()
            except (ConnectionError, trio.ClosedResourceError, trio.BrokenResourceError):
                self.session.client_gone = True
                nursery.cancel_scope.cancel()  # the client is gone: so is the session

    async def run(self) -> None:
        """Report every stop event of the process set, for as long as the session lasts."""
        processes = self.session.processes
        while True:
            while self._outstanding:
                await self._drained.wait()
            event = await processes.next_event()
            self._outstanding = True
            await self.session.send_notification(b"Stop:" + self.session.render_stop(event))

    def next_reply(self) -> bytes:
        """What `vStopped` is answered with: the next stop to tell, or OK when none is."""
        event = self._queue.popleft() if self._queue else self.session.processes.take_event()
        if event is not None:
            return self.session.render_stop(event)
        self._outstanding = False
        self._drained.set()
        self._drained = trio.Event()
        return b"OK"

    def report_stopped_threads(self, last: StopEvent | None) -> bytes:
        """`?` in non-stop mode: every stopped thread is reported again, as if it had just
        stopped (its last stop if that is what `last` was, else a stop with no signal); the
        first is the reply and the rest follow `vStopped`. OK when no thread is stopped."""
        stops = []
        for inferior in self.session.processes.listed():
            for tid in inferior.stopped_thread_ids():
                if last is not None and last.tid == tid and last.pid in (0, inferior.pid):
                    stops.append(last)
                else:
                    stops.append(StopEvent(StopKind.STOPPED, tid, pid=inferior.pid))
        self._queue = deque(stops)
        self._outstanding = True  # the rest, and any new stop, follow vStopped
        return self.next_reply()
