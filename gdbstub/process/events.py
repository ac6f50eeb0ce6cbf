"""Stop events the process controller reports: what happened, to which thread, in Linux terms.

The controller knows nothing of RSP; the session turns these into stop replies for its client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StopKind(enum.Enum):
    SIGNAL = "signal"            # a signal arrived for the thread (signal holds its Linux number)
    BREAKPOINT = "breakpoint"    # a software breakpoint (int3) we inserted; PC already rewound to it
    STEP = "step"                # a single step (or a range step) finished
    WATCHPOINT = "watchpoint"    # a debug-register watchpoint fired
    HW_BREAKPOINT = "hwbreak"    # a debug-register execution breakpoint fired
    INTERRUPTED = "interrupted"  # the client asked us to stop the program (0x03)
    INITIAL = "initial"          # the stop right after launch
    ATTACHED = "attached"        # the stop an attach made (signal: SIGSTOP, what stopped it)
    STOPPED = "stopped"          # stopped for the client, with no signal (non-stop: vCont;t, `?`)
    TRAP = "trap"                # a SIGTRAP with no breakpoint of ours behind it (int3 in the program)
    RUNTIME = "runtime"          # an internal breakpoint the server reports (a Go fatal panic)
    FORKED = "fork"              # the thread forked (child_pid); the child is held stopped
    VFORKED = "vfork"            # the same for vfork: the parent waits until the child execs or exits
    VFORK_DONE = "vfork-done"    # a vfork parent goes on: its child exec'd or exited
    EXECED = "exec"              # the process exec'd a new program (exec_path)
    SYSCALL_ENTRY = "syscall-entry"    # the thread enters a caught system call (syscall)
    SYSCALL_RETURN = "syscall-return"  # the thread returns from one
    THREAD_CREATED = "thread-created"  # a new thread's first stop (only when asked for)
    THREAD_EXITED = "thread-exited"    # a thread (not the whole process) exited (only when asked for)
    NO_RESUMED = "no-resumed"          # nothing is left running that could ever stop
    EXITED = "exited"            # the process exited normally (exit_code)
    TERMINATED = "terminated"    # the process was killed by a signal (signal)


@dataclass
class StopEvent:
    kind: StopKind
    tid: int
    signal: int = 0              # Linux signal number (SIGTRAP for breakpoints and steps)
    exit_code: int = 0
    watch_addr: int | None = None
    watch_type: str | None = None  # 'watch', 'rwatch', 'awatch'
    watch_slot: int | None = None
    description: str | None = None  # what a RUNTIME stop means, for the user
    child_pid: int | None = None    # the new process of a FORKED or VFORKED stop
    exec_path: str | None = None    # the program an EXECED process now runs
    syscall: int | None = None      # the system call's number of a SYSCALL_* stop
    # A BREAKPOINT stop whose PC was put back just past the int3, once, when it was first
    # reported (for a client that rewinds it itself). A fact about the thread from then on:
    # later replies describe it, whatever the client negotiates afterwards.
    pc_after_int3: bool = False
    # The process the event belongs to (set when the controller reports it).
    pid: int = 0

    @property
    def is_exit(self) -> bool:
        return self.kind in (StopKind.EXITED, StopKind.TERMINATED)
