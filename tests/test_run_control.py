"""Run control over raw packets: every thread's creation and exit is reported when the client
asks (QThreadEvents), none is lost when threads exit together or with the process, and the
client's run-control settings outlive the process they were made for (vRun).

The truth is the program's source: tests/programs/threads.c starts NTHREADS threads.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from raw_rsp import (GDB_QSUPPORTED, LLDB_QSUPPORTED, RunningServer, attached_server, load_base, nm_address,
                     process_state, start_either, start_server)
from rsp_client import Client

from testprograms import PROGRAMS_DIR

pytestmark = pytest.mark.timeout(60)

NTHREADS = int(re.search(r"#define NTHREADS (\d+)", (PROGRAMS_DIR / "threads.c").read_text()).group(1))


def run_to_exit(client: Client, resume: bytes) -> tuple[list[int], list[int], bytes]:
    """Resume until the process ends; the tids reported created, the tids reported exited,
    and the final reply."""
    created, exited = [], []
    while True:
        reply = client.request(resume, timeout=20)
        if reply.startswith(b"T05") and b"create:" in reply:
            created.append(int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", reply).group(1), 16))
        elif reply.startswith(b"w"):
            exited.append(int(re.fullmatch(rb"w00;p[0-9a-f]+\.([0-9a-f]+)", reply).group(1), 16))
        else:
            return created, exited, reply


@pytest.mark.parametrize("resume", [b"c", b"vCont;c"])
@pytest.mark.parametrize("attempt", range(3))  # exits race each other: a lost one shows up in some runs
def test_every_thread_creation_and_exit_is_reported(programs, tmp_path: Path, resume: bytes, attempt: int):
    server = start_server(programs.threads, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        assert client.request(b"QThreadEvents:1") == b"OK"
        created, exited, end = run_to_exit(client, resume)
    finally:
        client.close()
        server.stop()
    assert len(created) == NTHREADS and server.pid not in created
    assert sorted(exited) == sorted(created)
    assert re.fullmatch(rb"W00;process:%x" % server.pid, end), end


def test_thread_events_setting_survives_vrun(programs, tmp_path: Path):
    server = start_server(programs.threads, [], tmp_path / "server.log", once=False)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        assert client.request(b"!") == b"OK"
        assert client.request(b"QThreadEvents:1") == b"OK"
        assert client.request(b"vKill;%x" % server.pid) == b"OK"
        started = client.request(b"vRun;" + str(programs.threads).encode().hex().encode())
        assert started.startswith(b"T05"), started
        pid = int(re.search(rb"thread:p([0-9a-f]+)\.", started).group(1), 16)
        assert pid != server.pid
        created, exited, end = run_to_exit(client, b"vCont;c")
    finally:
        client.close()
        server.stop()
    assert len(created) == NTHREADS and sorted(exited) == sorted(created)
    assert re.fullmatch(rb"W00;process:%x" % pid, end), end


def test_no_resumed_when_the_only_resumed_thread_exits(programs, tmp_path: Path):
    # A client that resumes one thread (scheduler locking) and sees it exit must hear that
    # nothing is left running (N, with no-resumed+), not wait for ever.
    server = start_server(programs.threads, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        base = load_base(server.pid, programs.threads)
        worker = base + nm_address(programs.threads, "worker")
        assert client.request(b"Z0,%x,1" % worker) == b"OK"
        hit = client.request(b"vCont;c")
        tid = int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", hit).group(1), 16)
        assert hit.startswith(b"T05") and tid != server.pid, hit
        assert client.request(b"z0,%x,1" % worker) == b"OK"
        # Only that worker runs: it takes the lock no stopped thread holds, adds, and ends.
        assert client.request(b"vCont;c:p%x.%x" % (server.pid, tid), timeout=20) == b"N"
        assert tid not in {int(t, 16) for t in re.findall(rb"\.([0-9a-f]+)", client.request(b"qfThreadInfo"))}
        end = client.request(b"vCont;c", timeout=20)
    finally:
        client.close()
        server.stop()
    assert re.fullmatch(rb"W00;process:%x" % server.pid, end), end


LEADER_EXIT = PROGRAMS_DIR / "build" / "threads_leader_exit"


@contextmanager
def leader_exit_session(tmp_path: Path, before_running=None) -> Iterator[tuple[RunningServer, Client, int]]:
    """threads_leader_exit served and stopped where its main thread is about to leave
    (main_leaves); yields the server, the client and the program's load base. The server
    ends with the block. `before_running(client)` runs at the first stop, the exec."""
    server = start_server(LEADER_EXIT, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        if before_running is not None:
            before_running(client)
        base = load_base(server.pid, LEADER_EXIT)
        leaves = base + nm_address(LEADER_EXIT, "main_leaves")
        assert client.request(b"Z0,%x,1" % leaves) == b"OK"
        hit = client.request(b"vCont;c")
        assert re.search(rb"T05.*thread:p%x\.%x;" % (server.pid, server.pid), hit), hit
        assert client.request(b"z0,%x,1" % leaves) == b"OK"
        yield server, client, base
    finally:
        client.close()
        server.stop()


def main_thread_handle(client: Client, base: int) -> bytes:
    """What the program stored of its main thread's pthread_self()."""
    return client.request(b"m%x,8" % (base + nm_address(LEADER_EXIT, "main_thread")))


