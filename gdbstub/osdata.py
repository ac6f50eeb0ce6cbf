"""The system's processes and threads as gdb's `info os` reads them (qXfer:osdata:read).

The documents are those of gdbserver (gdb/nat/linux-osdata.c): the same types, columns and
text, so an IDE's attach picker and `info os processes` show what they show with gdbserver.
Only the listings a debugger user picks a process from are served: processes and threads.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from .xml_text import escape

# (type, title, description), in gdbserver's order.
_TYPES = [
    ("processes", "Processes", "Listing of all processes"),
    ("threads", "Threads", "Listing of all threads"),
]


def _document(kind: str, rows: Iterator[list[tuple[str, object]]]) -> bytes:
    parts = [f'<osdata type="{kind}">\n']
    for row in rows:
        parts.append("<item>" + "".join(f'<column name="{name}">{escape(str(value))}</column>'
                                        for name, value in row) + "</item>")
    parts.append("</osdata>\n")
    return "".join(parts).encode()


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _comm(pid: int) -> str:
    """The kernel's short name of the process (its stat field 2)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return str(pid)
    return data[data.find(b"(") + 1:data.rfind(b")")].decode(errors="replace")


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    if not data:
        return f"[{_comm(pid)}]"  # a kernel thread, or a zombie
    return data.replace(b"\0", b" ").decode(errors="replace")


def _user(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _core(pid: int, tid: int) -> int | None:
    """The processor the thread last ran on (stat field 39)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return int(fields[36]) if len(fields) > 36 else None


def _tids(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def _processes() -> Iterator[list[tuple[str, object]]]:
    for pid in _pids():
        cores = sorted({c for c in (_core(pid, tid) for tid in _tids(pid)) if c is not None})
        yield [("pid", pid), ("user", _user(pid)), ("command", _command_line(pid)),
               ("cores", ",".join(map(str, cores)))]


def _threads() -> Iterator[list[tuple[str, object]]]:
    for pid in _pids():
        command = _comm(pid)
        for tid in _tids(pid):
            core = _core(pid, tid)
            yield [("pid", pid), ("command", command), ("tid", tid), ("core", -1 if core is None else core)]


def _types() -> Iterator[list[tuple[str, object]]]:
    for kind, title, description in _TYPES:
        yield [("Type", kind), ("Description", description), ("Title", title)]


_LISTINGS: dict[str, Callable[[], Iterator[list[tuple[str, object]]]]] = {
    "processes": _processes,
    "threads": _threads,
}


def osdata(annex: str) -> bytes:
    """The document for `annex` ('' lists the types); an unknown one is empty, as with gdbserver."""
    if annex in ("", "types"):
        return _document("types", _types())
    listing = _LISTINGS.get(annex)
    return _document(annex, listing()) if listing is not None else b""
