"""Typed parse of the commands a client sends: payload bytes in, a frozen dataclass out.

``parse_command(payload)`` takes a packet payload exactly as framed (still binary-escaped; the
parsers of binary-carrying commands unescape their data themselves) and returns one of the
command classes below, ``Unknown`` for anything not registered (the session answers those with
an empty reply, which RSP defines as "not supported"), or raises :class:`MalformedCommand` when
a known command breaks its syntax (the session answers with an ``E`` reply).

Parsing is table-driven. ``@register(prefix)`` maps a command name to a small function that
receives the rest of the payload after the prefix and returns a command, or ``None`` when the
payload only looks like that command (``qCRC:...`` starts with ``qC``). Prefixes are tried
longest first, so ``vCont?`` and ``vCont;``, ``qC`` and ``qCRC`` never shadow each other; a
new packet (lldb's ``qHostInfo``, ``jThreadsInfo``, ...) is added by registering one function.

lldb appends ``;thread:TID;`` to register and breakpoint packets once ``QThreadSuffixSupported``
is on; ``g``, ``G``, ``p``, ``P``, ``Z`` and ``z`` accept it and carry it as ``thread``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .framing import unescape_binary
from .hexcodec import MalformedCommand, hex_decode, parse_hex, shorten

__all__ = [
    "AttachedQuery",
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


# ---------------------------------------------------------------------------------------------
# Thread ids


def _parse_id(text: bytes, what: str) -> int:
    # "-1" (all) is the only negative id RSP has.
    if text == b"-1":
        return -1
    return parse_hex(text, what)


def _format_id(value: int) -> bytes:
    return b"-%x" % -value if value < 0 else b"%x" % value


@dataclass(frozen=True)
class ThreadId:
    """A thread-id as in ``Hg``/``vCont``/``T``: ``p<pid>.<tid>`` (multiprocess) or ``<tid>``.

    ``tid`` and ``pid`` use ``ALL`` (-1) and ``ANY`` (0) as RSP does; ``pid`` is ``None`` for the
    plain form. ``p<pid>`` alone means every thread of that process (``tid == ALL``).
    """

    pid: int | None
    tid: int

    ALL: ClassVar[int] = -1
    ANY: ClassVar[int] = 0

    @classmethod
    def parse(cls, text: bytes) -> ThreadId:
        """Parse ``p1f.2a``, ``p1f``, ``p-1``, ``p1f.-1``, ``-1``, ``0`` or ``2a``."""
        if text[:1] == b"p":
            pid_text, dot, tid_text = text[1:].partition(b".")
            pid = _parse_id(pid_text, "process id")
            tid = _parse_id(tid_text, "thread id") if dot else cls.ALL
            return cls(pid, tid)
        return cls(None, _parse_id(text, "thread id"))

    def format(self, multiprocess: bool) -> bytes:
        """The wire form: ``p<pid>.<tid>`` when ``multiprocess`` and the pid is known."""
        if multiprocess and self.pid is not None:
            return b"p%s.%s" % (_format_id(self.pid), _format_id(self.tid))
        return _format_id(self.tid)


# ---------------------------------------------------------------------------------------------
# Commands


class Command:
    """Base of every parsed command (each one is a frozen dataclass)."""

    __slots__ = ()


@dataclass(frozen=True)
class Unknown(Command):
    """A packet no parser claimed; answered with an empty reply."""

    payload: bytes


@dataclass(frozen=True)
class StopReasonQuery(Command):
    """``?``: why did the target stop?"""


@dataclass(frozen=True)
class ReadRegisters(Command):
    """``g``: all general registers."""

    thread: ThreadId | None


@dataclass(frozen=True)
class WriteRegisters(Command):
    """``G<hex>``: write all general registers."""

    data: bytes
    thread: ThreadId | None


@dataclass(frozen=True)
class ReadRegister(Command):
    """``p<regnum>``: one register."""

    regnum: int
    thread: ThreadId | None


@dataclass(frozen=True)
class WriteRegister(Command):
    """``P<regnum>=<hex>``: write one register."""

    regnum: int
    value: bytes
    thread: ThreadId | None


@dataclass(frozen=True)
class ReadMemory(Command):
    """``m<addr>,<length>``: memory as hex."""

    addr: int
    length: int


@dataclass(frozen=True)
class WriteMemory(Command):
    """``M<addr>,<length>:<hex>`` or ``X<addr>,<length>:<binary>``."""

    addr: int
    data: bytes


@dataclass(frozen=True)
class ReadMemoryBinary(Command):
    """``x<addr>,<length>``: memory as binary (lldb, and gdb >= 16)."""

    addr: int
    length: int


@dataclass(frozen=True)
class InsertBreakpoint(Command):
    """``Z<kind>,<addr>,<length>``: 0 software, 1 hardware, 2 write, 3 read, 4 access watch."""

    kind: int
    addr: int
    length: int
    thread: ThreadId | None


@dataclass(frozen=True)
class RemoveBreakpoint(Command):
    """``z<kind>,<addr>,<length>``."""

    kind: int
    addr: int
    length: int
    thread: ThreadId | None


@dataclass(frozen=True)
class Continue(Command):
    """``c[addr]``."""

    addr: int | None


@dataclass(frozen=True)
class ContinueWithSignal(Command):
    """``C<sig>[;addr]``."""

    signal: int
    addr: int | None


@dataclass(frozen=True)
class Step(Command):
    """``s[addr]``."""

    addr: int | None


@dataclass(frozen=True)
class StepWithSignal(Command):
    """``S<sig>[;addr]``."""

    signal: int
    addr: int | None


@dataclass(frozen=True)
class VContQuery(Command):
    """``vCont?``: which vCont actions are supported."""


@dataclass(frozen=True)
class VContAction:
    """One ``vCont`` action: ``kind`` is ``c``, ``C``, ``s``, ``S``, ``t`` or ``r``.

    ``signal`` is set for ``C``/``S``, ``start``/``end`` for the ``r`` range step; ``thread`` is
    ``None`` when the action applies to every thread not named by an earlier action.
    """

    kind: str
    signal: int | None
    start: int | None
    end: int | None
    thread: ThreadId | None


@dataclass(frozen=True)
class VCont(Command):
    """``vCont;action[:thread];...``: resume threads, leftmost matching action wins."""

    actions: tuple[VContAction, ...]


@dataclass(frozen=True)
class SetThread(Command):
    """``H<op><thread>``: select the thread for later ``g``/``m``... (``g``) or resumes (``c``)."""

    op: str
    thread: ThreadId


@dataclass(frozen=True)
class ThreadAlive(Command):
    """``T<thread>``: is this thread alive?"""

    thread: ThreadId


@dataclass(frozen=True)
class CurrentThreadQuery(Command):
    """``qC``."""


@dataclass(frozen=True)
class ThreadInfoFirst(Command):
    """``qfThreadInfo``."""


@dataclass(frozen=True)
class ThreadInfoNext(Command):
    """``qsThreadInfo``."""


@dataclass(frozen=True)
class AttachedQuery(Command):
    """``qAttached[:pid]``: was the process attached (1) or created (0)?"""

    pid: int | None


@dataclass(frozen=True)
class SupportedQuery(Command):
    """``qSupported[:features]``: ``name+`` is True, ``name-`` False, ``name=value`` a string."""

    features: dict[str, str | bool]


@dataclass(frozen=True)
class XferRead(Command):
    """``qXfer:<object>:read:<annex>:<offset>,<length>``."""

    object: str
    annex: str
    offset: int
    length: int


@dataclass(frozen=True)
class XferWrite(Command):
    """``qXfer:<object>:write:<annex>:<offset>:<binary>``."""

    object: str
    annex: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class VFileSetfs(Command):
    """``vFile:setfs:<pid>``: later paths are in this process's mount namespace (0 = ours)."""

    pid: int