def test_the_main_thread_leaving_alone_is_seen(tmp_path: Path):
    # The main thread ends with pthread_exit while the only other thread stays stopped (gdb's
    # scheduler locking): the kernel reports nothing for a leader while others live, so the
    # server must see it go (PTRACE_EVENT_EXIT) and answer N, not wait for ever.
    with leader_exit_session(tmp_path) as (server, client, _):
        assert client.request(b"vCont;c:p%x.%x" % (server.pid, server.pid), timeout=20) == b"N"
        listed = re.findall(rb"\.([0-9a-f]+)", client.request(b"qfThreadInfo"))
        assert len(listed) == 1 and int(listed[0], 16) != server.pid  # only the worker is left
        end = client.request(b"vCont;c", timeout=20)
    assert re.fullmatch(rb"W03;process:%x" % server.pid, end), end  # the worker's exit(3)


def test_thread_handles_are_the_program_s_own_pthread_t(tmp_path: Path):
    # qXfer:threads gives each thread's pthread_t (gdb's thread handles, py-thrhandle.exp);
    # the program stored its main thread's pthread_self() in main_thread.
    with leader_exit_session(tmp_path) as (server, client, base):
        stored = main_thread_handle(client, base)
        threads = client.xfer("threads", "").decode()
    handles = dict(re.findall(r'id="p[0-9a-f]+\.([0-9a-f]+)"[^>]*handle="([0-9a-f]+)"', threads))
    assert len(handles) == 2, threads  # main and the worker
    assert handles[f"{server.pid:x}"] == stored.decode()
    assert len(set(handles.values())) == 2


def test_thread_handle_read_before_the_program_starts_is_not_kept(tmp_path: Path):
    # At the first stop (the exec) the dynamic linker has not set the thread pointer up yet:
    # no handle then, and the right one once it has (gdb reads the thread list at connect).
    def no_handle_yet(client: Client) -> None:
        assert "handle=" not in client.xfer("threads", "").decode()

    with leader_exit_session(tmp_path, before_running=no_handle_yet) as (server, client, base):
        stored = main_thread_handle(client, base)
        threads = client.xfer("threads", "").decode()
    assert f'id="p{server.pid:x}.{server.pid:x}" ' in threads
    assert re.search(rf'id="p{server.pid:x}\.{server.pid:x}"[^>]*handle="{stored.decode()}"', threads), threads


