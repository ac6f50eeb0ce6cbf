"""The command table every packet family registers into, and what the families share: thread
ids, the `Command` base, `parse_command`, and small parsing helpers.

``@register(prefix)`` maps a command name to a function that receives the payload after the
prefix and returns a command, or ``None`` when the payload only looks like that command
(``qCRC:...`` starts with ``qC``). Prefixes are tried longest first, so ``vCont?`` and
``vCont;``, ``qC`` and ``qCRC`` never shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from .framing import unescape_binary
from .records import record
from .hexcodec import MalformedCommand, parse_hex, shorten

__all__ = [
    "Command",
    "MalformedCommand",
    "Parser",
    "ThreadId",
    "Unknown",
    "flag",
    "optional_hex",
    "parse_command",
    "register",
    "register_exact",
    "signal_list",
    "split_fields",
    "thread_suffix",
    "unescape",
]


def _parse_id(text: bytes, what: str) -> int:
    # "-1" (all) is the only negative id RSP has.
    if text == b"-1":
        return -1
    return parse_hex(text, what)


def _format_id(value: int) -> bytes:
    return b"-%x" % -value if value < 0 else b"%x" % value


@record
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


class Command:
    """Base of every parsed command (each one is a frozen record: see records.py)."""

    __slots__ = ()


@record
class Unknown(Command):
    """A packet no parser claimed; answered with an empty reply."""

    payload: bytes


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


def register_exact(name: bytes, make: Callable[[], Command]) -> None:
    """Register a command that takes no arguments; anything after its name is another packet."""

    def parse(rest: bytes) -> Command | None:
        return make() if not rest else None

    register(name)(parse)


def split_fields(text: bytes, count: int, what: str, separator: bytes = b",") -> list[bytes]:
    """Split into exactly ``count`` fields (the last one keeps any further separators)."""
    fields = text.split(separator, count - 1)
    if len(fields) != count:
        raise MalformedCommand(f"{what}: expected {count} fields, got {shorten(text)}")
    return fields


def optional_hex(text: bytes, what: str) -> int | None:
    return parse_hex(text, what) if text else None


def flag(text: bytes, what: str) -> bool:
    if text == b"0":
        return False
    if text == b"1":
        return True
    raise MalformedCommand(f"{what}: expected 0 or 1, got {shorten(text)}")


def signal_list(text: bytes) -> tuple[int, ...]:
    # gdb ends the list with ';' and sends an empty list to clear it.
    return tuple(parse_hex(item, "signal") for item in text.split(b";") if item)


def thread_suffix(text: bytes) -> tuple[bytes, ThreadId | None]:
    """Split lldb's trailing ``;thread:TID;`` off a register packet."""
    index = text.find(b";thread:")
    if index < 0:
        return text, None
    tid_text, _, after = text[index + len(b";thread:") :].partition(b";")
    if after:
        raise MalformedCommand(f"unexpected text after the thread suffix: {shorten(after)}")
    return text[:index], ThreadId.parse(tid_text)


def unescape(data: bytes) -> bytes:
    try:
        return unescape_binary(data)
    except ValueError as error:
        raise MalformedCommand(str(error)) from error
