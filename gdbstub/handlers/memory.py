"""Memory access: m/M hex, X binary writes, x binary reads, and thread-local addresses."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies
from packets.framing import escape_binary

from ..process import TargetError
from .registry import Feature, handles

MAX_READ = 0x20000


@handles(cmds.ReadMemory)
def read_memory(session, cmd: cmds.ReadMemory) -> bytes:
    inferior = session.require_inferior()
    length = min(cmd.length, (MAX_READ - 4) // 2)
    if length == 0:
        return b""
    data = inferior.read_memory(cmd.addr, length)
    if not data:
        return replies.error(0x01, f"cannot read memory at {cmd.addr:#x}", session.state.error_strings)
    return replies.hex_encode(data)


@handles(cmds.ReadMemoryBinary, features=(Feature("binary-upload+", lambda s: s.profile.name == "gdb"),))
def read_memory_binary(session, cmd: cmds.ReadMemoryBinary) -> bytes:
    inferior = session.require_inferior()
    if cmd.length == 0:
        return replies.OK
    # Escaping can double the size: stay within the packet size in the worst case.
    length = min(cmd.length, (MAX_READ - 8) // 2)
    data = inferior.read_memory(cmd.addr, length)
    if not data:
        return replies.error(0x01, f"cannot read memory at {cmd.addr:#x}", session.state.error_strings)
    return session.profile.x_reply_prefix + escape_binary(data)


@handles(cmds.WriteMemory)
def write_memory(session, cmd: cmds.WriteMemory) -> bytes:
    inferior = session.require_inferior()
    if not cmd.data:
        return replies.OK
    written = inferior.write_memory(cmd.addr, cmd.data)
    if written != len(cmd.data):
        return replies.error(0x01, f"cannot write memory at {cmd.addr:#x}", session.state.error_strings)
    return replies.OK


@handles(cmds.TlsAddressQuery)
def tls_address(session, cmd: cmds.TlsAddressQuery) -> bytes:
    """A thread-local variable's address (gdb asks when it cannot use libthread_db itself)."""
    # Imported here: it reads ELF files (pyelftools), which the first stop never needs.
    from ..tls import thread_db_reachable
    from ..tls import tls_address as thread_local_address

    pid = cmd.thread.pid
    inferior = session.processes.get(pid) if pid not in (None, 0, -1) else session.require_inferior()
    if inferior is None or not inferior.alive:
        return replies.error(0x01, "no such process", session.state.error_strings)
    if not thread_db_reachable(session.context.thread_db_search_path):
        return replies.error(0x01, "no libthread_db on the search path", session.state.error_strings)
    if cmd.thread.tid in (0, -1):
        tid = session.resolve_thread(None)
    else:
        tid = session.threads(inferior).kernel_tid(cmd.thread.tid)
        if tid is None:
            raise TargetError("a parked goroutine has no thread-local storage of its own")
    return b"%x" % thread_local_address(inferior, tid, cmd.offset, cmd.link_map)
