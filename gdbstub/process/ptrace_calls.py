"""Thin ptrace wrappers over python-ptrace's ctypes binding.

python-ptrace gives the generic `ptrace(cmd, pid, addr, data)` call and the classic constants; the
requests it lacks (SEIZE, INTERRUPT, GETREGSET...) are one line each here. Everything returns or
takes plain bytes so the layers above can decode with `struct` (hot path) rather than ctypes.
Every call must come from the tracer thread: the trio main thread.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import struct

from ptrace.binding import func as _pt
from ptrace.error import PtraceError

__all__ = [
    "PtraceError", "seize", "interrupt", "cont", "singlestep", "detach", "set_options",
    "event_message", "siginfo", "queued_signals", "SigInfo", "get_regs", "set_regs", "get_fpregs",
    "set_fpregs", "get_regset", "set_regset", "peek_user", "poke_user", "tgkill", "is_gone",
]

PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACEVFORKDONE = 0x20
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_STOP = 0x80

NT_PRSTATUS = 1
NT_X86_XSTATE = 0x202

GPR_SIZE = 27 * 8
FPREGS_SIZE = 512
XSTATE_MAX = 16384

# struct user: u_debugreg[8] lives at this offset on x86-64.
DEBUGREG_OFFSET = 848

_libc = ctypes.CDLL(None, use_errno=True)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


# The requests made at every stop (resume, step, registers, siginfo) go straight to libc: the
# generic python-ptrace wrapper costs a few microseconds a call, and a single step makes three.
_raw_ptrace = _libc.ptrace
_raw_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
_raw_ptrace.restype = ctypes.c_long


def _fast(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    result = _raw_ptrace(request, pid, addr, data)
    if result == -1:
        err = ctypes.get_errno()
        raise PtraceError(f"ptrace({request}, {pid}) failed: {os.strerror(err)}", errno=err, pid=pid)
    return result


def _call(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    return _pt.ptrace(request, pid, addr, data)


def seize(pid: int, options: int) -> None:
    _call(PTRACE_SEIZE, pid, 0, options)


def interrupt(tid: int) -> None:
    _fast(PTRACE_INTERRUPT, tid)


def cont(tid: int, sig: int = 0) -> None:
    _fast(_pt.PTRACE_CONT, tid, 0, sig)


PTRACE_SYSCALL = 24


def syscall(tid: int, sig: int = 0) -> None:
    _fast(PTRACE_SYSCALL, tid, 0, sig)


PTRACE_GET_SYSCALL_INFO = 0x420E
SYSCALL_INFO_ENTRY = 1
SYSCALL_INFO_EXIT = 2


def syscall_stop_kind(tid: int) -> int:
    """At a syscall stop: SYSCALL_INFO_ENTRY or SYSCALL_INFO_EXIT. The kernel says which
    (Linux 5.3), so a thread that was inside a blocking call when the catching began is not
    taken to be entering one."""
    buf = ctypes.create_string_buffer(88)
    _fast(PTRACE_GET_SYSCALL_INFO, tid, ctypes.sizeof(buf), ctypes.addressof(buf))
    return buf.raw[0]


def listen(tid: int) -> None:
    _call(PTRACE_LISTEN, tid)


def singlestep(tid: int, sig: int = 0) -> None:
    _fast(_pt.PTRACE_SINGLESTEP, tid, 0, sig)


def detach(tid: int, sig: int = 0) -> None:
    _call(_pt.PTRACE_DETACH, tid, 0, sig)


def set_options(tid: int, options: int) -> None:
    _call(PTRACE_SETOPTIONS, tid, 0, options)


def event_message(tid: int) -> int:
    value = ctypes.c_ulong()
    _call(PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(value))
    return value.value


class SigInfo:
    """The fields of a siginfo_t that a debugger looks at."""

    __slots__ = ("signo", "errno", "code", "pid", "addr", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.signo, self.errno, self.code, self.addr = _SIGINFO_HEAD.unpack_from(raw)
        # si_pid for kill/tkill senders; si_addr for faults: both at offset 16.
        self.pid = ((self.addr & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000


_SIGINFO_HEAD = struct.Struct("<iii4xQ")


_siginfo_buf = ctypes.create_string_buffer(128)


_siginfo_addr = ctypes.addressof(_siginfo_buf)


def siginfo(tid: int) -> SigInfo:
    _fast(PTRACE_GETSIGINFO, tid, 0, _siginfo_addr)
    return SigInfo(_siginfo_buf.raw)


PTRACE_SETSIGINFO = 0x4203
PTRACE_PEEKSIGINFO = 0x4209


def set_siginfo(tid: int, raw: bytes) -> None:
    buf = ctypes.create_string_buffer(bytes(raw).ljust(128, b"\0")[:128], 128)
    _call(PTRACE_SETSIGINFO, tid, 0, ctypes.addressof(buf))


class _PeekSigInfoArgs(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("nr", ctypes.c_int32)]


_PEEK_LIMIT = 8
_peek_args = _PeekSigInfoArgs(0, 0, _PEEK_LIMIT)
_peek_buf = ctypes.create_string_buffer(128 * _PEEK_LIMIT)
_peek_args_addr, _peek_buf_addr = ctypes.addressof(_peek_args), ctypes.addressof(_peek_buf)


def queued_signals(tid: int) -> list[tuple[int, int]]:
    """(si_signo, si_code) of the first signals queued for this thread alone (not the
    process's), left queued. Asked at every interrupt's stop: no siginfo objects are made."""
    count = _fast(PTRACE_PEEKSIGINFO, tid, _peek_args_addr, _peek_buf_addr)
    if not count:
        return []
    raw = ctypes.string_at(_peek_buf_addr, 128 * count)
    return [_SIGNO_CODE.unpack_from(raw, 128 * i) for i in range(count)]


_SIGNO_CODE = struct.Struct("<i4xi")


_gpr_buf = ctypes.create_string_buffer(GPR_SIZE)
_fp_buf = ctypes.create_string_buffer(FPREGS_SIZE)


_gpr_addr = ctypes.addressof(_gpr_buf)


def get_regs(tid: int) -> bytes:
    _fast(_pt.PTRACE_GETREGS, tid, 0, _gpr_addr)
    return _gpr_buf.raw


_gpr_set_buf = ctypes.create_string_buffer(GPR_SIZE)
_gpr_set_addr = ctypes.addressof(_gpr_set_buf)


def set_regs(tid: int, data: bytes) -> None:
    """Every breakpoint hit writes the rewound PC back: through one buffer kept for it."""
    if len(data) != GPR_SIZE:
        raise ValueError(f"general registers are {GPR_SIZE} bytes, not {len(data)}")
    ctypes.memmove(_gpr_set_addr, bytes(data), GPR_SIZE)
    _fast(_pt.PTRACE_SETREGS, tid, 0, _gpr_set_addr)


def get_fpregs(tid: int) -> bytes:
    _call(_pt.PTRACE_GETFPREGS, tid, 0, ctypes.addressof(_fp_buf))
    return _fp_buf.raw


def set_fpregs(tid: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(bytes(data), FPREGS_SIZE)
    _call(_pt.PTRACE_SETFPREGS, tid, 0, ctypes.addressof(buf))


def get_regset(tid: int, note_type: int, size: int = XSTATE_MAX) -> bytes:
    buf = ctypes.create_string_buffer(size)
    iov = _IoVec(ctypes.addressof(buf), size)
    _call(PTRACE_GETREGSET, tid, note_type, ctypes.addressof(iov))
    return buf.raw[: iov.len]


def set_regset(tid: int, note_type: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    iov = _IoVec(ctypes.addressof(buf), len(data))
    _call(PTRACE_SETREGSET, tid, note_type, ctypes.addressof(iov))


def peek_user(tid: int, offset: int) -> int:
    return _pt.ptrace(_pt.PTRACE_PEEKUSER, tid, offset, 0, check_errno=True) & 0xFFFFFFFFFFFFFFFF


def poke_user(tid: int, offset: int, value: int) -> None:
    _call(_pt.PTRACE_POKEUSER, tid, offset, value)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    if _libc.syscall(234, tgid, tid, sig) != 0:  # SYS_tgkill on x86-64
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def is_gone(error: BaseException) -> bool:
    """True when a ptrace error only says the thread no longer exists (or is not stopped)."""
    return getattr(error, "errno", None) == errno.ESRCH


SIGNALS_GROUP_STOP = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