@dataclass(frozen=True)
class VFileOpen(Command):
    """``vFile:open:<hex path>,<flags>,<mode>`` (flags are GDB's, not the host's)."""

    path: bytes
    flags: int
    mode: int


@dataclass(frozen=True)
class VFilePread(Command):
    """``vFile:pread:<fd>,<count>,<offset>``."""

    fd: int
    count: int
    offset: int


@dataclass(frozen=True)
class VFilePwrite(Command):
    """``vFile:pwrite:<fd>,<offset>,<binary>``."""

    fd: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class VFileClose(Command):
    """``vFile:close:<fd>``."""

    fd: int


@dataclass(frozen=True)
class VFileFstat(Command):
    """``vFile:fstat:<fd>``."""

    fd: int


@dataclass(frozen=True)
class VFileUnlink(Command):
    """``vFile:unlink:<hex path>``."""

    path: bytes


@dataclass(frozen=True)
class VFileReadlink(Command):
    """``vFile:readlink:<hex path>``."""

    path: bytes


@dataclass(frozen=True)
class OffsetsQuery(Command):
    """``qOffsets``."""


@dataclass(frozen=True)
class PassSignals(Command):
    """``QPassSignals:<sig>;...``: GDB signal numbers to deliver without stopping."""

    signals: tuple[int, ...]


