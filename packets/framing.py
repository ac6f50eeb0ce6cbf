"""RSP framing: turn a byte stream into packet events, and payloads into frames.

The remote serial protocol wraps every payload as ``$payload#cs`` (``%payload#cs`` for
asynchronous notifications), where ``cs`` is the modulo-256 sum of the payload bytes in two hex
digits. Between packets the stream carries single-byte acknowledgements (``+`` / ``-``) and the
interrupt byte 0x03. :class:`Decoder` is a sans-IO state machine in the style of h11: feed it
whatever bytes arrived, however they were split, and it returns the complete events they made.

Payload-level encodings live here too, because they are defined on the wire bytes:

* binary escaping: ``#``, ``$``, ``}`` and ``*`` are sent as ``}`` followed by the byte XOR 0x20;
* run-length encoding: ``X*n`` stands for ``X`` followed by ``ord(n) - 29`` more copies of ``X``.
  It is applied to the already escaped payload (and undone before unescaping).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

__all__ = [
    "Ack",
    "BadChecksum",
    "Decoder",
    "Event",
    "Interrupt",
    "Nak",
    "Notification",
    "Overlong",
    "Packet",
    "checksum",
    "escape_binary",
    "frame",
    "frame_notification",
    "rle_decode",
    "rle_encode",
    "unescape_binary",
]


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class Packet:
    """A ``$payload#cs`` packet with a valid checksum. ``payload`` is still binary-escaped."""

    payload: bytes


@dataclass(frozen=True)
class Notification:
    """A ``%payload#cs`` asynchronous notification (non-stop mode ``%Stop:...``)."""

    payload: bytes


@dataclass(frozen=True)
class Ack:
    """``+``: the peer received our last packet intact."""


@dataclass(frozen=True)
class Nak:
    """``-``: the peer wants our last packet again."""


@dataclass(frozen=True)
class Interrupt:
    """The 0x03 byte outside a packet: the client asks to stop the running inferior."""


@dataclass(frozen=True)
class BadChecksum:
    """A packet whose checksum did not match (or whose run-length encoding was invalid).

    In acknowledgement mode the receiver answers ``-``; in no-ack mode gdbserver uses the
    payload anyway, so it is kept here (raw, as received).
    """

    payload: bytes


@dataclass(frozen=True)
class Overlong:
    """A packet whose payload exceeded ``max_packet_size``; its bytes were discarded."""

    length: int


Event = Packet | Notification | Ack | Nak | Interrupt | BadChecksum | Overlong


# ---------------------------------------------------------------------------------------------
# Checksums and frames


_CHUNK = 256
_SMALL = 512


