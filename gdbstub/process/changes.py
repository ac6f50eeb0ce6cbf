"""A wake-up for tasks waiting until the traced processes change, free when nobody waits."""

from __future__ import annotations

import trio


class Changes:
    """`await wait()` returns at the next `notify()`.

    Every wait status notifies, and during single steps nobody waits (the stop is collected by
    spinning on waitpid): the trio.Event behind a wait is made only when a task waits."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: trio.Event | None = None

    def notify(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()
