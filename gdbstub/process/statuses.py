"""Turning a traced process's wait statuses into thread state and stop events.

The tracer's waitpid pump hands each status to `on_status` (synchronous). Quiet events (clones,
passed signals, steps inside a stepping range, the server's own interrupt stops, a thread on its
way out) are handled on the spot and the thread goes on; a reportable event is parked on its
thread (`Thread.pending`) for run control to report.

A mixin of `Inferior`: it uses the process's threads, settings, breakpoints and run control.
"""

from __future__ import annotations

import os
import signal

from . import ptrace_calls as pt
from .breakpoints import SoftwareBreakpoints
from .events import StopEvent, StopKind
from .launch import foreign_program
from .threads import Resume, Thread

SI_TKILL = -6
SYS_EXIT = 60  # x86-64: a thread's own exit, where exit_group (231) ends the process
_WALL = 0x40000000  # waitpid: any child, clone or not (threads)
# Signals the client hears of even when it passes them (gdbserver's
# linux_wstatus_maybe_breakpoint): a breakpoint of the client's can raise them (gdb's
# function calls return to a place that may fault), and only the client can tell.
MAYBE_BREAKPOINT = frozenset({signal.SIGTRAP, signal.SIGILL, signal.SIGSEGV})


class StatusHandling:
    """Wait-status handling for `Inferior` (which provides `threads`, `pid`, `settings`,
    `breakpoints`, `exit_event`, `_orphans`, `claim_unclaimed`, `_changed`, `_process_events`,
    `_stepping_over`, `_interrupt_requested`, the step-over and hardware mixins,
    `_interrupt` and `_mark_exited`)."""

    def owns(self, tid: int) -> bool:
        return tid in self.threads or tid == self.pid

    def on_status(self, tid: int, status: int) -> None:
        thread = self.threads.get(tid)
        if thread is None:
            if os.WIFSTOPPED(status):
                # A new thread's first stop can beat its parent's clone event: keep it.
                self._orphans.setdefault(tid, []).append(status)
            elif tid == self.pid:
                self._process_ended(status)
            self._notify()
            return
        try:
            if thread.tid in self._stepping_over:
                self._finish_step_over(thread, status)
            else:
                self._on_thread_status(thread, status)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
            # The thread died under us (SIGKILL, exit); its exit status follows.
        if self._holder is not None:
            self._check_hold()
        self._notify()

    def _notify(self) -> None:
        self._changed.notify()
        if self.on_change is not None:
            self.on_change()

    def _process_ended(self, status: int) -> None:
        if os.WIFEXITED(status):
            self.exit_event = StopEvent(StopKind.EXITED, self.pid, exit_code=os.WEXITSTATUS(status))
        else:
            self.exit_event = StopEvent(StopKind.TERMINATED, self.pid, signal=os.WTERMSIG(status))
        for t in self.threads.values():
            t.running = False
        self.threads.clear()
        self._stepping_over.clear()
        self._run_after_step_over = []
        self._holder = None
        self.memory.close()

    def _on_thread_status(self, thread: Thread, status: int) -> None:
        tid = thread.tid
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            del self.threads[tid]
            if tid == self.pid:
                self._process_ended(status)
            elif self.settings.report_thread_events:
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
                self._process_events.append(StopEvent(StopKind.THREAD_EXITED, tid, exit_code=code))
            return
        if not os.WIFSTOPPED(status):
            return
        thread.running = False
        thread.invalidate()
        sig = os.WSTOPSIG(status)
        event = status >> 16
        thread.at_event_stop = event != 0
        if event != pt.PTRACE_EVENT_STOP:
            # Every other stop absorbs a PTRACE_INTERRUPT sent before it (the kernel clears a
            # pending interrupt at each trap); one sent after it fires at the next resume, as
            # a stop nobody waits for. Either way, a later stop_all must interrupt it again:
            # waiting for the absorbed one left it running until the safety net (0.2 s).
            thread.interrupt_sent = False

        if event == pt.PTRACE_EVENT_CLONE:
            self._on_clone(thread)
            return
        if event in (pt.PTRACE_EVENT_FORK, pt.PTRACE_EVENT_VFORK):
            self._on_fork(thread, vfork=event == pt.PTRACE_EVENT_VFORK)
            return
        if event == pt.PTRACE_EVENT_VFORK_DONE:
            self._on_vfork_done(thread)
            return
        if event == pt.PTRACE_EVENT_EXEC:
            self._on_exec(thread)
            return
        if event == pt.PTRACE_EVENT_STOP:
            self._on_ptrace_stop(thread, sig)
            return
        if event == pt.PTRACE_EVENT_EXIT:
            self._on_exiting(thread)
            return
        if event:
            self._resume_quietly(thread)
            return
        if sig == signal.SIGTRAP | 0x80:  # a syscall stop (PTRACE_O_TRACESYSGOOD)
            self._on_syscall_stop(thread)
            return
        if sig == thread.injected_signal:
            thread.injected_signal = 0
            self._resume_quietly(thread, sig)  # the signal the client asked to deliver
            return
        if sig == signal.SIGTRAP:
            self._on_sigtrap(thread)
            return
        # A signal is about to be delivered.
        if self._passes_quietly(thread, sig):
            self._resume_quietly(thread, sig)
            return
        if self._runtime_preemption(thread, sig):
            if self._continues(thread):
                self._resume_quietly(thread, sig)
            else:
                thread.deferred_signal = sig  # the step goes on; see Thread.deferred_signal
                self._resume_quietly(thread)
            return
        thread.pending = StopEvent(StopKind.SIGNAL, tid, sig)

    def _on_syscall_stop(self, thread: Thread) -> None:
        caught = self.settings.catch_syscalls
        if caught is not None:
            kind = pt.syscall_stop_kind(thread.tid)
            number = thread.orig_rax()
            if kind in (pt.SYSCALL_INFO_ENTRY, pt.SYSCALL_INFO_EXIT) and (not caught or number in caught):
                stop = StopKind.SYSCALL_ENTRY if kind == pt.SYSCALL_INFO_ENTRY else StopKind.SYSCALL_RETURN
                thread.pending = StopEvent(stop, thread.tid, signal.SIGTRAP, syscall=number)
                return
        self._resume_quietly(thread)

    def _on_clone(self, parent: Thread) -> None:
        new_tid = pt.event_message(parent.tid)
        # The client counts a new thread as running, like the process it appeared in.
        child = self._new_thread(new_tid, running=True, awaiting_first_stop=True, resume=Resume("continue"))
        self.threads[new_tid] = child
        for status in self._orphans.pop(new_tid, []) + self.claim_unclaimed(new_tid):
            self._on_thread_status(child, status)
        self._resume_quietly(parent)

    def _on_exiting(self, thread: Thread) -> None:
        """A thread on its way out (PTRACE_EVENT_EXIT): it runs no more of the program, so it
        goes on at once, even during an all-stop. Another thread's exit status follows. The
        leader's does not while other threads live (it stays a zombie): it is gone from now
        on, which is how a client that resumed only the leader learns nothing is left running."""
        leader_alone_exits = False
        try:
            # Only the leader's own exit (SYS_exit, pthread_exit in main) leaves the process
            # running; exit_group or a fatal signal ends it, and its exit status follows.
            leader_alone_exits = thread.tid == self.pid and thread.orig_rax() == SYS_EXIT
            pt.cont(thread.tid, 0)
            thread.single_stepped = False
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
        if leader_alone_exits:
            self._mark_exited(thread)
        else:
            thread.running = True

    def _on_exec(self, thread: Thread) -> None:
        # Every other thread is gone; the execing thread now has the leader's tid.
        try:
            former = pt.event_message(self.pid)  # the execing thread's own tid
        except pt.PtraceError:
            former = self.pid
        execer = self.threads.get(former)
        for tid in [t for t in self.threads if t != self.pid]:
            del self.threads[tid]
        leader = self.threads.get(self.pid) or self.threads.setdefault(self.pid, self._new_thread(self.pid))
        if execer is not None and execer is not leader:
            # The leader now is the thread that ran and exec'd: how the client resumed it (the
            # old leader may have been left stopped, by scheduler locking), and the signals
            # waiting for it (a thread's pending signals survive exec).
            leader.resume = execer.resume
            leader.injected_signal, leader.deferred_signal = execer.injected_signal, execer.deferred_signal
            leader.queued_signals = execer.queued_signals
        if leader.resume is None:
            leader.resume = Resume("continue")  # it ran: its event is the client's (as gdbserver)
        leader.running = False
        leader.zombie = False  # a leader that had left (pthread_exit) is the execing thread now
        leader.fs_base_seen = None  # a new program, a new thread control block
        self.memory.reopen()
        if self.shares_memory:  # a vfork child: its own address space from now on
            self.breakpoints = SoftwareBreakpoints(self.memory)
            self.shares_memory = False
        else:
            self.breakpoints.forget_all()
        self._stepping_over.clear()  # the old text, and the byte to put back, are gone
        self._run_after_step_over = []
        self._holder = None
        leader.passed_breakpoint = None
        self.executable = os.readlink(f"/proc/{self.pid}/exe")
        foreign = foreign_program(f"/proc/{self.pid}/exe")
        self.unsupported = None if foreign is None else \
            f"process {self.pid} now runs {self.executable}, {foreign}; kill it or detach from it"
        for hook in self.on_exec:
            hook(self)
        if self.settings.report_exec_events:
            leader.pending = StopEvent(StopKind.EXECED, self.pid, signal.SIGTRAP, exec_path=self.executable)
            return
        self._resume_quietly(leader)

    def _on_ptrace_stop(self, thread: Thread, sig: int) -> None:
        if thread.awaiting_first_stop:
            thread.awaiting_first_stop = False
            # An interrupt sent before this first stop is absorbed by it.
            thread.interrupt_sent = False
            if self.let_go_at_first_stop:
                self._let_fork_child_go(thread)
                return
            for hook in self.on_new_thread:
                hook(thread)
            if self.settings.report_thread_events and thread.tid != self.pid:
                thread.pending = StopEvent(StopKind.THREAD_CREATED, thread.tid, signal.SIGTRAP)
                return
            if self._keeping_stopped():
                return
            self._resume_quietly(thread, resume=Resume("continue"))
            return
        asked, thread.interrupt_sent = thread.interrupt_sent, False
        if self._has_trap_queued_behind(thread):
            self._take_queued_trap(thread)
            if not asked or thread.tid not in self.threads:
                return
            if thread.running:
                self._interrupt(thread)  # the stop asked for is still to come
                return
            if thread.pending is not None:
                thread.unstoppable = False
                return  # its event stands for the stop asked for (nonstop.take_event)
        if asked:
            if thread.unstoppable:
                # The stop asked for long ago, at last: the client believes it stopped then.
                thread.unstoppable = False
                return
            if thread.stop_requested is not None:
                kind, sig = thread.stop_requested
                thread.stop_requested = None
                thread.pending = StopEvent(kind, thread.tid, sig)
                return
            if self._keeping_stopped():
                return  # the stop we asked for
            # An interrupt sent while the thread was stopping for another reason stays pending
            # in the kernel and fires when the thread next runs: the client wants it running.
            self._resume_quietly(thread)
            return
        if sig in pt.SIGNALS_GROUP_STOP:
            # A job-control stop: the program asked to be stopped. Keep it stopped in the kernel's
            # view but let run control go on (PTRACE_LISTEN would need SIGCONT to wake).
            self._resume_quietly(thread)
            return
        if not self._keeping_stopped():
            self._resume_quietly(thread)

    def _has_trap_queued_behind(self, thread: Thread) -> bool:
        """Whether a SIGTRAP of the thread's own (an int3 it ran, a step's end, a debug
        register's hit) waits behind this stop. The kernel reports an interrupt's or a
        job-control stop before the thread's signals, so a thread interrupted just as it
        trapped shows its PC past the int3 here: gdb planted its next breakpoint inside an
        instruction there (gdb.threads/sigstep-threads.exp), and a detach would let the
        SIGTRAP kill the program. One sent by kill or tgkill (si_code <= 0) is the
        program's, delivered at the thread's next resume like any other signal."""
        try:
            queued = pt.queued_signals(thread.tid)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
            return False
        return any(signo == signal.SIGTRAP and code > 0 for signo, code in queued)

    def _take_queued_trap(self, thread: Thread) -> None:
        """Resume the thread into its queued SIGTRAP, which it takes before running any
        instruction (the kernel forces such a signal: it cannot be blocked), and handle that
        stop as if it had come first: the PC goes back to the breakpoint, the step ends."""
        try:
            pt.cont(thread.tid, 0)
            _, status = os.waitpid(thread.tid, _WALL)  # at once: the signal is already queued
        except (pt.PtraceError, ChildProcessError) as exc:
            if isinstance(exc, pt.PtraceError) and not pt.is_gone(exc):
                raise
            return  # gone meanwhile: its exit status follows
        self._on_thread_status(thread, status)

    def _passes_quietly(self, thread: Thread, sig: int) -> bool:
        """Whether a signal the client passes goes to the program without a stop. Not while
        the thread steps (like gdbserver): delivered during a step, it would end the step at
        the handler's first instruction; reported, it lets the client step over the handler."""
        return self._client_passes(sig) and self._continues(thread)

    def _client_passes(self, sig: int) -> bool:
        """The client's QPassSignals lists `sig`, which is not one a breakpoint may raise, and
        no interrupt waits to be reported."""
        return sig in self.settings.pass_signals and sig not in MAYBE_BREAKPOINT and not self._interrupt_requested

    def _runtime_preemption(self, thread: Thread, sig: int) -> bool:
        """A Go runtime's SIGURG to one of its threads (see quiet_runtime_sigurg)."""
        return sig == signal.SIGURG and self.quiet_runtime_sigurg and self._sent_by_itself(thread)

    def _unseen_signal(self, thread: Thread, sig: int) -> bool:
        """A signal the program gets without the client hearing of it: one the client passes
        (whether or not the thread steps), or the Go runtime's preemption."""
        return self._client_passes(sig) or self._runtime_preemption(thread, sig)

    @staticmethod
    def _continues(thread: Thread) -> bool:
        """Whether the client let the thread run free (rather than step it): only then can a
        signal go to the program unseen."""
        resume = thread.resume
        return resume is None or resume.kind == "continue"

    def _new_thread(self, tid: int, **state) -> Thread:
        return Thread(tid, with_pending=self._with_pending, **state)

    def _keeping_stopped(self) -> bool:
        """Whether a thread that stops stays stopped: an all-stop is under way, or a thread
        waits for every other to stop before it steps over a breakpoint (see stepover.py)."""
        return self._holder is not None or self._stopping_all()

    def _stopping_all(self) -> bool:
        """Whether something is to be reported that stops the whole process (all-stop)."""
        if self.non_stop:
            return self._held  # only an all-stop of our own (detach): a thread's event stops it alone
        if self._interrupt_requested or self._held or self._process_events:
            return True
        gone = None
        for tid in self._with_pending:  # usually empty: this runs at every wait status
            thread = self.threads.get(tid)
            if thread is None or thread.pending is None:
                gone = [*(gone or ()), tid]  # a thread that left with an event (or its tid's reuser)
            elif thread.resume is not None:
                return True
        if gone:
            self._with_pending.difference_update(gone)
        return False

    def _sent_by_itself(self, thread: Thread) -> bool:
        info = pt.siginfo(thread.tid)
        return info.code == SI_TKILL and info.pid == self.pid

    def _resume_quietly(self, thread: Thread, sig: int = 0, resume: Resume | None = None) -> None:
        """Let a thread go on after an event the client need not hear about."""
        if self._keeping_stopped() and sig == 0:
            return  # stay stopped: an all-stop is under way, or a step over a breakpoint
        if thread.stop_requested is not None and sig == 0:
            # Non-stop: the client asked it to stop, and it has (whatever stopped it).
            kind, stop_signal = thread.stop_requested
            thread.stop_requested = None
            thread.pending = StopEvent(kind, thread.tid, stop_signal)
            return
        resume = resume or thread.resume or Resume("continue")
        self._ptrace_resume(thread, resume.kind, sig)

    def _ptrace_resume(self, thread: Thread, kind: str, sig: int) -> None:
        """PTRACE_CONT ('continue') or PTRACE_SINGLESTEP (a step or a range step) with `sig`;
        a thread that vanished meanwhile is left to its exit status."""
        thread.invalidate()
        if kind == "continue" and not sig and thread.deferred_signal:
            sig, thread.deferred_signal = self._signal_for_resume(thread, thread.deferred_signal), 0
        try:
            if kind == "continue" and self.settings.catch_syscalls is not None:
                pt.syscall(thread.tid, sig)  # stops at every system call's entry and return
            elif kind == "continue":
                pt.cont(thread.tid, sig)
            else:
                pt.singlestep(thread.tid, sig)
        except pt.PtraceError as exc:
            if not pt.is_gone(exc):
                raise
            return
        thread.running = True
        thread.single_stepped = kind != "continue"
