"""Hex text as RSP uses it: numbers and byte strings, and the error raised on bad input.

Shared by the command parser and the reply builders, which is why ``MalformedCommand`` lives
here (``packets.commands`` re-exports it). Python's own ``int(x, 16)`` and ``bytes.fromhex``
accept whitespace, ``_``, ``+`` and ``0x``, none of which RSP allows, so input is checked first.
"""

from __future__ import annotations

import binascii

__all__ = ["MalformedCommand", "hex_decode", "hex_encode", "parse_hex", "shorten"]

_HEX_DIGITS = b"0123456789abcdefABCDEF"


class MalformedCommand(ValueError):
    """A packet that names a known command but breaks its syntax; the message says how."""


def _is_hex(text: bytes) -> bool:
    # translate(None, delete) drops every hex digit in C; anything left over is not hex.
    return not text.translate(None, _HEX_DIGITS)


def shorten(text: bytes, limit: int = 40) -> str:
    """``repr`` of a possibly huge byte string, cut to ``limit`` bytes, for error messages."""
    if len(text) <= limit:
        return repr(bytes(text))
    return repr(bytes(text[:limit])) + f"... ({len(text)} bytes)"


def parse_hex(text: bytes, what: str = "number") -> int:
    """A non-negative hex number. ``what`` names the field in the error message."""
    if not text:
        raise MalformedCommand(f"missing {what}")
    if not _is_hex(text):
        raise MalformedCommand(f"bad hex {what}: {shorten(text)}")
    return int(text, 16)


def hex_encode(data: bytes) -> bytes:
    """Bytes as lowercase hex text, two digits a byte."""
    return binascii.hexlify(data)


def hex_decode(text: bytes) -> bytes:
    """Hex text back to bytes; raises :class:`MalformedCommand` on odd length or a non-hex digit."""
    if len(text) % 2:
        raise MalformedCommand(f"hex data has an odd number of digits ({len(text)})")
    if not _is_hex(text):
        raise MalformedCommand("hex data contains a non-hex character")
    return binascii.unhexlify(text)
