"""qXfer objects: target.xml, auxv, exec-file, the svr4 library list, the thread list, osdata.

Each object is registered once with the qSupported feature it makes true. A document is built when
a read starts at offset 0 and served in chunks from a per-session cache after that.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from ..xml_text import escape, quoteattr

from packets import commands as cmds
from packets import replies

from ..osdata import osdata
from ..process import TargetError, procfs
from .registry import add_feature, handles

XferBuilder = Callable[..., bytes]
_OBJECTS: dict[str, XferBuilder] = {}


def xfer_object(name: str) -> Callable[[XferBuilder], XferBuilder]:
    def decorate(builder: XferBuilder) -> XferBuilder:
        _OBJECTS[name] = builder
        add_feature(f"qXfer:{name}:read+")
        return builder

    return decorate


@handles(cmds.XferRead)
def xfer_read(session, cmd: cmds.XferRead) -> bytes:
    builder = _OBJECTS.get(cmd.object)
    if builder is None:
        return b""
    key = (cmd.object, cmd.annex)
    document = session.xfer_cache.get(key)
    if document is None or cmd.offset == 0:
        try:
            document = builder(session, cmd.annex)
        except KeyError:
            return replies.error(0x00, f"unknown annex {cmd.annex!r}", session.state.error_strings)
        except OSError as exc:
            return replies.error(0x01, str(exc), session.state.error_strings)
        session.xfer_cache[key] = document
    if cmd.offset > len(document):
        return replies.error(0x01, "offset past the end", session.state.error_strings)
    return replies.xfer_chunk(document, cmd.offset, cmd.length)


@xfer_object("siginfo")
def siginfo(session, annex: str) -> bytes:
    """The siginfo of the selected thread's last stop, as the kernel holds it ($_siginfo)."""
    inferior = session.require_inferior()
    return inferior.siginfo(session.resolve_thread(None))


@handles(cmds.XferWrite, features=("qXfer:siginfo:write+",))
def xfer_write(session, cmd: cmds.XferWrite) -> bytes:
    if cmd.object != "siginfo":
        return b""
    inferior = session.require_inferior()
    tid = session.resolve_thread(None)
    current = bytearray(inferior.siginfo(tid))
    if cmd.offset + len(cmd.data) > len(current):
        return replies.error(0x01, "siginfo write past its end", session.state.error_strings)
    current[cmd.offset:cmd.offset + len(cmd.data)] = cmd.data
    inferior.set_siginfo(tid, bytes(current))
    session.xfer_cache.pop(("siginfo", cmd.annex), None)
    return b"%x" % len(cmd.data)


@xfer_object("features")
def target_description(session, annex: str) -> bytes:
    if annex != "target.xml":
        raise KeyError(annex)
    # Like gdbserver: no process, no description (a --multi server before `run`). gdb then
    # keeps the architecture the user sets, rather than taking x86-64 for granted.
    inferior = session.require_inferior()
    if inferior.unsupported is not None:
        raise TargetError(inferior.unsupported)
    # lldb needs the vector encoding spelled out to read the zmm upper halves; gdb ignores it.
    return session.table.target_xml(lldb_attributes=session.profile.name == "lldb").encode()


@xfer_object("osdata")
def os_data(session, annex: str) -> bytes:
    """The system's processes and threads (gdb's `info os`): no process needed."""
    return osdata(annex)


@xfer_object("auxv")
def auxv(session, annex: str) -> bytes:
    return procfs.auxv_bytes(session.require_inferior().pid)


@xfer_object("exec-file")
def exec_file(session, annex: str) -> bytes:
    inferior = session.inferior
    pid = int(annex, 16) if annex else (inferior.pid if inferior is not None else 0)
    if pid == 0:
        raise TargetError("no process")
    return os.readlink(f"/proc/{pid}/exe").encode()


@xfer_object("threads")
def threads(session, annex: str) -> bytes:
    """Every thread of every process."""
    lines = ["<threads>"]
    for inferior in session.processes.listed():
        view = session.threads(inferior)
        for tid in view.ids():
            kernel = view.kernel_tid(tid)
            comm, core = procfs.thread_name_and_core(inferior.pid, kernel) if kernel is not None else (None, None)
            attrs = f'id="{session.format_thread(tid, inferior.pid).decode()}"'
            if core is not None:
                attrs += f' core="{core}"'
            handle = _pthread_handle(inferior, tid) if kernel == tid else None
            if handle is not None:
                attrs += f' handle="{handle}"'
            attrs += f" name={quoteattr(view.name(tid, comm))}"
            text = view.text(tid)
            if text:
                lines.append(f"<thread {attrs}>{escape(text)}</thread>")
            else:
                lines.append(f"<thread {attrs}/>")
    lines.append("</threads>")
    return ("\n".join(lines) + "\n").encode()


