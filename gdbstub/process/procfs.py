"""Facts about a process and its threads read from /proc: names, cores, states, task lists,
the auxiliary vector."""

from __future__ import annotations

import os
import struct


def _stat_fields(pid: int, tid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return _fields_text(data).split()


def _fields_text(stat: bytes) -> bytes:
    """A stat file's fields after the command name, which may hold spaces and parentheses:
    they start after the last ')'."""
    return stat[stat.rfind(b")") + 2:]


def thread_name(pid: int, tid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return None


# Open /proc/PID/task/TID/stat files of the threads stop replies name, re-read from offset 0
# (the kernel regenerates the text on each read): a stop reply's `core:` then costs one pread,
# not an open, a read and a close. Thread lists read every thread once a stop: keeping those
# open would only cycle a thousand descriptors through the table.
_STAT_FDS: dict[tuple[int, int], int] = {}
_STAT_FDS_MAX = 256


def _read_stat(pid: int, tid: int, keep_open: bool) -> bytes | None:
    key = (pid, tid)
    fd = _STAT_FDS.get(key)
    if fd is not None:
        try:
            data = os.pread(fd, 1024, 0)
            if data:
                return data
        except OSError:
            pass
        # The thread is gone; its tid may be a new thread's by now, so open the path again.
        del _STAT_FDS[key]
        os.close(fd)
    try:
        fd = os.open(f"/proc/{pid}/task/{tid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 1024)
    except OSError:
        os.close(fd)
        return None
    if not keep_open:
        os.close(fd)
        return data
    if len(_STAT_FDS) >= _STAT_FDS_MAX:
        os.close(_STAT_FDS.pop(next(iter(_STAT_FDS))))  # the oldest goes
    _STAT_FDS[key] = fd
    return data


def thread_name_and_core(pid: int, tid: int) -> tuple[str | None, int | None]:
    """The thread's name (as in comm) and the CPU it last ran on, from one read of its stat.

    Plain os calls: thread lists read this for every thread at every stop, and the buffered
    file object costs more than the system calls."""
    data = _read_stat(pid, tid, keep_open=False)
    if data is None:
        return None, None
    name = data[data.find(b"(") + 1:data.rfind(b")")].decode(errors="replace")
    fields = _fields_text(data).split()
    try:
        return name, int(fields[36])
    except (IndexError, ValueError):
        return name, None


def thread_core(pid: int, tid: int) -> int | None:
    """The CPU a thread last ran on, for a stop reply's `core:`: its stat file stays open
    (one pread a stop), and only the fields up to the core are split."""
    data = _read_stat(pid, tid, keep_open=True)
    if data is None:
        return None
    try:
        return int(_fields_text(data).split(None, 37)[36])
    except (IndexError, ValueError):
        return None


def task_state(pid: int, tid: int) -> str | None:
    """The one-letter state ('R', 'S', 't', 'Z'...) or None if the task is gone."""
    fields = _stat_fields(pid, tid)
    return fields[0].decode() if fields else None


def parent_pid(pid: int) -> int | None:
    """The process's parent's pid, or None if the process is gone."""
    fields = _stat_fields(pid, pid)
    return int(fields[1]) if fields else None


def task_ids(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def auxv_bytes(pid: int) -> bytes:
    """The process's auxiliary vector as the kernel gives it (qXfer:auxv serves it whole)."""
    with open(f"/proc/{pid}/auxv", "rb") as f:
        return f.read()


def auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector as AT_* key -> value, up to AT_NULL."""
    data = auxv_bytes(pid)
    out = {}
    for key, value in struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]):
        if key == 0:
            break
        out[key] = value
    return out