@dataclass(frozen=True)
class ProgramSignals(Command):
    """``QProgramSignals:<sig>;...``: GDB signal numbers the program may receive."""

    signals: tuple[int, ...]


@dataclass(frozen=True)
class SymbolQuery(Command):
    """``qSymbol::`` (ready to answer lookups) or ``qSymbol:[value]:<hex name>`` (an answer)."""

    value: int | None
    name: bytes | None


@dataclass(frozen=True)
class TraceStatusQuery(Command):
    """``qTStatus``."""


@dataclass(frozen=True)
class Kill(Command):
    """``k`` or ``vKill;<pid>``."""

    pid: int | None


@dataclass(frozen=True)
class Detach(Command):
    """``D`` or ``D;<pid>``."""

    pid: int | None


@dataclass(frozen=True)
class StartNoAckMode(Command):
    """``QStartNoAckMode``."""


@dataclass(frozen=True)
class MustReplyEmpty(Command):
    """``vMustReplyEmpty``: the reply must be empty (probes the handling of unknown v packets)."""


@dataclass(frozen=True)
class MonitorCommand(Command):
    """``qRcmd,<hex>``: a ``monitor`` command line."""

    command: bytes


@dataclass(frozen=True)
class ThreadExtraInfo(Command):
    """``qThreadExtraInfo,<thread>``."""

    thread: ThreadId


@dataclass(frozen=True)
class NonStop(Command):
    """``QNonStop:0|1``."""

    enable: bool


@dataclass(frozen=True)
class ThreadEvents(Command):
    """``QThreadEvents:0|1``: report thread creation and exit."""

    enable: bool


@dataclass(frozen=True)
class ExtendedMode(Command):
    """``!``: extended-remote; the server stays up when the process is gone."""


# ---------------------------------------------------------------------------------------------
# The registry

Parser = Callable[[bytes], Command | None]
"""A parse function: the payload after the registered prefix -> a command, or None if not ours."""

_PARSERS: dict[bytes, Parser] = {}
_BY_FIRST_BYTE: dict[int, list[tuple[bytes, Parser]]] = {}


def register(prefix: bytes) -> Callable[[Parser], Parser]:
    """Decorator: parse payloads starting with ``prefix`` with the decorated function.

    The function receives the payload after the prefix. Longer prefixes are tried first; if a
    function returns ``None`` the next shorter matching prefix is tried, then ``Unknown``.
    """
    if not prefix:
        raise ValueError("a command prefix must not be empty")

    def decorate(parser: Parser) -> Parser:
        if prefix in _PARSERS:
            raise ValueError(f"command prefix {prefix!r} is already registered")
        _PARSERS[prefix] = parser
        candidates = _BY_FIRST_BYTE.setdefault(prefix[0], [])
        candidates.append((prefix, parser))
        candidates.sort(key=lambda entry: len(entry[0]), reverse=True)
        return parser

    return decorate


def parse_command(payload: bytes) -> Command:
    """Parse one packet payload. Raises :class:`MalformedCommand` and nothing else."""
    payload = bytes(payload)
    for prefix, parser in _BY_FIRST_BYTE.get(payload[0], ()) if payload else ():
        if payload.startswith(prefix):
            try:
                command = parser(payload[len(prefix) :])
            except MalformedCommand:
                raise
            except ValueError as error:  # e.g. a dangling '}' escape in binary data
                raise MalformedCommand(f"{prefix.decode('latin-1')}: {error}") from error
            if command is not None:
                return command
    return Unknown(payload)


