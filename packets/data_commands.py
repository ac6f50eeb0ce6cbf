"""Commands that read and write the program's registers and memory, and set breakpoints and
watchpoints (g G p P m x M X Z z). lldb's ``;thread:TID;`` suffix is accepted where it sends it."""

from __future__ import annotations

from collections.abc import Callable

from .command_base import Command, ThreadId, register, split_fields, thread_suffix, unescape
from .hexcodec import MalformedCommand, hex_decode, parse_hex, shorten
from .records import record

__all__ = [
    "InsertBreakpoint",
    "ReadMemory",
    "ReadMemoryBinary",
    "ReadRegister",
    "ReadRegisters",
    "RemoveBreakpoint",
    "WriteMemory",
    "WriteRegister",
    "WriteRegisters",
]


@record
class ReadRegisters(Command):
    """``g``: all general registers."""

    thread: ThreadId | None


@record
class WriteRegisters(Command):
    """``G<hex>``: write all general registers."""

    data: bytes
    thread: ThreadId | None


@record
class ReadRegister(Command):
    """``p<regnum>``: one register."""

    regnum: int
    thread: ThreadId | None


@record
class WriteRegister(Command):
    """``P<regnum>=<hex>``: write one register."""

    regnum: int
    value: bytes
    thread: ThreadId | None


@record
class ReadMemory(Command):
    """``m<addr>,<length>``: memory as hex."""

    addr: int
    length: int


@record
class WriteMemory(Command):
    """``M<addr>,<length>:<hex>`` or ``X<addr>,<length>:<binary>``."""

    addr: int
    data: bytes


@record
class ReadMemoryBinary(Command):
    """``x<addr>,<length>``: memory as binary (lldb, and gdb >= 16)."""

    addr: int
    length: int


@record
class InsertBreakpoint(Command):
    """``Z<kind>,<addr>,<length>[;X<len>,<hex>...][;cmds:<persist>,X<len>,<hex>...]``: 0 software,
    1 hardware, 2 write, 3 read, 4 access watch. Conditions and commands are gdb agent
    expressions (bytecode, still to be checked); a breakpoint reports when any condition holds."""

    kind: int
    addr: int
    length: int
    thread: ThreadId | None
    conditions: tuple[bytes, ...] = ()
    commands: tuple[bytes, ...] = ()
    persist: bool = False


@record
class RemoveBreakpoint(Command):
    """``z<kind>,<addr>,<length>``."""

    kind: int
    addr: int
    length: int
    thread: ThreadId | None


@register(b"g")
def _parse_read_registers(rest: bytes) -> Command:
    body, thread = thread_suffix(rest)
    if body:
        raise MalformedCommand(f"g takes no argument, got {shorten(body)}")
    return ReadRegisters(thread)


@register(b"G")
def _parse_write_registers(rest: bytes) -> Command:
    body, thread = thread_suffix(rest)
    return WriteRegisters(hex_decode(body), thread)


@register(b"p")
def _parse_read_register(rest: bytes) -> Command:
    body, thread = thread_suffix(rest)
    return ReadRegister(parse_hex(body, "register number"), thread)


@register(b"P")
def _parse_write_register(rest: bytes) -> Command:
    body, thread = thread_suffix(rest)
    regnum, value = split_fields(body, 2, "P", b"=")
    return WriteRegister(parse_hex(regnum, "register number"), hex_decode(value), thread)


def _address_and_length(text: bytes, what: str) -> tuple[int, int]:
    addr, length = split_fields(text, 2, what)
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
    return _write_memory(rest, "X", unescape)


def _expressions(text: bytes, what: str) -> tuple[bytes, ...]:
    """``X<len>,<hex>X<len>,<hex>...`` (no separator between them) -> the bytecodes."""
    found = []
    rest = text
    while rest:
        if not rest.startswith(b"X"):
            raise MalformedCommand(f"{what}: expected 'X<len>,<bytecode>', got {shorten(rest)}")
        length_text, comma, rest = rest[1:].partition(b",")
        if not comma:
            raise MalformedCommand(f"{what}: missing ',' after the bytecode length")
        length = parse_hex(length_text, "bytecode length")
        if length == 0 or len(rest) < 2 * length:
            raise MalformedCommand(f"{what}: bytecode of length {length:#x} has "
                                   f"{len(rest) // 2:#x} bytes")
        found.append(hex_decode(rest[:2 * length]))
        rest = rest[2 * length:]
    return tuple(found)


def _breakpoint(rest: bytes, what: str) -> tuple | None:
    spec, _, options = rest.partition(b";")
    kind_text, addr_text, length_text = split_fields(spec, 3, what)
    kind = parse_hex(kind_text, "breakpoint type")
    if kind > 4:
        return None  # a type RSP does not define yet: answer empty, like any unknown packet
    thread = None
    conditions: tuple[bytes, ...] = ()
    commands: tuple[bytes, ...] = ()
    persist = False
    for option in options.split(b";") if options else ():
        if option.startswith(b"thread:"):  # lldb
            thread = ThreadId.parse(option[len(b"thread:") :])
        elif option.startswith(b"X"):
            conditions = _expressions(option, f"{what} condition")
        elif option.startswith(b"cmds:"):
            flag, comma, listed = option[len(b"cmds:") :].partition(b",")
            if flag not in (b"0", b"1") or not comma:
                raise MalformedCommand(f"{what}: expected 'cmds:0,' or 'cmds:1,', got {shorten(option)}")
            persist = flag == b"1"
            commands = _expressions(listed, f"{what} commands")
        # Anything else is a later extension: ignored, as gdbserver does.
    return (kind, parse_hex(addr_text, "address"), parse_hex(length_text, "kind"), thread,
            conditions, commands, persist)


@register(b"Z")
def _parse_insert_breakpoint(rest: bytes) -> Command | None:
    fields = _breakpoint(rest, "Z")
    return InsertBreakpoint(*fields) if fields else None


@register(b"z")
def _parse_remove_breakpoint(rest: bytes) -> Command | None:
    fields = _breakpoint(rest, "z")
    return RemoveBreakpoint(*fields[:4]) if fields else None
