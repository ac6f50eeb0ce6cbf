"""How soon a server answers a 0x03 or a disconnect while a program of many threads runs, and
how a pause at a random moment fares in a program whose threads are busy, blocked, or coming
and going (`pause_latencies`).

Shared by tests/test_many_threads_running.py (a generous bound) and bench/running_latency.py
(the figures, gdbstub beside gdbserver). The program is tests/programs/threads_bench.c:
NTHREADS threads blocked at a barrier, the main thread calling tick() for ever.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from pathlib import Path

from packets import framing
from raw_rsp import GDB_QSUPPORTED, GDBSTUB, process_state, start_server

FOREVER = "1000000000000"  # tick() calls: the program never ends by itself


def task_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def wait_for_threads(pid: int, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while task_count(pid) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{pid} has {task_count(pid)} threads, not {count}")
        time.sleep(0.02)


def tracer_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def _running_client(program: Path, nthreads: int, log: Path, command: list[str]):
    """A server of the program with every thread started, and a client that resumed it."""
    server = start_server(program, [str(nthreads), FOREVER], log, command=command)
    client = server.connect()
    client.request(GDB_QSUPPORTED)
    client.send(b"vCont;c")
    wait_for_threads(server.pid, nthreads + 1)
    return server, client


def interrupt_latency(program: Path, nthreads: int, log: Path, together: bool,
                      command: list[str] = GDBSTUB) -> tuple[float, bytes]:
    """Seconds from a 0x03 to its stop reply (sent in one write with `vCont;c`, or just
    after it in a write of its own), and the reply."""
    server, client = _running_client(program, nthreads, log, command)
    try:
        client.send_raw(b"\x03")  # the first stop: every thread exists now
        client.read_reply(timeout=30)
        if together:
            start = time.monotonic()
            client.send_raw(framing.frame(b"vCont;c") + b"\x03")
            client.expect_ack(timeout=30)
        else:
            client.send(b"vCont;c")
            start = time.monotonic()
            client.send_raw(b"\x03")
        reply = client.read_reply(timeout=30)
        return time.monotonic() - start, reply
    finally:
        client.close()
        server.stop()


def disconnect_latency(program: Path, nthreads: int, log: Path, attached: bool,
                       command: list[str] = GDBSTUB, patience: float = 30
                       ) -> tuple[float, str | None, int | None]:
    """Seconds from the client's close (the program running) until the program is gone
    (launched) or running untraced (attached), `patience` at most; then its state and tracer."""
    victim = None
    if attached:
        victim = subprocess.Popen([str(program), str(nthreads), FOREVER], stdout=subprocess.DEVNULL)
        wait_for_threads(victim.pid, nthreads + 1)
        server = start_server(program, [], log, command=command, attach_pid=victim.pid)
        client = server.connect()
        client.request(GDB_QSUPPORTED)
        client.send(b"vCont;c")
    else:
        server, client = _running_client(program, nthreads, log, command)
    pid = server.pid
    try:
        start = time.monotonic()
        client.close()
        deadline = start + patience
        while time.monotonic() < deadline:
            if attached and tracer_of(pid) == 0 and process_state(pid) in ("R", "S"):
                break
            if not attached and process_state(pid) in (None, "Z", "X"):
                break
            time.sleep(0.001)
        return time.monotonic() - start, process_state(pid), tracer_of(pid)
    finally:
        server.stop()
        if victim is not None:
            victim.kill()
            victim.wait()


def task_ids(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except FileNotFoundError:
        return set()


def pause_latencies(program: Path, rounds: int, log: Path, command: list[str] = GDBSTUB,
                    seed: int = 0, max_wait: float = 0.01) -> list[tuple[float, bytes, bool]]:
    """Pause a running program `rounds` times, each after a random moment (up to `max_wait`
    seconds) of running: for each pause, the seconds from the 0x03 to its stop reply, the
    reply, and whether the thread it names exists (in /proc, while the program is stopped).
    The program is tests/programs/threads_pause.c: busy threads, threads in blocking system
    calls, and threads being created and joined all the time."""
    rng = random.Random(seed)
    server = start_server(program, [], log, command=command)
    client = server.connect()
    results = []
    try:
        client.request(GDB_QSUPPORTED)
        client.request(b"QStartNoAckMode")
        client.no_ack = True
        client.request(b"?")
        client.send(b"vCont;c")
        wait_for_threads(server.pid, 17)
        client.send_raw(b"\x03")
        client.read_reply(timeout=30)
        for _ in range(rounds):
            client.send(b"vCont;c")
            time.sleep(rng.uniform(0, max_wait))
            start = time.monotonic()
            client.send_raw(b"\x03")
            reply = client.read_reply(timeout=30)
            elapsed = time.monotonic() - start
            named = re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", reply)
            exists = named is not None and int(named.group(1), 16) in task_ids(server.pid)
            results.append((elapsed, reply, exists))
    finally:
        client.close()
        server.stop()
    return results
