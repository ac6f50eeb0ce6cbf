"""One traced process: its threads, memory, breakpoints, and all-stop run control.

Wait statuses arrive from the tracer's waitpid pump and park reportable events on their threads
(statuses.py). `wait_for_stop` then stops every other thread, collects their stops (keeping any
event they hit meanwhile for a later report) and returns one event of a thread the client
resumed. Nothing here knows about RSP. Wait statuses (statuses.py), what a SIGTRAP means
(traps.py), stopping every thread (allstop.py), stepping over breakpoints nobody is told of
(stepover.py), the debug registers
(hardware.py), forked children (forks.py), the signals resumes give (resume_signals.py) and
ending (ending.py) are mixins.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable

from . import procfs
from . import ptrace_calls as pt
from .allstop import SPINS, AllStop, log
from .breakpoints import Check, SoftwareBreakpoints
from .changes import Changes
from .debugregs import DebugRegisters
from .ending import Ending
from .events import StopEvent, StopKind
from .forks import ForkHandling
from .hardware import HardwareBreakpoints
from .launch import Started
from .nonstop import NonStop
from .resume_signals import ResumeSignals
from .memory import ProcessMemory
from .run_settings import RunSettings
from .statuses import StatusHandling
from .stepover import InternalStepOver
from .traps import TrapHandling
from .threads import Resume, Thread, ThreadRegisters


class TargetError(Exception):
    """A request the process cannot honour right now; the message is for the client."""


class Inferior(StatusHandling, TrapHandling, AllStop, NonStop, InternalStepOver, HardwareBreakpoints,
               ForkHandling, ResumeSignals, Ending):
    def __init__(self, started: Started, launched: bool, use_xstate: bool,
                 settings: RunSettings | None = None) -> None:
        self.pid = started.pid
        self.launched = launched
        self.executable = started.executable
        self.use_xstate = use_xstate
        self._with_pending: set[int] = set()  # see Thread.with_pending
        self.threads: dict[int, Thread] = {t: self._new_thread(t) for t in started.tids}
        for tid in started.unstopped:
            # Asked to stop at attach and not stopped yet (uninterruptible sleep): it stays
            # stopped when its stop comes, as the client will believe it is.
            thread = self.threads[tid]
            thread.running = thread.interrupt_sent = thread.unstoppable = True
            log.warning("thread %d of process %d did not stop when attached (state %s): "
                        "going on without it", tid, started.pid, procfs.task_state(started.pid, tid))
        self.memory = ProcessMemory(self.pid)
        self.breakpoints = SoftwareBreakpoints(self.memory)
        self.settings = settings if settings is not None else RunSettings()
        self.exit_event: StopEvent | None = None
        self.exit_reported = False
        self.last_event: StopEvent | None = StopEvent(StopKind.INITIAL, self.pid, signal.SIGTRAP)
        self._last_turn = 0  # the thread whose own event was reported last (see _pick_event)
        self._orphans: dict[int, list[int]] = {}
        self._changed = Changes()
        self._interrupt_requested = False
        # Every thread is to stay stopped until the next resume (a stop_all was asked for:
        # another process's event, a detach): the stops it brings are not stray ones.
        self._held = False
        # Go's runtime preempts goroutines with SIGURG sent by tgkill from the process itself:
        # when set, those are passed on without a stop whatever the client's signal settings;
        # one that comes while the client steps the thread waits for its next continue.
        self.quiet_runtime_sigurg = False
        # Events that belong to no live thread (a thread's exit) waiting to be reported.
        self._process_events: list[StopEvent] = []
        # Threads single-stepping over one of our own breakpoints: tid -> (address, how the
        # thread goes on), and the threads a resume holds back until those steps are done.
        self._stepping_over: dict[int, tuple[int, Resume]] = {}
        self._run_after_step_over: list[tuple[Thread, Resume]] = []
        # A thread waiting for every other thread to stop before it steps over a breakpoint
        # nobody is told of (see stepover.py); None when there is none.
        self._holder: Thread | None = None
        # Checks of the client's hardware breakpoints (Z1 with conditions), by address.
        self.hardware_checks: dict[int, Check] = {}
        # Hooks for thread-level features layered on top (debug registers on new threads).
        self.debug_registers = DebugRegisters()
        self.on_new_thread: list = [self._apply_debug_registers]
        # Called with the process after it exec'd a new program (the server re-reads what it
        # knows of the program: its Go runtime).
        self.on_exec: list[Callable[[Inferior], None]] = []
        # Why the program it runs now cannot be debugged (it exec'd a 32-bit one), or None:
        # its registers are then refused with this message, never shown in x86-64 terms.
        self.unsupported: str | None = None
        # Decides what a hit on one of our own (internal) breakpoints means: an event to
        # report, or None to go on as if nothing happened.
        self.on_internal_breakpoint = None
        # Collects pending wait statuses at once (the tracer's drain), or those of the threads
        # named (the tracer's collect); set when traced.
        self.poll = None
        self.collect: Callable[[list[int]], None] | None = None
        # The stops the tracer kept for a thread before its clone event (set when traced).
        self.claim_unclaimed: Callable[[int], list[int]] = lambda tid: []
        # Counts resumes: whatever was read from the stopped program is stale once it changes.
        self.generation = 0
        # Told whenever something changed (a status handled, an interrupt asked for): the
        # process set waits on every process at once through it.
        self.on_change: Callable[[], None] | None = None
        # The Go runtime's view of this process (a gdbstub.goview.GoView), opened by the
        # server for Go programs; the controller itself never uses it.
        self.go = None
        # Resumed by the client since its last reported stop: in a set of processes only those
        # may answer a resume (a held process keeps even its exit until it is resumed).
        self.client_resumed = False
        # Forks: the process set adds a child (on_fork) and drops one let go (on_released).
        # A vfork child shares its parent's memory until it execs or exits.
        self.on_fork: Callable | None = None
        self.on_released: Callable | None = None
        self.shares_memory = False
        self.let_go_at_first_stop = False

    # -- facts ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.exit_event is None

    def thread_ids(self) -> list[int]:
        return sorted(tid for tid, t in self.threads.items() if not t.zombie)

    def registers(self, tid: int) -> ThreadRegisters:
        if self.unsupported is not None:
            raise TargetError(self.unsupported)
        return ThreadRegisters(self._thread(tid), self.use_xstate)

    def thread(self, tid: int) -> Thread:
        return self._thread(tid)

    def _thread(self, tid: int) -> Thread:
        thread = self.threads.get(tid)
        if thread is None or thread.zombie:
            raise TargetError(f"no thread {tid:x} (it has exited)")
        return thread

    def has_thread(self, tid: int) -> bool:
        thread = self.threads.get(tid)
        return thread is not None and not thread.zombie

    def is_running(self) -> bool:
        return any(t.running for t in self.threads.values())

    def can_still_report(self) -> bool:
        """A thread runs, or every thread has gone while the process's own exit status is
        still to come (the leader left first, alone, and the others have followed it): that
        status is what comes next, not "no resumed threads"."""
        return self.is_running() or (self.exit_event is None and all(t.zombie for t in self.threads.values()))

    # -- memory --------------------------------------------------------------------------
    def read_memory(self, addr: int, length: int) -> bytes:
        return self.breakpoints.shadow(addr, self.memory.read(addr, length))

    def write_memory(self, addr: int, data: bytes) -> int:
        return self.breakpoints.write_through(addr, data)

    def siginfo(self, tid: int) -> bytes:
        """The raw siginfo_t of a stopped thread's last stop."""
        try:
            return pt.siginfo(self._thread(tid).tid).raw
        except pt.PtraceError as exc:
            raise TargetError(f"cannot read siginfo: {exc}") from None

    def set_siginfo(self, tid: int, raw: bytes) -> None:
        try:
            pt.set_siginfo(self._thread(tid).tid, raw)
        except pt.PtraceError as exc:
            raise TargetError(f"cannot write siginfo: {exc}") from None

    # -- run control ---------------------------------------------------------------------
    @property
    def interrupt_requested(self) -> bool:
        """The client's 0x03 waits to be reported (all-stop)."""
        return self._interrupt_requested

    def request_interrupt(self) -> None:
        """Ask for an all-stop (the client's 0x03); `wait_for_stop` reports it. In non-stop
        mode one thread stops (see `interrupt_one_thread`)."""
        if not self.alive:
            return
        if self.non_stop:
            self.interrupt_one_thread()
            return
        self._interrupt_requested = True
        self._notify()

    def resume(self, actions: dict[int, Resume], default: Resume | None) -> None:
        if not self.alive:
            if self.resumable:
                self.client_resumed = True
                return  # its end is still to be reported: the next wait does
            raise TargetError("the process is not running")
        self.client_resumed = True
        self._held = False
        self.generation += 1
        self._drop_stale_breakpoint_events()
        if not self.non_stop and (self._interrupt_requested or self._has_pending_report(actions, default)):
            # Like gdbserver: when something already waits to be reported (a thread's exit,
            # a stop not yet reported, an interrupt asked for while stopped), nothing runs; the
            # next wait reports it at once. Running the others could let the process exit and
            # swallow the report.
            for thread in self.threads.values():
                action = actions.get(thread.tid, default)
                if action is not None and not thread.zombie:
                    thread.resume = self._queue_signal(thread, action)
            return
        to_run: list[tuple[Thread, Resume]] = []
        for thread in list(self.threads.values()):
            action = actions.get(thread.tid, default)
            if action is None or thread.zombie:
                continue
            if action.kind == "stop":
                if self.non_stop:
                    self.request_thread_stop(thread.tid)
                continue  # all-stop: every thread is stopped already
            thread.resume = action
            if thread.running:
                continue  # never stopped (see Thread.unstoppable): running as asked
            if thread.pending is not None or thread.awaiting_first_stop:
                # Reported on the next wait, without running the thread.
                thread.resume = self._queue_signal(thread, action)
                continue
            passed, thread.passed_breakpoint = thread.passed_breakpoint, None
            if passed is not None and passed in self.breakpoints and thread.pc() == passed:
                self._begin_step_over(thread, action)
                continue
            if self.breakpoints.has_internal and self.breakpoints.is_internal(thread.pc()) \
                    and not self.breakpoints.is_client(thread.pc()):
                self._begin_step_over(thread, action)
                continue
            to_run.append((thread, action))
        if self._stepping_over:
            # The others run once the original byte is back (see _finish_step_over): while
            # it is out, a thread running through that address would miss the breakpoint.
            self._run_after_step_over.extend(to_run)
            return
        for thread, action in to_run:
            self._run_thread(thread, action)
        if self._holder is not None:
            self._send_interrupts()  # non-stop: none runs while a thread waits to step over
        if self.non_stop:
            self._notify()  # a thread resumed with its event still to report reports it now

    def _run_thread(self, thread: Thread, action: Resume) -> None:
        self._set_resume_flag_if_needed(thread)
        self._ptrace_resume(thread, action.kind, self._signal_to_deliver(thread, action))

    def _has_pending_report(self, actions: dict[int, Resume], default: Resume | None) -> bool:
        if self._process_events:
            return True
        for thread in self.threads.values():
            if thread.pending is not None and not thread.zombie and actions.get(thread.tid, default) is not None:
                return True
        return False

    def _drop_stale_breakpoint_events(self) -> None:
        for thread in self.threads.values():
            if thread.zombie:
                continue
            ev = thread.pending
            if ev is not None and ev.kind == StopKind.BREAKPOINT:
                try:
                    if thread.pc() not in self.breakpoints:
                        thread.pending = None  # its breakpoint was removed: the PC is already rewound
                except pt.PtraceError:
                    thread.pending = None

    async def wait_for_stop(self, prefer: Iterable[int] = (), report_no_resumed: bool = False) -> StopEvent:
        """Wait until some thread has something to report, stop all threads, and report it."""
        # Spin only on the way in (later wake-ups come with their statuses drained), and not
        # over many running threads: each look then costs more than the loop's wake-up.
        spins = self._spins_for_stop(SPINS)
        while True:
            event = self.poll_for_stop(prefer, report_no_resumed, spins)
            spins = 0
            if event is not None:
                return event
            if self.exit_event is None and self._stopping_all():
                await self.stop_all()
                continue
            await self._changed.wait()

    def poll_for_stop(self, prefer: Iterable[int] = (), report_no_resumed: bool = False,
                      spins: int = SPINS) -> StopEvent | None:
        """The stop to report if it can be had without waiting long, else None.

        A single step or a nearby breakpoint stops the program within microseconds: polling
        waitpid for a moment (yielding the CPU to the tracee) answers it without a trip through
        the signal handler and the event loop, which costs more than the step itself.
        """
        self._spin_until(self.has_something_to_report, spins)
        if self.exit_event is not None:
            return self._report_end()
        if not self._stopping_all():
            if report_no_resumed and not self.can_still_report():
                return StopEvent(StopKind.NO_RESUMED, self.pid, pid=self.pid)
            return None
        if self.is_running():  # (not after a single-threaded step: nothing is left to stop)
            self._interrupt_running_threads()
            self._spin_until(self._all_stopped, self._spins_for_stop(spins))
            if self.exit_event is not None:
                return self._report_end()
            if not self._all_stopped():
                return None
        event = self._pick_event(list(prefer))
        self._interrupt_requested = False
        self.last_event = event
        for thread in self.threads.values():
            thread.resume = None  # all stopped, in the client's view too
        self._held = True
        self.client_resumed = False
        event.pid = self.pid
        return event

    async def hold_all(self) -> None:
        """Another process's event is being reported (all-stop): stop every thread here too,
        keeping whatever they hit for a later report once they are resumed."""
        self.client_resumed = False
        if self.exit_event is not None:
            return
        await self.stop_all()
        for thread in self.threads.values():
            thread.resume = None

    def _report_end(self) -> StopEvent:
        """The process is gone: threads that exited before it are reported first, one per
        wait (as gdbserver picks them), then the process's own exit."""
        self.client_resumed = False
        if self._process_events:
            self.last_event = self._process_events.pop(0)
            self.last_event.pid = self.pid
            return self.last_event
        self.exit_reported = True
        self.exit_event.pid = self.pid
        return self.exit_event

    @property
    def resumable(self) -> bool:
        """Alive, or gone with something still to report: a resume then reports it."""
        return self.exit_event is None or not self.exit_reported

    def has_something_to_report(self) -> bool:
        return self.exit_event is not None or self._stopping_all()

    def _pick_event(self, prefer: list[int]) -> StopEvent:
        # A thread the client did not resume keeps its event until it is resumed (gdb does
        # not expect a stop from a thread it left stopped: scheduler locking, a step-over).
        candidates = [t for t in self.threads.values() if t.pending is not None and t.resume is not None]
        chosen = None
        for tid in prefer:
            t = self.threads.get(tid)
            if t is not None and t.pending is not None and t.resume is not None:
                chosen = t
                break
        if chosen is None and candidates:
            # Take turns (the next thread after the last whose own event was reported):
            # always taking the first would starve the others' events when one thread keeps
            # hitting. An interrupt's stop between two hits does not count as a turn, or the
            # first thread would win after each one (gdb.threads/continue-pending-status.exp).
            candidates.sort(key=lambda t: (t.tid <= self._last_turn, t.tid))
            chosen = candidates[0]
        if chosen is not None:
            self._last_turn = chosen.tid
            event = chosen.pending
            chosen.pending = None
            return event
        if self._process_events:
            return self._process_events.pop(0)
        live = self.thread_ids()
        tid = prefer[0] if prefer and prefer[0] in live else min(live)
        return StopEvent(StopKind.INTERRUPTED, tid, signal.SIGINT)