def _pthread_handle(inferior, tid: int) -> str | None:
    """The thread's pthread_t as gdbserver gives it (its bytes in hex, from libthread_db).

    On x86-64 glibc a pthread_t is the address of the thread's control block, which is where
    the thread's fs base points (read once per thread: qXfer:threads is read at many stops).
    Go programs keep their own data there: no handle for them.
    """
    thread = inferior.thread(tid)
    if inferior.go is not None or (thread.running and thread.fs_base_seen is None):
        return None
    pointer = thread.thread_pointer()
    return pointer.to_bytes(8, "little").hex() if pointer else None


# -- the svr4 shared-library list, read from the dynamic linker's r_debug --------------------

AT_PHDR, AT_PHNUM = 3, 5
PT_DYNAMIC, PT_PHDR = 2, 6
DT_NULL, DT_DEBUG = 0, 21


@xfer_object("libraries-svr4")
def libraries_svr4(session, annex: str) -> bytes:
    inferior = session.require_inferior()
    header = '<library-list-svr4 version="1.0"'
    r_debug = _r_debug_address(inferior)
    if r_debug is None:
        # No DT_DEBUG to follow (a static program, or the dynamic linker run as the program
        # with the real one as its argument): like gdbserver, an error, so the client walks
        # the link map itself from the dynamic linker's own symbols.
        raise TargetError("the program has no DT_DEBUG entry")
    entries = _link_map_entries(inferior, r_debug)
    if not entries:
        return (header + "></library-list-svr4>").encode()
    # gdb 13 requires lmid and uses main-lm; lldb takes main-lm for the start of its own walk of
    # the link map and then misses libraries loaded later, so it gets lldb-server's plain form.
    gdb_form = session.profile.name == "gdb"
    body = [f'{header} main-lm="0x{entries[0][0]:x}">' if gdb_form else f"{header}>"]
    for lm, name, l_addr, l_ld in entries[1:]:
        if not name:
            continue
        attrs = f'name={quoteattr(name)} lm="0x{lm:x}" l_addr="0x{l_addr:x}" l_ld="0x{l_ld:x}"'
        if gdb_form:
            attrs += f' lmid="0x{r_debug:x}"'
        body.append(f"<library {attrs}/>")
    body.append("</library-list-svr4>")
    return "".join(body).encode()


def _r_debug_address(inferior) -> int | None:
    """The address of the dynamic linker's r_debug from the program's DT_DEBUG (0 until the
    dynamic linker has filled it in), or None when the program has no DT_DEBUG to read."""
    aux = procfs.auxv(inferior.pid)
    phdr, phnum = aux.get(AT_PHDR), aux.get(AT_PHNUM)
    if not phdr or not phnum:
        return None
    table = inferior.read_memory(phdr, phnum * 56)
    if len(table) < phnum * 56:
        return None
    dynamic_vaddr = None
    relocation = None
    for i in range(phnum):
        p_type, _, _, p_vaddr = struct.unpack_from("<IIQQ", table, i * 56)
        if p_type == PT_PHDR:
            relocation = phdr - p_vaddr
        elif p_type == PT_DYNAMIC:
            dynamic_vaddr = p_vaddr
    # Without PT_PHDR the load address is unknown; such objects (shared libraries, the dynamic
    # linker itself) have no DT_DEBUG anyway.
    if dynamic_vaddr is None or relocation is None:
        return None
    addr = dynamic_vaddr + relocation
    for _ in range(1024):
        entry = inferior.read_memory(addr, 16)
        if len(entry) < 16:
            return None
        tag, value = struct.unpack("<qQ", entry)
        if tag == DT_NULL:
            return None
        if tag == DT_DEBUG:
            return value
        addr += 16
    return None


def _read_string(inferior, addr: int, limit: int = 4096) -> str:
    out = bytearray()
    while len(out) < limit:
        chunk = inferior.read_memory(addr + len(out), 256)
        if not chunk:
            break
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            break
        out += chunk
    return out.decode(errors="surrogateescape")


def _link_map_entries(inferior, r_debug: int) -> list[tuple[int, str, int, int]]:
    if not r_debug:
        return []
    data = inferior.read_memory(r_debug, 16)
    if len(data) < 16:
        return []
    lm = struct.unpack_from("<Q", data, 8)[0]
    entries = []
    seen = set()
    while lm and lm not in seen and len(entries) < 4096:
        seen.add(lm)
        raw = inferior.read_memory(lm, 40)
        if len(raw) < 40:
            break
        l_addr, l_name, l_ld, l_next, _ = struct.unpack("<QQQQQ", raw)
        entries.append((lm, _read_string(inferior, l_name) if l_name else "", l_addr, l_ld))
        lm = l_next
    return entries
