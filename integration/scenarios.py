"""gdb sessions kept as data, for the differential tests.

Each scenario is a gdb batch script (one command per entry) run against a program from
tests/programs. '{line:FILE:TAG}' in a command stands for the line tagged 'LINE:TAG' in
that source file. A scenario may name a marker file that the program writes at its end
(simple.c's second argument); the run is then judged on that file too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PROGRAMS_BUILD = Path(__file__).resolve().parents[1] / "tests" / "programs" / "build"
_DYNAMIC_LINKER = "/lib64/ld-linux-x86-64.so.2"


@dataclass(frozen=True)
class Scenario:
    """One gdb session: which program, with which arguments, and the commands to type."""

    name: str
    program: str
    commands: tuple[str, ...]
    args: tuple[str, ...] = ()
    # "" reads files from the local disk; None keeps gdb's default 'target:' (vFile).
    sysroot: str | None = ""
    # Relative name of a file the program writes at its end (resolved in the run's cwd).
    marker: str | None = None
    # Why the candidate is known to differ here; the test is then a strict xfail, so it
    # turns red again (XPASS) the day the gap closes and this note must go.
    known_gap: str | None = None
    # gdb settings that must be made before `target remote`.
    before_connect: tuple[str, ...] = ()


def _s(name: str, program: str, *commands: str, args: tuple[str, ...] = (),
       sysroot: str | None = "", marker: str | None = None,
       known_gap: str | None = None, before_connect: tuple[str, ...] = ()) -> Scenario:
    return Scenario(name, program, tuple(commands), args, sysroot, marker, known_gap, before_connect)


SCENARIOS: list[Scenario] = [
    _s("break_main_run_to_exit", "simple",
       "break main", "continue", "bt", "info breakpoints", "continue"),
    _s("break_file_line", "simple",
       "break simple.c:{line:simple.c:loop-call}", "continue", "print i", "continue",
       "print i", "print counter", "info breakpoints", "delete", "continue"),
    _s("next_step_finish", "simple",
       "break main", "continue", "next", "next", "step", "bt", "step", "bt", "finish",
       "finish", "next", "next", "continue"),
    _s("until_and_advance", "simple",
       "break simple.c:{line:simple.c:loop-call}", "continue", "delete", "next",
       "until", "until", "advance {line:simple.c:report}", "print counter", "continue"),
    _s("stepi_nexti", "simple",
       "break bump", "continue", "stepi", "stepi", "nexti", "x/2i $pc", "info line *$pc",
       "continue"),
    # A client that reads no target description gets gdb's built-in amd64 layout (SSE,
    # orig_rax, fs_base, gs_base), reads and writes included.
    _s("registers_without_target_description", "simple",
       "break add", "continue", "print $ymm0", "print $xmm0.v4_int32", "info registers rip",
       "print $orig_rax", "print $mxcsr", "print $fs_base != 0", "print $fctrl",
       "set var $xmm1.v4_int32[2] = 7", "set var $rax = 0x1234", "stepi",
       "print $xmm1.v4_int32", "print/x $rax", "kill",
       before_connect=("set remote target-features-packet off",)),
    # The dynamic linker run as the program, the real one its argument (gdb.server/solib-list):
    # with no DT_DEBUG to follow the server says so, and gdb reads the link map itself.
    _s("dynamic_linker_runs_the_program", _DYNAMIC_LINKER,
       "continue", "info sharedlibrary signals", "print handled", "continue", "continue",
       "continue", args=(str(_PROGRAMS_BUILD / "signals"),)),
    _s("monitor_debug_settings", "simple",
       "monitor set debug 0", "monitor set remote-debug 0", "monitor set debug-format all",
       "monitor set debug-format none", "monitor set debug-format timestamp",
       "monitor set debug-format none,timestamp", "monitor set debug-format none", "kill"),
    _s("registers", "simple",
       "break add", "continue", "info registers rip", "info registers rsp rbp eflags",
       "info registers cs ss ds es fs gs", "info registers rdi rsi", "print $pc",
       "print/x $sp", "print $rdi", "print $eflags", "up", "info registers rip",
       "kill"),
    _s("all_registers", "simple",
       "break add", "continue", "info registers", "info registers fs_base",
       "print $orig_rax", "print/x $mxcsr", "print $xmm0.v4_int32", "print $st0", "kill"),
    _s("print_and_set_variable", "simple",
       "break bump", "continue", "print counter", "print buf", "print origin",
       "print/x origin", "print &origin", "print sizeof(buf)", "set var counter = 100",
       "print counter", "print n * 2 + counter", "set var origin.y = -7", "print origin",
       "delete", "continue"),
    _s("memory_examine_and_write", "simple",
       "break main", "continue", "x/16xb &buf", "x/s buf", "x/2dw &origin",
       "set var buf[0] = 'J'", "set var buf[5] = '!'", "x/s buf", "x/8xb &buf",
       "print buf", "continue"),
    _s("breakpoint_is_invisible_in_memory", "simple",
       "break bump", "break add", "x/4xb bump", "x/4xb add", "continue", "x/2i $pc",
       "disassemble add", "continue"),
    _s("inferior_function_call", "simple",
       "break bump", "continue", "print add(40, 2)", "print add(counter, 5)",
       "bt", "continue", "print counter", "kill"),
    _s("software_watchpoint", "simple",
       "set can-use-hw-watchpoints 0", "break main", "continue", "watch counter",
       "continue", "continue", "bt", "delete", "continue"),
    _s("hardware_watchpoint", "simple",
       "break main", "continue", "watch counter", "continue", "continue", "bt",
       "delete", "continue"),
    _s("exit_code", "simple",
       "break main", "continue", "continue", args=("7",)),
    _s("exit_code_without_breakpoints", "simple", "continue", args=("42",)),
    _s("killed_by_signal", "crash",
       "continue", "bt 1", "continue", "info program", args=("term",)),
    _s("sigsegv_stop", "crash",
       "continue", "bt", "print p", "print $_siginfo.si_signo", "print $_siginfo._sifields._sigfault.si_addr",
       "info frame", "continue", args=("segv",)),
    _s("abort", "crash", "continue", "continue", args=("abort",)),
    _s("kill", "simple",
       "break bump", "continue", "kill", "info program"),
    _s("detach_then_runs_to_completion", "simple",
       "break bump", "continue", "set var counter = 100", "detach",
       args=("0", "marker.txt"), marker="marker.txt"),
    _s("static_program", "simple_static",
       "break main", "continue", "next", "step", "bt", "info sharedlibrary",
       "print buf", "finish", "continue", args=("3",)),
    _s("static_program_target_sysroot", "simple_static",
       "break bump", "continue", "bt", "continue", sysroot=None),
    _s("pie_dynamic_shared_libraries", "simple",
       "break main", "continue", "info sharedlibrary", "print &counter",
       "info symbol &counter", "print $_siginfo", "continue"),
    _s("target_sysroot_over_vfile", "simple",
       "break bump", "continue", "bt", "info sharedlibrary", "continue", sysroot=None),
    _s("tbreak", "simple",
       "tbreak add", "continue", "info breakpoints", "bt", "continue"),
    _s("info_frame_up_down", "simple",
       "break add", "continue", "info frame", "up", "info frame", "info locals", "down",
       "info args", "frame 2", "continue"),
    _s("print_pc_and_display", "simple",
       "break bump", "continue", "print $pc", "display counter", "display/x n",
       "info display", "next", "continue", "undisplay 1", "continue", "delete",
       "continue"),
    _s("condition_and_ignore", "simple",
       "break add if b == 2", "continue", "print a", "print b", "delete",
       "break bump", "ignore 2 1", "continue", "print n", "info breakpoints", "delete",
       "continue"),
    _s("threads_joined", "threads",
       "break threads.c:{line:threads.c:report}", "continue", "info threads",
       "print total", "continue"),
    _s("signal_stop_print", "signals",
       "handle SIGUSR1 stop print pass", "continue", "continue", "continue",
       "continue"),
    _s("signal_nostop_pass", "signals",
       "handle SIGUSR1 nostop noprint pass", "continue"),
    _s("signal_stop_nopass", "signals",
       "handle SIGUSR1 stop print nopass", "continue", "continue", "continue",
       "continue"),
    _s("signal_handler_breakpoint", "signals",
       "handle SIGUSR1 nostop noprint pass", "break on_usr1", "continue", "bt 2",
       "print handled", "delete", "continue"),
    # SIGALRM keeps arriving (nostop noprint pass, gdb's default) while `next` range-steps
    # the spinning line: a signal met while stepping is reported, so gdb steps over the handler.
    _s("next_over_repeating_signal", "timer_signals",
       "break timer_signals.c:{line:timer_signals.c:spin}", "continue", "next", "info line *$pc",
       "next", "delete", "continue"),
    # Thread-local variables: gdb asks the stub where each thread's copy lives (qGetTLSAddr).
    _s("thread_local_variables", "threads_tls",
       "break report", "continue", "print counter", "print name", "continue", "print counter",
       "print name", "continue", "print counter", "print name", "delete", "continue"),
    _s("thread_local_variables_static", "threads_tls_static",
       "break report", "continue", "print counter", "print name", "continue", "print counter",
       "delete", "continue"),
    # gdbserver gives no thread-local address once no libthread_db can be found.
    _s("thread_local_without_thread_db", "threads_tls",
       "monitor set libthread-db-search-path /nonexistent", "break report", "continue",
       "print counter", "delete", "continue"),
    # Forks: gdb hears of each (fork-events) and detaches the child it does not follow,
    # after taking its breakpoints out of the child's copy of the text: the child runs
    # work(2) untouched and exits 7, which the parent prints.
    _s("fork_follow_parent", "forks",
       "break work", "continue", "continue", "info inferiors", "continue", args=("fork",)),
    _s("fork_follow_child", "forks",
       "set follow-fork-mode child", "break work", "continue", "continue", "info inferiors",
       "bt 1", "continue", args=("fork",)),
    _s("catch_fork", "forks",
       "catch fork", "continue", "info inferiors", "continue", args=("fork",)),
    # A vforked child shares the parent's memory until it execs: the parent's breakpoints
    # stay, and gdb hears when the parent goes on (vforkdone).
    _s("vfork_then_exec", "forks",
       "break work", "continue", "continue", "continue", args=("vfork",)),
    # `next` over vfork following the child: the step ends in the child, which shares the
    # parent's breakpoints (and memory) until it execs; gdb hears of the exec (exec-events).
    _s("vfork_follow_child_next", "forks",
       "break forks.c:{line:forks.c:vfork}", "continue", "set follow-fork-mode child", "next",
       "next", "info inferiors", "continue", args=("vfork",)),
    _s("catch_exec", "forks",
       "set follow-fork-mode child", "catch exec", "continue", "info inferiors", "continue",
       args=("vfork",)),
    # catch syscall: the entry and the return of each write stop; other calls do not.
    _s("catch_syscall_write", "simple",
       "catch syscall write", "continue", "bt 1", "continue", "delete", "continue"),
    _s("catch_syscall_group_process", "forks",
       "catch syscall group:process", "continue", "continue", "continue", "continue",
       args=("fork",)),
    _s("system_under_catch_vfork", "forks",
       "catch vfork", "break work", "continue", "continue", "continue", "continue",
       args=("system",)),
    # Non-stop mode (gdb's `set non-stop on`: QNonStop, %Stop notifications and vStopped): a
    # thread that stops stays stopped alone, the others run on; `continue` resumes the
    # selected thread only, `continue -a` every thread.
    _s("non_stop_breakpoint_in_one_thread", "threads_race",
       "break hit", "continue", "info threads", "thread 2", "bt 1", "continue", "info threads",
       "delete", "continue -a",
       args=("1", "3"), before_connect=("set non-stop on",)),
]


def by_name(name: str) -> Scenario:
    """The scenario called `name`."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)
