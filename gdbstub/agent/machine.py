"""Running a decoded agent expression against a stopped thread.

Stack cells are 64-bit and untyped, kept as Python ints in 0 .. 2**64-1; signed opcodes read
them as two's complement. Anything the program cannot do (divide by zero, read memory that is
not there, use more stack than it has, run too long) is an `EvaluationError`: a condition that
fails to evaluate counts as true, so the client hears of the hit and evaluates it itself.
"""

from __future__ import annotations

from typing import Protocol

from . import printf
from .bytecode import NAMES, Program

MASK = (1 << 64) - 1
SIGN = 1 << 63
STACK_LIMIT = 100  # as gdbserver's
# A backward jump can loop forever; no condition gdb writes runs this long.
STEP_LIMIT = 100_000

_REFS = {NAMES["ref8"]: 1, NAMES["ref16"]: 2, NAMES["ref32"]: 4, NAMES["ref64"]: 8}
_CONSTS = {NAMES[n] for n in ("const8", "const16", "const32", "const64")}
(ADD, SUB, MUL, DIV_S, DIV_U, REM_S, REM_U, LSH, RSH_S, RSH_U, TRACE, TRACE_QUICK, LOG_NOT,
 AND, OR, XOR, NOT, EQUAL, LESS_S, LESS_U, EXT, IF_GOTO, GOTO, REG, END, DUP, POP, ZERO_EXT,
 SWAP, GETV, SETV, TRACEV, TRACENZ, PICK, ROT, PRINTF) = (NAMES[n] for n in (
    "add", "sub", "mul", "div_signed", "div_unsigned", "rem_signed", "rem_unsigned", "lsh",
    "rsh_signed", "rsh_unsigned", "trace", "trace_quick", "log_not", "bit_and", "bit_or",
    "bit_xor", "bit_not", "equal", "less_signed", "less_unsigned", "ext", "if_goto", "goto", "reg",
    "end", "dup", "pop", "zero_ext", "swap", "getv", "setv", "tracev", "tracenz", "pick", "rot",
    "printf"))


class EvaluationError(Exception):
    pass


class Target(Protocol):
    """What an agent expression reads and writes: a stopped thread's registers and memory,
    trace state variables, and where printf writes."""

    def register(self, number: int) -> int: ...

    def read(self, addr: int, size: int) -> bytes: ...

    def read_string(self, addr: int, limit: int) -> bytes: ...

    def variables(self) -> dict[int, int]: ...

    def write(self, text: str) -> None: ...


def _signed(value: int) -> int:
    return value - (1 << 64) if value & SIGN else value


def _truncating_div(a: int, b: int) -> int:
    """C's division: the quotient rounds toward zero."""
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def run(program: Program, target: Target, want_result: bool = True) -> int | None:
    stack: list[int] = []
    push = stack.append
    pop = stack.pop
    code = program.code
    pc = 0
    steps = 0
    try:
        while True:
            op, operand = code[pc]
            pc += 1
            steps += 1
            if steps > STEP_LIMIT:
                raise EvaluationError(f"ran more than {STEP_LIMIT} instructions")
            if op == REG:
                push(target.register(operand) & MASK)
            elif op in _CONSTS:
                push(operand)
            elif op in _REFS:
                size = _REFS[op]
                addr = pop()
                data = target.read(addr, size)
                if len(data) != size:
                    raise EvaluationError(f"cannot read {size} bytes at 0x{addr:x}")
                push(int.from_bytes(data, "little"))
            elif op == EXT:
                if operand < 64:
                    value = pop() & ((1 << operand) - 1) if operand else 0
                    if operand and value >> (operand - 1):
                        value -= 1 << operand
                    push(value & MASK)
            elif op == ZERO_EXT:
                if operand < 64:
                    push(pop() & ((1 << operand) - 1))
            elif op == END:
                if not want_result:
                    return None
                if not stack:
                    raise EvaluationError("the expression left nothing on the stack")
                return stack[-1]
            elif op == IF_GOTO:
                if pop():
                    pc = operand
            elif op == GOTO:
                pc = operand
            elif op == PRINTF:
                pop()
                pop()  # the function and channel: gdb always sends 0 and 0 (stdout)
                args = [pop() for _ in range(operand.argument_count)]
                target.write(printf.render(operand.pieces, args, target.read_string))
            else:
                _arithmetic(op, operand, stack, target)
            if len(stack) > STACK_LIMIT:
                raise EvaluationError("stack overflow")
    except IndexError:
        # decode() leaves no way to run past the code (it ends with end or goto, and jumps
        # land on instructions): only the stack can run out.
        raise EvaluationError("stack underflow") from None


def _arithmetic(op: int, operand, stack: list[int], target: Target) -> None:
    push, pop = stack.append, stack.pop
    if op in (ADD, SUB, MUL, AND, OR, XOR, EQUAL, LESS_S, LESS_U, LSH, RSH_S, RSH_U,
              DIV_S, DIV_U, REM_S, REM_U):
        b = pop()
        a = pop()
        if op == ADD:
            push((a + b) & MASK)
        elif op == SUB:
            push((a - b) & MASK)
        elif op == MUL:
            push((a * b) & MASK)
        elif op == AND:
            push(a & b)
        elif op == OR:
            push(a | b)
        elif op == XOR:
            push(a ^ b)
        elif op == EQUAL:
            push(int(a == b))
        elif op == LESS_S:
            push(int(_signed(a) < _signed(b)))
        elif op == LESS_U:
            push(int(a < b))
        elif op == LSH:
            push((a << (b & 63)) & MASK)  # x86's shift takes the count modulo 64
        elif op == RSH_S:
            push((_signed(a) >> (b & 63)) & MASK)
        elif op == RSH_U:
            push(a >> (b & 63))
        else:
            if b == 0:
                raise EvaluationError("division by zero")
            if op == DIV_S:
                push(_truncating_div(_signed(a), _signed(b)) & MASK)
            elif op == DIV_U:
                push(a // b)
            elif op == REM_S:
                sa, sb = _signed(a), _signed(b)
                push((sa - sb * _truncating_div(sa, sb)) & MASK)
            else:
                push(a % b)
    elif op == LOG_NOT:
        push(int(pop() == 0))
    elif op == NOT:
        push(pop() ^ MASK)
    elif op == DUP:
        push(stack[-1])
    elif op == POP:
        pop()
    elif op == SWAP:
        stack[-1], stack[-2] = stack[-2], stack[-1]
    elif op == ROT:
        # a b c -> c a b (c on top before)
        c, b, a = pop(), pop(), pop()
        stack.extend((c, a, b))
    elif op == PICK:
        if operand >= len(stack):
            raise EvaluationError("stack underflow")
        push(stack[-1 - operand])
    elif op == GETV:
        push(target.variables().get(operand, 0))
    elif op == SETV:
        target.variables()[operand] = stack[-1]
    elif op in (TRACE, TRACENZ):
        pop()
        pop()  # nothing is being traced: what to record is dropped
    elif op in (TRACE_QUICK, TRACEV):
        pass
    else:  # decode() lets nothing else through
        raise EvaluationError(f"opcode 0x{op:02x} cannot run here")
