"""The one raw RSP client of the tests, the integration tests and the benchmark.

`Client` speaks as gdb does: one request in flight, the '+' owed for each request checked and
each reply acknowledged until no-ack mode. Replies come back run-length expanded but still
binary-escaped. The receive path is built for the benchmark's 64 MiB reads: a reused receive
buffer (`recv_into`), the end of a packet looked for with `bytes.find` from where the last look
stopped (a regex over a 128 KiB reply arriving in many segments costs several times more), and,
when the caller asks, no checksum verification in no-ack mode.

Tests import it as `rsp_client` (tests/ is on sys.path), the benchmark as `tests.rsp_client`.
"""

from __future__ import annotations

import re
import socket
import time
from collections import deque
from dataclasses import dataclass

from packets import framing

# What the benchmark's handshake offers: the features gdb offers that change replies it reads.
HANDSHAKE_FEATURES = b"multiprocess+;swbreak+;hwbreak+;vContSupported+"
RECEIVE_SIZE = 1 << 18
# Where a frame or an ack may start; anything else between packets is noise to skip.
_FRAME_START = re.compile(rb"[$%+\-]")
_DOLLAR, _PERCENT, _PLUS, _MINUS = b"$%+-"


class ProtocolError(Exception):
    """The server sent something a client cannot use (a bad frame, a missing ack, an error)."""


@dataclass(frozen=True)
class StopReply:
    """A parsed ``T`` stop reply: signal number, expedited registers and named fields."""

    signal: int
    registers: dict[int, bytes]  # register number -> raw little-endian bytes
    fields: dict[bytes, bytes]  # e.g. b"thread" -> b"p1234.1234", b"swbreak" -> b""

    def register_value(self, regnum: int) -> int:
        return int.from_bytes(self.registers[regnum], "little")

    @property
    def thread(self) -> bytes:
        return self.fields[b"thread"]


def parse_stop_reply(reply: bytes) -> StopReply:
    """Parse ``Tss n:r;...``; raises :class:`ProtocolError` for anything else (W, X, E, S...)."""
    if len(reply) < 3 or reply[:1] != b"T":
        raise ProtocolError(f"expected a T stop reply, got {reply[:80]!r}")
    signal = int(reply[1:3], 16)
    registers: dict[int, bytes] = {}
    fields: dict[bytes, bytes] = {}
    for pair in reply[3:].split(b";"):
        if not pair:
            continue
        name, _, value = pair.partition(b":")
        try:
            registers[int(name, 16)] = bytes.fromhex(value.decode())
        except ValueError:
            fields[name] = value
    return StopReply(signal, registers, fields)


def parse_features(reply: bytes) -> dict[str, str | bool]:
    """A qSupported reply as ``{name: True/False/value}``."""
    features: dict[str, str | bool] = {}
    for item in reply.decode().split(";"):
        if not item:
            continue
        if "=" in item:
            name, value = item.split("=", 1)
            features[name] = value
        elif item[-1] in "+-":
            features[item[:-1]] = item[-1] == "+"
        else:
            features[item] = True
    return features


