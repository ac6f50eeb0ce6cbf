"""A Go program's goroutines as the client's threads (`--go-goroutines`, `monitor go threads on`).

Every live goroutine is a thread whose id is GOROUTINE_TID_BASE + its goroutine id, the same at
every stop. A goroutine running on a thread of its own stack (user code, a system call), or in
the C code of its cgo call (on the thread's system stack), is shown by that kernel thread,
whose own id is then hidden: its registers, steps and stops are the kernel thread's. A parked goroutine has the registers the scheduler saved (pc, sp, bp; the
rest read as zero) and cannot be stepped or written. Kernel threads that run no goroutine on
its own stack (idle, the runtime's system stack, signal handlers) keep their kernel ids.

The view is worked out per stop (the process's generation): the cheap mapping of a stopped
thread to its goroutine (two memory reads) serves stop replies; the goroutine list is read
only when the client asks for the list or for a goroutine no stop has named.
"""

from __future__ import annotations

from dataclasses import dataclass

from .arch.registers import RegisterSets
from .arch.x86_64 import user_regs_offset
from .goview import GoNotReady, GoView
from .process import Inferior, TargetError
from .symbols import gotraceback
from .thread_view import KernelThreads
from .symbols.goruntime_types import Goroutine

# Kernel thread ids stay below 2**22 (PID_MAX_LIMIT): a goroutine's id cannot meet one. In
# decimal, as gdb prints it, the goroutine id reads at the end: 1000000018 is goroutine 18.
GOROUTINE_TID_BASE = 1_000_000_000
_MAX_GOID = 2**31 - 1 - GOROUTINE_TID_BASE


def is_goroutine_tid(tid: int) -> bool:
    return tid > GOROUTINE_TID_BASE


@dataclass(frozen=True, slots=True)
class GoroutineThread:
    goroutine: Goroutine
    kernel_tid: int | None   # the thread running it on its own stack; None: parked

    @property
    def client_tid(self) -> int:
        return GOROUTINE_TID_BASE + self.goroutine.goid


