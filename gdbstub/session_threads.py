"""Thread ids between a client and the process controller, for `Session`.

Thread ids to and from the client are those of the process's thread view (thread_view.py,
goroutine_threads.py); the process controller's are the kernel's. They differ only for a Go
program's goroutines shown as threads. A mixin of `Session`: it uses its process set, its
selected process, the client's profile and protocol state, and the server's context.
"""

from __future__ import annotations

from packets import commands as cmds

from .process import Inferior, TargetError
from .thread_view import KernelThreads


class ThreadIds:
    """Thread-id helpers for `Session` (which provides `processes`, `inferior`, `context`,
    `state`, `profile`, `_thread_text`, `require_resumable` and `require_inferior`)."""

    def threads(self, inferior: Inferior | None = None) -> KernelThreads:
        """The threads the client sees in a process (by default the one it works on)."""
        inferior = inferior if inferior is not None else self.inferior
        go = inferior.go if inferior is not None else None
        if go is not None and self.context.go_goroutine_threads and inferior.alive and not inferior.non_stop:
            if go.client_threads is None:
                from .goroutine_threads import GoroutineThreads

                go.client_threads = GoroutineThreads(inferior, go)
            return go.client_threads
        return KernelThreads(inferior)

    def owner_of(self, tid: int) -> Inferior | None:
        """The process a client's thread id belongs to."""
        owner = self.processes.owner_of(tid)
        if owner is None:
            owner = next((p for p in self.processes.live() if self.threads(p).has(tid)), None)
        return owner

    def thread_id(self, tid: int, pid: int | None = None) -> cmds.ThreadId:
        if pid is None:
            owner = self.processes.owner_of(tid) or self.inferior
            pid = owner.pid if owner is not None else None
        return cmds.ThreadId(pid, tid)

    def format_thread(self, tid: int, pid: int | None = None) -> bytes:
        multiprocess = self.state.multiprocess and self.profile.multiprocess_ids
        if pid is None:
            owner = self.processes.owner_of(tid) or self.inferior
            pid = owner.pid if owner is not None else None
        key = (pid, tid, multiprocess)
        text = self._thread_text.get(key)
        if text is None:
            text = self._thread_text[key] = self.thread_id(tid, pid).format(multiprocess)
        return text

    def default_thread(self) -> int:
        """The thread meant when none is named (the client's id): the last stop's, else the
        first live one (the process id once every thread is gone)."""
        inferior = self.require_resumable()
        last = inferior.last_event
        if last is not None and inferior.has_thread(last.tid):
            return self.threads(inferior).client_tid(last.tid)
        return min(inferior.thread_ids(), default=inferior.pid)

    def selected_thread(self, thread: cmds.ThreadId | None) -> int:
        """The client's id of the thread a command is about (named, else Hg's)."""
        self.require_inferior()
        tid = thread.tid if thread is not None else self.state.general_thread
        if tid in (0, -1):
            return self.default_thread()
        if not self.threads().has(tid):
            raise TargetError(f"no thread {tid:x}")
        return tid

    def resolve_thread(self, thread: cmds.ThreadId | None) -> int:
        """The kernel thread a command is about (TargetError for a parked goroutine)."""
        tid = self.selected_thread(thread)
        kernel = self.threads().kernel_tid(tid)
        if kernel is None:
            raise TargetError(f"{self.threads().text(tid) or 'the thread'} is not running on a thread")
        return kernel