class Client:
    """One connection to a stub: frames requests, checks the '+' owed for each, acknowledges
    replies. `no_ack` is the caller's to set once the server agreed to QStartNoAckMode (tests
    send it themselves; `handshake` does it for the benchmark)."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0, verify_checksums: bool = True) -> None:
        self.sock = sock
        self.timeout = timeout  # how long a reply may take, unless a call says otherwise
        # False: trust replies in no-ack mode (the benchmark checks the data it reads instead,
        # and summing every 128 KiB reply halves the client's speed on bulk reads).
        self.verify_checksums = verify_checksums
        self.no_ack = False
        self.output = b""  # the program's output, from 'O' packets met by `resume`
        self._buffer = bytearray()  # received bytes not yet made into events
        self._scan = 1  # where to go on looking for the '#' of the frame at the buffer's start
        self._chunk = bytearray(RECEIVE_SIZE)
        self._chunk_view = memoryview(self._chunk)
        self._held: deque[bytes | framing.Event] = deque()  # looked at and put back

    @classmethod
    def connect(cls, address: str | int, timeout: float = 10.0, verify_checksums: bool = True) -> Client:
        """A client of the server at HOST:PORT (or a port on 127.0.0.1)."""
        host, _, port = str(address).rpartition(":")
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        # As gdb does; round-trip latency is what several measurements are about.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, timeout, verify_checksums)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.sock.sendall(framing.frame(payload))
        if not self.no_ack:
            self.expect_ack()

    def next_event(self, timeout: float | None = None) -> framing.Event:
        """The next ack, NAK, packet or notification from the server."""
        item = self._read(timeout)
        return framing.Packet(item) if isinstance(item, bytes) else item

    def _read(self, timeout: float | None) -> bytes | framing.Event:
        """The next packet's payload, or the event that came instead. A payload is not made an
        event: on the path of every reply, building one would cost more than the rest."""
        if self._held:
            return self._held.popleft()
        buffer = self._buffer
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if buffer:
                first = buffer[0]
                if first == _DOLLAR or first == _PERCENT:
                    end = buffer.find(b"#", self._scan)
                    if end >= 0 and len(buffer) >= end + 3:
                        return self._take_frame(end)
                    # Go on from here next time (the '#' itself if only its checksum is missing).
                    self._scan = len(buffer) if end < 0 else end
                elif first == _PLUS or first == _MINUS:
                    del buffer[:1]
                    return framing.Ack() if first == _PLUS else framing.Nak()
                else:
                    start = _FRAME_START.search(buffer)
                    del buffer[: start.start() if start else len(buffer)]
                    self._scan = 1
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from the server")
            self.sock.settimeout(remaining)
            try:
                # recv_into a reused buffer: recv(n) would allocate (and page in) n bytes per call.
                received = self.sock.recv_into(self._chunk)
            except socket.timeout:
                raise TimeoutError("no reply from the server") from None
            if not received:
                raise ConnectionError("the server closed the connection")
            buffer += self._chunk_view[:received]

    def _take_frame(self, end: int) -> bytes | framing.Event:
        """The frame at the buffer's start, whose '#' is at `end` and checksum complete."""
        buffer = self._buffer
        notification = buffer[0] == _PERCENT
        with memoryview(buffer) as view:  # one copy, not a bytearray slice and then bytes
            payload = bytes(view[1:end])
        sent_sum = bytes(buffer[end + 1 : end + 3])
        del buffer[: end + 3]
        self._scan = 1
        if self.verify_checksums or not self.no_ack:
            try:
                intact = int(sent_sum, 16) == framing.checksum(payload)
            except ValueError:
                intact = False
            if not intact:
                return framing.BadChecksum(payload)
        if b"*" in payload:
            try:
                payload = framing.rle_decode(payload)
            except ValueError:
                # gdb NAKs a reply with broken run-length encoding, as for a bad checksum.
                return framing.BadChecksum(payload)
        return framing.Notification(payload) if notification else payload

    def expect_ack(self, timeout: float | None = None) -> None:
        event = self.next_event(timeout)
        if not isinstance(event, framing.Ack):
            raise ProtocolError(f"expected '+', got {event!r:.120}")

    def read_reply(self, timeout: float | None = None) -> bytes:
        """The next packet's payload, acknowledged unless in no-ack mode."""
        payload = self._read(timeout)
        if not isinstance(payload, bytes):
            raise ProtocolError(f"expected a packet, got {payload!r:.120}")
        if not self.no_ack:
            self.sock.sendall(b"+")
        return payload

    def request(self, payload: bytes, timeout: float | None = None) -> bytes:
        self.send(payload)
        return self.read_reply(timeout)

    def request_ok(self, payload: bytes, timeout: float | None = None) -> None:
        reply = self.request(payload, timeout)
        if reply != b"OK":
            raise ProtocolError(f"{payload[:40]!r} answered {reply[:80]!r}")

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
            item = self._read(wait)
        except TimeoutError:
            return True
        self._held.appendleft(item)
        return False

    def xfer(self, obj: str, annex: str, chunk: int = 0x3FF) -> bytes:
        """Read a whole qXfer object, chunk by chunk."""
        out = b""
        while True:
            reply = self.request(b"qXfer:%s:read:%s:%x,%x" % (obj.encode(), annex.encode(), len(out), chunk))
            if reply[:1] not in (b"m", b"l"):
                raise ProtocolError(f"qXfer:{obj}:{annex} at {len(out):#x} -> {reply[:80]!r}")
            out += framing.unescape_binary(reply[1:])
            if reply[:1] == b"l":
                return out

    def handshake(self) -> tuple[dict[str, str | bool], StopReply]:
        """What gdb does first, minus the optional queries: qSupported, QStartNoAckMode, ``?``."""
        features = parse_features(self.request(b"qSupported:" + HANDSHAKE_FEATURES))
        # The OK still travels under ack rules; acks stop after it.
        if features.get("QStartNoAckMode") and self.request(b"QStartNoAckMode") == b"OK":
            self.no_ack = True
        return features, parse_stop_reply(self.request(b"?"))