class GoroutineThreads(KernelThreads):
    def __init__(self, inferior: Inferior, go: GoView) -> None:
        super().__init__(inferior)
        self.go = go
        self._generation = -1
        self._client_of: dict[int, int] = {}     # kernel tid -> client tid
        self._kernel_of: dict[int, int] = {}     # goroutine client tid -> kernel tid
        self._listing: dict[int, GoroutineThread | None] | None = None  # client tid -> entry
        # Stepped threads' ids, kept for the stop that ends the step (see _fresh).
        self._pins: dict[int, int] = {}
        self._pins_generation = -1

    # -- the mapping, per stop -------------------------------------------------------------
    def _fresh(self) -> None:
        generation = self.inferior.generation
        if generation != self._generation:
            self._generation = generation
            # A step that made its thread switch goroutines (gogo, mcall) still ends on the
            # thread the client stepped: a client's step-over must see its own thread stop.
            pins = self._pins if generation == self._pins_generation else {}
            self._pins = {}
            self._client_of = dict(pins)
            self._kernel_of = {client: kernel for kernel, client in pins.items() if client != kernel}
            self._listing = None

    def keep_ids_through_step(self, kernel_tids: list[int]) -> None:
        self._pins = {tid: self.client_tid(tid) for tid in kernel_tids}
        self._pins_generation = self.inferior.generation + 1

    def client_tid(self, kernel_tid: int) -> int:
        """The id the client knows a stopped kernel thread by."""
        self._fresh()
        known = self._client_of.get(kernel_tid)
        if known is None:
            goid = self.go.direct_goid(kernel_tid)
            known = GOROUTINE_TID_BASE + goid if goid is not None and 0 < goid <= _MAX_GOID else kernel_tid
            self._client_of[kernel_tid] = known
            if known != kernel_tid:
                self._kernel_of[known] = kernel_tid
        return known

    def _list(self) -> dict[int, GoroutineThread | None]:
        """Every thread the client sees: goroutines (by goroutine id), then kernel threads
        running none on its own stack (value None)."""
        self._fresh()
        if self._listing is not None:
            return self._listing
        kernel_ids = self.inferior.thread_ids()
        try:
            goroutines = self.go.goroutines()
        except GoNotReady:
            goroutines = []   # the runtime is not set up yet: the kernel's threads only
        for tid in kernel_ids:
            self.client_tid(tid)
        listing: dict[int, GoroutineThread | None] = {}
        for g in sorted(goroutines, key=lambda g: g.goid):
            if not 0 < g.goid <= _MAX_GOID:
                continue
            client = GOROUTINE_TID_BASE + g.goid
            listing[client] = GoroutineThread(g, self._kernel_of.get(client))
        for tid in kernel_ids:
            if self._client_of[tid] == tid:
                listing[tid] = None
        self._listing = listing
        return listing

    # -- what handlers ask -----------------------------------------------------------------
    def ids(self) -> list[int]:
        return list(self._list())

    def has(self, tid: int) -> bool:
        if not is_goroutine_tid(tid):
            return self.inferior.has_thread(tid)
        self._fresh()
        return tid in self._kernel_of or tid in self._list()

    def kernel_tid(self, tid: int) -> int | None:
        """The kernel thread behind a client's id; None for a parked goroutine. TargetError
        for an id that names no thread."""
        if not is_goroutine_tid(tid):
            if not self.inferior.has_thread(tid):
                raise TargetError(f"no thread {tid:x}")
            return tid
        self._fresh()
        known = self._kernel_of.get(tid)
        if known is not None:
            return known
        entry = self._list().get(tid)
        if entry is None:
            raise TargetError(f"no goroutine {tid - GOROUTINE_TID_BASE} (it has ended)")
        return entry.kernel_tid

    def goroutine(self, tid: int) -> Goroutine | None:
        if not is_goroutine_tid(tid):
            return None
        entry = self._list().get(tid)
        return entry.goroutine if entry is not None else None

    def parked(self, tid: int) -> Goroutine | None:
        """The goroutine behind `tid` when no kernel thread runs it (its registers are the
        scheduler's saved ones), else None."""
        if self.kernel_tid(tid) is not None:
            return None
        return self.goroutine(tid)

    def registers(self, tid: int) -> RegisterSets:
        kernel = self.kernel_tid(tid)
        if kernel is not None:
            return self.inferior.registers(kernel)
        g = self.goroutine(tid)
        if g is None or g.pc is None or g.sp is None:
            raise TargetError(f"goroutine {tid - GOROUTINE_TID_BASE} has no saved registers")
        template = self.inferior.registers(min(self.inferior.thread_ids()))
        return SavedRegisters(template, g)

    def pc(self, tid: int) -> int:
        kernel = self.kernel_tid(tid)
        if kernel is not None:
            return self.inferior.thread(kernel).pc()
        g = self.goroutine(tid)
        return g.pc if g is not None and g.pc is not None else 0

    def _go_labels(self) -> dict:
        return {}  # a kernel thread shown on its own runs no goroutine on its own stack

    def name(self, tid: int, comm: str | None = None) -> str:
        g = self.goroutine(tid)
        if g is None:
            return super().name(tid, comm)
        state = f" [{g.wait_reason}]" if g.wait_reason else ""
        return f"g{g.goid} {g.start_function}{state}"

    def text(self, tid: int) -> str | None:
        g = self.goroutine(tid)
        if g is None:
            return super().text(tid)
        return f"goroutine {g.goid} [{gotraceback.status_text(g)}] {self.go.user_location(g)}"

    def cannot_step(self, tid: int) -> str:
        """Why a parked goroutine cannot be stepped, for the client to show."""
        g = self.goroutine(tid)
        what = f"goroutine {g.goid} [{gotraceback.status_text(g)}]" if g is not None else "the goroutine"
        return (f"{what} is not running on a thread: it cannot be stepped on its own. "
                "Continue the program, or set a breakpoint where it will run")


_RIP, _RSP, _RBP = (user_regs_offset(name) for name in ("rip", "rsp", "rbp"))
_FXSAVE_FCW, _FXSAVE_MXCSR = 0, 24


class SavedRegisters:
    """A parked goroutine's registers: pc, sp and bp as the scheduler saved them (enough for
    any unwinder), the others zero and the FPU in its initial state. Read-only: they are no
    thread's, and writing them would corrupt the scheduler."""

    def __init__(self, template: RegisterSets, g: Goroutine) -> None:
        self._template = template
        self._g = g

    def read(self, regset: str) -> bytes:
        data = bytearray(len(self._template.read(regset)))
        if regset == "gpr":
            for offset, value in ((_RIP, self._g.pc), (_RSP, self._g.sp), (_RBP, self._g.bp or 0)):
                data[offset:offset + 8] = value.to_bytes(8, "little")
        elif regset == "fp":
            data[_FXSAVE_FCW:_FXSAVE_FCW + 2] = (0x37F).to_bytes(2, "little")
            data[_FXSAVE_MXCSR:_FXSAVE_MXCSR + 4] = (0x1F80).to_bytes(4, "little")
        return bytes(data)

    def write(self, regset: str, data: bytes) -> None:
        raise TargetError(f"goroutine {self._g.goid} is parked: its registers are the scheduler's "
                          "saved ones and cannot be written")