def _register_exact(name: bytes, make: Callable[[], Command]) -> None:
    """Register a command that takes no arguments; anything after its name is another packet."""

    def parse(rest: bytes) -> Command | None:
        return make() if not rest else None

    register(name)(parse)


# ---------------------------------------------------------------------------------------------
# Small parsing helpers


def _fields(text: bytes, count: int, what: str, separator: bytes = b",") -> list[bytes]:
    """Split into exactly ``count`` fields (the last one keeps any further separators)."""
    fields = text.split(separator, count - 1)
    if len(fields) != count:
        raise MalformedCommand(f"{what}: expected {count} fields, got {shorten(text)}")
    return fields


def _optional_hex(text: bytes, what: str) -> int | None:
    return parse_hex(text, what) if text else None


def _flag(text: bytes, what: str) -> bool:
    if text == b"0":
        return False
    if text == b"1":
        return True
    raise MalformedCommand(f"{what}: expected 0 or 1, got {shorten(text)}")


def _signal_list(text: bytes) -> tuple[int, ...]:
    # gdb ends the list with ';' and sends an empty list to clear it.
    return tuple(parse_hex(item, "signal") for item in text.split(b";") if item)


def _thread_suffix(text: bytes) -> tuple[bytes, ThreadId | None]:
    """Split lldb's trailing ``;thread:TID;`` off a register packet."""
    index = text.find(b";thread:")
    if index < 0:
        return text, None
    tid_text, _, after = text[index + len(b";thread:") :].partition(b";")
    if after:
        raise MalformedCommand(f"unexpected text after the thread suffix: {shorten(after)}")
    return text[:index], ThreadId.parse(tid_text)


def _unescape(data: bytes) -> bytes:
    try:
        return unescape_binary(data)
    except ValueError as error:
        raise MalformedCommand(str(error)) from error


# ---------------------------------------------------------------------------------------------
# Parsers, one per command name

_register_exact(b"?", StopReasonQuery)
_register_exact(b"!", ExtendedMode)
_register_exact(b"vCont?", VContQuery)
_register_exact(b"qC", CurrentThreadQuery)
_register_exact(b"qfThreadInfo", ThreadInfoFirst)
_register_exact(b"qsThreadInfo", ThreadInfoNext)
_register_exact(b"qOffsets", OffsetsQuery)
_register_exact(b"qTStatus", TraceStatusQuery)
_register_exact(b"QStartNoAckMode", StartNoAckMode)
_register_exact(b"vMustReplyEmpty", MustReplyEmpty)


@register(b"g")
def _parse_read_registers(rest: bytes) -> Command:
    body, thread = _thread_suffix(rest)
    if body:
        raise MalformedCommand(f"g takes no argument, got {shorten(body)}")
    return ReadRegisters(thread)


@register(b"G")
def _parse_write_registers(rest: bytes) -> Command:
    body, thread = _thread_suffix(rest)
    return WriteRegisters(hex_decode(body), thread)


@register(b"p")
def _parse_read_register(rest: bytes) -> Command:
    body, thread = _thread_suffix(rest)
    return ReadRegister(parse_hex(body, "register number"), thread)


@register(b"P")
def _parse_write_register(rest: bytes) -> Command:
    body, thread = _thread_suffix(rest)
    regnum, value = _fields(body, 2, "P", b"=")
    return WriteRegister(parse_hex(regnum, "register number"), hex_decode(value), thread)


def _address_and_length(text: bytes, what: str) -> tuple[int, int]:
    addr, length = _fields(text, 2, what)
    return parse_hex(addr, "address"), parse_hex(length, "length")


@register(b"m")
def _parse_read_memory(rest: bytes) -> Command:
    return ReadMemory(*_address_and_length(rest, "m"))


@register(b"x")
def _parse_read_memory_binary(rest: bytes) -> Command:
    return ReadMemoryBinary(*_address_and_length(rest, "x"))


