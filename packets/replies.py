"""Builders for reply payloads. The session frames (and may run-length encode) what they return.

An empty payload is itself a reply: "this packet is not supported".
"""

from __future__ import annotations

from .framing import escape_binary
from .hexcodec import hex_decode, hex_encode

__all__ = [
    "OK",
    "console_output",
    "error",
    "exited",
    "hex_decode",
    "hex_encode",
    "stop_reply",
    "terminated",
    "vfile_result",
    "xfer_chunk",
]

OK = b"OK"


def _byte(value: int, what: str) -> int:
    # These fields are two hex digits on the wire; a wider value would shift everything after it.
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} does not fit in one byte")
    return value


def error(code: int, message: str | None = None, with_text: bool = False) -> bytes:
    """``Exx``; with ``with_text`` (lldb's ``QEnableErrorStrings``) ``Exx;<hex message>``."""
    reply = b"E%02x" % _byte(code, "error code")
    if with_text and message is not None:
        reply += b";" + hex_encode(message.encode("utf-8"))
    return reply


def stop_reply(signal: int, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """``Txx`` followed by ``key:value;`` for each pair (registers, ``thread``, ``swbreak``...)."""
    return b"T%02x" % _byte(signal, "signal") + b"".join(
        key + b":" + value + b";" for key, value in pairs
    )


def _process_suffix(pid: int | None) -> bytes:
    return b"" if pid is None else b";process:%x" % pid


def exited(code: int, pid: int | None = None) -> bytes:
    """``Wxx[;process:pid]``: the process exited with status ``code``."""
    return b"W%02x" % _byte(code, "exit status") + _process_suffix(pid)


def terminated(signal: int, pid: int | None = None) -> bytes:
    """``Xxx[;process:pid]``: the process was killed by ``signal``."""
    return b"X%02x" % _byte(signal, "signal") + _process_suffix(pid)


def xfer_chunk(data: bytes, offset: int, length: int) -> bytes:
    """One ``qXfer`` read reply: ``m`` + data if more follows, ``l`` + data if this is the end."""
    chunk = data[offset : offset + length]
    marker = b"l" if offset + length >= len(data) else b"m"
    return marker + escape_binary(chunk)


def console_output(text: bytes) -> bytes:
    """``O<hex>``: text for the debugger's console (``monitor`` command output)."""
    return b"O" + hex_encode(text)


def vfile_result(result: int, errno: int | None = None, attachment: bytes | None = None) -> bytes:
    """``F<result>[,<errno>][;<binary attachment>]`` for ``vFile`` operations (numbers in hex)."""
    reply = b"F-%x" % -result if result < 0 else b"F%x" % result
    if errno is not None:
        reply += b",%x" % errno
    if attachment is not None:
        reply += b";" + escape_binary(attachment)
    return reply