@pytest.mark.parametrize(("passed", "stops"), [(b"21", True), (b"17", False)])
def test_passing_sigpoll_does_not_pass_sigio(programs, tmp_path: Path, passed: bytes, stops: bool):
    # GDB numbers SIGIO 0x17 and SIGPOLL 0x21; Linux has one signal for both (29). gdb passes
    # SIGPOLL by default and stops on SIGIO: the server decides by the signal's own GDB
    # number, as gdbserver does. Passed, SIGIO ends the spinning program (its default action).
    server = start_server(programs.spin, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        assert client.request(b"QPassSignals:" + passed) == b"OK"
        reply = signal_while_running(client, server.pid, signal.SIGIO)
    finally:
        client.close()
        server.stop()
    assert reply.startswith(b"T17" if stops else b"X17"), reply


def signal_while_running(client: Client, pid: int, signo: int) -> bytes:
    """Resume the program, send it `signo` from outside once it runs, and return the reply."""
    client.send(b"vCont;c")
    assert client.nothing_pending(0.3)
    os.kill(pid, signo)
    return client.read_reply(timeout=10)


def stop_pc(reply: bytes) -> int:
    """The PC (register 0x10) a T stop reply carries, as its little-endian hex."""
    return int.from_bytes(bytes.fromhex(re.search(rb"(?:^|;)10:([0-9a-f]{16});", reply[3:]).group(1).decode()), "little")


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_interrupt_sent_while_stopped_stops_the_next_resume(programs, tmp_path: Path, server_command):
    # gdb sends 0x03 for a Ctrl-C even when the program has just stopped (between the single
    # steps of a software watchpoint) and then waits for that stop: gdbserver's SIGINT waits in
    # the kernel, so the next resume stops at once with SIGINT, where the program was.
    server = start_either(server_command, programs.spin, [], tmp_path)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        first = client.request(b"?")
        client.send_raw(b"\x03")
        assert client.nothing_pending(0.3)  # the program is stopped: no reply to the 0x03
        interrupted = client.request(b"vCont;c", timeout=10)
        client.send(b"vCont;c")  # resumed without the signal, the program runs on
        runs_on = client.nothing_pending(0.5)
    finally:
        client.close()
        server.stop()
    assert interrupted.startswith(b"T02"), interrupted
    assert stop_pc(interrupted) == stop_pc(first)
    assert runs_on


def test_lldb_s_interrupt_sent_while_stopped_is_dropped(programs, tmp_path: Path):
    server = start_server(programs.spin, [], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(b"QStartNoAckMode")
        client.no_ack = True
        client.request(LLDB_QSUPPORTED)
        client.send_raw(b"\x03")
        assert client.nothing_pending(0.3)
        client.send(b"vCont;c")
        runs = client.nothing_pending(0.5)
    finally:
        client.close()
        server.stop()
    assert runs


def thread_ids(client: Client) -> list[int]:
    tids, reply = [], client.request(b"qfThreadInfo")
    while reply.startswith(b"m"):
        tids += [int(t.rsplit(b".", 1)[-1], 16) for t in reply[1:].split(b",")]
        reply = client.request(b"qsThreadInfo")
    return tids


def thread_pc(client: Client, thread: bytes) -> int:
    assert client.request(b"Hg" + thread) == b"OK"
    rip = client.request(b"g")[16 * 16:17 * 16]  # gdbserver has no 'p'; rip follows 16 GPRs
    return int.from_bytes(bytes.fromhex(rip.decode()), "little")


@pytest.mark.parametrize(("server_command", "client_kind"), [(None, "gdb"), (["gdbserver"], "gdb"), (None, "lldb")],
                         ids=["gdbstub", "gdbserver", "gdbstub-lldb"])
def test_a_thread_left_stopped_keeps_its_event(programs, tmp_path: Path, server_command, client_kind):
    # Worker threads hit a breakpoint together: one is reported, the others' hits wait. A
    # client that then resumes only the main thread (blocked in pthread_join) must hear
    # nothing of them: gdb asserts when a thread it left stopped reports (scheduler locking,
    # stepping one thread over a breakpoint), and lldb resumes one thread to run an
    # expression on it.
    program = programs.threads.parent / "threads_race"
    server = start_either(server_command, program, ["4", "100000000"], tmp_path)
    client = server.connect()
    gdb = client_kind == "gdb"
    thread = (lambda tid: b"p%x.%x" % (server.pid, tid)) if gdb else (lambda tid: b"%x" % tid)
    try:
        if not gdb:
            client.request(b"QStartNoAckMode")
            client.no_ack = True
        client.request(GDB_QSUPPORTED if gdb else LLDB_QSUPPORTED)
        client.request(b"?")
        hit = load_base(server.pid, program) + nm_address(program, "hit")
        assert client.request(b"Z0,%x,1" % hit) == b"OK"
        for _ in range(100):
            stop = client.request(b"vCont;c", timeout=20)
            reported = int(re.search(rb"thread:(?:p[0-9a-f]+\.)?([0-9a-f]+);", stop).group(1), 16)
            tids = thread_ids(client)
            others = [t for t in tids if t not in (server.pid, reported)]
            # Once main has started all 4 workers: resumed alone, it starts no more.
            if len(tids) == 5 and any(thread_pc(client, thread(t)) == hit for t in others):
                break  # another worker's hit is waiting
        else:
            pytest.fail("no two workers reached the breakpoint together in 100 stops")
        client.send(b"vCont;c:" + thread(server.pid))
        quiet = client.nothing_pending(0.5)
        client.send_raw(b"\x03")
        interrupted = client.read_reply(timeout=10)
    finally:
        client.close()
        server.stop()
    assert quiet, "a thread the client left stopped reported an event"
    assert interrupted.startswith(b"T02" if gdb else b"T13"), interrupted


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
@pytest.mark.parametrize("program_name", ["spin", "threads_race"])
def test_a_program_killed_from_outside_while_running_is_reported_killed(programs, tmp_path: Path,
                                                                        server_command, program_name):
    # gdb.threads/killed-outside.exp: SIGKILL sent by someone else while the program runs
    # (one thread, or several busy ones): the client hears X09 for the process.
    args = ["4", "100000000"] if program_name == "threads_race" else []
    server = start_either(server_command, programs.threads.parent / program_name, args, tmp_path)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.request(b"?")
        reply = signal_while_running(client, server.pid, signal.SIGKILL)
    finally:
        client.close()
        server.stop()
    # gdbserver writes the signal as 'X9', gdbstub as 'X09': the same hex number.
    assert re.fullmatch(rb"X0?9;process:%x" % server.pid, reply), reply


def test_a_child_the_client_is_not_told_of_runs_without_the_breakpoints(programs, tmp_path: Path) -> None:
    # A client that does not take fork events (no fork-events+): the forked child is let go,
    # with the parent's int3 bytes taken out of its copy of the text first. It calls work(),
    # where the parent has a breakpoint, and exits 7; left in, the int3 would kill it (SIGTRAP,
    # an exit status of 133).
    program = programs.threads.parent / "forks"
    server = start_server(program, ["fork"], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
        assert client.request(b"QPassSignals:14") == b"OK"  # SIGCHLD, passed as gdb does
        work = load_base(server.pid, program) + nm_address(program, "work")
        assert client.request(b"Z0,%x,1" % work) == b"OK"
        first = client.request(b"vCont;c")   # work(1), in the parent
        second = client.request(b"vCont;c")  # work(4): the child's work(2) is nobody's stop
        for stop in (first, second):
            assert stop.startswith(b"T05") and b"thread:p%x.%x;" % (server.pid, server.pid) in stop, stop
        assert client.request(b"z0,%x,1" % work) == b"OK"
        assert client.request(b"vCont;c") == b"W07;process:%x" % server.pid  # the child's own exit
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_stop_replies_name_the_core_the_thread_last_ran_on(programs, tmp_path: Path, server_command):
    # gdbserver adds core:N (hex) to every T reply; MI front ends show it. The truth is the
    # kernel's: field 39 of the stopped thread's /proc stat.
    server = start_either(server_command, programs.spin, [], tmp_path)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        for _ in range(5):
            client.send(b"vCont;c")
            client.send_raw(b"\x03")
            reply = client.read_reply()
            # Read while the thread is still stopped where the reply was made.
            tid = int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", reply).group(1), 16)
            stat = Path(f"/proc/{server.pid}/task/{tid}/stat").read_bytes()
            kernel_core = int(stat[stat.rfind(b")") + 2:].split()[36])
            core = re.search(rb";core:([0-9a-f]+);", reply)
            assert core is not None and int(core.group(1), 16) == kernel_core, reply
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_an_attached_program_is_reported_stopped_with_no_signal(programs, tmp_path: Path, server_command):
    # gdbserver --attach answers `?` with T00 (the SIGSTOP that stopped it is its own affair).
    with attached_server(server_command, programs.spin, [], tmp_path) as server:
        client = server.connect()
        try:
            client.request(GDB_QSUPPORTED)
            reply = client.request(b"?")
            assert reply.startswith(b"T00") and b"thread:p%x.%x;" % (server.pid, server.pid) in reply, reply
            assert client.request(b"D;%x" % server.pid) == b"OK"
        finally:
            client.close()


def test_a_process_that_execs_a_32_bit_program_says_so(programs, tmp_path: Path):
    # gdbstub debugs x86-64 programs only: after an exec into an i386 one, the client is told
    # in plain words (console output before the exec stop, and each register request's error)
    # rather than shown the new program through x86-64 registers.
    program = programs.threads.parent / "exit32"
    server = start_server(Path("/bin/sh"), ["-c", f"exec {program}"], tmp_path / "server.log")
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.request(b"?")
        stop = client.resume(b"vCont;c")
        assert stop.startswith(b"T05") and b"exec:%s;" % str(program).encode().hex().encode() in stop, stop
        assert b"32-bit" in client.output and str(program).encode() in client.output, client.output
        assert client.request(b"g").startswith(b"E"), "registers of a 32-bit program read as x86-64"
        assert client.request(b"vCont;c", timeout=10).startswith(b"W07")  # it runs on, as it would
    finally:
        client.close()
        server.stop()


@contextmanager
def gdb_like_session(server_command: list[str] | None, program: Path, args: list[str],
                     tmp_path: Path) -> Iterator[tuple[RunningServer, Client]]:
    """gdbstub (`server_command` None) or the named reference server on `program`, with a
    client that has said what gdb says first; both end with the block."""
    server = start_either(server_command, program, args, tmp_path)
    client = server.connect()
    try:
        client.request(GDB_QSUPPORTED)
        client.request(b"?")
        yield server, client
    finally:
        client.close()
        server.stop()


def exit_status(reply: bytes) -> int | None:
    """The status a W reply gives (W00, or gdbserver's W0;process:PID), else None."""
    return int(reply[1:].split(b";")[0], 16) if reply.startswith(b"W") else None


GDB_SIGUSR1, GDB_SIGUSR2 = 0x1E, 0x1F


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_signal_passed_while_another_thread_s_stop_waits_is_delivered(programs, tmp_path: Path, server_command):
    # gdb.threads/siginfo-threads.exp: two threads stop with a signal at once, and the
    # client passes each signal with its thread's resume (vCont;C<sig>:<thread>;c). While
    # the second stop waits to be reported, the resume that passes the first signal runs
    # nothing (gdbserver does the same); that signal must still reach the program at the
    # thread's next resume, once, with its siginfo. The program counts its handlers' runs
    # and checks each siginfo (tests/programs/threads_signals.c); its exit status says.
    program = programs.threads.parent / "threads_signals"
    rounds = 30
    waited = 0
    with gdb_like_session(server_command, program, [str(rounds)], tmp_path) as (server, client):
        resume, previous = b"vCont;c", None
        for _ in range(10 * rounds):
            reply = client.request(resume, timeout=20)
            if not reply.startswith(b"T"):
                break
            sig = int(reply[1:3], 16)
            thread = re.search(rb"thread:([^;]+);", reply).group(1)
            assert sig in (GDB_SIGUSR1, GDB_SIGUSR2), reply
            if previous is not None and previous[0] != thread and thread_pc(client, previous[0]) == previous[1]:
                waited += 1  # the thread last resumed did not run: this stop had waited
            previous = (thread, stop_pc(reply))
            resume = b"vCont;C%02x:%s;c" % (sig, thread)
    assert exit_status(reply) == 0, f"{reply!r}: status 1 is a signal lost or delivered twice, 2 a wrong siginfo"
    assert waited, f"in {rounds} rounds, no thread's stop waited while the other's was reported"


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_an_exec_by_the_only_thread_resumed_is_reported(programs, tmp_path: Path, server_command):
    # gdb.threads/thread-execl.exp with scheduler locking: the client resumes only the thread
    # that calls execl, the main thread left stopped in pthread_join. The exec makes that
    # thread the leader, under the leader's id; its exec event is the resumed thread's, and
    # is reported (not "no resumed threads").
    program = programs.threads.parent / "threads_execl"
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        execler = load_base(server.pid, program) + nm_address(program, "execler")
        assert client.request(b"Z0,%x,1" % execler) == b"OK"
        hit = client.request(b"vCont;c", timeout=20)
        thread = re.search(rb"thread:([^;]+);", hit).group(1)
        assert hit.startswith(b"T05") and thread != b"p%x.%x" % (server.pid, server.pid), hit
        assert client.request(b"z0,%x,1" % execler) == b"OK"
        execed = client.request(b"vCont;c:" + thread, timeout=20)
        ended = client.request(b"vCont;c", timeout=20)
    assert execed.startswith(b"T05") and b"exec:" in execed, execed
    assert re.search(rb"thread:p%x\.%x;" % (server.pid, server.pid), execed), execed
    assert exit_status(ended) == 0, ended


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_an_exec_after_the_leader_left_gives_the_process_a_leader_again(programs, tmp_path: Path, server_command):
    # gdb.threads/non-ldr-exc-2.exp: the main thread has left (pthread_exit) when the other
    # thread execs; the exec makes that thread the leader, under the leader's id. The leader,
    # gone until then, is alive again: listed, its registers readable (gdb got E01 and lost
    # the process).
    program = programs.threads.parent / "threads_execl"
    with gdb_like_session(server_command, program, ["alone"], tmp_path) as (server, client):
        leader = b"p%x.%x" % (server.pid, server.pid)
        execed = client.request(b"vCont;c", timeout=20)
        assert execed.startswith(b"T05") and b"exec:" in execed, execed
        assert b"thread:" + leader + b";" in execed, execed
        assert client.request(b"Hg" + leader) == b"OK"
        assert len(client.request(b"g")) >= 16 * 16 * 2, "the leader's registers"
        assert client.request(b"T" + leader) == b"OK"
        ended = client.request(b"vCont;c", timeout=20)
    assert exit_status(ended) == 0, ended


def mem_byte(pid: int, addr: int) -> int:
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(addr)
        return mem.read(1)[0]


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_breakpoint_whose_memory_was_replaced_is_not_put_back(programs, tmp_path: Path, server_command):
    # gdb.base/unload.exp: a library is unloaded with gdb's breakpoint in it, and another is
    # loaded at the same address; gdb sends no z0 for the first and a Z0 at the same address
    # for the second. tests/programs/remap.c does the same with a page of its own. The new
    # bytes are read as they are, the Z0 writes an int3 over them, and the z0 puts back the
    # new byte, not the old page's.
    program = programs.simple.parent / "remap"
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        base = load_base(server.pid, program)
        mapped = base + nm_address(program, "mapped")
        assert client.request(b"Z0,%x,1" % mapped) == b"OK"
        assert client.request(b"vCont;c", timeout=20).startswith(b"T05")
        page = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % (base + nm_address(program, "page"))).decode()), "little")
        target = page + 16
        assert client.request(b"Z0,%x,1" % target) == b"OK"
        assert mem_byte(server.pid, target) == 0xCC
        # Over the breakpoint at mapped() as gdb steps over one, to its second call.
        assert client.request(b"z0,%x,1" % mapped) == b"OK"
        assert client.request(b"vCont;s:p%x.%x" % (server.pid, server.pid), timeout=20).startswith(b"T05")
        assert client.request(b"Z0,%x,1" % mapped) == b"OK"
        assert client.request(b"vCont;c", timeout=20).startswith(b"T05")  # the page is new
        read_after = client.request(b"m%x,1" % target)
        assert client.request(b"Z0,%x,1" % target) == b"OK"
        inserted = mem_byte(server.pid, target)
        assert client.request(b"z0,%x,1" % target) == b"OK"
        removed = mem_byte(server.pid, target)
        assert client.request(b"z0,%x,1" % mapped) == b"OK"
        ended = client.request(b"vCont;c", timeout=20)
    assert read_after == b"91", read_after
    assert inserted == 0xCC
    assert removed == 0x91
    assert exit_status(ended) == 0, ended