def checksum(payload: bytes) -> int:
    """The RSP checksum: the sum of the payload bytes modulo 256.

    Large replies are summed in C: for a chunk of at most 256 bytes, adler32's low half is
    exactly 1 + the byte sum (at most 255 * 256 = 65280, below adler32's modulus 65521), which is
    several times faster than summing a 128 KiB reply byte by byte in Python.
    """
    if len(payload) <= _SMALL:
        return sum(payload) & 0xFF
    view = memoryview(payload)
    n = len(view)
    # adler32's high half (B << 16) vanishes modulo 256, so whole values can be added up.
    total = sum(map(zlib.adler32, [view[i:i + _CHUNK] for i in range(0, n, _CHUNK)]))
    return (total - (n + _CHUNK - 1) // _CHUNK) & 0xFF


_CHECKSUM_TRAILERS = [b"#%02x" % value for value in range(256)]


def frame(payload: bytes) -> bytes:
    """``$payload#cs`` with a lowercase hex checksum. The payload must already be escaped."""
    # join, not %-formatting: formatting a 128 KiB reply costs more than summing it.
    return b"".join((b"$", payload, _CHECKSUM_TRAILERS[checksum(payload)]))


def frame_notification(payload: bytes) -> bytes:
    """``%payload#cs``, the frame of an asynchronous notification."""
    return b"%%%s#%02x" % (payload, checksum(payload))


# ---------------------------------------------------------------------------------------------
# Binary escaping

_ESCAPE = 0x7D  # '}'
_ESCAPED_BYTES = b"}#$*"  # '}' first: escaping it must not re-escape the escapes that follow
# An escape: '}' and the byte it hides (which may be any byte, '}' included).
_ESCAPE_PAIR = re.compile(rb"\}(.)", re.DOTALL)
_UNESCAPED = {bytes((byte,)): bytes((byte ^ 0x20,)) for byte in range(256)}


def escape_binary(data: bytes) -> bytes:
    """Escape the four bytes that may not appear raw in a payload: ``#``, ``$``, ``}``, ``*``."""
    # Four C-speed passes beat a Python loop by far on 128 KiB memory reads.
    for byte in _ESCAPED_BYTES:
        data = data.replace(bytes((byte,)), bytes((_ESCAPE, byte ^ 0x20)))
    return data


def unescape_binary(data: bytes) -> bytes:
    """Undo :func:`escape_binary`. Raises ``ValueError`` if the data ends inside an escape."""
    if b"}" not in data:
        return data
    # The split (in C) gives text, hidden byte, text, ...; mapping the hidden bytes (in C too)
    # undoes every escape without a Python-level step per escape. A 128 KiB X packet of
    # memory holds about 1,900 escapes: 0.34-0.65 ms, where a substitution with a Python
    # callback per escape took 1.3-1.8 ms, and a loop over split pieces 0.4-0.77 ms.
    parts = _ESCAPE_PAIR.split(data)
    if parts[-1].endswith(b"}"):
        # Any other '}' starts a pair the split took: this one has no byte after it.
        raise ValueError("binary data ends with an unfinished '}' escape")
    parts[1::2] = map(_UNESCAPED.__getitem__, parts[1::2])
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Run-length encoding

_RLE_OFFSET = 29  # the count character is chr(repeats + 29); 3 repeats is ' ', the first printable
_RLE_MIN_REPEATS = 3  # a run of 4 is the shortest that gets shorter when encoded
_RLE_MAX_REPEATS = 126 - _RLE_OFFSET  # '~' is the highest count character allowed
# Counts whose character would be '#' or '$' (which break framing) or '+' or '-' (which the
# specification reserves, and which a confused reader could take for acks).
_RLE_FORBIDDEN_REPEATS = frozenset(ord(c) - _RLE_OFFSET for c in "#$+-")
_RUN_PATTERN = re.compile(rb"(.)\1{%d,}" % _RLE_MIN_REPEATS, re.DOTALL)


def _encode_run(match: re.Match[bytes]) -> bytes:
    run = match.group(0)
    char = run[:1]
    remaining = len(run)
    out = bytearray()
    while remaining:
        # Each chunk is the character itself followed, when worth it, by '*' and a count of
        # further copies.
        out += char
        remaining -= 1
        if remaining < _RLE_MIN_REPEATS:
            out += char * remaining
            break
        repeats = min(remaining, _RLE_MAX_REPEATS)
        while repeats in _RLE_FORBIDDEN_REPEATS:
            repeats -= 1
        out += b"*" + bytes((repeats + _RLE_OFFSET,))
        remaining -= repeats
    return bytes(out)


def rle_encode(payload: bytes) -> bytes:
    """Compress runs of four or more identical bytes as ``X*n``.

    The payload must already be binary-escaped: a raw ``*`` would be read back as a run marker,
    so it raises ``ValueError``.
    """
    if b"*" in payload:
        raise ValueError("payload contains a raw '*'; escape it before run-length encoding")
    return _RUN_PATTERN.sub(_encode_run, payload)


def rle_decode(payload: bytes) -> bytes:
    """Expand ``X*n`` runs. Raises ``ValueError`` on a ``*`` with no byte before or no count."""
    star = payload.find(b"*")
    if star < 0:
        return payload
    out = bytearray()
    start = 0
    while star >= 0:
        out += payload[start:star]
        if not out:
            raise ValueError("run-length marker '*' with no preceding character")
        if star + 1 >= len(payload):
            raise ValueError("run-length marker '*' without a count")
        repeats = payload[star + 1] - _RLE_OFFSET
        if repeats < 0:
            raise ValueError(f"invalid run-length count character {payload[star + 1]:#04x}")
        out += out[-1:] * repeats
        start = star + 2
        star = payload.find(b"*", start)
    out += payload[start:]
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# The decoder

_FRAME_START = re.compile(rb"[$%+\-\x03]")
_HEX_VALUE = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}

_IDLE, _BODY, _CHECKSUM = range(3)


def _body_end(buffer: bytearray, start: int) -> int:
    """Where the body from `start` ends (-1: not yet): at its '#', or at a '$', which abandons
    it (senders always escape '$', so a raw one means the packet was cut short; gdb's remote.c
    resynchronises the same way). Two memchr scans: a regex scan of a 128 KiB body arriving in
    two reads cost half a millisecond."""
    end = buffer.find(b"#", start)
    dollar = buffer.find(b"$", start, end if end >= 0 else len(buffer))
    return dollar if dollar >= 0 else end


def _checksum_matches(high_digit: int, low_digit: int, payload: bytes) -> bool:
    high = _HEX_VALUE.get(high_digit)
    low = _HEX_VALUE.get(low_digit)
    return high is not None and low is not None and (high << 4 | low) == checksum(payload)


