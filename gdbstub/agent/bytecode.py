"""Checking and decoding an agent expression (gdb's manual, "Agent Expressions").

A bytecode is decoded once, when the breakpoint is set, into a list of instructions whose jump
targets are instruction indexes: the machine then runs it without looking at bytes again.
Whatever the machine could not run is refused here, with the reason: an unknown or floating
point opcode, a truncated operand, a jump into the middle of an instruction or out of the
code, a register wider than 64 bits, a printf format it cannot print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import printf


class BytecodeError(ValueError):
    pass


# opcode -> (name, operand bytes); the operands are big-endian.
OPCODES: dict[int, tuple[str, int]] = {
    0x02: ("add", 0), 0x03: ("sub", 0), 0x04: ("mul", 0), 0x05: ("div_signed", 0),
    0x06: ("div_unsigned", 0), 0x07: ("rem_signed", 0), 0x08: ("rem_unsigned", 0),
    0x09: ("lsh", 0), 0x0a: ("rsh_signed", 0), 0x0b: ("rsh_unsigned", 0), 0x0c: ("trace", 0),
    0x0d: ("trace_quick", 1), 0x0e: ("log_not", 0), 0x0f: ("bit_and", 0), 0x10: ("bit_or", 0),
    0x11: ("bit_xor", 0), 0x12: ("bit_not", 0), 0x13: ("equal", 0), 0x14: ("less_signed", 0),
    0x15: ("less_unsigned", 0), 0x16: ("ext", 1), 0x17: ("ref8", 0), 0x18: ("ref16", 0),
    0x19: ("ref32", 0), 0x1a: ("ref64", 0), 0x20: ("if_goto", 2), 0x21: ("goto", 2),
    0x22: ("const8", 1), 0x23: ("const16", 2), 0x24: ("const32", 4), 0x25: ("const64", 8),
    0x26: ("reg", 2), 0x27: ("end", 0), 0x28: ("dup", 0), 0x29: ("pop", 0),
    0x2a: ("zero_ext", 1), 0x2b: ("swap", 0), 0x2c: ("getv", 2), 0x2d: ("setv", 2),
    0x2e: ("tracev", 2), 0x2f: ("tracenz", 0), 0x32: ("pick", 1), 0x33: ("rot", 0),
    0x34: ("printf", 0),  # its operands (count, length, format) are decoded on their own
}
# Defined by gdb, but not something a server without floating point or traces can run.
REFUSED = {0x01: "float", 0x1b: "ref_float", 0x1c: "ref_double", 0x1d: "ref_long_double",
           0x1e: "l_to_d", 0x1f: "d_to_l", 0x30: "trace16"}
NAMES = {name: code for code, (name, _) in OPCODES.items()}


@dataclass(frozen=True)
class PrintfOperands:
    argument_count: int
    pieces: list


@dataclass(frozen=True)
class Program:
    """Decoded instructions: (opcode, operand), jump operands being instruction indexes."""

    code: tuple[tuple[int, object], ...]
    source: bytes


def decode(bytecode: bytes, register_width: Callable[[int], int | None]) -> Program:
    """Check one agent expression and decode it. `register_width(n)`: the size in bytes of
    register n in the client's numbering, None if there is no such register."""
    if not bytecode:
        raise BytecodeError("empty agent expression")
    starts: dict[int, int] = {}  # byte offset -> instruction index
    decoded: list[list] = []
    pos = 0
    while pos < len(bytecode):
        code = bytecode[pos]
        starts[pos] = len(decoded)
        if code in REFUSED:
            raise BytecodeError(f"opcode {REFUSED[code]} (0x{code:02x}) at offset {pos} is not supported")
        if code not in OPCODES:
            raise BytecodeError(f"unknown opcode 0x{code:02x} at offset {pos}")
        name, size = OPCODES[code]
        if code == NAMES["printf"]:
            operand, pos = _printf_operands(bytecode, pos)
            decoded.append([code, operand])
            continue
        if pos + 1 + size > len(bytecode):
            raise BytecodeError(f"{name} at offset {pos} is cut short")
        operand = int.from_bytes(bytecode[pos + 1:pos + 1 + size], "big") if size else None
        if name == "reg":
            width = register_width(operand)
            if width is None:
                raise BytecodeError(f"no register {operand}")
            if width > 8:
                raise BytecodeError(f"register {operand} is {width * 8} bits wide; an agent "
                                    "expression can read 64 at most")
        decoded.append([code, operand])
        pos += 1 + size
    for index, instruction in enumerate(decoded):
        if instruction[0] in (NAMES["if_goto"], NAMES["goto"]):
            target = instruction[1]
            if target not in starts:
                raise BytecodeError(f"jump to offset {target}, which starts no instruction")
            instruction[1] = starts[target]
    if decoded[-1][0] not in (NAMES["end"], NAMES["goto"]):
        raise BytecodeError("the agent expression does not end with 'end'")
    return Program(tuple((code, operand) for code, operand in decoded), bytes(bytecode))


def _printf_operands(bytecode: bytes, pos: int) -> tuple[PrintfOperands, int]:
    if pos + 4 > len(bytecode):
        raise BytecodeError(f"printf at offset {pos} is cut short")
    count = bytecode[pos + 1]
    length = int.from_bytes(bytecode[pos + 2:pos + 4], "big")
    end = pos + 4 + length
    if length == 0 or end > len(bytecode):
        raise BytecodeError(f"printf at offset {pos}: its format is cut short")
    if bytecode[end - 1] != 0:
        raise BytecodeError(f"printf at offset {pos}: unterminated format string")
    try:
        pieces = printf.parse_format(bytecode[pos + 4:end - 1])
    except printf.FormatError as exc:
        raise BytecodeError(f"printf at offset {pos}: {exc}") from None
    found = printf.directive_count(pieces)
    if found != count:
        raise BytecodeError(f"printf at offset {pos}: {count} arguments for {found} directives")
    return PrintfOperands(count, pieces), end
