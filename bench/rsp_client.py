"""A minimal blocking RSP client for the benchmark: framing, acks until no-ack mode, stop replies.

It is written for throughput rather than generality: one request in flight at a time (as gdb
does), a receive buffer scanned from where the last scan stopped (so a 128 KiB reply arriving in
many segments is scanned once), and no checksum verification once no-ack mode is on (the
benchmark checks every byte of memory it reads against the expected contents instead).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from packets.framing import checksum, frame, rle_decode

HANDSHAKE_FEATURES = b"multiprocess+;swbreak+;hwbreak+;vContSupported+"
RECEIVE_SIZE = 1 << 18


class ProtocolError(Exception):
    """The server sent something the benchmark cannot use (an error, a bad frame, a wrong stop)."""


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


class RspClient:
    """One connection to a stub. ``request(payload)`` sends a packet and returns the reply payload."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._scan = 0  # where to resume looking for the end of the packet being received
        self._chunk = bytearray(RECEIVE_SIZE)
        self._chunk_view = memoryview(self._chunk)
        self.no_ack = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 30.0) -> RspClient:
        sock = socket.create_connection((host, port), timeout=timeout)
        # Round-trip latency is what several measurements are about: never let Nagle delay a packet.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def close(self) -> None:
        self._sock.close()

    def send(self, payload: bytes) -> None:
        self._sock.sendall(frame(payload))

    def receive(self) -> bytes:
        """The next packet's payload, run-length encoding expanded (binary escapes are kept)."""
        buffer = self._buffer
        while True:
            start = buffer.find(b"$")
            if start >= 0:
                end = buffer.find(b"#", max(self._scan, start + 1))
                if end >= 0 and len(buffer) >= end + 3:
                    with memoryview(buffer) as view:  # one copy, not a bytearray slice and then bytes
                        payload = bytes(view[start + 1 : end])
                    sent_sum = bytes(buffer[end + 1 : end + 3])
                    del buffer[: end + 3]
                    self._scan = 0
                    if not self.no_ack:
                        if int(sent_sum, 16) != checksum(payload):
                            raise ProtocolError(f"bad checksum on {payload[:80]!r}")
                        self._sock.sendall(b"+")
                    if b"*" in payload:
                        payload = rle_decode(payload)
                    return payload
                # Resume the search for '#' where this one stopped (minus the checksum bytes).
                self._scan = len(buffer) if end < 0 else end
            else:
                # Only acks and noise so far: drop them.
                buffer.clear()
                self._scan = 0
            # recv_into a reused buffer: recv(n) would allocate (and page in) n bytes per call.
            received = self._sock.recv_into(self._chunk)
            if not received:
                raise ConnectionError("the server closed the connection")
            buffer += self._chunk_view[:received]

    def request(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def request_ok(self, payload: bytes) -> None:
        reply = self.request(payload)
        if reply != b"OK":
            raise ProtocolError(f"{payload[:40]!r} answered {reply[:80]!r}")

    def handshake(self) -> tuple[dict[str, str | bool], StopReply]:
        """What gdb does first, minus the optional queries: qSupported, QStartNoAckMode, ``?``."""
        features = parse_features(self.request(b"qSupported:" + HANDSHAKE_FEATURES))
        if features.get("QStartNoAckMode"):
            # The OK still travels under ack rules (receive() acks it); acks stop after it.
            if self.request(b"QStartNoAckMode") == b"OK":
                self.no_ack = True
        return features, parse_stop_reply(self.request(b"?"))