class Decoder:
    """Incremental RSP decoder: ``feed(bytes) -> list[Event]``.

    Bytes outside packets other than ``+``, ``-`` and 0x03 are skipped. A payload longer than
    ``max_packet_size`` bytes (as sent, before any expansion) is dropped up to its ``#cs`` and
    reported as :class:`Overlong`, without being buffered. With ``expand_rle`` the run-length
    encoding of packet payloads is expanded (a client decoding a stub's replies needs this; a stub
    decoding commands does not, since clients never compress). With ``verify_checksums`` off
    (no-ack mode, where a packet is acted on whatever its checksum, as gdbserver does) nothing
    is summed: summing a 128 KiB ``X`` packet costs a tenth of its handling.
    """

    def __init__(self, max_packet_size: int = 0x20000, expand_rle: bool = False) -> None:
        self.max_packet_size = max_packet_size
        self.expand_rle = expand_rle
        self.verify_checksums = True
        self._buffer = bytearray()
        self._state = _IDLE
        self._notification = False  # whether the current body started with '%'
        self._body_start = 0  # index in _buffer of the current body's first byte
        self._scan = 0  # index in _buffer from which to look for the body's end
        self._hash = 0  # index in _buffer of the '#' ending the current body
        self._discarded = 0  # body bytes already thrown away because the packet is overlong

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events completed by it, in stream order."""
        if self._state == _IDLE and not self._buffer:
            single = self._single_packet(data)
            if single is not None:
                return [single]
        buffer = self._buffer
        buffer += data
        events: list[Event] = []
        pos = 0  # everything before pos that is not part of the current packet is consumed
        while True:
            if self._state == _IDLE:
                match = _FRAME_START.search(buffer, pos)
                if match is None:
                    pos = len(buffer)
                    break
                start = match.start()
                byte = buffer[start]
                pos = start + 1
                if byte == 0x24 or byte == 0x25:  # '$' or '%'
                    self._begin_body(pos, notification=byte == 0x25)
                elif byte == 0x2B:
                    events.append(Ack())
                elif byte == 0x2D:
                    events.append(Nak())
                else:
                    events.append(Interrupt())
            elif self._state == _BODY:
                end = _body_end(buffer, self._scan)
                if end < 0:
                    self._scan = len(buffer)
                    self._discard_if_overlong()
                    break
                if buffer[end] == 0x24:
                    self._begin_body(end + 1, notification=False)
                else:
                    self._hash = end
                    self._state = _CHECKSUM
            else:  # _CHECKSUM
                if len(buffer) < self._hash + 3:
                    break
                events.append(self._finish_packet())
                pos = self._hash + 3
                self._state = _IDLE
        # Drop what has been consumed; keep the current packet's bytes.
        keep_from = pos if self._state == _IDLE else self._body_start
        if keep_from:
            del buffer[:keep_from]
            self._body_start -= keep_from
            self._scan -= keep_from
            self._hash -= keep_from
        return events

    def _single_packet(self, data: bytes) -> Event | None:
        """The common case, decoded without the state machine: `data` is one whole packet."""
        if len(data) < 4 or data[0] != 0x24 or data[-3] != 0x23:
            return None
        payload = data[1:-3]
        if (b"$" in payload or b"#" in payload or len(payload) > self.max_packet_size
                or (self.expand_rle and b"*" in payload)):
            return None
        payload = bytes(payload)
        if self.verify_checksums and not _checksum_matches(data[-2], data[-1], payload):
            return BadChecksum(payload)
        return Packet(payload)

    def _begin_body(self, start: int, notification: bool) -> None:
        self._state = _BODY
        self._notification = notification
        self._body_start = start
        self._scan = start
        self._discarded = 0

    def _discard_if_overlong(self) -> None:
        buffer = self._buffer
        held = len(buffer) - self._body_start
        if self._discarded + held > self.max_packet_size:
            # No need to keep what will never be delivered; just count it.
            self._discarded += held
            del buffer[self._body_start :]
            self._scan = self._body_start

    def _finish_packet(self) -> Event:
        buffer = self._buffer
        body_length = self._hash - self._body_start
        length = self._discarded + body_length
        if length > self.max_packet_size:
            return Overlong(length)
        payload = bytes(buffer[self._body_start : self._hash])
        if self.verify_checksums and not _checksum_matches(buffer[self._hash + 1], buffer[self._hash + 2], payload):
            return BadChecksum(payload)
        if self.expand_rle and b"*" in payload:
            try:
                payload = rle_decode(payload)
            except ValueError:
                # gdb NAKs a reply with broken run-length encoding, as for a bad checksum.
                return BadChecksum(payload)
        if self._notification:
            return Notification(payload)
        return Packet(payload)
