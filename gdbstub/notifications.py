"""Non-stop mode's stop reports: each stop, as it happens, becomes a `%Stop` notification.

gdb answers a notification with `vStopped` and drains the stops that came meanwhile with more
`vStopped` packets, each answered with the next stop reply, until the reply is `OK`. Only one
`%Stop` is outstanding at a time (the remote protocol manual, "Notification Packets"); the
others wait in order here. The controller runs in non-stop mode meanwhile: a thread that stops
stays stopped alone, and the process set hands over its events one at a time
(`ProcessSet.next_event`).
"""

from __future__ import annotations

from collections import deque

import trio

from .process import StopEvent, StopKind


class StopNotifier:
    """The queue of stops a non-stop client has not heard of yet, and the task that fills it."""

    def __init__(self, session) -> None:
        self.session = session
        self._queue: deque[StopEvent] = deque()
        self._outstanding = False  # a %Stop went out and its vStopped has not come yet
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
            event = await processes.next_event()
            if self._outstanding:
                self._queue.append(event)
            else:
                self._outstanding = True
                await self.session.send_notification(b"Stop:" + self.session.render_stop(event))

    def next_reply(self) -> bytes:
        """What `vStopped` is answered with: the next stop waiting, or OK when none is."""
        if self._queue:
            return self.session.render_stop(self._queue.popleft())
        self._outstanding = False
        return b"OK"

    def report_stopped_threads(self, last: StopEvent | None) -> bytes:
        """`?` in non-stop mode: every stopped thread is reported again, as if it had just
        stopped (its last stop if that is what `last` was, else a stop with no signal); the
        first is the reply and the rest follow `vStopped`. OK when no thread is stopped."""
        stops = []
        for inferior in self.session.processes.live():
            for tid in inferior.stopped_thread_ids():
                if last is not None and last.tid == tid and last.pid in (0, inferior.pid):
                    stops.append(last)
                else:
                    stops.append(StopEvent(StopKind.STOPPED, tid, pid=inferior.pid))
        self._queue = deque(stops)
        if not self._queue:
            self._outstanding = False
            return b"OK"
        self._outstanding = True
        return self.session.render_stop(self._queue.popleft())