# What gdb 13 sends at connect: every signal but SIGINT (2) and SIGTRAP (5), which it keeps
# for itself unless the user passes one.
GDB_QPROGRAMSIGNALS = b"QProgramSignals:" + b";".join(b"%x" % n for n in range(0x98) if n not in (2, 5)) + b";"


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_signal_the_client_passes_is_delivered_whatever_qprogramsignals_says(programs, tmp_path: Path,
                                                                               server_command):
    # gdb.threads/signal-sigtrap.exp: `signal SIGTRAP` sends vCont;C05 although gdb's
    # QProgramSignals leaves SIGTRAP out; that list is for the signals a server delivers on
    # its own. tests/programs/trap_handler.c exits 0 when its SIGTRAP handler ran once.
    program = programs.simple.parent / "trap_handler"
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        assert client.request(GDB_QPROGRAMSIGNALS) == b"OK"
        ready = load_base(server.pid, program) + nm_address(program, "ready")
        assert client.request(b"Z0,%x,1" % ready) == b"OK"
        hit = client.request(b"vCont;c", timeout=20)
        assert hit.startswith(b"T05"), hit
        assert client.request(b"z0,%x,1" % ready) == b"OK"
        ended = client.request(b"vCont;C05:p%x.%x" % (server.pid, server.pid), timeout=20)
    assert exit_status(ended) == 0, ended


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_an_interrupt_between_hits_does_not_starve_a_thread(programs, tmp_path: Path, server_command):
    # gdb.threads/continue-pending-status.exp: two threads spin on the instruction that has
    # the breakpoint, so both hit it at every resume; between two hits the client removes the
    # breakpoint, resumes and stops the program with a 0x03. The threads' hits are still
    # reported in turns: the interrupt's stop is no thread's turn (it used to make the
    # lower thread win every time).
    program = programs.threads.parent / "threads_spin_at"
    seen: dict[int, int] = {}
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        spin = load_base(server.pid, program) + nm_address(program, "spin_here")
        for _ in range(10):
            assert client.request(b"Z0,%x,1" % spin) == b"OK"
            stop = client.request(b"vCont;c", timeout=20)
            assert stop.startswith(b"T05"), stop
            tid = int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", stop).group(1), 16)
            seen[tid] = seen.get(tid, 0) + 1
            assert client.request(b"z0,%x,1" % spin) == b"OK"
            client.send(b"vCont;c")
            if client.nothing_pending(0.05):  # (gdbserver may report the other's hit first)
                client.send_raw(b"\x03")
            client.read_reply(timeout=10)
        client.request(b"vKill;%x" % server.pid)
    assert len(seen) == 2, f"hits reported per thread: {seen}"



