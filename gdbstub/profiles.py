"""Client profiles: everything that differs between gdb and lldb, decided once per connection.

lldb is recognised by what it sends first: `QStartNoAckMode` before `qSupported`, or an
`xmlRegisters=` list naming several architectures (`i386,arm,mips,arc`). Handlers read the
profile instead of testing for a client by name.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from . import signals


@dataclass(frozen=True)
class ClientProfile:
    name: str
    # Signal numbers on the wire are Linux's own (lldb with native-signals+), else GDB's.
    native_signals: bool
    # Stop replies in lldb's style: thread names, all GPRs, threads:, thread-pcs:, reason:.
    lldb_stop_replies: bool
    # `x` replies carry gdb's 'b' prefix (binary-upload) or are raw (lldb).
    x_reply_prefix: bytes
    # Thread ids in pPID.TID form when the client offered multiprocess+.
    multiprocess_ids: bool
    # What the client hears when the program is interrupted (0x03).
    interrupt_signal: int
    # A 0x03 that comes while the program is stopped stops it again at the next resume (gdb:
    # gdbserver sends SIGINT, which waits in the kernel), or is dropped (lldb).
    interrupt_outlasts_stop: bool
    # The first stop after launch, and after attach.
    initial_signal: int
    attach_signal: int
    # `k` is answered with the exit reply (lldb) or not at all (gdb).
    reply_to_kill: bool
    # Signals passed to the program without a stop until the client sends QPassSignals.
    default_pass_signals: frozenset[int]
    # A program the client launches gets our environment plus its changes (gdb), or only
    # the environment the client sent (lldb sends all of it).
    launch_inherits_environment: bool
    # A program the client launches starts through the user's shell when the launch settings
    # say so (gdbserver's startup-with-shell), or always directly (lldb-server's launch).
    launch_through_shell: bool
    # x86 has no read-only watchpoints: gdb, refused, emulates them with access watchpoints
    # and filters by value (so writes are not reported as reads); lldb wants Z3 accepted.
    read_watchpoints: bool

    def signal_to_client(self, linux_signo: int) -> int:
        return linux_signo if self.native_signals else signals.to_gdb(linux_signo)

    def signal_from_client(self, number: int) -> int | None:
        if self.native_signals:
            return number if 0 < number < 65 else None
        return signals.from_gdb(number)


# Signals a program expects to receive in normal running and that lldb's defaults do not
# stop on, plus the ones runtimes send themselves (Go's SIGURG preemption, SIGWINCH, SIGCHLD).
_LLDB_QUIET = frozenset(
    {signal.SIGALRM, signal.SIGPROF, signal.SIGCHLD, signal.SIGCONT, signal.SIGURG,
     signal.SIGWINCH, signal.SIGVTALRM, signal.SIGIO, *range(32, 65)}
)

GDB = ClientProfile(
    name="gdb", native_signals=False, lldb_stop_replies=False, x_reply_prefix=b"b",
    multiprocess_ids=True, interrupt_signal=signal.SIGINT, interrupt_outlasts_stop=True,
    initial_signal=signal.SIGTRAP, attach_signal=0,
    reply_to_kill=False, default_pass_signals=frozenset(), launch_inherits_environment=True,
    launch_through_shell=True,
    read_watchpoints=False,
)

LLDB = ClientProfile(
    name="lldb", native_signals=True, lldb_stop_replies=True, x_reply_prefix=b"",
    multiprocess_ids=False, interrupt_signal=signal.SIGSTOP, interrupt_outlasts_stop=False,
    initial_signal=signal.SIGSTOP, attach_signal=signal.SIGSTOP,
    reply_to_kill=True, default_pass_signals=_LLDB_QUIET, launch_inherits_environment=False,
    launch_through_shell=False,
    read_watchpoints=True,
)


def detect(features: dict[str, str | bool], no_ack_came_first: bool) -> ClientProfile:
    xml = features.get("xmlRegisters")
    if no_ack_came_first or (isinstance(xml, str) and "," in xml):
        return LLDB
    return GDB
