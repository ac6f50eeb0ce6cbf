"""Connection set-up, thread queries, signals, and ending the session (kill, detach)."""

from __future__ import annotations

import signal

from packets import commands as cmds
from packets import replies

from .. import profiles
from ..stop_replies import stop_reply
from ..process import StopEvent, StopKind, procfs
from .registry import Feature, add_feature, handles, supported_features

# The largest packet the server takes (qSupported's PacketSize; the decoder's limit).
PACKET_SIZE = 0x20000

add_feature("QStartNoAckMode+")
add_feature(Feature("multiprocess+", lambda s: s.profile.multiprocess_ids))
add_feature(Feature("swbreak+"))
add_feature(Feature("vContSupported+"))
add_feature(Feature("native-signals+", lambda s: s.profile.native_signals))
# Fork and exec stops, when the client offers them (gdb); a child it is not told of is let
# go, and a process it is not told exec'd goes on in its new program.
add_feature(Feature("fork-events+", lambda s: _offered(s, "fork-events")))
add_feature(Feature("vfork-events+", lambda s: _offered(s, "vfork-events")))
add_feature(Feature("exec-events+", lambda s: _offered(s, "exec-events")))


def _offered(session, feature: str) -> bool:
    return session.profile.name == "gdb" and session.state.features.get(feature) is True


@handles(cmds.SupportedQuery)
def supported(session, cmd: cmds.SupportedQuery) -> bytes:
    state = session.state
    first = not state.supported_seen
    state.features = dict(cmd.features)
    state.supported_seen = True
    session.profile = profiles.detect(cmd.features, state.no_ack_came_first)
    if first:
        # A client's defaults apply as it connects; a qSupported sent again later changes
        # how replies are encoded, not the signals the client already chose to pass.
        _apply_default_pass_signals(session)
    state.multiprocess = cmd.features.get("multiprocess") is True
    state.swbreak = cmd.features.get("swbreak") is True
    state.hwbreak = cmd.features.get("hwbreak") is True
    state.builtin_registers = session.profile is profiles.GDB and "xmlRegisters" not in cmd.features
    settings = session.context.run_settings
    settings.report_fork_events = _offered(session, "fork-events")
    settings.report_vfork_events = _offered(session, "vfork-events")
    settings.report_exec_events = _offered(session, "exec-events")
    names = [f"PacketSize={PACKET_SIZE:x}", *supported_features(session)]
    return ";".join(names).encode()


def _apply_default_pass_signals(session) -> None:
    session.context.run_settings.pass_signals = session.profile.default_pass_signals


@handles(cmds.MustReplyEmpty)
def must_reply_empty(session, cmd) -> bytes:
    return b""


@handles(cmds.StartNoAckMode)
async def start_no_ack(session, cmd) -> bytes | None:
    # The OK still travels under ack rules; acks stop after it.
    if not session.state.supported_seen:
        session.state.no_ack_came_first = True
    await session.send(replies.OK)
    session.stop_acks()
    return None


@handles(cmds.StopReasonQuery)
def stop_reason(session, cmd) -> bytes:
    if session.state.non_stop:
        return session.notifier.report_stopped_threads(session.inferior.last_event if session.inferior else None)
    inferior = session.inferior
    if inferior is None:
        return replies.exited(0)
    if not inferior.alive:
        return stop_reply(session, inferior.exit_event)
    event = inferior.last_event
    if event is None or not inferior.has_thread(event.tid):
        # The thread of the last stop is gone: report the stop on a live thread.
        event = StopEvent(StopKind.SIGNAL, min(inferior.thread_ids()), signal.SIGTRAP)
    session.state.general_thread = session.threads(inferior).client_tid(event.tid)
    return stop_reply(session, event)


