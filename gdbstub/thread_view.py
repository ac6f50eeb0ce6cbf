"""The threads a client sees in one process, named, and how their ids map to the kernel's.

`KernelThreads` is the usual view: the kernel's threads by their own ids, each named by its
comm or, in a Go program, by the goroutine it runs. goroutine_threads.py shows a Go program's
goroutines as threads instead. Handlers go through a view for every thread id a client sends
or is sent, so neither view leaks into the other.
"""

from __future__ import annotations

from .arch.registers import RegisterSets
from .process import Inferior, TargetError, procfs


class KernelThreads:
    def __init__(self, inferior: Inferior) -> None:
        self.inferior = inferior
        self._labels: dict | None = None

    def ids(self) -> list[int]:
        return self.inferior.thread_ids()

    def has(self, tid: int) -> bool:
        return self.inferior.has_thread(tid)

    def kernel_tid(self, tid: int) -> int | None:
        """The kernel thread behind a client's thread id (None: a thread with no kernel thread
        behind it, see `parked`); TargetError when it names no thread."""
        if not self.inferior.has_thread(tid):
            raise TargetError(f"no thread {tid:x}")
        return tid

    def client_tid(self, kernel_tid: int) -> int:
        return kernel_tid

    def keep_ids_through_step(self, kernel_tids: list[int]) -> None:
        """Called before a resume that steps these threads: the stop that ends the step
        names each by the id the client stepped (kernel ids never change)."""

    def registers(self, tid: int) -> RegisterSets:
        return self.inferior.registers(self.kernel_tid(tid))

    def pc(self, tid: int) -> int:
        return self.inferior.thread(self.kernel_tid(tid)).pc()

    def parked(self, tid: int):
        """A goroutine with no thread running it, when the id names one (see goroutine_threads)."""
        return None

    def cannot_step(self, tid: int) -> str:
        return f"thread {tid:x} cannot be stepped"

    def _go_labels(self) -> dict:
        """Go thread labels for the current stop ({} for other programs, and while threads run
        in non-stop mode: the goroutines are read from a stopped program only)."""
        if self._labels is None:
            inferior = self.inferior
            go = inferior.go
            if go is None or not inferior.alive or (inferior.non_stop and inferior.is_running()):
                self._labels = {}
            else:
                self._labels = go.thread_labels()
        return self._labels

    def name(self, tid: int, comm: str | None = None) -> str:
        """`comm`: the kernel thread's name when the caller has read it already."""
        label = self._go_labels().get(tid)
        if label is not None:
            return label.name
        if comm is None:
            comm = procfs.thread_name(self.inferior.pid, tid)
        return comm or ""

    def text(self, tid: int) -> str | None:
        """A longer description (the goroutine and where it is), or None."""
        label = self._go_labels().get(tid)
        return label.text if label is not None else None
