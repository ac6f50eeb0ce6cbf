"""Every traced process, keyed by pid, and all-stop run control over all of them.

The tracer routes each wait status to the process that owns the thread. Launch, attach and a
vRun add a process to the set; `remove` takes a process out once nothing is left to report of
it. A stop event names its process: when one process has something to report, every other
resumed process is stopped too (all-stop), and their events stay pending on their threads.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Iterator

import trio

from .changes import Changes
from .events import StopEvent, StopKind
from .inferior import Inferior, TargetError
from .launch import Started
from .run_settings import RunSettings
from .tracer import Tracer


class ProcessSet:
    def __init__(self, use_xstate: bool = False) -> None:
        self.use_xstate = use_xstate
        self._processes: dict[int, Inferior] = {}
        self.tracer = Tracer(self._processes)
        # The process the client works on when it names none: the one added last.
        self.current: Inferior | None = None
        self._changed = Changes()
        self._non_stop = False
        # What a 0x03 stops first: the process launched or attached to last (gdbserver's
        # signal_pid), whatever has been reported since; fork children do not count.
        self._interrupt_target: Inferior | None = None

    # -- membership ----------------------------------------------------------------------
    def add(self, started: Started, launched: bool, settings: RunSettings | None = None) -> Inferior:
        """A process just launched or attached to (stopped), traced from now on."""
        inferior = Inferior(started, launched=launched, use_xstate=self.use_xstate, settings=settings)
        if not launched:
            inferior.last_event = StopEvent(StopKind.ATTACHED, started.pid, signal.SIGSTOP)
        self.adopt(inferior)
        self._interrupt_target = inferior
        return inferior

    def adopt(self, inferior: Inferior, make_current: bool = True) -> None:
        if inferior.pid in self._processes and self._processes[inferior.pid].alive:
            raise TargetError(f"process {inferior.pid} is already traced")
        self._processes[inferior.pid] = inferior
        self.tracer.route_to(inferior)
        inferior.on_change = self._notify
        inferior.on_fork = self._add_fork_child
        inferior.on_released = self.remove
        inferior.non_stop = self._non_stop
        if make_current:
            self.current = inferior

    def _add_fork_child(self, parent: Inferior, child_pid: int, vfork: bool, held: bool) -> None:
        """A process just forked: traced from its first stop, held for the client or let go."""
        started = Started(pid=child_pid, tids=[child_pid], executable=parent.executable)
        child = Inferior(started, launched=parent.launched, use_xstate=self.use_xstate,
                         settings=parent.settings)
        child.become_fork_child_of(parent, vfork, held)
        child.on_exec = list(parent.on_exec)  # what the server does when a program execs
        self.adopt(child, make_current=False)
        for status in self.tracer.claim(child_pid):  # its first stop came before the fork event
            child.on_status(child_pid, status)
        first = child.threads.get(child_pid)
        if held and first is not None and first.awaiting_first_stop:
            # Reported with the fork, the child must be stopped when the client hears of it:
            # gdb reads its registers at once (a ptrace of a child still starting fails).
            self.tracer.wait_for(child_pid)

    def remove(self, inferior: Inferior) -> None:
        if self._processes.get(inferior.pid) is inferior:
            del self._processes[inferior.pid]
        if self.current is inferior:
            self.current = next(reversed(self._processes.values()), None)

    def get(self, pid: int) -> Inferior | None:
        return self._processes.get(pid)

    def __iter__(self) -> Iterator[Inferior]:
        return iter(list(self._processes.values()))

    def __len__(self) -> int:
        return len(self._processes)

    def owner_of(self, tid: int) -> Inferior | None:
        """The process a thread belongs to (thread ids are unique across the system)."""
        for process in self._processes.values():
            if tid in process.threads or tid == process.pid:
                return process
        return None

    def live(self) -> list[Inferior]:
        return [p for p in self._processes.values() if p.alive]

    def unannounced(self) -> set[int]:
        """Fork children the client has not heard of: their fork waits, unreported, on a
        thread of their parent. No list shows them and no wildcard resumes them (gdb took
        one it saw listed for a new inferior); they go with their parent when it is detached
        or killed (`with_unannounced_children`)."""
        if len(self._processes) < 2:
            return set()
        return {pid for p in self._processes.values() if p.alive for pid in p.unreported_fork_children()}

    def listed(self) -> list[Inferior]:
        """The live processes the client knows of."""
        hidden = self.unannounced()
        return [p for p in self.live() if p.pid not in hidden]

    def with_unannounced_children(self, parent: Inferior) -> list[Inferior]:
        """`parent`, then the fork children it has that the client has not heard of."""
        children = (self._processes.get(pid) for pid in parent.unreported_fork_children())
        return [parent] + [child for child in children if child is not None and child.alive]

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The tracer's waitpid pump, for the server's whole life."""
        await self.tracer.run(task_status=task_status)

    # -- non-stop: each process's events, one at a time -------------------------------------
    @property
    def non_stop(self) -> bool:
        return self._non_stop

    @non_stop.setter
    def non_stop(self, on: bool) -> None:
        """Every process, and those added later, in non-stop mode (a stop stops one thread) or
        all-stop. Threads keep their state: what is stopped stays stopped."""
        self._non_stop = on
        for process in self._processes.values():
            process.non_stop = on
        self._notify()

    def take_event(self) -> StopEvent | None:
        """Non-stop: the next event of any process, if one is there (see `Inferior.take_event`)."""
        for process in list(self._processes.values()):
            event = process.take_event()
            if event is not None:
                self.current = process
                return event
        return None

    async def next_event(self) -> StopEvent:
        """Non-stop: the next event of any process, waiting for one."""
        while True:
            event = self.take_event()
            if event is not None:
                return event
            await self._changed.wait()

    # -- all-stop over every process -------------------------------------------------------
    def _notify(self) -> None:
        self._changed.notify()

    def request_interrupt(self) -> None:
        """The client's 0x03: one running process is asked to stop; the others stop with it."""
        live = self.live()
        running = [p for p in live if p.is_running()]
        if self._interrupt_target in running:
            running.insert(0, self._interrupt_target)
        target = running[0] if running else (self.current if self.current in live else None)
        if target is None and live:
            target = live[0]
        if target is not None:
            target.request_interrupt()

    def _in_turn(self, resumed: list[Inferior]) -> list[Inferior]:
        """The order in which processes get to report: one the client's 0x03 is for first,
        then the others in turn from the one after the last to report, so that a process
        hitting breakpoints all the time starves neither a Ctrl-C nor the others' events."""
        if self.current in resumed:
            at = resumed.index(self.current) + 1
            resumed = resumed[at:] + resumed[:at]
        return sorted(resumed, key=lambda p: not p.interrupt_requested)

    def interrupt_after_stop(self, stopped: Inferior | None) -> None:
        """A 0x03 that lost the race to another stop: the process it was for stops again at
        its next resume, as gdbserver's SIGINT stays queued in it."""
        target = self._interrupt_target if self._interrupt_target in self.live() else stopped
        if target is not None and target.alive:
            target.request_interrupt()

    def _resumed(self) -> list[Inferior]:
        """The processes that may answer the resume: those the client resumed, or, when it
        resumed none (a stop asked for after a disconnect), every one that can still report."""
        resumable = [p for p in self._processes.values() if p.resumable]
        return [p for p in resumable if p.client_resumed] or resumable

    def poll_for_stop(self, prefer: Iterable[int] = (), report_no_resumed: bool = False) -> StopEvent | None:
        """The stop to report if it can be had at once (see `Inferior.poll_for_stop`)."""
        if len(self._processes) == 1:
            resumed = self._resumed()
            return resumed[0].poll_for_stop(prefer, report_no_resumed) if resumed else None
        return None  # several: the awaited path stops the others

    async def wait_for_stop(self, prefer: Iterable[int] = (), report_no_resumed: bool = False) -> StopEvent:
        """Wait until some resumed process has something to report, stop every other live
        one, and return the event (its `pid` says whose it is)."""
        prefer = list(prefer)
        while True:
            resumed = self._resumed()
            if not resumed:
                raise TargetError("no process")
            if len(self._processes) == 1:
                return await resumed[0].wait_for_stop(prefer, report_no_resumed)
            for process in self._in_turn(resumed):
                if process.has_something_to_report():
                    event = await process.wait_for_stop(prefer)
                    # The process of the last stop is the one a new client hears of (`?`).
                    self.current = process
                    for other in list(self._processes.values()):
                        if other is not process:  # an exited one too: its end waits
                            await other.hold_all()
                    return event
            if report_no_resumed and not any(p.can_still_report() for p in resumed):
                return StopEvent(StopKind.NO_RESUMED, resumed[0].pid, pid=resumed[0].pid)
            await self._changed.wait()
