"""A breakpoint's conditions and commands, as the check the process controller asks when a
thread hits it: report the hit to the client, or let the thread go on.

The conditions are ORed; one that cannot be evaluated counts as true, so the client hears of
the hit and evaluates the condition itself (as with gdbserver). Commands (dprintf's printf)
run when the condition holds, and a breakpoint with commands is never reported: it did what
the client asked of it. gdbserver runs them at every hit whatever the condition says; gdb's own
dprintf prints only when the condition holds, and so does this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..arch.registers import RegisterTable
from ..process import Inferior
from ..process.threads import Thread
from . import machine
from .bytecode import Program, decode

log = logging.getLogger("gdbstub.agent")


class _ThreadTarget:
    """A stopped thread's registers and memory, as the machine reads them."""

    def __init__(self, program: BreakpointProgram, inferior: Inferior, thread: Thread) -> None:
        self._program = program
        self._inferior = inferior
        self._registers = inferior.registers(thread.tid)

    def register(self, number: int) -> int:
        return int.from_bytes(self._program.table.read_register(self._registers, number), "little")

    def read(self, addr: int, size: int) -> bytes:
        return self._inferior.read_memory(addr, size)

    def read_string(self, addr: int, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit:
            chunk = self._inferior.read_memory(addr + len(out), min(256, limit - len(out)))
            end = chunk.find(b"\0")
            if end >= 0:
                return bytes(out + chunk[:end])
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def variables(self) -> dict[int, int]:
        return self._program.variables

    def write(self, text: str) -> None:
        self._program.output(text.encode("latin-1"))


class BreakpointProgram:
    def __init__(self, conditions: Sequence[Program], commands: Sequence[Program], table: RegisterTable,
                 output: Callable[[bytes], None], variables: dict[int, int]) -> None:
        self.conditions = tuple(conditions)
        self.commands = tuple(commands)
        self.table = table
        self.output = output
        # Trace state variables (getv/setv), shared by every expression of the session.
        self.variables = variables

    @classmethod
    def compile(cls, conditions: Sequence[bytes], commands: Sequence[bytes], table: RegisterTable,
                output: Callable[[bytes], None], variables: dict[int, int]) -> BreakpointProgram:
        """Decode every expression; `BytecodeError` says what one cannot do."""
        def width(number: int) -> int | None:
            register = table.by_number(number)
            return None if register is None else register.size

        return cls([decode(c, width) for c in conditions], [decode(c, width) for c in commands],
                   table, output, variables)

    def __call__(self, inferior: Inferior, thread: Thread) -> bool:
        """Whether the client is told of this hit (run by the tracer, the thread stopped)."""
        target = _ThreadTarget(self, inferior, thread)
        if self.conditions and not any(self._holds(c, target) for c in self.conditions):
            return False
        for command in self.commands:
            try:
                machine.run(command, target, want_result=False)
            except machine.EvaluationError as exc:
                log.info("breakpoint command stopped: %s", exc)
                break
        return not self.commands

    @staticmethod
    def _holds(condition: Program, target: _ThreadTarget) -> bool:
        try:
            return machine.run(condition, target) != 0
        except machine.EvaluationError as exc:
            log.debug("condition not evaluated (%s): the client evaluates it", exc)
            return True
