"""Register access: g/G for all registers, p/P for one, in the numbering of our target.xml."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from .registry import handles


def _register_sets(session, thread_id):
    """The registers of the thread a command names (or Hg's): a kernel thread's, or a parked
    goroutine's saved ones (read-only) when goroutines are threads."""
    session.require_inferior()
    return session.threads().registers(session.selected_thread(thread_id))


@handles(cmds.ReadRegisters)
def read_registers(session, cmd: cmds.ReadRegisters) -> bytes:
    inferior = session.require_inferior()
    tid = session.selected_thread(cmd.thread)
    kernel = session.threads().kernel_tid(tid)
    if kernel is None:
        return session.table.read_all(session.threads().registers(tid)).hex().encode()
    thread = inferior.thread(kernel)
    # Clients ask for 'g' once or more per stop: the reply is kept while the thread's
    # registers and the layout stay the same.
    table = session.table
    kept = session.register_replies.get(thread.tid)
    if kept is not None and kept[0] == thread.register_version and kept[1] is table:
        return kept[2]
    reply = table.read_all(inferior.registers(thread.tid)).hex().encode()
    if len(session.register_replies) > 2 * len(inferior.threads) + 64:
        session.register_replies.clear()  # threads come and go: keep it the size of the process
    session.register_replies[thread.tid] = (thread.register_version, table, reply)
    return reply


@handles(cmds.WriteRegisters)
def write_registers(session, cmd: cmds.WriteRegisters) -> bytes:
    session.table.write_all(_register_sets(session, cmd.thread), cmd.data)
    return replies.OK


@handles(cmds.ReadRegister)
def read_register(session, cmd: cmds.ReadRegister) -> bytes:
    session.require_inferior()
    if session.table.by_number(cmd.regnum) is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    return replies.hex_encode(session.table.read_register(_register_sets(session, cmd.thread), cmd.regnum))


@handles(cmds.WriteRegister)
def write_register(session, cmd: cmds.WriteRegister) -> bytes:
    session.require_inferior()
    register = session.table.by_number(cmd.regnum)
    if register is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    session.table.write_register(_register_sets(session, cmd.thread), cmd.regnum, cmd.value)
    return replies.OK
