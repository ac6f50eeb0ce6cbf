"""The one place that waits for tracee events: SIGCHLD wakes it, waitpid drains every status.

The trio main thread is the only tracer, so this runs as a task in the server's nursery for the
server's whole life. SIGCHLD coalesces, so each wake-up drains `waitpid(-1, WNOHANG | __WALL)`
until nothing is left, and routes each status to the inferior that owns the thread.
"""

from __future__ import annotations

import os
import signal

import trio

from .inferior import Inferior

_WALL = 0x40000000


class Tracer:
    def __init__(self) -> None:
        self.inferiors: list[Inferior] = []

    def add(self, inferior: Inferior) -> None:
        self.inferiors.append(inferior)

    def remove(self, inferior: Inferior) -> None:
        if inferior in self.inferiors:
            self.inferiors.remove(inferior)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGCHLD) as wakeups:
            task_status.started()
            self.drain()
            async for _ in wakeups:
                self.drain()

    def drain(self) -> None:
        while True:
            try:
                tid, status = os.waitpid(-1, os.WNOHANG | _WALL)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if tid == 0:
                return
            self._route(tid, status)

    def _route(self, tid: int, status: int) -> None:
        for inferior in self.inferiors:
            if inferior.owns(tid):
                inferior.on_status(tid, status)
                return
        # A thread we have not heard of yet (its clone event is still to come).
        if len(self.inferiors) == 1:
            self.inferiors[0].on_status(tid, status)
