"""Z/z: software breakpoints (int3) and, through the debug registers, hardware breakpoints (Z1)
and write/read/access watchpoints (Z2/Z3/Z4). A breakpoint's conditions and commands (gdb's
agent expressions) are checked and kept with it, and evaluated here at each hit."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..agent import BreakpointProgram, BytecodeError
from ..process.breakpoints import BreakpointError
from ..process.debugregs import DebugRegisterError, Watch
from .registry import add_feature, handles

_KINDS = {1: "exec", 2: "write", 3: "read", 4: "access"}

add_feature("hwbreak+")
add_feature("ConditionalBreakpoints+")
add_feature("BreakpointCommands+")


def _program(session, cmd: cmds.InsertBreakpoint) -> BreakpointProgram | None:
    if not cmd.conditions and not cmd.commands:
        return None
    # `persist` (commands that go on after the client leaves) is not honoured: a client that
    # leaves takes its breakpoints with it.
    return BreakpointProgram.compile(cmd.conditions, cmd.commands, session.table,
                                     session.context.agent_output, session.context.trace_variables)


@handles(cmds.InsertBreakpoint)
def insert_breakpoint(session, cmd: cmds.InsertBreakpoint) -> bytes:
    inferior = session.require_inferior()
    try:
        program = _program(session, cmd)
    except BytecodeError as exc:
        return replies.error(0x01, f"breakpoint at 0x{cmd.addr:x}: {exc}", session.state.error_strings)
    if cmd.kind == 0:
        try:
            inferior.breakpoints.insert(cmd.addr)
        except BreakpointError as exc:
            return replies.error(0x01, str(exc), session.state.error_strings)
        # A Z0 for a breakpoint already there replaces its conditions and commands.
        inferior.breakpoints.set_check(cmd.addr, program)
        return replies.OK
    kind = _KINDS.get(cmd.kind)
    if kind is None or (kind == "read" and not session.profile.read_watchpoints):
        return b""
    length = 1 if kind == "exec" else cmd.length
    try:
        inferior.insert_watch(Watch(kind, cmd.addr, length))
    except DebugRegisterError as exc:
        return replies.error(0x01, str(exc), session.state.error_strings)
    if kind == "exec":
        if program is None:
            inferior.hardware_checks.pop(cmd.addr, None)
        else:
            inferior.hardware_checks[cmd.addr] = program
    return replies.OK


@handles(cmds.RemoveBreakpoint)
def remove_breakpoint(session, cmd: cmds.RemoveBreakpoint) -> bytes:
    inferior = session.require_inferior()
    # Removing what was never inserted is an error, as with gdbserver and lldb-server: the
    # client's idea of what is inserted is wrong, and it should hear so.
    if cmd.kind == 0:
        try:
            if not inferior.breakpoints.remove(cmd.addr):
                return replies.error(0x01, f"no breakpoint at 0x{cmd.addr:x}", session.state.error_strings)
        except BreakpointError as exc:  # the memory is gone: gdb warns that it could not remove it
            return replies.error(0x01, str(exc), session.state.error_strings)
        return replies.OK
    kind = _KINDS.get(cmd.kind)
    if kind is None:
        return b""
    length = 1 if kind == "exec" else cmd.length
    if kind == "exec":
        inferior.hardware_checks.pop(cmd.addr, None)
    if not inferior.remove_watch(Watch(kind, cmd.addr, length)):
        if kind == "read" and not session.profile.read_watchpoints:
            return b""  # as for Z3: this client was told read watchpoints are not supported
        return replies.error(0x01, f"no {kind} watch at 0x{cmd.addr:x}", session.state.error_strings)
    return replies.OK
