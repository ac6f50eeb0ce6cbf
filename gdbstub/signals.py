"""Linux x86-64 signal numbers and GDB's target-independent signal numbers, both ways.

The remote protocol speaks GDB's numbering (gdb's include/gdb/signals.def): stop replies, C/S
and vCont actions, QPassSignals and QProgramSignals all use it, unless a stub advertises lldb's
`native-signals+`. The mapping follows gdb's own gdb_signal_from_host / gdb_signal_to_host for
GNU/Linux: Linux SIGIO and SIGPOLL are one signal (GDB's SIGIO), Linux SIGSTKFLT has no GDB
name (GDB_SIGNAL_UNKNOWN), and the real-time signals 32..64 are scattered over GDB's numbers
(SIG33..SIG63 are 45..75, SIG32 is 77, SIG64 is 78) because of the history of that table.
"""

from __future__ import annotations

# GDB signal numbers, names and descriptions (gdb 13's signals.def). Names are what gdb
# prints in `info signals`; None where gdb has no user-visible name.
_GDB_TABLE: list[tuple[int, str | None, str]] = [
    (0, "0", "Signal 0"),
    (1, "SIGHUP", "Hangup"),
    (2, "SIGINT", "Interrupt"),
    (3, "SIGQUIT", "Quit"),
    (4, "SIGILL", "Illegal instruction"),
    (5, "SIGTRAP", "Trace/breakpoint trap"),
    (6, "SIGABRT", "Aborted"),
    (7, "SIGEMT", "Emulation trap"),
    (8, "SIGFPE", "Arithmetic exception"),
    (9, "SIGKILL", "Killed"),
    (10, "SIGBUS", "Bus error"),
    (11, "SIGSEGV", "Segmentation fault"),
    (12, "SIGSYS", "Bad system call"),
    (13, "SIGPIPE", "Broken pipe"),
    (14, "SIGALRM", "Alarm clock"),
    (15, "SIGTERM", "Terminated"),
    (16, "SIGURG", "Urgent I/O condition"),
    (17, "SIGSTOP", "Stopped (signal)"),
    (18, "SIGTSTP", "Stopped (user)"),
    (19, "SIGCONT", "Continued"),
    (20, "SIGCHLD", "Child status changed"),
    (21, "SIGTTIN", "Stopped (tty input)"),
    (22, "SIGTTOU", "Stopped (tty output)"),
    (23, "SIGIO", "I/O possible"),
    (24, "SIGXCPU", "CPU time limit exceeded"),
    (25, "SIGXFSZ", "File size limit exceeded"),
    (26, "SIGVTALRM", "Virtual timer expired"),
    (27, "SIGPROF", "Profiling timer expired"),
    (28, "SIGWINCH", "Window size changed"),
    (29, "SIGLOST", "Resource lost"),
    (30, "SIGUSR1", "User defined signal 1"),
    (31, "SIGUSR2", "User defined signal 2"),
    (32, "SIGPWR", "Power fail/restart"),
    (33, "SIGPOLL", "Pollable event occurred"),
    (34, "SIGWIND", "SIGWIND"),
    (35, "SIGPHONE", "SIGPHONE"),
    (36, "SIGWAITING", "Process's LWPs are blocked"),
    (37, "SIGLWP", "Signal LWP"),
    (38, "SIGDANGER", "Swap space dangerously low"),
    (39, "SIGGRANT", "Monitor mode granted"),
    (40, "SIGRETRACT", "Need to relinquish monitor mode"),
    (41, "SIGMSG", "Monitor mode data available"),
    (42, "SIGSOUND", "Sound completed"),
    (43, "SIGSAK", "Secure attention"),
    (44, "SIGPRIO", "SIGPRIO"),
    *((45 + i, f"SIG{33 + i}", f"Real-time event {33 + i}") for i in range(31)),  # SIG33..SIG63
    (76, "SIGCANCEL", "LWP internal signal"),
    (77, "SIG32", "Real-time event 32"),
    (78, "SIG64", "Real-time event 64"),
    *((79 + i, f"SIG{65 + i}", f"Real-time event {65 + i}") for i in range(63)),  # SIG65..SIG127
    (142, "SIGINFO", "Information request"),
    (143, None, "Unknown signal"),
    (144, None, "Internal error: printing GDB_SIGNAL_DEFAULT"),
    (145, "EXC_BAD_ACCESS", "Could not access memory"),
    (146, "EXC_BAD_INSTRUCTION", "Illegal instruction/operand"),
    (147, "EXC_ARITHMETIC", "Arithmetic exception"),
    (148, "EXC_EMULATION", "Emulation instruction"),
    (149, "EXC_SOFTWARE", "Software generated exception"),
    (150, "EXC_BREAKPOINT", "Breakpoint"),
    (151, "SIGLIBRT", "librt internal signal"),
]
_GDB_NAMES = {number: name for number, name, _ in _GDB_TABLE}
_GDB_DESCRIPTIONS = {number: text for number, _, text in _GDB_TABLE}

