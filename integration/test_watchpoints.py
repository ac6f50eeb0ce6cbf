"""Hardware watchpoints and breakpoints (the x86 debug registers) with a real gdb.

The program is tests/programs/threads_watch.c; each scenario makes its accesses in a fixed
order, so gdb's transcript is the same on every run. Most tests run the same gdb session
against gdbserver and the candidate and require equal normalised transcripts, then check
the values gdb printed against what the program wrote. Where gdbserver behaves otherwise
(it refuses read watchpoints, and leaves the debug registers set when the client detaches
without removing its watchpoints), the test runs per server and says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import Programs, clean_environment, line_of, run_gdb_batch, start_server
from test_threads import same_as_reference, session

HW = "set can-use-hw-watchpoints 1"
SOURCE = "threads_watch.c"

# gdbserver 13 keeps DR0-DR7 as they are when the client detaches with watchpoints still
# inserted (the program then gets SIGTRAPs of its own); the candidate clears them.
GDBSERVER_DETACH_GAP = "gdbserver 13 leaves the debug registers set on detach"


@pytest.fixture(params=["reference", "candidate"])
def server_kind(request, reference: str, candidate: str) -> str:
    return reference if request.param == "reference" else candidate


@pytest.fixture(scope="session")
def watch_program(programs: Programs) -> Path:
    return programs.simple.parent / "threads_watch"


def _line(tag: str) -> int:
    return line_of(SOURCE, tag)


def watch_hits(raw: str, what: str) -> list[tuple[str, str, int]]:
    """(old, new, line) of each 'Hardware watchpoint N: what' hit, the line where gdb stopped."""
    pattern = (rf"Hardware watchpoint \d+: {re.escape(what)}\n\nOld value = (-?\d+)\n"
               rf"New value = (-?\d+)\n.*? at {SOURCE}:(\d+)\n")
    return [(o, n, int(line)) for o, n, line in re.findall(pattern, raw)]


def value_hits(raw: str, kind: str, what: str) -> list[tuple[str, int]]:
    """(value, line) of each read or access hit that printed 'Value = ...'."""
    pattern = (rf"Hardware {kind} watchpoint \d+: {re.escape(what)}\n\nValue = (-?\d+)\n"
               rf".*? at {SOURCE}:(\d+)\n")
    return [(v, int(line)) for v, line in re.findall(pattern, raw)]


def test_watch_written_by_thread_created_after_it(watch_program: Path, reference: str,
                                                  candidate: str, tmp_path: Path) -> None:
    """The writer thread does not exist when the watchpoint is set; its writes still stop."""
    commands = [HW, "break ready", "continue", "watch wglobal", "continue", "bt 1",
                "continue", "info watchpoints", "continue"]
    expected, actual = same_as_reference(reference, candidate, watch_program, ["newthread"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert watch_hits(run.raw, "wglobal") == [
            ("0", "42", _line("writer-43")), ("42", "43", _line("writer-43") + 1)], run.raw
        # Reported on the new thread, not on main.
        threads = re.findall(r'^Thread (\d+) "threads_watch" hit Hardware watchpoint', run.raw,
                             re.M)
        assert threads == ["2", "2"], run.raw
        assert re.search(r"^#0 +writer \(arg=0x0\) at threads_watch\.c:", run.raw, re.M)
        assert "breakpoint already hit 2 times" in run.raw
        assert "exited normally]" in run.raw
        assert run.inferior == "wglobal=43\nsigtraps=0\n"


@pytest.fixture
def rwatch_kind(request, server_kind: str, candidate: str) -> str:
    return server_kind


def test_rwatch_stops_on_reads_only(rwatch_kind: str, watch_program: Path,
                                    tmp_path: Path) -> None:
    """rglobal is written 5, read, written 9, read (by a thread), then read by main."""
    run = session(rwatch_kind, watch_program, ["read"],
                  [HW, "break ready", "continue", "rwatch rglobal", "continue", "continue",
                   "continue", "continue"], tmp_path)
    # The stop comes after the reading instruction, inside the reading line.
    assert value_hits(run.raw, "read", "rglobal") == [
        ("5", _line("reader-read-5")), ("9", _line("reader-read-9")),
        ("9", _line("read-report"))], run.raw
    assert "exited normally]" in run.raw
    assert run.inferior == "rglobal=9 sink=10\nsigtraps=0\n"


def test_awatch_stops_on_reads_and_writes(watch_program: Path, reference: str,
                                          candidate: str, tmp_path: Path) -> None:
    commands = [HW, "break ready", "continue", "awatch rglobal"] + ["continue"] * 6
    expected, actual = same_as_reference(reference, candidate, watch_program, ["read"],
                                         commands, tmp_path)
    for run in (expected, actual):
        writes = re.findall(r"access \(read/write\) watchpoint \d+: rglobal\n\n"
                            r"Old value = (\d+)\nNew value = (\d+)\n", run.raw)
        reads = value_hits(run.raw, r"access \(read/write\)", "rglobal")
        assert writes == [("7", "5"), ("5", "9")], run.raw
        assert [v for v, _ in reads] == ["5", "9", "9"], run.raw
        assert "exited normally]" in run.raw


def test_fifth_watchpoint_refused_then_four_fire(watch_program: Path, reference: str,
                                                 candidate: str, tmp_path: Path) -> None:
    commands = ([HW, "break ready", "continue"]
                + [f"watch w{i}" for i in range(1, 6)]
                + ["continue", "info watchpoints", "delete 6"] + ["continue"] * 9)
    expected, actual = same_as_reference(reference, candidate, watch_program, ["five"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert "Could not insert hardware watchpoint 6." in run.raw, run.raw
        hits = re.findall(r"Hardware watchpoint \d+: (w\d)\n\nOld value = (\d+)\n"
                          r"New value = (\d+)\n", run.raw)
        assert hits == [("w1", "0", "1"), ("w2", "0", "2"), ("w3", "0", "3"),
                        ("w4", "0", "4"), ("w1", "1", "11"), ("w2", "2", "12"),
                        ("w3", "3", "13"), ("w4", "4", "14")], run.raw
        assert "exited normally]" in run.raw
        assert run.inferior == "w=11,12,13,14,5\nsigtraps=0\n"


def test_hbreak_stop_step_and_continue(watch_program: Path, reference: str, candidate: str,
                                       tmp_path: Path) -> None:
    """A hardware breakpoint stops once per call; stepping and continuing from it move on."""
    commands = ["break ready", "continue", "hbreak twice", "continue", "bt 2",
                "set $at_break = $pc", "stepi", "print $pc != $at_break", "continue", "next",
                "next", "continue", "info breakpoints", "continue"]
    expected, actual = same_as_reference(reference, candidate, watch_program, ["hbreak"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert re.findall(r"^Breakpoint 2, twice \((x=\d)\)", run.raw, re.M) == [
            "x=0", "x=1", "x=2"], run.raw
        assert "Hardware assisted breakpoint 2 at" in run.raw
        # stepi left the breakpoint's address instead of stopping on it again.
        assert "$1 = 1" in run.raw
        # `next` from the breakpoint line went on to the next line, then back to main.
        assert re.search(rf"^{_line('twice-body') + 1}\t\}}$", run.raw, re.M), run.raw
        assert "breakpoint already hit 3 times" in run.raw
        assert "exited normally]" in run.raw
        assert run.inferior == "sum=6\nsigtraps=0\n"


def test_watch_two_and_eight_byte_globals(watch_program: Path, reference: str,
                                          candidate: str, tmp_path: Path) -> None:
    commands = [HW, "break ready", "continue", "watch s16", "watch l64", "continue",
                "continue", "print/x l64", "continue"]
    expected, actual = same_as_reference(reference, candidate, watch_program, ["sizes"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert watch_hits(run.raw, "s16") == [("0", str(0x1234), _line("sizes-l64"))], run.raw
        assert watch_hits(run.raw, "l64") == [
            ("0", str(0x1122334455667788), _line("sizes-pk-c"))], run.raw
        assert "$1 = 0x1122334455667788" in run.raw
        assert "exited normally]" in run.raw


def test_watch_unaligned_eight_byte_member(watch_program: Path, reference: str,
                                           candidate: str, tmp_path: Path) -> None:
    """pk.v is 8 bytes at an odd address: four debug registers cover it exactly."""
    commands = [HW, "break ready", "continue", "watch pk.v", "print &pk.v", "continue",
                "continue", "watch l64", "continue", "delete 3", "continue"]
    expected, actual = same_as_reference(reference, candidate, watch_program, ["sizes"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert re.search(r"^\$1 = \(long \*\) 0x[0-9a-f]*[13579bdf] <pk\+1>$", run.raw, re.M)
        # pk.c, the byte before pk.v, is written first and must not stop; the whole
        # member and then its last byte alone must.
        assert watch_hits(run.raw, "pk.v") == [
            ("0", str(0x0102030405060708), _line("sizes-pk-last")),
            (str(0x0102030405060708), str(0x7F02030405060708), _line("sizes-pk-last") + 1),
        ], run.raw
        # With pk.v holding all four registers, one more watchpoint does not fit.
        assert "Could not insert hardware watchpoint" in run.raw
        assert "exited normally]" in run.raw


def test_watch_then_detach_program_runs_clean(watch_program: Path, reference: str,
                                              candidate: str, tmp_path: Path) -> None:
    """After a watchpoint hit and `detach`, the program's writes raise no SIGTRAP."""
    commands = [HW, "break ready", "continue", "watch wglobal", "continue", "detach"]
    expected, actual = same_as_reference(reference, candidate, watch_program, ["detach"],
                                         commands, tmp_path)
    for run in (expected, actual):
        assert watch_hits(run.raw, "wglobal") == [("0", "1", _line("detach-main-write") + 1)]
        assert re.search(r"\[Inferior 1 \(process \d+\) detached\]", run.raw)
        assert "wglobal=43 sigtraps=0\n" in run.inferior, run.inferior
        assert run.inferior.endswith("sigtraps=0\n"), run.inferior


