"""Run control: c/C/s/S and vCont (with range stepping).

A handler resumes the threads and returns at once; the session reports the stop when it comes
(`Session.report_stop`), reading the client meanwhile.
"""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..process import Inferior, Resume, TargetError
from .registry import handles


def _linux_signal(session, number: int | None) -> int:
    if not number:
        return 0
    linux = session.profile.signal_from_client(number)
    if linux is None:
        raise TargetError(f"signal {number} has no Linux equivalent")
    # Delivered even when QProgramSignals leaves it out (gdb leaves out SIGTRAP and SIGINT,
    # which its `signal SIGTRAP` still sends): that list is for the signals the server would
    # deliver on its own, as gdbserver reads it.
    return linux


def _run(session, actions: dict[int, Resume], default: Resume | None, prefer: list[int]) -> bytes | None:
    """Resume, and leave the reply to the stop (the threads in `prefer` report first)."""
    return _resume(session, [(session.require_resumable(), actions, default)], prefer)


def _resume(session, plan: list[tuple[Inferior, dict[int, Resume], Resume | None]],
            prefer: list[int]) -> bytes | None:
    """All-stop: the reply is the stop, which the session waits for. Non-stop: OK at once,
    and each stop becomes a notification when it comes."""
    if session.state.non_stop:
        for inferior, actions, default in plan:
            inferior.resume(actions, default)
        return replies.OK
    if session.take_early_interrupt():
        # A 0x03 that came with the resume: the stop is asked for before anything runs, so
        # nothing does (as for an interrupt while stopped). Running a thousand threads only
        # to stop them again would make the client wait for both.
        plan[0][0].request_interrupt()
    stepped = {inferior.pid: [tid for tid, r in actions.items() if r.kind in ("step", "range")]
               for inferior, actions, default in plan}
    if session.go_threads_at_next_stop is not None and not any(stepped.values()):
        # A client that steps a thread expects the step's stop on that thread's id: the view
        # of the threads changes with a resume that steps none.
        session.context.go_goroutine_threads = session.go_threads_at_next_stop
        session.go_threads_at_next_stop = None
    for inferior, actions, default in plan:
        # The stop that ends a step is the stepped thread's, under the id the client stepped,
        # even if the step made its thread run another goroutine (goroutines as threads).
        session.threads(inferior).keep_ids_through_step(stepped[inferior.pid])
        inferior.resume(actions, default)
    session.expect_stop(prefer)
    return None


def _set_pc(session, tid: int, addr: int | None) -> None:
    if addr is not None:
        session.require_inferior().thread(tid).set_pc(addr)


def _selected_thread(session, stepping: bool) -> int:
    """The kernel thread `c`/`s` act on (Hc's, else Hg's). A parked goroutine's id (goroutines
    as threads) has none: a continue runs the whole process from any thread, a step is
    refused."""
    inferior = session.require_resumable()
    threads = session.threads(inferior)
    tid = session.state.continue_thread
    if tid in (0, -1) or not threads.has(tid):
        # The thread `g` would read may be gone since (a `w` reply): then any live one will do.
        general = session.state.general_thread
        tid = general if general not in (0, -1) and threads.has(general) else session.default_thread()
    kernel = threads.kernel_tid(tid) if threads.has(tid) else tid
    if kernel is None:
        if stepping:
            raise TargetError(threads.cannot_step(tid))
        kernel = min(inferior.thread_ids())
    return kernel


@handles(cmds.Continue, cmds.ContinueWithSignal)
def continue_(session, cmd) -> bytes | None:
    tid = _selected_thread(session, stepping=False)
    _set_pc(session, tid, cmd.addr)
    sig = _linux_signal(session, getattr(cmd, "signal", 0))
    return _run(session, {tid: Resume("continue", sig)}, Resume("continue"), [tid])


@handles(cmds.Step, cmds.StepWithSignal)
def step(session, cmd) -> bytes | None:
    tid = _selected_thread(session, stepping=True)
    _set_pc(session, tid, cmd.addr)
    sig = _linux_signal(session, getattr(cmd, "signal", 0))
    # Like gdbserver: other threads stay stopped during a plain `s`.
    return _run(session, {tid: Resume("step", sig)}, None, [tid])


@handles(cmds.VContQuery)
def vcont_query(session, cmd) -> bytes:
    """The vCont actions are those `_RESUMES` turns into resumes, and no others."""
    return b"vCont;" + b";".join(kind.encode() for kind in _RESUMES)


@handles(cmds.VCont)
def vcont(session, cmd: cmds.VCont) -> bytes | None:
    """Each action applies to one thread, every thread of a process (pPID.-1) or every thread
    (-1, or none named); a thread takes the first action that names it. Only the processes an
    action names are resumed: gdb resumes one inferior of several (schedule-multiple off)."""
    processes = session.processes
    actions: dict[int, dict[int, Resume]] = {}   # pid -> tid -> resume
    defaults: dict[int, Resume] = {}             # pid -> resume for the rest of its threads
    everywhere: Resume | None = None
    prefer: list[int] = []
    for action in cmd.actions:
        resume = _to_resume(session, action)
        if resume is None:
            return replies.error(0x01, f"vCont action {action.kind!r} is not supported",
                                 session.state.error_strings)
        thread = action.thread
        pid = thread.pid if thread is not None and thread.pid not in (None, 0, -1) else None
        if thread is None or thread.tid == -1:
            if pid is None:
                everywhere = everywhere or resume
            elif processes.get(pid) is not None:
                defaults.setdefault(pid, resume)
            continue
        tid = thread.tid if thread.tid != 0 else session.selected_thread(None)
        owner = processes.get(pid) if pid is not None else session.owner_of(tid)
        threads = session.threads(owner) if owner is not None else None
        if threads is None or not threads.has(tid):
            return replies.error(0x01, f"no thread {tid:x}", session.state.error_strings)
        kernel = threads.kernel_tid(tid)
        if kernel is None:
            # A parked goroutine (goroutines as threads): no thread of its own to step;
            # continuing it means letting the whole process run.
            if resume.kind in ("step", "range"):
                raise TargetError(threads.cannot_step(tid))
            defaults.setdefault(owner.pid, resume)
            continue
        tid = kernel
        if tid not in actions.setdefault(owner.pid, {}):
            actions[owner.pid][tid] = resume
            if resume.kind != "continue":
                prefer.append(tid)
    plan = []
    unannounced = processes.unannounced()
    for inferior in processes:
        default = defaults.get(inferior.pid, everywhere if inferior.pid not in unannounced else None)
        own = actions.get(inferior.pid, {})
        if inferior.resumable and (own or default is not None):
            plan.append((inferior, own, default))
    if not plan:
        raise TargetError("no process")
    return _resume(session, plan, prefer)


# Each vCont action this server carries out, and the resume it becomes.
_RESUMES = {
    "c": lambda session, action: Resume("continue"),
    "C": lambda session, action: Resume("continue", _linux_signal(session, action.signal)),
    "s": lambda session, action: Resume("step"),
    "S": lambda session, action: Resume("step", _linux_signal(session, action.signal)),
    "r": lambda session, action: Resume("range", 0, action.start or 0, action.end or 0),
    # Stop the thread (non-stop); all-stop stubs ignore it, every thread being stopped.
    "t": lambda session, action: Resume("stop"),
}


def _to_resume(session, action: cmds.VContAction) -> Resume | None:
    make = _RESUMES.get(action.kind)
    return make(session, action) if make is not None else None
