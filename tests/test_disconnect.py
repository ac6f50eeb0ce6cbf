"""A client that vanishes (a TCP reset) at any moment leaves nothing behind.

For each state the client can be in when it goes (the program stopped, running, stepping over
a breakpoint, range stepping, a thousand threads being stopped, a Z just sent, a file being
read over vFile): a launched program is gone and reaped, an attached one is detached and
running on with its original bytes and no debug register left (a leftover int3 or watchpoint
would kill it with SIGTRAP), and the server (--once) exits.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from raw_rsp import (
    GDB_QSUPPORTED,
    RunningServer,
    elf_bytes,
    load_base,
    nm_address,
    proc_memory,
    process_state,
    start_server,
)
from rsp_client import Client

from packets import framing
from testprograms import PROGRAMS_DIR

pytestmark = pytest.mark.timeout(60)

STATES = ["stopped", "running", "stepping-over-breakpoint", "range-stepping", "stopping-many-threads",
          "inserting-breakpoint", "reading-file"]  # fmt: skip


def reset(client: Client, data: bytes = b"") -> None:
    """Send `data` (if any) and vanish: close with a TCP reset, as a killed client does."""
    if data:
        client.send_raw(data)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def text_range(program: Path, base: int) -> tuple[int, int]:
    """Where the program's own functions are: range stepping inside it never ends in spin."""
    with open(program, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        return base + text["sh_addr"], base + text["sh_addr"] + text["sh_size"]


def vanish_in_state(server: RunningServer, program: Path, state: str) -> list[int]:
    """Bring the session to `state`, then reset the connection; returns the addresses where
    breakpoints were inserted (to check their bytes afterwards)."""
    client = server.connect()
    client.request(GDB_QSUPPORTED)
    client.request(b"?")
    base = load_base(server.pid, program)
    tick, main = base + nm_address(program, "tick"), base + nm_address(program, "main")
    ticks = base + nm_address(program, "ticks")
    # Always some of both kinds: an int3 in main (entered once, never again) and a hardware
    # breakpoint and a write watchpoint on things the running program never touches again.
    assert client.request(b"Z0,%x,1" % main) == b"OK"
    assert client.request(b"Z1,%x,1" % main) == b"OK"
    assert client.request(b"Z2,%x,8" % (ticks + 64)) == b"OK"
    inserted = [main]
    if state in ("inserting-breakpoint", "reading-file"):
        # While it stays stopped, points the program would hit at once if they stayed behind.
        assert client.request(b"Z1,%x,1" % tick) == b"OK"
        assert client.request(b"Z2,%x,8" % ticks) == b"OK"
    if state == "stopped":
        assert client.request(b"Z0,%x,1" % tick) == b"OK"
        inserted.append(tick)
        assert client.request(b"vCont;c").startswith(b"T05")
        assert client.request(b"Z1,%x,1" % tick) == b"OK"
        assert client.request(b"Z2,%x,8" % ticks) == b"OK"
        reset(client)
    elif state == "running":
        client.send(b"vCont;c")
        time.sleep(0.2)
        reset(client)
    elif state == "stepping-over-breakpoint":
        assert client.request(b"Z0,%x,1" % tick) == b"OK"
        inserted.append(tick)
        assert client.request(b"vCont;c").startswith(b"T05")
        reset(client, framing.frame(b"vCont;s"))  # the step over the int3, and gone
    elif state == "range-stepping":
        start, end = text_range(program, base)
        client.send(b"vCont;r%x,%x" % (start, end))
        time.sleep(0.2)
        reset(client)
    elif state == "inserting-breakpoint":
        inserted.append(tick)
        reset(client, framing.frame(b"Z0,%x,1" % tick))
    elif state == "reading-file":
        path = os.path.realpath(program).encode()
        reply = client.request(b"vFile:open:%s,0,0" % path.hex().encode())
        fd = int(reply[1:].split(b";")[0], 16)
        requests = b"".join(framing.frame(b"vFile:pread:%x,%x,%x" % (fd, 0x3FFF, off))
                            for off in range(0, 0x40000, 0x3FFF))
        reset(client, requests)
    return inserted


def await_gone(pid: int, timeout: float = 10) -> str | None:
    deadline = time.monotonic() + timeout
    while process_state(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    return process_state(pid)


@pytest.mark.parametrize("state", STATES)
def test_launched_program_is_gone_after_the_client_vanishes(programs, tmp_path: Path, state: str):
    program = PROGRAMS_DIR / "build" / "threads_many" if state == "stopping-many-threads" else programs.spin
    args = ["1000", "100000"] if state == "stopping-many-threads" else []
    server = start_server(program, args, tmp_path / "server.log")
    try:
        if state == "stopping-many-threads":
            client = server.connect()
            client.request(GDB_QSUPPORTED)
            client.send(b"vCont;c")
            time.sleep(0.5)  # a thousand threads starting, each a clone event to handle
            reset(client, b"\x03")
        else:
            vanish_in_state(server, program, state)
        status = server.wait_exit(timeout=20)
    finally:
        server.stop()
    assert status == 0, server.log.read_text()[-2000:]
    assert await_gone(server.pid) is None  # killed and reaped: not even a zombie


@pytest.mark.parametrize("state", [s for s in STATES if s != "stopping-many-threads"])
def test_attached_program_runs_on_untouched_after_the_client_vanishes(programs, tmp_path: Path, state: str):
    program = programs.spin
    proc = subprocess.Popen([str(program)])
    try:
        server = start_server(program, [], tmp_path / "server.log", attach_pid=proc.pid)
        try:
            inserted = vanish_in_state(server, program, state)
            status = server.wait_exit(timeout=20)
        finally:
            server.stop()
        assert status == 0, server.log.read_text()[-2000:]
        # A leftover trap would kill the program (SIGTRAP): say so rather than fail on /proc.
        assert proc.poll() is None, f"the program died ({proc.returncode}):\n{server.log.read_text()[-2000:]}"
        base = load_base(proc.pid, program)
        ticks = base + nm_address(program, "ticks")
        before = int.from_bytes(proc_memory(proc.pid, ticks, 8), "little")
        time.sleep(0.2)
        assert process_state(proc.pid) in ("R", "S"), process_state(proc.pid)  # not traced-stopped
        assert int.from_bytes(proc_memory(proc.pid, ticks, 8), "little") > before  # running on
        for addr in inserted:
            assert proc_memory(proc.pid, addr, 1) == elf_bytes(program, addr - base, 1), hex(addr)
        assert proc.poll() is None  # no leftover trap killed it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
