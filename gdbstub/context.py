"""What a session and its handlers may use of the server: the process set, the client's
settings, the register tables, and the process lifecycle (start, attach, detach, ends said).

Handlers never see the server object: they reach the processes through this, and start or end
one only through `Lifecycle`, which the server implements (it owns the status lines and the
Go views).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .arch.registers import RegisterTable
from .launch_settings import LaunchSettings
from .process import Inferior, ProcessSet, RunSettings, StopEvent


class Lifecycle(Protocol):
    def start_program(self, argv: list[str], settings: LaunchSettings, inherit_environment: bool = True,
                      alongside: bool = False, through_shell: bool = True) -> Inferior:
        """Launch a program (vRun, lldb's A) as a new process of the set; `alongside`: the
        processes still alive stay (a multiprocess client), else there must be none;
        `through_shell`: as the settings say (gdb), or never (lldb)."""

    def attach_process(self, pid: int, alongside: bool = False) -> Inferior:
        """Attach to a running process (vAttach) as a new process of the set."""

    async def restart(self, settings: LaunchSettings) -> Inferior | None:
        """Kill every process and start the last program run again (None: none was run)."""

    def announce_end(self, event: StopEvent) -> None:
        """Say on the server's stderr that a process exited or was killed by a signal."""

    def announce_killed(self, inferior: Inferior) -> None:
        """The client killed the process: nothing more is said of its end."""

    async def detach(self, inferior: Inferior) -> None:
        """Let the process run on, untraced, with every trace of the debugger removed."""

    def request_exit(self) -> None:
        """The server ends once this client leaves (`monitor exit`)."""


@dataclass
class ServerContext:
    processes: ProcessSet
    # The client's run-control settings: every process takes them, and so does the next one.
    run_settings: RunSettings
    launch_settings: LaunchSettings
    register_table: RegisterTable
    # What gdb assumes of amd64 when it reads no target description (gdbserver answers such a
    # client in it too): the SSE registers, then orig_rax, fs_base and gs_base.
    builtin_register_table: RegisterTable
    lifecycle: Lifecycle
    # The program named on the command line: what an empty vRun runs.
    default_program: str | None
    # gdbserver's libthread-db-search-path (monitor set libthread-db-search-path): thread-local
    # addresses are worked out only while a libthread_db could be found along it, as there.
    thread_db_search_path: str = "$pdir:$sdir"
    # Where breakpoint commands print (dprintf with `set dprintf-style agent`): the server's
    # standard output, as gdbserver's, or its standard error when the protocol is on stdout.
    agent_output: Callable[[bytes], None] = field(default_factory=lambda: agent_output_to(sys.stdout))
    # Trace state variables (the agent's getv/setv), shared by every breakpoint.
    trace_variables: dict[int, int] = field(default_factory=dict)
    # A Go program's goroutines are the client's threads (--go-goroutines, monitor go threads).
    go_goroutine_threads: bool = False


def agent_output_to(stream) -> Callable[[bytes], None]:
    """Bytes written to a text stream's buffer, after what the stream holds, and flushed."""
    def write(data: bytes) -> None:
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()
    return write