GDB_SIGNAL_0 = 0
GDB_SIGNAL_INT = 2
GDB_SIGNAL_TRAP = 5
GDB_SIGNAL_KILL = 9
GDB_SIGNAL_SEGV = 11
GDB_SIGNAL_STOP = 17
GDB_SIGNAL_UNKNOWN = 143

# Linux x86-64 standard signals 1..31 (asm-generic numbering) and their GDB names.
_LINUX_STANDARD = (
    "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP "
    "TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS"
).split()
LINUX_SIGRTMIN = 32  # the kernel's; glibc reserves 32 and 33 and calls 34 SIGRTMIN
LINUX_SIGRTMAX = 64

_GDB_BY_NAME = {name: number for number, name, _ in _GDB_TABLE if name is not None}


def _linux_to_gdb_table() -> dict[int, int]:
    table = {0: GDB_SIGNAL_0}
    for signo, short in enumerate(_LINUX_STANDARD, start=1):
        table[signo] = _GDB_BY_NAME.get(f"SIG{short}", GDB_SIGNAL_UNKNOWN)  # SIGSTKFLT: unknown
    for signo in range(LINUX_SIGRTMIN, LINUX_SIGRTMAX + 1):
        table[signo] = _GDB_BY_NAME[f"SIG{signo}"]
    return table


_LINUX_TO_GDB = _linux_to_gdb_table()
_GDB_TO_LINUX = {gdb: linux for linux, gdb in _LINUX_TO_GDB.items() if gdb != GDB_SIGNAL_UNKNOWN}
# GDB keeps SIGPOLL apart from SIGIO; on Linux they are the same signal.
_GDB_TO_LINUX[_GDB_BY_NAME["SIGPOLL"]] = _LINUX_STANDARD.index("IO") + 1


def to_gdb(linux_signo: int) -> int:
    """GDB's number for a Linux signal; GDB_SIGNAL_UNKNOWN (143) when GDB has none."""
    return _LINUX_TO_GDB.get(linux_signo, GDB_SIGNAL_UNKNOWN)


def from_gdb(gdb_signo: int) -> int | None:
    """The Linux signal for a GDB signal number, or None when Linux has no such signal."""
    return _GDB_TO_LINUX.get(gdb_signo)


def gdb_name(gdb_signo: int) -> str | None:
    """gdb's name for its signal number (e.g. 30 -> 'SIGUSR1'), None if it has none."""
    return _GDB_NAMES.get(gdb_signo)


def gdb_description(gdb_signo: int) -> str:
    """gdb's description of its signal number (e.g. 11 -> 'Segmentation fault')."""
    return _GDB_DESCRIPTIONS.get(gdb_signo, _GDB_DESCRIPTIONS[GDB_SIGNAL_UNKNOWN])


def linux_name(linux_signo: int) -> str:
    """A display name for a Linux signal: 'SIGUSR1', 'SIGSTKFLT', real-time ones as 'SIG34'."""
    if 1 <= linux_signo <= len(_LINUX_STANDARD):
        return "SIG" + _LINUX_STANDARD[linux_signo - 1]
    return f"SIG{linux_signo}"
