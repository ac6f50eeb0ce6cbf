"""lldb's additions to the protocol (lldbgdbremote.md): host and process facts, register info,
thread lists in stop replies, jThreadsInfo, memory regions, watchpoint counts, and small queries.

Each is answered the way lldb-server 14 answers it, so lldb behaves as it does with its own server.
"""

from __future__ import annotations

import json
import os
import socket

from packets import launch_commands as lc
from packets import replies
from packets.framing import escape_binary

from ..stop_replies import stop_reply, thread_stop_json
from ..process import StopEvent, StopKind
from ..process.debugregs import SLOTS
from .registry import Feature, handles

TRIPLE = "x86_64-pc-linux-gnu"


def _lldb(session) -> bool:
    return session.profile.name == "lldb"


def _hex(text: str) -> str:
    return text.encode().hex()


@handles(lc.ThreadSuffixSupported, features=(Feature("QThreadSuffixSupported+", _lldb),))
def thread_suffix_supported(session, cmd) -> bytes:
    session.state.thread_suffix = True
    return replies.OK


@handles(lc.ListThreadsInStopReply, features=(Feature("QListThreadsInStopReply+", _lldb),))
def list_threads_in_stop_reply(session, cmd) -> bytes:
    session.state.threads_in_stop_reply = True
    return replies.OK


@handles(lc.EnableErrorStrings)
def enable_error_strings(session, cmd) -> bytes:
    session.state.error_strings = True
    return replies.OK


@handles(lc.Echo, features=(Feature("qEcho+", _lldb),))
def echo(session, cmd: lc.Echo) -> bytes:
    # lldb-server answers with the whole packet; lldb's resync after a timeout checks that.
    return b"qEcho:" + escape_binary(cmd.text)  # a raw '*', '#' or '$' would break the frame


def _distribution() -> str | None:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("ID="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


@handles(lc.HostInfoQuery)
def host_info(session, cmd) -> bytes:
    uname = os.uname()
    parts = [f"triple:{_hex(TRIPLE)}", "ptrsize:8"]
    distribution = _distribution()
    if distribution:
        parts.append(f"distribution_id:{_hex(distribution)}")
    release = uname.release.split("-")[0]
    parts += [
        "watchpoint_exceptions_received:after",
        "endian:little",
        f"os_version:{release}",
        f"os_build:{_hex(uname.release)}",
        f"os_kernel:{_hex(uname.version)}",
        f"hostname:{_hex(socket.gethostname())}",
    ]
    return (";".join(parts) + ";").encode()


@handles(lc.ProcessInfoQuery)
def process_info(session, cmd) -> bytes:
    inferior = session.require_inferior()
    pid = inferior.pid
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    parts = [
        f"pid:{pid:x}",
        f"parent-pid:{int(fields['PPid'][0]):x}",
        f"real-uid:{int(fields['Uid'][0]):x}",
        f"real-gid:{int(fields['Gid'][0]):x}",
        f"effective-uid:{int(fields['Uid'][1]):x}",
        f"effective-gid:{int(fields['Gid'][1]):x}",
        f"triple:{_hex(TRIPLE)}",
        "ostype:linux",
        "endian:little",
        "ptrsize:8",
    ]
    return (";".join(parts) + ";").encode()


@handles(lc.RegisterInfoQuery)
def register_info(session, cmd: lc.RegisterInfoQuery) -> bytes:
    register = session.table.by_number(cmd.regnum)
    if register is None:
        return b"E45"
    parts = [
        f"name:{register.name}",
        f"bitsize:{register.bitsize}",
        f"offset:{session.table.g_offset(cmd.regnum)}",
        f"encoding:{register.lldb_encoding}",
        f"format:{register.lldb_format}",
        f"set:{register.lldb_set}",
    ]
    if register.ehframe is not None:
        parts.append(f"ehframe:{register.ehframe}")
    if register.dwarf is not None:
        parts.append(f"dwarf:{register.dwarf}")
    if register.generic:
        parts.append(f"generic:{register.generic}")
    return (";".join(parts) + ";").encode()


@handles(lc.ThreadsInfoQuery)
def threads_info(session, cmd) -> bytes:
    inferior = session.inferior
    if inferior is None or not inferior.alive:
        return replies.error(0x01, "no process", session.state.error_strings)
    event = inferior.last_event
    infos = [thread_stop_json(session, event, tid, with_registers=True) for tid in session.threads(inferior).ids()]
    return escape_binary(json.dumps(infos, separators=(",", ":"), sort_keys=True).encode())


@handles(lc.ThreadExtendedInfoQuery)
def thread_extended_info(session, cmd) -> bytes:
    return b""


@handles(lc.ThreadStopInfoQuery)
def thread_stop_info(session, cmd: lc.ThreadStopInfoQuery) -> bytes:
    inferior = session.require_inferior()
    threads = session.threads(inferior)
    if not threads.has(cmd.tid):
        return replies.error(0x01, "no such thread", session.state.error_strings)
    event = inferior.last_event
    kernel = threads.kernel_tid(cmd.tid)
    if event is None or kernel is None or event.tid != kernel:
        # (A parked goroutine is told of as a thread stopped for no reason, like gdbserver's
        # threads that did not report the stop.)
        event = StopEvent(StopKind.SIGNAL, kernel if kernel is not None else cmd.tid, 0)
    return stop_reply(session, event)


@handles(lc.WatchpointSupportInfoQuery)
def watchpoint_support_info(session, cmd) -> bytes:
    return f"num:{SLOTS};".encode()


@handles(lc.WorkingDirQuery)
def working_dir(session, cmd) -> bytes:
    inferior = session.require_inferior()
    return os.readlink(f"/proc/{inferior.pid}/cwd").encode().hex().encode()


@handles(lc.ShlibInfoAddrQuery)
def shlib_info_addr(session, cmd) -> bytes:
    return b""  # as lldb-server on Linux: lldb then reads the svr4 library list


@handles(lc.AttachOrWaitSupportedQuery)
def attach_or_wait_supported(session, cmd) -> bytes:
    return b""


def _maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    regions = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5].strip() if len(fields) > 5 else ""
            regions.append((start, end, fields[1], int(fields[2], 16), name))
    return regions


@handles(lc.MemoryRegionInfoQuery)
def memory_region_info(session, cmd: lc.MemoryRegionInfoQuery) -> bytes:
    inferior = session.require_inferior()
    addr = cmd.addr
    previous_end = 0
    for start, end, perms, _, name in _maps(inferior.pid):
        if addr < start:
            return f"start:{previous_end:x};size:{start - previous_end:x};".encode()
        if start <= addr < end:
            permissions = "".join(c for c in perms[:3] if c != "-")
            text = f"start:{start:x};size:{end - start:x};"
            if permissions:
                text += f"permissions:{permissions};"
            text += "flags:;"
            if name:
                text += f"name:{_hex(name)};"
            return text.encode()
        previous_end = end
    top = 1 << 64
    return f"start:{previous_end:x};size:{top - previous_end:x};".encode()


@handles(lc.FileLoadAddressQuery)
def file_load_address(session, cmd: lc.FileLoadAddressQuery) -> bytes:
    inferior = session.require_inferior()
    wanted = cmd.path.decode(errors="surrogateescape")
    for start, _, _, offset, name in _maps(inferior.pid):
        if name and (name == wanted or os.path.basename(name) == wanted) and offset == 0:
            return b"%x" % start
    return replies.error(0x45, f"{wanted} is not loaded", session.state.error_strings)