# ---------------------------------------------------------------------------------------
# Debug registers seen from outside: a fresh ptrace attach after the server detached


_PTRACE_PEEKUSER = 3
_PTRACE_POKEUSER = 6
_PTRACE_DETACH = 17
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_WALL = 0x40000000
# offsetof(struct user, u_debugreg) on x86-64 (<sys/user.h>): 27 regs, fpvalid, i387,
# sizes, start addresses, signal, reserved, u_ar0, u_fpstate, magic, u_comm[32].
_DEBUGREG_OFFSET = 848

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def _ptrace(request: int, tid: int, addr: int = 0, data: int = 0) -> int:
    ctypes.set_errno(0)
    result = _libc.ptrace(request, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    err = ctypes.get_errno()
    if result == -1 and err:
        raise OSError(err, f"ptrace({request}, {tid}): {os.strerror(err)}")
    return result


@contextlib.contextmanager
def seized(tid: int):
    """Trace one thread and hold it in a ptrace stop for the duration of the block."""
    _ptrace(_PTRACE_SEIZE, tid)
    try:
        _ptrace(_PTRACE_INTERRUPT, tid)
        os.waitpid(tid, _WALL)
        yield tid
    finally:
        _ptrace(_PTRACE_DETACH, tid)


def debug_registers(tid: int) -> list[int]:
    """DR0-DR7 of a stopped, traced thread."""
    return [_ptrace(_PTRACE_PEEKUSER, tid, _DEBUGREG_OFFSET + 8 * i) & (2**64 - 1)
            for i in range(8)]


def dr7_of_every_thread(pid: int) -> dict[int, int]:
    dr7 = {}
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        with seized(tid):
            dr7[tid] = debug_registers(tid)[7]
    return dr7


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="attaching to a process that is "
                                "not our child needs root (or ptrace_scope 0)")


