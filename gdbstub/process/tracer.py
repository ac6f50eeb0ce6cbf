"""The one place that waits for tracee events: a SIGCHLD signalfd wakes it, waitpid drains them.

The trio main thread is the only tracer, so this runs as a task in the server's nursery for the
server's whole life. SIGCHLD is blocked and read through a signalfd rather than caught by a
handler: a handler would run Python code and poke the event loop on every stop, which costs more
than a single step. Stops are also collected directly by `drain` (the inferior polls it right
after resuming), so the signalfd only matters when the program runs for a while. SIGCHLD
coalesces, so each wake-up drains `waitpid(-1, WNOHANG | __WALL)` until nothing is left.
Programs we start get an empty signal mask (posix_spawn's setsigmask), so none of this leaks
into them.
"""

from __future__ import annotations

import ctypes
import os
import signal

import trio

from . import ptrace_calls as pt
from .inferior import Inferior

_WALL = 0x40000000
_SFD_NONBLOCK = os.O_NONBLOCK
_SFD_CLOEXEC = 0o2000000
_SIGINFO_SIZE = 128

_libc = ctypes.CDLL(None, use_errno=True)


def _open_sigchld_fd() -> int:
    mask = (ctypes.c_ulong * 16)()
    mask[0] = 1 << (signal.SIGCHLD - 1)
    fd = _libc.signalfd(-1, ctypes.byref(mask), _SFD_NONBLOCK | _SFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"signalfd: {os.strerror(err)}")
    return fd


# Statuses handled between two checkpoints of the event loop.
DRAIN_BATCH = 64
# Threads whose first stop came before the clone event naming them, kept at most.
UNCLAIMED_LIMIT = 4096


class Tracer:
    """Waits for every traced process's statuses and hands each to the process that owns the
    thread; several processes can be traced at once (the process set's, by pid)."""

    def __init__(self, processes: dict[int, Inferior]) -> None:
        self.processes = processes
        # tid -> its stops, for threads no process has claimed yet: a new thread's first stop
        # can come before its parent's clone event, and only that event says whose it is.
        self._unclaimed: dict[int, list[int]] = {}

    def route_to(self, inferior: Inferior) -> None:
        """Give a process just added to the set the tracer's ways to collect its statuses."""
        inferior.poll = self.drain
        inferior.collect = self.collect
        inferior.claim_unclaimed = self.claim

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        # The mask is put back when tracing ends: anything started afterwards by this process
        # (a test suite's next subprocess, say) must not inherit a blocked SIGCHLD.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            fd = _open_sigchld_fd()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            raise
        try:
            task_status.started()
            await self._drain_in_batches()
            while True:
                await trio.lowlevel.wait_readable(fd)
                try:
                    while os.read(fd, _SIGINFO_SIZE * 64):
                        pass
                except BlockingIOError:
                    pass
                await self._drain_in_batches()
        finally:
            os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    async def _drain_in_batches(self) -> None:
        # A thousand threads stopping queue a thousand statuses: handling them all at once
        # would keep the loop from a 0x03 or a new client for tens of milliseconds.
        while self.drain(DRAIN_BATCH):
            await trio.lowlevel.checkpoint()

    def drain(self, limit: int | None = None) -> bool:
        """Handle the statuses waiting; True if `limit` stopped it with more perhaps left."""
        handled = 0
        while limit is None or handled < limit:
            try:
                tid, status = os.waitpid(-1, os.WNOHANG | _WALL)
            except ChildProcessError:
                return False
            except InterruptedError:
                continue
            if tid == 0:
                return False
            self._route(tid, status)
            handled += 1
        return True

    def collect(self, tids: list[int]) -> None:
        """Handle the statuses these threads have waiting, asking for each by its tid.

        Stopping every thread of a big process, the threads waited for are known: the kernel
        finds one by its tid at once, where waitpid(-1) looks through every traced thread at
        each call (1,000 stops: 2 ms, against 32 ms). Anything else still comes through
        `drain`."""
        for tid in tids:
            try:
                found, status = os.waitpid(tid, os.WNOHANG | _WALL)
            except (ChildProcessError, InterruptedError):
                continue
            if found:
                self._route(found, status)

    def wait_for(self, tid: int) -> None:
        """Block until `tid` has a status and handle it: a new fork child's first stop, which
        the kernel sends at once (gdbserver waits for it the same way)."""
        while True:
            try:
                found, status = os.waitpid(tid, _WALL)
            except InterruptedError:
                continue
            except ChildProcessError:
                return
            self._route(found, status)
            return

    def _route(self, tid: int, status: int) -> None:
        inferior = self.processes.get(tid)  # the leader's statuses, and a one-thread process's
        if inferior is not None and inferior.owns(tid):
            inferior.on_status(tid, status)
            return
        for inferior in self.processes.values():
            if inferior.owns(tid):
                inferior.on_status(tid, status)
                return
        if os.WIFSTOPPED(status) and status >> 16 == pt.PTRACE_EVENT_EXIT:
            self._let_unclaimed_thread_exit(tid)
        elif os.WIFSTOPPED(status):
            # A thread nobody has claimed yet: the clone event that names it is still to come.
            if len(self._unclaimed) >= UNCLAIMED_LIMIT and tid not in self._unclaimed:
                del self._unclaimed[next(iter(self._unclaimed))]  # never claimed: the oldest goes
            self._unclaimed.setdefault(tid, []).append(status)
        else:
            # The end of a thread of a process no longer traced, or of one never claimed: its
            # tid may be reused from now on, so nothing kept for it may outlive it.
            self._unclaimed.pop(tid, None)

    def _let_unclaimed_thread_exit(self, tid: int) -> None:
        """A thread nobody has claimed stops on its way out (PTRACE_EVENT_EXIT). It was
        killed before it ever ran (exit_group, a fatal signal, another thread's exec) with its
        parent, which died before reporting the clone event: no event will ever name its
        process. It runs no more of the program, so it goes on at once (as `_on_exiting` lets
        a known thread go). Left stopped there, it kept its process from ending: the leader
        stayed a zombie until this thread was gone, and no exit was ever reported."""
        self._unclaimed.pop(tid, None)  # stops from before it was killed: stale now
        try:
            pt.cont(tid, 0)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise

    def claim(self, tid: int) -> list[int]:
        """The statuses kept for a new thread, now that a clone event names its process."""
        return self._unclaimed.pop(tid, [])
