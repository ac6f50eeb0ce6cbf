"""A raw RSP client and a gdbstub server subprocess, for tests that speak packets themselves.

`start_server` runs `gdbstub 127.0.0.1:0 PROG` and learns the port and the program's pid from
its log; `Client` frames requests, checks the '+' owed for each and acknowledges replies like
gdb does. Helpers read the kernel's view (/proc) and `nm`, never the server's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from packets import framing

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


# -- a minimal client ------------------------------------------------------------------------------

class Client:
    """Frames requests, checks the '+' the server owes for each, acknowledges its replies.
    The one RSP client of the tests and integration tests (gdb-like and lldb-like sessions)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = framing.Decoder(max_packet_size=1 << 22, expand_rle=True)
        self.events: deque[framing.Event] = deque()
        self.no_ack = False
        self.output = b""  # the program's output, from 'O' packets met by `resume`

    @classmethod
    def connect(cls, address: str | int, timeout: float = 10) -> Client:
        """A client of the server at HOST:PORT (or a port on 127.0.0.1)."""
        host, _, port = str(address).rpartition(":")
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as gdb does
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_event(self, timeout: float = 10) -> framing.Event:
        deadline = time.monotonic() + timeout
        while not self.events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from the server")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                raise TimeoutError("no reply from the server") from None
            if not data:
                raise ConnectionError("the server closed the connection")
            self.events.extend(self.decoder.feed(data))
        return self.events.popleft()

    def expect_ack(self, timeout: float = 10) -> None:
        event = self.next_event(timeout)
        assert isinstance(event, framing.Ack), f"expected '+', got {event!r}"

    def read_reply(self, timeout: float = 10) -> bytes:
        event = self.next_event(timeout)
        assert isinstance(event, framing.Packet), f"expected a packet, got {event!r}"
        if not self.no_ack:
            self.send_raw(b"+")
        return event.payload

    def send(self, payload: bytes) -> None:
        self.send_raw(framing.frame(payload))
        if not self.no_ack:
            self.expect_ack()

    def request(self, payload: bytes, timeout: float = 10) -> bytes:
        self.send(payload)
        return self.read_reply(timeout)

    def resume(self, payload: bytes, timeout: float = 20) -> bytes:
        """Send a resumption packet; return the stop reply, collecting program output."""
        self.send(payload)
        while True:
            reply = self.read_reply(timeout)
            if reply[:1] == b"O" and reply != b"OK":
                self.output += bytes.fromhex(reply[1:].decode())
                continue
            return reply

    def monitor(self, command: str, timeout: float = 60) -> tuple[str, bytes]:
        """What `monitor COMMAND` printed, and its final reply (OK or an error)."""
        self.send(b"qRcmd," + command.encode().hex().encode())
        output = bytearray()
        while True:
            reply = self.read_reply(timeout)
            if reply[:1] == b"O" and reply != b"OK":
                output += bytes.fromhex(reply[1:].decode())
                continue
            return output.decode(errors="replace"), reply

    def nothing_pending(self, wait: float) -> bool:
        """True if the server sends nothing within `wait` seconds."""
        try:
            event = self.next_event(wait)
        except TimeoutError:
            return True
        self.events.appendleft(event)
        return False

    def xfer(self, obj: str, annex: str, chunk: int = 0x3FF) -> bytes:
        """Read a whole qXfer object, chunk by chunk."""
        out = b""
        while True:
            reply = self.request(b"qXfer:%s:read:%s:%x,%x" % (obj.encode(), annex.encode(), len(out), chunk))
            assert reply[:1] in (b"m", b"l"), f"qXfer:{obj}:{annex} at {len(out):#x} -> {reply[:80]!r}"
            out += framing.unescape_binary(reply[1:])
            if reply[:1] == b"l":
                return out


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
