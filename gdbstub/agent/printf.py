"""The agent printf opcode's format strings, as gdbserver reads and prints them.

gdb sends the format as written between the quotes of a `dprintf` (escapes still in it). The
escapes gdb knows are turned into their bytes; each directive takes one 64-bit argument, cast
as C's printf would read it: 32 bits unless a length modifier says otherwise, `%s` an address
of a NUL-terminated string in the program, `%c` a byte. Floating point, `%p`, `%n` and wide
characters are refused when the breakpoint is set, as gdbserver refuses them when printing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


class FormatError(ValueError):
    pass


_ESCAPES = {"\\": "\\", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t", "v": "\v", '"': '"'}
_DIRECTIVE = re.compile(r"%([-+ #0']*)(\d*)(?:\.(\d*))?(hh|h|ll|l|L|q|j|z|Z|t)?(.?)")
_INTEGER = "diouxXc"
# Bits of the argument each length modifier reads (none: an int).
_WIDTHS = {None: 32, "hh": 8, "h": 16, "l": 64, "ll": 64, "q": 64, "j": 64, "z": 64, "Z": 64, "t": 64}
# Most strings a %s prints; gdbserver has no limit, and a wild pointer should not hang us.
STRING_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Directive:
    flags: str
    width: str
    precision: str | None
    length: str | None
    conversion: str


def _unescape(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(text):
            raise FormatError("the format ends with a lone backslash")
        escaped = _ESCAPES.get(text[i + 1])
        if escaped is None:
            raise FormatError(f"unrecognized escape character \\{text[i + 1]} in the format")
        out.append(escaped)
        i += 2
    return "".join(out)


def parse_format(raw: bytes) -> list[str | Directive]:
    """The pieces of a format (its bytes, without the NUL): literal text and directives."""
    text = _unescape(raw.decode("latin-1"))
    pieces: list[str | Directive] = []
    literal: list[str] = []
    pos = 0
    while pos < len(text):
        percent = text.find("%", pos)
        if percent < 0:
            literal.append(text[pos:])
            break
        literal.append(text[pos:percent])
        if text.startswith("%%", percent):
            literal.append("%")
            pos = percent + 2
            continue
        match = _DIRECTIVE.match(text, percent)
        flags, width, precision, length, conversion = match.groups()
        if conversion == "":
            raise FormatError("the format ends inside a % directive")
        if conversion not in _INTEGER + "s":
            raise FormatError(f"format directive '{match.group(0)}' is not supported in agent printf")
        if length == "L" or (length is not None and conversion in "sc" and length != "hh"):
            raise FormatError(f"format directive '{match.group(0)}' is not supported in agent printf")
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(Directive(flags.replace("'", ""), width, precision, length, conversion))
        pos = match.end()
    if literal and "".join(literal):
        pieces.append("".join(literal))
    return pieces


def directive_count(pieces: list[str | Directive]) -> int:
    return sum(1 for piece in pieces if isinstance(piece, Directive))


def _cast(value: int, bits: int, signed: bool) -> int:
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _format_one(d: Directive, value: int, read_string: Callable[[int, int], bytes]) -> str:
    spec = "%" + d.flags + d.width + ("." + d.precision if d.precision is not None else "")
    if d.conversion == "s":
        if value == 0:
            return (spec + "s") % "(null)"
        return (spec + "s") % read_string(value, STRING_LIMIT).decode("latin-1")
    if d.conversion == "c":
        return (spec + "c") % chr(value & 0xFF)
    bits = _WIDTHS[d.length]
    number = _cast(value, bits, signed=d.conversion in "di")
    if d.conversion == "o" and "#" in d.flags:
        # C's alternate octal form is a leading 0, where Python's is 0o.
        digits = "0%o" % number if number else "0"
        return ("%" + d.flags.replace("#", "").replace("0", "") + d.width + "s") % digits
    return (spec + ("d" if d.conversion in "iu" else d.conversion)) % number


def render(pieces: list[str | Directive], args: list[int], read_string: Callable[[int, int], bytes]) -> str:
    """The text a printf of these pieces writes with these arguments."""
    out = []
    values = iter(args)
    for piece in pieces:
        out.append(piece if isinstance(piece, str) else _format_one(piece, next(values), read_string))
    return "".join(out)
