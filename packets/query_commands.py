"""Session and query commands: qSupported, no-ack mode, qXfer objects, qSymbol, qAttached,
qOffsets, monitor commands and extended mode."""

from __future__ import annotations


from .command_base import Command, optional_hex, register, register_exact, split_fields, unescape
from .hexcodec import MalformedCommand, hex_decode, parse_hex
from .records import record

__all__ = [
    "AttachedQuery",
    "ExtendedMode",
    "MonitorCommand",
    "MustReplyEmpty",
    "OffsetsQuery",
    "StartNoAckMode",
    "SupportedQuery",
    "SymbolQuery",
    "TraceStatusQuery",
    "XferRead",
    "XferWrite",
]


@record
class AttachedQuery(Command):
    """``qAttached[:pid]``: was the process attached (1) or created (0)?"""

    pid: int | None


@record
class SupportedQuery(Command):
    """``qSupported[:features]``: ``name+`` is True, ``name-`` False, ``name=value`` a string."""

    features: dict[str, str | bool]


@record
class XferRead(Command):
    """``qXfer:<object>:read:<annex>:<offset>,<length>``."""

    object: str
    annex: str
    offset: int
    length: int


@record
class XferWrite(Command):
    """``qXfer:<object>:write:<annex>:<offset>:<binary>``."""

    object: str
    annex: str
    offset: int
    data: bytes


@record
class OffsetsQuery(Command):
    """``qOffsets``."""


@record
class SymbolQuery(Command):
    """``qSymbol::`` (ready to answer lookups) or ``qSymbol:[value]:<hex name>`` (an answer)."""

    value: int | None
    name: bytes | None


@record
class TraceStatusQuery(Command):
    """``qTStatus``."""


@record
class StartNoAckMode(Command):
    """``QStartNoAckMode``."""


@record
class MustReplyEmpty(Command):
    """``vMustReplyEmpty``: the reply must be empty (probes the handling of unknown v packets)."""


@record
class MonitorCommand(Command):
    """``qRcmd,<hex>``: a ``monitor`` command line."""

    command: bytes


@record
class ExtendedMode(Command):
    """``!``: extended-remote; the server stays up when the process is gone."""


register_exact(b"!", ExtendedMode)


register_exact(b"qOffsets", OffsetsQuery)


register_exact(b"qTStatus", TraceStatusQuery)


register_exact(b"QStartNoAckMode", StartNoAckMode)


register_exact(b"vMustReplyEmpty", MustReplyEmpty)


@register(b"qAttached")
def _parse_attached(rest: bytes) -> Command | None:
    if not rest:
        return AttachedQuery(None)
    if rest[:1] != b":":
        return None
    return AttachedQuery(parse_hex(rest[1:], "process id"))


@register(b"qSupported")
def _parse_supported(rest: bytes) -> Command | None:
    if rest and rest[:1] != b":":
        return None
    features: dict[str, str | bool] = {}
    for item in rest[1:].split(b";"):
        name, equals, value = item.partition(b"=")
        if equals:
            features[name.decode("latin-1")] = value.decode("latin-1")
        elif item[-1:] == b"+":
            features[item[:-1].decode("latin-1")] = True
        elif item[-1:] == b"-":
            features[item[:-1].decode("latin-1")] = False
        # Empty items and other forms ("name?") carry no claim; skip them rather than fail
        # the whole handshake.
    return SupportedQuery(features)


@register(b"qXfer:")
def _parse_xfer(rest: bytes) -> Command | None:
    obj, operation, tail = split_fields(rest, 3, "qXfer", b":")
    if operation == b"read":
        annex, colon, window = tail.rpartition(b":")
        if not colon:
            raise MalformedCommand("qXfer read: missing ':<offset>,<length>'")
        offset, length = split_fields(window, 2, "qXfer read")
        return XferRead(
            obj.decode("latin-1"),
            annex.decode("latin-1"),
            parse_hex(offset, "offset"),
            parse_hex(length, "length"),
        )
    if operation == b"write":
        annex, offset, data = split_fields(tail, 3, "qXfer write", b":")
        return XferWrite(
            obj.decode("latin-1"),
            annex.decode("latin-1"),
            parse_hex(offset, "offset"),
            unescape(data),
        )
    return None


@register(b"qSymbol:")
def _parse_symbol(rest: bytes) -> Command:
    value, colon, name = rest.partition(b":")
    if not colon:
        raise MalformedCommand("qSymbol: expected '<value>:<hex name>'")
    if value and not name:
        raise MalformedCommand("qSymbol: a value without a symbol name")
    return SymbolQuery(optional_hex(value, "symbol value"), hex_decode(name) if name else None)


@register(b"qRcmd,")
def _parse_monitor(rest: bytes) -> Command:
    return MonitorCommand(hex_decode(rest))