def _write_memory(rest: bytes, what: str, decode: Callable[[bytes], bytes]) -> Command:
    header, colon, data_text = rest.partition(b":")
    if not colon:
        raise MalformedCommand(f"{what}: missing ':' before the data")
    addr, length = _address_and_length(header, what)
    data = decode(data_text)
    if len(data) != length:
        raise MalformedCommand(f"{what}: length {length:#x} but {len(data):#x} bytes of data")
    return WriteMemory(addr, data)


@register(b"M")
def _parse_write_memory_hex(rest: bytes) -> Command:
    return _write_memory(rest, "M", hex_decode)


@register(b"X")
def _parse_write_memory_binary(rest: bytes) -> Command:
    return _write_memory(rest, "X", _unescape)


def _breakpoint(rest: bytes, what: str) -> tuple[int, int, int, ThreadId | None] | None:
    spec, _, options = rest.partition(b";")
    kind_text, addr_text, length_text = _fields(spec, 3, what)
    kind = parse_hex(kind_text, "breakpoint type")
    if kind > 4:
        return None  # a type RSP does not define yet: answer empty, like any unknown packet
    # Conditions (";X...") and commands (";cmds:...") are not supported and are ignored; lldb's
    # ";thread:TID" suffix is kept.
    thread = None
    for option in options.split(b";"):
        if option.startswith(b"thread:"):
            thread = ThreadId.parse(option[len(b"thread:") :])
    return kind, parse_hex(addr_text, "address"), parse_hex(length_text, "kind"), thread


@register(b"Z")
def _parse_insert_breakpoint(rest: bytes) -> Command | None:
    fields = _breakpoint(rest, "Z")
    return InsertBreakpoint(*fields) if fields else None


@register(b"z")
def _parse_remove_breakpoint(rest: bytes) -> Command | None:
    fields = _breakpoint(rest, "z")
    return RemoveBreakpoint(*fields) if fields else None


@register(b"c")
def _parse_continue(rest: bytes) -> Command:
    return Continue(_optional_hex(rest, "address"))


@register(b"s")
def _parse_step(rest: bytes) -> Command:
    return Step(_optional_hex(rest, "address"))


def _signal_and_address(rest: bytes) -> tuple[int, int | None]:
    signal, _, addr = rest.partition(b";")
    return parse_hex(signal, "signal"), _optional_hex(addr, "address")


@register(b"C")
def _parse_continue_with_signal(rest: bytes) -> Command:
    return ContinueWithSignal(*_signal_and_address(rest))


@register(b"S")
def _parse_step_with_signal(rest: bytes) -> Command:
    return StepWithSignal(*_signal_and_address(rest))


def _vcont_action(text: bytes) -> VContAction:
    action, colon, thread_text = text.partition(b":")
    thread = ThreadId.parse(thread_text) if colon else None
    kind, argument = action[:1], action[1:]
    if kind in (b"c", b"s", b"t"):
        if argument:
            raise MalformedCommand(f"vCont action {shorten(action)} takes no argument")
        return VContAction(kind.decode(), None, None, None, thread)
    if kind in (b"C", b"S"):
        return VContAction(kind.decode(), parse_hex(argument, "signal"), None, None, thread)
    if kind == b"r":
        start, end = _fields(argument, 2, "vCont;r")
        return VContAction(
            "r", None, parse_hex(start, "range start"), parse_hex(end, "range end"), thread
        )
    raise MalformedCommand(f"unknown vCont action {shorten(action)}")


@register(b"vCont;")
def _parse_vcont(rest: bytes) -> Command:
    return VCont(tuple(_vcont_action(action) for action in rest.split(b";")))


@register(b"H")
def _parse_set_thread(rest: bytes) -> Command:
    op = rest[:1]
    if not op.isalpha():
        raise MalformedCommand(f"H needs an operation letter, got {shorten(op)}")
    return SetThread(op.decode(), ThreadId.parse(rest[1:]))