@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_hit_that_comes_with_an_interrupt_leaves_the_pc_at_the_breakpoint(programs, tmp_path: Path,
                                                                            server_command):
    # gdb.threads/sigstep-threads.exp: one thread traps at once at every resume; the other
    # is interrupted for that stop, sometimes between running its int3 and taking the
    # SIGTRAP. The kernel then reports the interrupt's stop first, the SIGTRAP queued behind
    # it. That thread's PC, just past the int3, must not be what the client sees: gdb
    # planted its next breakpoint inside an instruction there, and the program crashed.
    # At every stop each thread's PC is where it can be: never one past a breakpoint.
    program = programs.threads.parent / "threads_trap_race"
    with gdb_like_session(server_command, program, ["320000"], tmp_path) as (server, client):
        base = load_base(server.pid, program)
        quick, late = base + nm_address(program, "quick_here"), base + nm_address(program, "late_here")
        for addr in (quick, late):
            assert client.request(b"Z0,%x,1" % addr) == b"OK"
        threads: set[bytes] = set()
        late_hits = 0
        for cycle in range(1500):
            stop = client.request(b"vCont;c", timeout=20)
            assert stop.startswith(b"T05"), stop
            threads.add(re.search(rb"thread:([^;]+);", stop).group(1))
            for thread in threads:
                pc = thread_pc(client, thread)
                assert pc not in (quick + 1, late + 1), f"stop {cycle}: {thread!r} at {pc:#x}, past an int3"
            if stop_pc(stop) == late:  # step it over its breakpoint, as gdb does
                late_hits += 1
                thread = re.search(rb"thread:([^;]+);", stop).group(1)
                assert client.request(b"z0,%x,1" % late) == b"OK"
                assert client.request(b"vCont;s:" + thread, timeout=20).startswith(b"T05")
                assert client.request(b"Z0,%x,1" % late) == b"OK"
        client.request(b"vKill;%x" % server.pid)
    assert late_hits > 100, late_hits


