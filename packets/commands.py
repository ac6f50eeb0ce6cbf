"""Typed parse of the commands a client sends: payload bytes in, a frozen record out.

``parse_command(payload)`` takes a packet payload exactly as framed (still binary-escaped; the
parsers of binary-carrying commands unescape their data themselves) and returns one of the
command classes re-exported here, ``Unknown`` for anything not registered (the session answers
those with an empty reply, which RSP defines as "not supported"), or raises :class:`MalformedCommand` when
a known command breaks its syntax (the session answers with an ``E`` reply).

Parsing is table-driven. ``@register(prefix)`` maps a command name to a small function that
receives the rest of the payload after the prefix and returns a command, or ``None`` when the
payload only looks like that command (``qCRC:...`` starts with ``qC``). Prefixes are tried
longest first, so ``vCont?`` and ``vCont;``, ``qC`` and ``qCRC`` never shadow each other; a
new packet (lldb's ``qHostInfo``, ``jThreadsInfo``, ...) is added by registering one function.

lldb appends ``;thread:TID;`` to register and breakpoint packets once ``QThreadSuffixSupported``
is on; ``g``, ``G``, ``p``, ``P``, ``Z`` and ``z`` accept it and carry it as ``thread``.

The commands live by family: run control (run_commands), registers, memory and breakpoints
(data_commands), session and queries (query_commands), host I/O (hostio_commands), lldb's
additions and the launch settings (launch_commands); command_base holds the table they register
into. This module is the one place the rest of the server imports them from.
"""

from __future__ import annotations

from .command_base import (  # noqa: F401  (re-exported)
    Command,
    Parser,
    ThreadId,
    Unknown,
    parse_command,
    register,
)
from .data_commands import (  # noqa: F401  (re-exported)
    InsertBreakpoint,
    ReadMemory,
    ReadMemoryBinary,
    ReadRegister,
    ReadRegisters,
    RemoveBreakpoint,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
)
from .hexcodec import (  # noqa: F401  (re-exported)
    MalformedCommand,
)
from .hostio_commands import (  # noqa: F401  (re-exported)
    VFileClose,
    VFileFstat,
    VFileOpen,
    VFilePread,
    VFilePwrite,
    VFileReadlink,
    VFileSetfs,
    VFileUnlink,
)
from .query_commands import (  # noqa: F401  (re-exported)
    AttachedQuery,
    ExtendedMode,
    MonitorCommand,
    MustReplyEmpty,
    OffsetsQuery,
    StartNoAckMode,
    SupportedQuery,
    SymbolQuery,
    TraceStatusQuery,
    XferRead,
    XferWrite,
)
from .run_commands import (  # noqa: F401  (re-exported)
    CatchSyscalls,
    Continue,
    ContinueWithSignal,
    CurrentThreadQuery,
    Detach,
    Kill,
    NonStop,
    StoppedAck,
    CtrlC,
    PassSignals,
    ProgramSignals,
    SetThread,
    Step,
    StepWithSignal,
    StopReasonQuery,
    ThreadAlive,
    ThreadEvents,
    ThreadExtraInfo,
    ThreadInfoFirst,
    ThreadInfoNext,
    TlsAddressQuery,
    VCont,
    VContAction,
    VContQuery,
)

__all__ = [
    "AttachedQuery",
    "CatchSyscalls",
    "Command",
    "Continue",
    "ContinueWithSignal",
    "CurrentThreadQuery",
    "Detach",
    "ExtendedMode",
    "InsertBreakpoint",
    "Kill",
    "MalformedCommand",
    "MonitorCommand",
    "MustReplyEmpty",
    "NonStop",
    "StoppedAck",
    "CtrlC",
    "OffsetsQuery",
    "Parser",
    "PassSignals",
    "ProgramSignals",
    "ReadMemory",
    "ReadMemoryBinary",
    "ReadRegister",
    "ReadRegisters",
    "RemoveBreakpoint",
    "SetThread",
    "StartNoAckMode",
    "Step",
    "StepWithSignal",
    "StopReasonQuery",
    "SupportedQuery",
    "SymbolQuery",
    "ThreadAlive",
    "ThreadEvents",
    "ThreadExtraInfo",
    "ThreadId",
    "ThreadInfoFirst",
    "ThreadInfoNext",
    "TlsAddressQuery",
    "TraceStatusQuery",
    "Unknown",
    "VCont",
    "VContAction",
    "VContQuery",
    "VFileClose",
    "VFileFstat",
    "VFileOpen",
    "VFilePread",
    "VFilePwrite",
    "VFileReadlink",
    "VFileSetfs",
    "VFileUnlink",
    "WriteMemory",
    "WriteRegister",
    "WriteRegisters",
    "XferRead",
    "XferWrite",
    "parse_command",
    "register",
]
