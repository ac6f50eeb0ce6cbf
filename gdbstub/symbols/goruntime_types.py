"""What the Go runtime reader hands out: goroutines, frames, thread states, g status
constants, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ReadMemory = Callable[[int, int], bytes]

G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING = 0, 1, 2, 3, 4
G_DEAD, G_COPYSTACK, G_PREEMPTED, G_LEAKED, G_DEADEXTRA = 6, 8, 9, 10, 11
G_SCAN = 0x1000


class GoRuntimeError(Exception):
    """The Go runtime state cannot be read."""


class RuntimeNotReady(GoRuntimeError):
    """The process has not initialised the Go runtime yet (or is not a Go program)."""


class NoOffsets(GoRuntimeError):
    """No struct offsets for this Go version (not in the table, no DWARF)."""


@dataclass(frozen=True, slots=True)
class ThreadState:
    """What the caller knows about one thread: registers and the TLS base."""
    tid: int
    pc: int
    sp: int
    bp: int
    fs_base: int


@dataclass(frozen=True, slots=True)
class Goroutine:
    addr: int
    goid: int
    status: int                 # without the _Gscan bit
    scan: bool
    wait_reason: str            # "" when the goroutine is not waiting or has no reason
    start_pc: int               # g.startpc: the function of the go statement
    start_function: str         # its name ("?" when not in the table)
    go_pc: int                  # g.gopc: the go statement
    parent_goid: int | None     # Go >= 1.21
    m: int                      # address of the M running or holding it (0: none)
    thread_id: int | None       # m.procid, the kernel thread id
    locked_to_thread: bool
    stack_lo: int
    stack_hi: int
    pc: int | None              # where to start unwinding (None: unavailable)
    sp: int | None
    bp: int | None
    trap: bool                  # pc is an interrupted instruction, not a return address
    location: str               # "sched", "syscall", "vdso", "registers", "signal" (the
                                # context a signal interrupted) or "unavailable"
    on_system_stack: bool = False   # its thread runs on g0/gsignal (registers are not its)


@dataclass(frozen=True, slots=True)
class Frame:
    """One logical frame (a function or a call inlined into it)."""
    function: str
    file: str
    line: int
    pc: int            # the physical frame's pc: a return address, or the trapped pc
    sym_pc: int        # the pc its file:line were looked up at
    sp: int
    entry: int         # entry of the physical function
    inlined: bool
    func_id: int

    @property
    def offset(self) -> int | None:
        """pc - entry, as Go prints `+0x..` (None for inlined frames or at the entry)."""
        return None if self.inlined or self.pc <= self.entry else self.pc - self.entry
