"""Per-thread state of a traced process, and each thread's register sets with a per-stop cache."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..arch.x86_64 import user_regs_offset
from . import ptrace_calls as pt
from .events import StopEvent

_RIP, _ORIG_RAX, _FS_BASE = (user_regs_offset(name) for name in ("rip", "orig_rax", "fs_base"))

# Register versions are unique across threads, so a new Thread object never repeats one.
_register_versions = itertools.count(1)


@dataclass
class Resume:
    """How one thread is resumed: 'continue', 'step' or 'range' (step while start <= pc < end),
    or 'stop' (non-stop's vCont;t: stop it, if it runs)."""

    kind: str
    signal: int = 0
    start: int = 0
    end: int = 0


@dataclass
class Thread:
    tid: int
    running: bool = False
    # We sent PTRACE_INTERRUPT and have not yet seen the stop it causes.
    interrupt_sent: bool = False
    # Non-stop: the client asked this thread to stop; its interrupt's stop becomes an event
    # of this (kind, signal).
    stop_requested: tuple | None = None
    # A new thread whose first (PTRACE_EVENT_STOP) stop has not arrived yet.
    awaiting_first_stop: bool = False
    # The process's set of the threads that have a pending event, which `pending` keeps up
    # to date: asking whether any thread has something to report then costs nothing per
    # thread (it is asked at every wait status, and there may be thousands of threads).
    with_pending: set[int] | None = field(default=None, repr=False)
    _pending: StopEvent | None = field(default=None, repr=False)
    # How the client last asked the thread to run; None while the client holds it stopped
    # (every thread, once a stop is reported). A pending event is reported only with it set.
    resume: Resume | None = None
    # The thread-group leader after it exited while other threads live on.
    zombie: bool = False
    # Asked to stop and did not within STOP_TIMEOUT (uninterruptible sleep): the stop was
    # reported without it; its stop, when it comes, keeps it stopped.
    unstoppable: bool = False
    _gpr: bytes | None = None
    _fp: bytes | None = None
    # Changes whenever the registers may have (a stop, a write): what a reader derived from
    # them stays good while it does not.
    register_version: int = field(default_factory=lambda: next(_register_versions))
    # The fs base as first read (see thread_pointer); kept across stops.
    fs_base_seen: int | None = None
    # The last stop was a ptrace event stop (an interrupt, a clone, exec; a thread's first
    # stop is one), from which the kernel drops a signal given with the resume.
    at_event_stop: bool = True
    # A signal sent to the thread on the client's behalf, passed on unreported when it comes.
    injected_signal: int = 0
    # Signals the client passed with a resume that did not run this thread (another thread's
    # stop was still to be reported, or this thread's own), each with its siginfo when it was
    # the signal the thread was stopped with: delivered one per resume from the thread's next
    # one on, first in first out, as gdbserver's pending_signals are. Dropped, the program
    # would never get them.
    queued_signals: list[tuple[int, bytes | None]] = field(default_factory=list)
    # A signal the program gets unseen that came while the thread stepped: Go's preemption
    # (SIGURG) during a client's step, or either kind during a step over one of our own
    # breakpoints. Delivered at its next continue: delivered during the step, the step would
    # end in the handler, or the handler return to the breakpoint and hit it twice; dropped,
    # Go's runtime would never ask this thread again (it sends one only when none is
    # pending, m.signalPending).
    deferred_signal: int = 0
    # The last ptrace resume was a single step (PTRACE_SINGLESTEP), not PTRACE_CONT.
    single_stepped: bool = False
    # Stopped on a breakpoint whose hit was dealt with here and never reported (a false
    # condition, a dprintf, one of our own): that address. The next resume steps over it
    # rather than hitting it, and running its commands, a second time.
    passed_breakpoint: int | None = None

    @property
    def pending(self) -> StopEvent | None:
        """A reportable event this thread hit and the client has not been told of."""
        return self._pending

    @pending.setter
    def pending(self, event: StopEvent | None) -> None:
        self._pending = event
        if self.with_pending is not None:
            if event is None:
                self.with_pending.discard(self.tid)
            else:
                self.with_pending.add(self.tid)

    # -- registers -------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._gpr = None
        self._fp = None
        self.register_version = next(_register_versions)

    def gpr(self) -> bytes:
        if self._gpr is None:
            self._gpr = pt.get_regs(self.tid)
        return self._gpr

    def set_gpr(self, data: bytes) -> None:
        pt.set_regs(self.tid, data)
        self._gpr = bytes(data)
        self.register_version = next(_register_versions)

    def pc(self) -> int:
        return int.from_bytes(self.gpr()[_RIP:_RIP + 8], "little")

    def thread_pointer(self) -> int:
        """The thread's fs base: its thread control block, which is glibc's pthread_t (0
        before the dynamic linker has set it up). Once set it does not move, so it is read
        until then and kept from then on (exec starts a new one)."""
        if self.fs_base_seen is None:
            value = int.from_bytes(self.gpr()[_FS_BASE:_FS_BASE + 8], "little")
            if not value:
                return 0
            self.fs_base_seen = value
        return self.fs_base_seen

    def orig_rax(self) -> int:
        """The system call the thread is in (-1 if none)."""
        return int.from_bytes(self.gpr()[_ORIG_RAX:_ORIG_RAX + 8], "little", signed=True)

    def set_pc(self, value: int) -> None:
        gpr = bytearray(self.gpr())
        gpr[_RIP:_RIP + 8] = value.to_bytes(8, "little")
        self.set_gpr(bytes(gpr))

    def fp(self, use_xstate: bool) -> bytes:
        if self._fp is None:
            if use_xstate:
                self._fp = pt.get_regset(self.tid, pt.NT_X86_XSTATE)
            else:
                self._fp = pt.get_fpregs(self.tid)
        return self._fp

    def set_fp(self, data: bytes, use_xstate: bool) -> None:
        if use_xstate:
            pt.set_regset(self.tid, pt.NT_X86_XSTATE, data)
        else:
            pt.set_fpregs(self.tid, data)
        self._fp = bytes(data)
        self.register_version = next(_register_versions)


class ThreadRegisters:
    """The `RegisterSets` view of one stopped thread that the register table reads and writes."""

    def __init__(self, thread: Thread, use_xstate: bool) -> None:
        self._thread = thread
        self._xstate = use_xstate

    def read(self, regset: str) -> bytes:
        if regset == "gpr":
            return self._thread.gpr()
        if regset == "fp":
            return self._thread.fp(self._xstate)
        raise KeyError(regset)

    def write(self, regset: str, data: bytes) -> None:
        if regset == "gpr":
            self._thread.set_gpr(data)
        elif regset == "fp":
            self._thread.set_fp(data, self._xstate)
        else:
            raise KeyError(regset)
