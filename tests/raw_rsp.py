"""A gdbstub server subprocess and helpers, for tests that speak packets themselves.

`start_server` runs `gdbstub 127.0.0.1:0 PROG` and learns the port and the program's pid from
its log; `RunningServer.connect` gives a `rsp_client.Client` of it. Helpers read the kernel's
view (/proc) and `nm`, never the server's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from packets import framing
from rsp_client import Client

GDBSTUB = [sys.executable, "-m", "gdbstub"]
# What gdb 13 sends (see the captures in the shared notes): the server must cope with all of it.
GDB_QSUPPORTED = (b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;"
                  b"vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;"
                  b"memory-tagging+;xmlRegisters=i386")
# What lldb 14 sends, after QStartNoAckMode.
LLDB_QSUPPORTED = b"qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;fork-events+;vfork-events+"
# The size of gdb's amd64 register block when it reads no target description (gdb: "Remote
# 'g' packet reply is too long (expected 560 bytes ...)"): a qSupported without
# xmlRegisters=i386 gets it, from gdbserver as from gdbstub.
BUILTIN_G_SIZE = 560


def same_registers(one: bytes, other: bytes) -> bool:
    """Two hex 'g' replies hold the same registers: equal, or one is gdb's built-in layout,
    which is where the full layout starts."""
    short, long = sorted((one, other), key=len)
    return one == other or (len(short) == 2 * BUILTIN_G_SIZE and long.startswith(short))


# -- the server process ------------------------------------------------------------------------------

@dataclass
class RunningServer:
    proc: subprocess.Popen
    port: int
    pid: int            # the debugged program's pid
    program: Path
    log: Path

    def connect(self) -> Client:
        return Client.connect(self.port)

    def wait_exit(self, timeout: float = 10) -> int | None:
        """The server's exit status once it ends on its own, None if it is still up."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        """End the server (SIGTERM if it is still up) and return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def start_either(server_command: list[str] | None, program: Path, args: list[str],
                 tmp_path: Path) -> RunningServer:
    """gdbstub (`server_command` None) or the named reference server, serving `program`."""
    if server_command and not shutil.which(server_command[0]):
        pytest.skip(f"{server_command[0]} not installed")
    extra = {"command": server_command} if server_command else {}
    return start_server(program, args, tmp_path / "server.log", **extra)


@contextmanager
def attached_server(server_command: list[str] | None, program: Path, args: list[str], tmp_path: Path,
                    threads: int = 1) -> Iterator[RunningServer]:
    """`program` started here with `args` (once it has `threads` threads), and gdbstub
    (`server_command` None) or the named reference server attached to it. Both end with it."""
    if server_command and not shutil.which(server_command[0]):
        pytest.skip(f"{server_command[0]} not installed")
    victim = subprocess.Popen([str(program), *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{victim.pid}/task")) < threads and time.monotonic() < deadline:
            time.sleep(0.01)
        extra = {"command": server_command} if server_command else {}
        server = start_server(program, [], tmp_path / "server.log", attach_pid=victim.pid, **extra)
        try:
            yield server
        finally:
            server.stop()
    finally:
        victim.kill()
        victim.wait()


def start_server(program: Path, args: list[str], log: Path, once: bool = True,
                 command: list[str] = GDBSTUB, attach_pid: int | None = None) -> RunningServer:
    """Serve `program` (gdbstub by default; gdbserver prints the same start-up lines), or the
    running process `attach_pid` (of `program`)."""
    target = ["--attach", "127.0.0.1:0", str(attach_pid)] if attach_pid else ["127.0.0.1:0", str(program), *args]
    argv = [*command, *(["--once"] if once else []), *target]
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                cwd=Path(__file__).resolve().parent.parent)
    deadline = time.monotonic() + 20
    while True:
        text = log.read_text(errors="replace")
        pid = re.search(r"(?:created|Attached); pid = (\d+)", text)
        port = re.search(r"Listening on port (\d+)", text)
        if pid and port:
            return RunningServer(proc, int(port.group(1)), int(pid.group(1)), program, log)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the server did not start:\n{text}")
        time.sleep(0.02)


def hexs(data: bytes) -> bytes:
    return data.hex().encode()


def vfile(client: Client, request: bytes) -> tuple[int, int | None, bytes]:
    """Send a vFile request; returns (result, errno or None, binary attachment)."""
    reply = client.request(request)
    assert reply.startswith(b"F"), reply[:80]
    head, sep, attachment = reply[1:].partition(b";")
    result, _, errno_text = head.partition(b",")
    value = -int(result[1:], 16) if result.startswith(b"-") else int(result, 16)
    return value, (int(errno_text, 16) if errno_text else None), framing.unescape_binary(attachment)


def auxv_of(pid: int) -> dict[int, int]:
    with open(f"/proc/{pid}/auxv", "rb") as f:
        data = f.read()
    return dict(struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]))


def nm_address(program: Path, symbol: str) -> int:
    listing = subprocess.run(["nm", str(program)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise AssertionError(f"{symbol} not in {program}")


def load_base(pid: int, program: Path) -> int:
    real = os.path.realpath(program)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    raise AssertionError(f"{real} not mapped in {pid}")



def process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:][:1].decode()


def proc_memory(pid: int, addr: int, length: int) -> bytes:
    """What the process holds at `addr`, as the kernel shows it (int3 bytes included)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(fd, length, addr)
    finally:
        os.close(fd)


def elf_bytes(program: Path, vaddr: int, length: int) -> bytes:
    """The bytes the ELF file holds for a link-time address."""
    with open(program, "rb") as f:
        elf = ELFFile(f)
        for segment in elf.iter_segments("PT_LOAD"):
            start = segment["p_vaddr"]
            if start <= vaddr and vaddr + length <= start + segment["p_filesz"]:
                f.seek(segment["p_offset"] + vaddr - start)
                return f.read(length)
    raise AssertionError(f"{vaddr:#x} is not in {program}'s file")
