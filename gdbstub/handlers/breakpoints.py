"""Z/z: software breakpoints (int3). Hardware breakpoints and watchpoints come with debug registers."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..target.breakpoints import BreakpointError
from .registry import handles


@handles(cmds.InsertBreakpoint)
def insert_breakpoint(session, cmd: cmds.InsertBreakpoint) -> bytes:
    if cmd.kind != 0:
        return b""  # not supported: gdb falls back (software watchpoints, no hbreak)
    inferior = session.require_inferior()
    try:
        inferior.breakpoints.insert(cmd.addr)
    except BreakpointError as exc:
        return replies.error(0x01, str(exc), session.state.error_strings)
    return replies.OK


@handles(cmds.RemoveBreakpoint)
def remove_breakpoint(session, cmd: cmds.RemoveBreakpoint) -> bytes:
    if cmd.kind != 0:
        return b""
    inferior = session.require_inferior()
    inferior.breakpoints.remove(cmd.addr)
    return replies.OK