@handles(cmds.SetThread)
def set_thread(session, cmd: cmds.SetThread) -> bytes:
    """Hg/Hc: a thread (pPID.TID), any thread of a process (pPID.0), or every thread."""
    tid, pid = cmd.thread.tid, cmd.thread.pid
    if pid not in (None, 0, -1):
        inferior = session.processes.get(pid)
        if inferior is None or not inferior.alive:
            return replies.error(0x01, "no such process", session.state.error_strings)
    elif tid not in (0, -1):
        inferior = session.owner_of(tid)
    else:
        inferior = session.inferior
    if tid not in (0, -1) and (inferior is None or not session.threads(inferior).has(tid)):
        return replies.error(0x01, "no such thread", session.state.error_strings)
    if cmd.op == "g":
        session.state.general_thread = tid
        if inferior is not None:
            session.selected_pid = inferior.pid
    elif cmd.op == "c":
        session.state.continue_thread = tid
    return replies.OK


@handles(cmds.ThreadAlive)
def thread_alive(session, cmd: cmds.ThreadAlive) -> bytes:
    pid = cmd.thread.pid
    inferior = session.processes.get(pid) if pid not in (None, 0, -1) \
        else session.owner_of(cmd.thread.tid)
    if inferior is not None and inferior.alive and session.threads(inferior).has(cmd.thread.tid):
        return replies.OK
    return replies.error(0x01, "thread is gone", session.state.error_strings)


@handles(cmds.CurrentThreadQuery)
def current_thread(session, cmd) -> bytes:
    session.require_inferior()
    return b"QC" + session.format_thread(session.selected_thread(None))


@handles(cmds.ThreadInfoFirst)
def thread_info_first(session, cmd) -> bytes:
    """Every thread of every process, in batches."""
    session.thread_list_cursor = [(p.pid, tid) for p in session.processes.listed()
                                  for tid in session.threads(p).ids()]
    return _thread_batch(session)


@handles(cmds.ThreadInfoNext)
def thread_info_next(session, cmd) -> bytes:
    return _thread_batch(session)


def _thread_batch(session) -> bytes:
    batch, session.thread_list_cursor = session.thread_list_cursor[:200], session.thread_list_cursor[200:]
    if not batch:
        return b"l"
    return b"m" + b",".join(session.format_thread(tid, pid) for pid, tid in batch)


@handles(cmds.AttachedQuery)
def attached(session, cmd) -> bytes:
    inferior = session.inferior if cmd.pid is None else session.processes.get(cmd.pid)
    if inferior is None:
        return replies.error(0x01, "no process", session.state.error_strings)
    return b"0" if inferior.launched else b"1"


@handles(cmds.OffsetsQuery)
def offsets(session, cmd) -> bytes:
    return b""


@handles(cmds.TraceStatusQuery)
def trace_status(session, cmd) -> bytes:
    # An empty reply: "T0" would make gdb go on asking about tracepoints.
    return b""


@handles(cmds.SymbolQuery)
def symbol(session, cmd) -> bytes:
    return replies.OK


def _linux_signals(session, numbers) -> frozenset[int]:
    """The Linux signals a client's list names. A Linux signal is in it when its own client
    number is listed, as gdbserver decides: GDB's SIGPOLL is Linux's SIGIO under another name,
    and gdb passing SIGPOLL by default must not pass SIGIO, which it stops on."""
    profile = session.profile
    out = set()
    for number in numbers:
        linux = profile.signal_from_client(number)
        if linux is not None and profile.signal_to_client(linux) == number:
            out.add(linux)
    return frozenset(out)


@handles(cmds.PassSignals, features=("QPassSignals+",))
def pass_signals(session, cmd: cmds.PassSignals) -> bytes:
    session.context.run_settings.pass_signals = _linux_signals(session, cmd.signals)
    return replies.OK


@handles(cmds.ProgramSignals, features=("QProgramSignals+",))
def program_signals(session, cmd: cmds.ProgramSignals) -> bytes:
    # The signals the server may deliver without being asked: those of stops the client has
    # not been told of when it detaches. A signal the client passes with a resume always goes.
    session.context.run_settings.program_signals = _linux_signals(session, cmd.signals)
    return replies.OK


