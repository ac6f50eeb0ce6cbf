"""What the client asked of run control for a process: which signals pass without a stop,
which it may deliver, whether thread creation and exit are reported.

One object per debugged process. A process that replaces another (vRun, A, vAttach after a
kill) takes the same object, so the client's settings outlive the process they were made for,
as they do with gdbserver.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunSettings:
    # Signals handed to the program without a stop (QPassSignals).
    pass_signals: frozenset[int] = frozenset()
    # Signals the server may deliver unasked (a stop not yet reported when the client
    # detaches); None: any (QProgramSignals).
    program_signals: frozenset[int] | None = None
    # Report thread creation and exit as stops (QThreadEvents).
    report_thread_events: bool = False
    # Report forks and vforks (and a vfork parent going on) as stops, the child held for the
    # client (it offered fork-events+, vfork-events+); otherwise children are let go.
    report_fork_events: bool = False
    report_vfork_events: bool = False
    # Report an exec as a stop (exec-events+); otherwise the process goes on in its new program.
    report_exec_events: bool = False
    # System calls whose entry and return stop the thread (QCatchSyscalls): None for none,
    # an empty set for every one.
    catch_syscalls: frozenset[int] | None = None
