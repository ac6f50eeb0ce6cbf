"""Register access: g/G for all registers, p/P for one, in the numbering of our target.xml."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..arch.x86_64 import user_regs_offset
from ..process import TargetError
from .registry import handles

_RBP, _RIP, _RSP = (user_regs_offset(name) for name in ("rbp", "rip", "rsp"))


class GoroutineRegisters:
    """A thread's register sets with a parked goroutine's saved pc, sp and bp in place
    (`monitor goroutine N select`); read-only, since they are not any thread's registers."""

    def __init__(self, base, pc: int, sp: int, bp: int) -> None:
        self._base = base
        self._patch = ((_RIP, pc), (_RSP, sp), (_RBP, bp))

    def read(self, regset: str) -> bytes:
        data = self._base.read(regset)
        if regset != "gpr":
            return data
        out = bytearray(data)
        for offset, value in self._patch:
            out[offset:offset + 8] = value.to_bytes(8, "little")
        return bytes(out)

    def write(self, regset: str, data: bytes) -> None:
        raise TargetError("a selected goroutine's registers cannot be written")


def _selection(session):
    selected = getattr(session, "selected_goroutine", None)
    inferior = session.inferior
    if selected is None or inferior is None or selected[0] != inferior.generation:
        return None
    return selected


def _register_sets(session, thread_id):
    inferior = session.require_inferior()
    tid = session.resolve_thread(thread_id)
    base = inferior.registers(tid)
    selected = _selection(session)
    if selected is not None:
        _, _, pc, sp, bp = selected
        return GoroutineRegisters(base, pc, sp, bp)
    return base


def _refuse_writes_while_selected(session) -> None:
    if _selection(session) is not None:
        raise TargetError("a goroutine is selected: its saved registers are read-only "
                          "(resume the program to end the selection)")


@handles(cmds.ReadRegisters)
def read_registers(session, cmd: cmds.ReadRegisters) -> bytes:
    inferior = session.require_inferior()
    if _selection(session) is not None:
        return session.table.read_all(_register_sets(session, cmd.thread)).hex().encode()
    thread = inferior.thread(session.resolve_thread(cmd.thread))
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
    inferior = session.require_inferior()
    _refuse_writes_while_selected(session)
    tid = session.resolve_thread(cmd.thread)
    session.table.write_all(inferior.registers(tid), cmd.data)
    return replies.OK


@handles(cmds.ReadRegister)
def read_register(session, cmd: cmds.ReadRegister) -> bytes:
    session.require_inferior()
    if session.table.by_number(cmd.regnum) is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    return replies.hex_encode(session.table.read_register(_register_sets(session, cmd.thread), cmd.regnum))


@handles(cmds.WriteRegister)
def write_register(session, cmd: cmds.WriteRegister) -> bytes:
    inferior = session.require_inferior()
    register = session.table.by_number(cmd.regnum)
    if register is None:
        return replies.error(0x01, f"no register {cmd.regnum:#x}", session.state.error_strings)
    _refuse_writes_while_selected(session)
    tid = session.resolve_thread(cmd.thread)
    session.table.write_register(inferior.registers(tid), cmd.regnum, cmd.value)
    return replies.OK