@handles(cmds.NonStop, features=("QNonStop+",))
def non_stop(session, cmd: cmds.NonStop) -> bytes:
    if cmd.enable and session.profile.lldb_stop_replies:
        return replies.error(0x01, "non-stop mode is for gdb clients", session.state.error_strings)
    session.set_non_stop(cmd.enable)
    return replies.OK


@handles(cmds.StoppedAck)
def stopped_ack(session, cmd) -> bytes:
    """vStopped: the next stop a non-stop client has not heard of, or OK."""
    if not session.state.non_stop:
        return replies.OK
    return session.notifier.next_reply()


@handles(cmds.CtrlC)
def ctrl_c(session, cmd) -> bytes:
    """vCtrlC: in non-stop mode one thread stops with SIGINT, reported as a notification; in
    all-stop mode the program is stopped already, and stops again at once when resumed."""
    if session.state.non_stop:
        session.processes.request_interrupt()
    else:
        session.interrupt_while_stopped()
    return replies.OK


@handles(cmds.ThreadEvents, features=("QThreadEvents+", "no-resumed+"))
def thread_events(session, cmd: cmds.ThreadEvents) -> bytes:
    session.context.run_settings.report_thread_events = cmd.enable
    return replies.OK


@handles(cmds.CatchSyscalls, features=(Feature("QCatchSyscalls+", lambda s: s.profile.name == "gdb"),))
def catch_syscalls(session, cmd: cmds.CatchSyscalls) -> bytes:
    """gdb's `catch syscall`: the entry and return of these system calls stop the thread."""
    session.context.run_settings.catch_syscalls = cmd.numbers
    return replies.OK


@handles(cmds.ThreadExtraInfo)
def thread_extra_info(session, cmd: cmds.ThreadExtraInfo) -> bytes:
    inferior = session.require_inferior()
    tid = cmd.thread.tid
    threads = session.threads(inferior)
    if not threads.has(tid):
        return replies.error(0x01, "no such thread", session.state.error_strings)
    text = threads.text(tid)
    if text is None:
        name, core = procfs.thread_name_and_core(inferior.pid, tid)
        state = "running" if inferior.threads[tid].running else "stopped"
        text = f"Name: {name}, State: {state}" + (f", Core: {core}" if core is not None else "")
    return replies.hex_encode(text.encode())


@handles(cmds.Kill)
async def kill(session, cmd: cmds.Kill) -> bytes | None:
    """vKill;PID ends one process; k ends every one, as gdbserver's does."""
    inferior = session.inferior if cmd.pid is None else session.processes.get(cmd.pid)
    if cmd.pid is not None and inferior is None:
        return replies.error(0x01, "no such process", session.state.error_strings)
    victims = session.processes.with_unannounced_children(inferior) if cmd.pid is not None \
        else session.processes.live()
    for victim in victims:
        await victim.kill()
        session.context.lifecycle.announce_killed(victim)
    if cmd.pid is not None:
        return replies.OK  # vKill answers; plain k does not (except to lldb)
    if session.profile.reply_to_kill and inferior is not None and inferior.exit_event is not None:
        await session.send(stop_reply(session, inferior.exit_event))
    if not session.state.extended:
        session.stop_requested_exit = True  # in extended mode the client runs the next one
    return None


@handles(cmds.Detach)
async def detach(session, cmd: cmds.Detach) -> bytes:
    inferior = session.inferior if cmd.pid is None else session.processes.get(cmd.pid)
    if inferior is None or not inferior.alive:
        return replies.error(0x01, "no such process" if cmd.pid else "no process", session.state.error_strings)
    await session.send(replies.OK)
    await session.context.lifecycle.detach(inferior)
    if not session.state.extended and not session.processes.live():
        session.stop_requested_exit = True  # in extended mode the client runs the next one
    return None