def children_of(pid: int) -> list[int]:
    """The processes `pid`'s threads have forked, as /proc lists them."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(child) for child in f.read().split()]
    return found


def listed_pids(client: Client) -> set[int]:
    """The processes whose threads qXfer:threads:read lists (what gdb reads)."""
    text, offset = b"", 0
    while True:
        reply = client.request(b"qXfer:threads:read::%x,1000" % offset)
        text += reply[1:]
        offset += len(reply) - 1
        if reply.startswith(b"l"):
            break
    return {int(pid, 16) for pid in re.findall(rb'id="p([0-9a-f]+)\.', text)}


def step_while_another_thread_forks(client: Client, pid: int, release: int) -> int | None:
    """Stop the program, let its second thread fork, and step the main thread until the
    fork has happened: the child's pid if its fork event was left waiting in the server
    (the step reported instead), None if the fork was reported."""
    client.send(b"vCont;c")
    time.sleep(0.05)
    client.send_raw(b"\x03")
    client.read_reply(timeout=10)
    assert client.request(b"M%x,4:01000000" % release) == b"OK"
    for _ in range(5000):
        reply = client.request(b"vCont;s:p%x.%x;c:p%x.-1" % (pid, pid, pid), timeout=20)
        assert reply.startswith(b"T"), reply
        if b"fork:" in reply:
            return None
        children = children_of(pid)
        if children:
            return children[0]
    raise AssertionError("the second thread never forked")


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_fork_child_the_client_has_not_heard_of_goes_with_its_detached_parent(programs, tmp_path: Path,
                                                                                server_command):
    # gdb.threads/pending-fork-event-detach.exp: a thread forks while the client steps
    # another; the step is reported and the fork event waits in the server. Until it is
    # reported, the child is no process the client knows of: no thread list shows it (gdb
    # took it for a new inferior), and detaching its parent lets it go too (it stayed
    # stopped, traced, and its parent waited for it for ever). The program's parent writes
    # its child's exit status once the child has run.
    program = programs.threads.parent / "threads_fork_pending"
    report = tmp_path / "report"
    for attempt in range(10):
        with gdb_like_session(server_command, program, [str(report)], tmp_path) as (server, client):
            release = load_base(server.pid, program) + nm_address(program, "release")
            child = step_while_another_thread_forks(client, server.pid, release)
            if child is None:
                client.request(b"vKill;%x" % server.pid)
                continue  # reported at once: nothing waited, try again
            assert child not in listed_pids(client)
            assert client.request(b"D;%x" % server.pid) == b"OK"
            deadline = time.monotonic() + 10
            while not report.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert report.exists(), f"child {child}: {process_state(child)}"
            assert report.read_text() == "child exited 7\n"
            return
    pytest.skip("every fork was reported at once in 10 tries")


def test_a_fork_child_the_client_has_not_heard_of_goes_with_its_killed_parent(programs, tmp_path: Path):
    # As above, but the client kills the parent: the child it never heard of is killed too,
    # not left stopped and traced (gdb kills the children of the forks it was told of).
    # gdbserver 13 leaves that child stopped, traced, until gdbserver itself ends.
    program = programs.threads.parent / "threads_fork_pending"
    for attempt in range(10):
        with gdb_like_session(None, program, [str(tmp_path / "report")], tmp_path) as (server, client):
            release = load_base(server.pid, program) + nm_address(program, "release")
            child = step_while_another_thread_forks(client, server.pid, release)
            if child is None:
                client.request(b"vKill;%x" % server.pid)
                continue
            assert client.request(b"vKill;%x" % server.pid) == b"OK"
            deadline = time.monotonic() + 10
            while process_state(child) not in (None, "Z") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process_state(child) in (None, "Z"), f"child {child}: {process_state(child)}"
            return
    pytest.skip("every fork was reported at once in 10 tries")


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_process_whose_threads_all_leave_apart_is_reported_exited(programs, tmp_path: Path, server_command):
    # gdb.threads/process-exit-status-is-leader-exit-status.exp: the main thread leaves with
    # the exit system call, then the 32 others. Once the last of them has gone, the process's
    # own exit status is still to come: the resume is answered with it (W), never with "no
    # resumed threads" (N), which gdb took for the end of the session.
    program = programs.threads.parent / "threads_exit_apart"
    for _ in range(30):
        with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
            ended = client.request(b"vCont;c", timeout=20)
            assert exit_status(ended) is not None, ended


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_the_server_waits_for_a_program_it_started_and_detached(programs, tmp_path: Path, server_command):
    # gdb.threads/pending-fork-event-detach-ns.exp: a program the server started shares the
    # server's terminal, and goes on after `detach`. gdbserver then waits for it to end
    # before it exits; gdbstub exited at once, and the hang-up of the terminal (SIGHUP)
    # killed the program in the middle of its work, one run in five.
    server = start_either(server_command, programs.sleeper, [], tmp_path)
    pid = server.pid
    try:
        client = server.connect()
        client.request(GDB_QSUPPORTED)
        client.request(b"?")
        assert client.request(b"D;%x" % pid) == b"OK"
        client.close()
        time.sleep(1)
        assert server.proc.poll() is None, "the server left its program behind"
        assert process_state(pid) in ("S", "R"), process_state(pid)
        os.kill(pid, signal.SIGTERM)
        assert server.wait_exit(timeout=10) is not None, "the server outlived its program"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.stop()


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_removing_a_breakpoint_whose_memory_is_gone_fails(programs, tmp_path: Path, server_command):
    # gdb.base/break-main-file-remove-fail.exp: the page under a breakpoint is unmapped, and
    # the client then removes the breakpoint. Nothing can be put back: the z0 fails (E), as
    # with gdbserver, and gdb warns the user. It said OK.
    program = programs.simple.parent / "remap"
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        base = load_base(server.pid, program)
        mapped, gone = base + nm_address(program, "mapped"), base + nm_address(program, "gone")
        assert client.request(b"Z0,%x,1" % mapped) == b"OK"
        assert client.request(b"vCont;c", timeout=20).startswith(b"T05")
        page = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % (base + nm_address(program, "page"))).decode()), "little")
        assert client.request(b"z0,%x,1" % mapped) == b"OK"
        assert client.request(b"Z0,%x,1" % (page + 16)) == b"OK"
        assert client.request(b"Z0,%x,1" % gone) == b"OK"
        assert stop_pc(client.request(b"vCont;c", timeout=20)) == gone  # the page is unmapped
        removal = client.request(b"z0,%x,1" % (page + 16))
        assert client.request(b"z0,%x,1" % gone) == b"OK"
        ended = client.request(b"vCont;c", timeout=20)
    assert removal.startswith(b"E"), removal
    assert exit_status(ended) == 0, ended


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_segfault_the_client_passes_is_still_reported(programs, tmp_path: Path, server_command):
    # gdb.base/catch-gdb-caused-signals.exp: with `handle SIGSEGV nostop noprint pass`, a
    # SIGSEGV may still be gdb's own doing (a function call that returns to a place that
    # faults), which only gdb can tell: like gdbserver, the server reports SIGSEGV, SIGILL and
    # SIGTRAP even when the client passes them. It passed the SIGSEGV on, and the program
    # died in the middle of gdb's call.
    with gdb_like_session(server_command, programs.crash, [], tmp_path) as (server, client):
        assert client.request(b"QPassSignals:b") == b"OK"
        reply = client.request(b"vCont;c", timeout=20)
        client.request(b"vKill;%x" % server.pid)
    assert reply.startswith(b"T0b"), reply


@pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])
def test_a_started_program_ignores_no_signal_it_was_not_told_to(programs, tmp_path: Path, server_command):
    # gdb.base/signals-state-child.exp: a program started by the server finds every signal
    # at the disposition it would have from a shell. CPython ignores SIGPIPE and SIGXFSZ, and
    # an ignored signal stays ignored across exec: programs started by gdbstub ignored both
    # (one writing to a closed pipe would not die of it). The program counts the signals it
    # finds ignored, and exits with that count; run here, from a shell's state, it is 0.
    program = programs.simple.parent / "ignored_signals"
    assert subprocess.run([str(program)]).returncode == 0  # (subprocess restores SIGPIPE, SIGXFSZ)
    with gdb_like_session(server_command, program, [], tmp_path) as (server, client):
        ended = client.request(b"vCont;c", timeout=20)
    assert exit_status(ended) == 0, ended
