"""gdb's agent expressions, evaluated in the server: breakpoint conditions and commands
(dprintf) sent with Z packets, so that a hit whose condition is false never reaches the client.

`bytecode` checks and decodes a bytecode once, when the breakpoint is set; `machine` runs it
against a stopped thread; `printf` formats the printf opcode's output; `breakpoint_program`
puts conditions and commands together as the check the process controller asks at a hit.
"""

from .breakpoint_program import BreakpointProgram
from .bytecode import BytecodeError

__all__ = ["BreakpointProgram", "BytecodeError"]
