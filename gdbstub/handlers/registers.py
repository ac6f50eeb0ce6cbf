"""Register access: g/G for all registers, p/P for one, in the numbering of our target.xml."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from .registry import handles


@handles(cmds.ReadRegisters)
def read_registers(session, cmd: cmds.ReadRegisters) -> bytes:
    inferior = session.require_inferior()
    thread = inferior.thread(session.resolve_thread(cmd.thread))
    if thread.g_cache is None:
        thread.g_cache = session.table.read_all(inferior.registers(thread.tid)).hex().encode()
    return thread.g_cache


@handles(cmds.WriteRegisters)
def write_registers(session, cmd: cmds.WriteRegisters) -> bytes:
    inferior = session.require_inferior()
    tid = session.resolve_thread(cmd.thread)
    session.table.write_all(inferior.registers(tid), cmd.data)
    return replies.OK


@handles(cmds.ReadRegister)
def read_register(session, cmd: cmds.ReadRegister) -> bytes:
    inferior = session.require_inferior()
    if session.table.by_number(cmd.regnum) is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    tid = session.resolve_thread(cmd.thread)
    return replies.hex_encode(session.table.read_register(inferior.registers(tid), cmd.regnum))


@handles(cmds.WriteRegister)
def write_register(session, cmd: cmds.WriteRegister) -> bytes:
    inferior = session.require_inferior()
    register = session.table.by_number(cmd.regnum)
    if register is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    tid = session.resolve_thread(cmd.thread)
    session.table.write_register(inferior.registers(tid), cmd.regnum, cmd.value)
    return replies.OK
