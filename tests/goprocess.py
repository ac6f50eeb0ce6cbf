"""A Go test program run to a known point and frozen, for the goroutine tests.

The program (tests/goprograms/waiters) writes its own runtime.Stack dump to $GOAWARE_DUMP,
prints "ready" and parks in main.stopHere. The test then stops every thread with SIGSTOP,
reads memory through /proc/PID/mem and, for thread registers (fs_base for the TLS g, pc/sp
of running goroutines), attaches to each thread with ptrace just long enough for
PTRACE_GETREGS. This uses no part of the project under test.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from ptrace.binding import (ptrace_attach, ptrace_cont, ptrace_detach, ptrace_getregs,
                            ptrace_traceme)
from ptrace.binding.func import PTRACE_SINGLESTEP, ptrace

from gdbstub.symbols.goruntime import ThreadState

_WALL = 0x40000000
# The general registers in psABI DWARF order (16: the pc).
_DWARF_GPRS = "rax rdx rcx rbx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip".split()
_SYS_TGKILL = 234
_libc = ctypes.CDLL(None, use_errno=True)


def _tgkill(pid: int, tid: int, signum: int) -> None:
    if _libc.syscall(_SYS_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


class FrozenGoProcess:
    def __init__(self, binary: Path, dump: Path, extra_env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        env = dict(os.environ, GOAWARE_DUMP=str(dump), GOTRACEBACK="all",
                   GOMAXPROCS="2", **(extra_env or {}))
        env.pop("GODEBUG", None)
        self.dump_path = dump
        self.binary = binary
        self.proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, env=env,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self._mem: int | None = None
        self.orig_rax: dict[int, int] = {}  # by thread, from the last thread_states()
        self.gprs: dict[int, dict[int, int]] = {}  # by thread: DWARF number -> value, likewise
        self._attached: list[int] = []       # threads left attached (reaped in close())
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"ready" or time.monotonic() > deadline:
            self.close()
            raise RuntimeError(f"{binary} did not get ready: {line!r}")

    def tids(self) -> list[int]:
        return sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))

    def _state(self, tid: int) -> str:
        data = Path(f"/proc/{self.pid}/task/{tid}/stat").read_bytes()
        return data[data.rfind(b")") + 2:].split()[0].decode()

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while any(self._state(t) not in ("T", "t") for t in self.tids()):
            if time.monotonic() > deadline:
                raise RuntimeError("threads did not stop")
            time.sleep(0.005)
        if self._mem is None:
            self._mem = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def read_memory(self, addr: int, size: int) -> bytes:
        assert self._mem is not None, "freeze() first"
        return os.pread(self._mem, size, addr)

    def thread_states(self) -> list[ThreadState]:
        """Registers of every thread (the process must be frozen)."""
        out = []
        for tid in self.tids():
            ptrace_attach(tid)
            try:
                os.waitpid(tid, _WALL)
                regs = ptrace_getregs(tid)
                out.append(ThreadState(tid, regs.rip, regs.rsp, regs.rbp, regs.fs_base))
                self.orig_rax[tid] = regs.orig_rax
                self.gprs[tid] = {n: getattr(regs, name) for n, name in enumerate(_DWARF_GPRS)}
            finally:
                ptrace_detach(tid, 0)
        return out

    def enter_signal_handler(self, tid: int, signum: int) -> tuple[ThreadState, ThreadState]:
        """Deliver a signal to a frozen thread and stop it on the handler's first instruction.

        The signal is queued with tgkill; resuming the traced thread yields its
        signal-delivery-stop (no user instruction runs in between), and PTRACE_SINGLESTEP with
        the signal builds the signal frame and traps at the handler's entry. Returns the
        registers at the delivery stop and in the handler. The thread stays attached (and
        stopped) until close().
        """
        ptrace_attach(tid)
        self._attached.append(tid)
        os.waitpid(tid, _WALL)
        _tgkill(self.pid, tid, signum)
        for _ in range(10):
            ptrace_cont(tid, 0)
            _, status = os.waitpid(tid, _WALL)
            if os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signum:
                break
        else:
            raise RuntimeError(f"thread {tid} never stopped for signal {signum}")
        before = ptrace_getregs(tid)
        ptrace(PTRACE_SINGLESTEP, tid, 0, signum)
        os.waitpid(tid, _WALL)
        after = ptrace_getregs(tid)
        return (ThreadState(tid, before.rip, before.rsp, before.rbp, before.fs_base),
                ThreadState(tid, after.rip, after.rsp, after.rbp, after.fs_base))

    def dump(self) -> str:
        return self.dump_path.read_text()

    def close(self) -> None:
        if self._mem is not None:
            os.close(self._mem)
            self._mem = None
        if self.proc.poll() is None:
            self.proc.kill()
        for tid in self._attached:  # a traced thread is reaped by its tracer
            try:
                os.waitpid(tid, _WALL)
            except ChildProcessError:
                pass
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_stopped_at_exec(binary: Path) -> subprocess.Popen:
    """Start binary traced and stopped at its first instruction, before any Go runtime code
    ran. The caller kills it and waits for it."""
    proc = subprocess.Popen([str(binary)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            preexec_fn=ptrace_traceme)
    _, status = os.waitpid(proc.pid, 0)
    if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{binary} did not stop at exec: {status:#x}")
    return proc
