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
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return data[data.rfind(b")") + 2:].split()


def thread_name(pid: int, tid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return None


def thread_name_and_core(pid: int, tid: int) -> tuple[str | None, int | None]:
    """The thread's name (as in comm) and the CPU it last ran on, from one read of its stat.

    Plain os.open/os.read: thread lists read this for every thread at every stop, and the
    buffered file object costs more than the system calls."""
    try:
        fd = os.open(f"/proc/{pid}/task/{tid}/stat", os.O_RDONLY)
    except OSError:
        return None, None
    try:
        data = os.read(fd, 1024)
    except OSError:
        return None, None
    finally:
        os.close(fd)
    close = data.rfind(b")")
    name = data[data.find(b"(") + 1:close].decode(errors="replace")
    fields = data[close + 2:].split()
    try:
        return name, int(fields[36])
    except (IndexError, ValueError):
        return name, None


def task_state(pid: int, tid: int) -> str | None:
    """The one-letter state ('R', 'S', 't', 'Z'...) or None if the task is gone."""
    fields = _stat_fields(pid, tid)
    return fields[0].decode() if fields else None


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


def pending_signals(pid: int, tid: int) -> int:
    """The signals queued for this thread alone (SigPnd), as a mask (bit N-1 for signal N);
    0 if the thread is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigPnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0
