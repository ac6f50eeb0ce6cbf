"""Z/z: software breakpoints (int3) and, through the debug registers, hardware breakpoints (Z1)
and write/read/access watchpoints (Z2/Z3/Z4)."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..process.breakpoints import BreakpointError
from ..process.debugregs import DebugRegisterError, Watch
from .registry import add_feature, handles

_KINDS = {1: "exec", 2: "write", 3: "read", 4: "access"}

add_feature("hwbreak+")


@handles(cmds.InsertBreakpoint)
def insert_breakpoint(session, cmd: cmds.InsertBreakpoint) -> bytes:
    inferior = session.require_inferior()
    if cmd.kind == 0:
        try:
            inferior.breakpoints.insert(cmd.addr)
        except BreakpointError as exc:
            return replies.error(0x01, str(exc), session.state.error_strings)
        return replies.OK
    kind = _KINDS.get(cmd.kind)
    if kind is None or (kind == "read" and not session.profile.read_watchpoints):
        return b""
    length = 1 if kind == "exec" else cmd.length
    try:
        inferior.insert_watch(Watch(kind, cmd.addr, length))
    except DebugRegisterError as exc:
        return replies.error(0x01, str(exc), session.state.error_strings)
    return replies.OK


@handles(cmds.RemoveBreakpoint)
def remove_breakpoint(session, cmd: cmds.RemoveBreakpoint) -> bytes:
    inferior = session.require_inferior()
    # Removing what was never inserted is an error, as with gdbserver and lldb-server: the
    # client's idea of what is inserted is wrong, and it should hear so.
    if cmd.kind == 0:
        if not inferior.breakpoints.remove(cmd.addr):
            return replies.error(0x01, f"no breakpoint at 0x{cmd.addr:x}", session.state.error_strings)
        return replies.OK
    kind = _KINDS.get(cmd.kind)
    if kind is None:
        return b""
    length = 1 if kind == "exec" else cmd.length
    if not inferior.remove_watch(Watch(kind, cmd.addr, length)):
        if kind == "read" and not session.profile.read_watchpoints:
            return b""  # as for Z3: this client was told read watchpoints are not supported
        return replies.error(0x01, f"no {kind} watch at 0x{cmd.addr:x}", session.state.error_strings)
    return replies.OK
