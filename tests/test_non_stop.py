"""Non-stop mode over raw packets, beside gdbserver: QNonStop, %Stop notifications drained
with vStopped, vCont;t, vCtrlC, `?` listing the stopped threads, and exits.

Each test runs against gdbstub and against gdbserver with the same assertions. The truths
are the kernel's (/proc: which threads are in a tracing stop, who traces the program) and the
programs' (tests/programs threads_race.c calls hit() in a loop in each worker; spin.c loops).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from raw_rsp import (GDB_QSUPPORTED, RunningServer, attached_server, load_base, nm_address, process_state,
                     start_either)
from rsp_client import Client

from packets import framing

pytestmark = pytest.mark.timeout(60)
SERVERS = pytest.mark.parametrize("server_command", [None, ["gdbserver"]], ids=["gdbstub", "gdbserver"])


def non_stop_client(server: RunningServer) -> Client:
    client = server.connect()
    client.request(GDB_QSUPPORTED)
    assert client.request(b"QStartNoAckMode") == b"OK"
    client.no_ack = True
    assert client.request(b"QNonStop:1") == b"OK"
    return client


def running_non_stop(server: RunningServer) -> Client:
    """A non-stop client that heard of the first stop and resumed every thread."""
    client = non_stop_client(server)
    client.request(b"?")
    assert client.request(b"vStopped") == b"OK"
    assert client.request(b"vCont;c") == b"OK"  # the reply comes at once: nothing stopped
    return client


def notified_stop(client: Client, timeout: float = 10) -> bytes:
    event = client.next_event(timeout)
    assert isinstance(event, framing.Notification), event
    assert event.payload.startswith(b"Stop:"), event.payload
    return event.payload[len(b"Stop:"):]


def drained(client: Client, first: bytes) -> list[bytes]:
    """Every stop waiting, from the one just heard of: vStopped until OK."""
    stops = [first]
    while (reply := client.request(b"vStopped")) != b"OK":
        stops.append(reply)
    return stops


def thread_of(stop: bytes) -> int:
    return int(re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", stop).group(1), 16)


def task_state(pid: int, tid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/task/{tid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:][:1].decode()


def tracer_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(re.search(r"^TracerPid:\s+(\d+)", text, re.M).group(1))


@SERVERS
def test_a_thread_that_stops_stays_stopped_alone(programs, tmp_path: Path, server_command) -> None:
    program = programs.threads.parent / "threads_race"
    server = start_either(server_command, program, ["1", "1000000000"], tmp_path)
    client = non_stop_client(server)
    pid = server.pid
    try:
        initial = client.request(b"?")  # the launched program's first stop, then nothing more
        assert initial.startswith(b"T05") and thread_of(initial) == pid, initial
        assert client.request(b"vStopped") == b"OK"
        assert client.request(b"Hgp%x.%x" % (pid, pid)) == b"OK"  # as gdb does before reading
        hit = load_base(pid, program) + nm_address(program, "hit")
        assert client.request(b"Z0,%x,1" % hit) == b"OK"

        assert client.request(b"vCont;c") == b"OK"  # the reply comes at once: nothing stopped
        stops = drained(client, notified_stop(client))
        assert len(stops) == 1 and stops[0].startswith(b"T05"), stops
        worker = thread_of(stops[0])
        assert worker != pid
        # The worker waits in a tracing stop; main, blocked in pthread_join, was never stopped.
        assert task_state(pid, worker) == "t"
        assert task_state(pid, pid) in ("S", "R")

        # `?` reports every stopped thread again: the worker, with the stop it had.
        again = client.request(b"?")
        assert thread_of(again) == worker and again.startswith(b"T05"), again
        assert client.request(b"vStopped") == b"OK"

        # Resumed alone, the worker comes back to the breakpoint; nobody else stops.
        assert client.request(b"vCont;c:p%x.%x" % (pid, worker)) == b"OK"
        stops = drained(client, notified_stop(client))
        assert [thread_of(s) for s in stops] == [worker], stops
        assert task_state(pid, pid) in ("S", "R")

        # vCont;t stops the main thread, which hears of a stop with no signal.
        assert client.request(b"z0,%x,1" % hit) == b"OK"
        assert client.request(b"vCont;t:p%x.%x" % (pid, pid)) == b"OK"
        stops = drained(client, notified_stop(client))
        assert len(stops) == 1 and stops[0].startswith(b"T00") and thread_of(stops[0]) == pid, stops
        assert task_state(pid, pid) == "t"

        assert client.request(b"vKill;%x" % pid) == b"OK"
        deadline = time.monotonic() + 5
        while process_state(pid) not in (None, "Z", "X") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_state(pid) in (None, "Z", "X")
    finally:
        client.close()
        server.stop()


@SERVERS
def test_vctrlc_stops_one_thread_with_sigint_and_detach_lets_it_run(programs, tmp_path: Path,
                                                                      server_command) -> None:
    server = start_either(server_command, programs.spin, [], tmp_path)
    client = running_non_stop(server)
    pid = server.pid
    try:
        assert client.request(b"?") == b"OK"  # nothing is stopped
        time.sleep(0.1)
        assert client.request(b"vCtrlC") == b"OK"
        stops = drained(client, notified_stop(client))
        assert len(stops) == 1 and stops[0].startswith(b"T02") and thread_of(stops[0]) == pid, stops
        assert task_state(pid, pid) == "t"
        assert client.request(b"D;%x" % pid) == b"OK"
        deadline = time.monotonic() + 5
        while tracer_of(pid) != 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tracer_of(pid) == 0 and process_state(pid) == "R"
    finally:
        client.close()
        server.stop()
        if process_state(pid) not in (None, "Z", "X"):
            os.kill(pid, signal.SIGKILL)


@SERVERS
def test_the_exit_is_a_notification_too(programs, tmp_path: Path, server_command) -> None:
    program = programs.threads.parent / "threads_race"
    server = start_either(server_command, program, ["3", "1000"], tmp_path)
    client = running_non_stop(server)
    try:
        stops = drained(client, notified_stop(client))
        # gdbserver writes the status as W0 in a notification, W00 in a reply: gdb reads both.
        assert len(stops) == 1 and re.fullmatch(rb"W0+;process:%x" % server.pid, stops[0]), stops
    finally:
        client.close()
        server.stop()


@SERVERS
def test_a_client_that_leaves_while_threads_run_gets_the_program_killed(programs, tmp_path: Path,
                                                                        server_command) -> None:
    program = programs.threads.parent / "threads_race"
    server = start_either(server_command, program, ["2", "1000000000"], tmp_path)
    client = running_non_stop(server)
    pid = server.pid
    try:
        time.sleep(0.1)
    finally:
        client.close()
    try:
        assert server.wait_exit(10) is not None  # --once: the server ends, and the program with it
        assert process_state(pid) in (None, "Z", "X")
    finally:
        server.stop()


@SERVERS
def test_attached_in_non_stop_the_other_threads_are_stopped_one_by_one(programs, tmp_path: Path,
                                                                        server_command) -> None:
    # gdb with `maint set target-non-stop on` attaches: QNonStop:1 comes before `?`, which
    # reports the attached thread alone, with no signal; gdb stops every other thread with
    # vCont;t and hears of each stop (gdb 13 asserts if `?` reports them all at once).
    program = programs.threads.parent / "threads_race"
    with attached_server(server_command, program, ["3", "2000000000"], tmp_path, threads=4) as server:
        pid = server.pid
        client = non_stop_client(server)
        try:
            first = client.request(b"?")
            assert first.startswith(b"T00") and thread_of(first) == pid, first
            assert client.request(b"vStopped") == b"OK"
            others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
            heard = []
            for tid in others:
                assert client.request(b"vCont;t:p%x.%x" % (pid, tid)) == b"OK"
                for stop in drained(client, notified_stop(client)):
                    assert stop.startswith(b"T00"), stop
                    heard.append(thread_of(stop))
            assert sorted(heard) == others
            assert all(task_state(pid, tid) == "t" for tid in [pid, *others])
            assert client.request(b"D;%x" % pid) == b"OK"
        finally:
            client.close()