@needs_root
def test_debug_register_reader_sees_a_set_register() -> None:
    """The reader below is not blind: DR7 written through ptrace reads back."""
    child = subprocess.Popen(["sleep", "30"], env=clean_environment())
    try:
        with seized(child.pid):
            _ptrace(_PTRACE_POKEUSER, child.pid, _DEBUGREG_OFFSET, 0x1000)  # DR0
            _ptrace(_PTRACE_POKEUSER, child.pid, _DEBUGREG_OFFSET + 7 * 8, 0x1)  # L0
            assert debug_registers(child.pid)[0] == 0x1000
            assert debug_registers(child.pid)[7] & 0x1 == 0x1
            _ptrace(_PTRACE_POKEUSER, child.pid, _DEBUGREG_OFFSET + 7 * 8, 0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)


@pytest.fixture
def detach_kind(request, server_kind: str, reference: str) -> str:
    if server_kind == reference:
        request.applymarker(pytest.mark.xfail(strict=True, reason=GDBSERVER_DETACH_GAP))
    return server_kind


@needs_root
def test_detach_clears_debug_registers(detach_kind: str, watch_program: Path,
                                       tmp_path: Path) -> None:
    """Z2 and Z1 sent behind gdb's back (so gdb never removes them), then `detach`: the
    server itself must clear every thread's debug registers."""
    go = tmp_path / "go"
    commands = ["break ready", "continue",
                'eval "maint packet Z2,%lx,4", (long)&wglobal',
                'eval "maint packet Z1,%lx,1", (long)&twice',
                "detach"]
    with start_server(detach_kind, watch_program, ["detach", str(go)], cwd=tmp_path) as server:
        run = run_gdb_batch(server, watch_program, commands, cwd=tmp_path, timeout=60)
        assert run.raw.count('received: "OK"') == 2, run.raw  # both inserted
        assert "detached]" in run.raw, run.raw
        deadline = time.monotonic() + 15
        while "waiting" not in server.stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting" in server.stdout, server.stdout
        pid = server.inferior_pid
        assert pid is not None
        try:
            dr7 = dr7_of_every_thread(pid)
        finally:
            go.touch()
        output = server.inferior_output(10.0)
    assert len(dr7) == 2  # main and the waiter, both alive when the server detached
    assert dr7 == {tid: 0 for tid in dr7}, {tid: hex(v) for tid, v in dr7.items()}
    # The writes after the detach (main, the waiter, a new thread) trapped nowhere.
    assert "wglobal=43 sigtraps=0\n" in output, output
    assert output.endswith("sigtraps=0\n"), output