@register(b"T")
def _parse_thread_alive(rest: bytes) -> Command:
    return ThreadAlive(ThreadId.parse(rest))


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
    obj, operation, tail = _fields(rest, 3, "qXfer", b":")
    if operation == b"read":
        annex, colon, window = tail.rpartition(b":")
        if not colon:
            raise MalformedCommand("qXfer read: missing ':<offset>,<length>'")
        offset, length = _fields(window, 2, "qXfer read")
        return XferRead(
            obj.decode("latin-1"),
            annex.decode("latin-1"),
            parse_hex(offset, "offset"),
            parse_hex(length, "length"),
        )
    if operation == b"write":
        annex, offset, data = _fields(tail, 3, "qXfer write", b":")
        return XferWrite(
            obj.decode("latin-1"),
            annex.decode("latin-1"),
            parse_hex(offset, "offset"),
            _unescape(data),
        )
    return None


@register(b"vFile:setfs:")
def _parse_vfile_setfs(rest: bytes) -> Command:
    return VFileSetfs(parse_hex(rest, "process id"))


@register(b"vFile:open:")
def _parse_vfile_open(rest: bytes) -> Command:
    path, flags, mode = _fields(rest, 3, "vFile:open")
    return VFileOpen(hex_decode(path), parse_hex(flags, "flags"), parse_hex(mode, "mode"))


@register(b"vFile:pread:")
def _parse_vfile_pread(rest: bytes) -> Command:
    fd, count, offset = _fields(rest, 3, "vFile:pread")
    return VFilePread(
        parse_hex(fd, "file descriptor"), parse_hex(count, "count"), parse_hex(offset, "offset")
    )


@register(b"vFile:pwrite:")
def _parse_vfile_pwrite(rest: bytes) -> Command:
    fd, offset, data = _fields(rest, 3, "vFile:pwrite")
    return VFilePwrite(
        parse_hex(fd, "file descriptor"), parse_hex(offset, "offset"), _unescape(data)
    )


@register(b"vFile:close:")
def _parse_vfile_close(rest: bytes) -> Command:
    return VFileClose(parse_hex(rest, "file descriptor"))


@register(b"vFile:fstat:")
def _parse_vfile_fstat(rest: bytes) -> Command:
    return VFileFstat(parse_hex(rest, "file descriptor"))


@register(b"vFile:unlink:")
def _parse_vfile_unlink(rest: bytes) -> Command:
    return VFileUnlink(hex_decode(rest))


@register(b"vFile:readlink:")
def _parse_vfile_readlink(rest: bytes) -> Command:
    return VFileReadlink(hex_decode(rest))


@register(b"QPassSignals:")
def _parse_pass_signals(rest: bytes) -> Command:
    return PassSignals(_signal_list(rest))


@register(b"QProgramSignals:")
def _parse_program_signals(rest: bytes) -> Command:
    return ProgramSignals(_signal_list(rest))


@register(b"qSymbol:")
def _parse_symbol(rest: bytes) -> Command:
    value, colon, name = rest.partition(b":")
    if not colon:
        raise MalformedCommand("qSymbol: expected '<value>:<hex name>'")
    if value and not name:
        raise MalformedCommand("qSymbol: a value without a symbol name")
    return SymbolQuery(_optional_hex(value, "symbol value"), hex_decode(name) if name else None)


@register(b"k")
def _parse_kill(rest: bytes) -> Command | None:
    return Kill(None) if not rest else None


@register(b"vKill;")
def _parse_vkill(rest: bytes) -> Command:
    return Kill(parse_hex(rest, "process id"))


@register(b"D")
def _parse_detach(rest: bytes) -> Command:
    if not rest:
        return Detach(None)
    if rest[:1] != b";":
        raise MalformedCommand(f"D: expected ';<pid>', got {shorten(rest)}")
    return Detach(parse_hex(rest[1:], "process id"))


@register(b"qRcmd,")
def _parse_monitor(rest: bytes) -> Command:
    return MonitorCommand(hex_decode(rest))


@register(b"qThreadExtraInfo,")
def _parse_thread_extra_info(rest: bytes) -> Command:
    return ThreadExtraInfo(ThreadId.parse(rest))


@register(b"QNonStop:")
def _parse_non_stop(rest: bytes) -> Command:
    return NonStop(_flag(rest, "QNonStop"))


@register(b"QThreadEvents:")
def _parse_thread_events(rest: bytes) -> Command:
    return ThreadEvents(_flag(rest, "QThreadEvents"))
