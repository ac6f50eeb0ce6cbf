"""Turning the controller's stop events into the client's stop-reply packets.

gdb wants GDB signal numbers, `thread:`, `swbreak:`/`hwbreak:`/`watch:` when negotiated, and the
registers it reads at every stop (rbp, rsp, rip) expedited so that a stop costs one round trip.
lldb wants native signal numbers, the thread's name, every general register, `threads:` and
`thread-pcs:` when it asked for them, `jstopinfo:` when several threads exist, and a `reason:`.
"""

from __future__ import annotations

import json
import signal

from packets import replies

from .process import StopEvent, StopKind, procfs

_TRAP_KINDS = (StopKind.BREAKPOINT, StopKind.STEP, StopKind.WATCHPOINT, StopKind.HW_BREAKPOINT,
               StopKind.TRAP, StopKind.THREAD_CREATED, StopKind.RUNTIME, StopKind.FORKED,
               StopKind.VFORKED, StopKind.VFORK_DONE, StopKind.EXECED, StopKind.SYSCALL_ENTRY,
               StopKind.SYSCALL_RETURN)
_SYSCALL_KEYS = {StopKind.SYSCALL_ENTRY: b"syscall_entry", StopKind.SYSCALL_RETURN: b"syscall_return"}
_FORK_KEYS = {StopKind.FORKED: b"fork", StopKind.VFORKED: b"vfork"}
_LLDB_REASONS = {
    StopKind.BREAKPOINT: "breakpoint",
    StopKind.HW_BREAKPOINT: "breakpoint",
    StopKind.STEP: "trace",
    StopKind.WATCHPOINT: "watchpoint",
}
GPR_COUNT = 24


def event_signal(session, event: StopEvent) -> int:
    """The Linux signal a stop is reported with, for this client."""
    if event.kind == StopKind.INTERRUPTED:
        return session.profile.interrupt_signal
    if event.kind == StopKind.INITIAL:
        return session.profile.initial_signal
    if event.kind == StopKind.ATTACHED:
        return session.profile.attach_signal  # gdbserver: T00; lldb-server: SIGSTOP
    if event.kind in _TRAP_KINDS:
        return signal.SIGTRAP
    return event.signal


def take_stop(session, event: StopEvent) -> None:
    """Settle, once, what a stop the client is about to hear of leaves in the thread.

    The controller rewinds the PC of a breakpoint stop to the int3. A gdb that did not
    negotiate swbreak rewinds it itself, so (as gdbserver does when it picks the event to
    report) the PC goes back past the int3 here, and the event remembers it. Rendering a stop
    never writes to the thread: a later qSupported or `?` cannot move the PC again.
    """
    if (event.kind == StopKind.BREAKPOINT and not event.pc_after_int3 and not session.state.swbreak
            and not session.profile.lldb_stop_replies):
        thread = (session.processes.get(event.pid) or session.inferior).thread(event.tid)
        thread.set_pc(thread.pc() + 1)
        event.pc_after_int3 = True


def stop_reply(session, event: StopEvent) -> bytes:
    state = session.state
    profile = session.profile
    inferior = session.inferior
    pid = (event.pid or inferior.pid) if (inferior is not None and state.multiprocess
                                          and profile.multiprocess_ids) else None
    if event.kind == StopKind.EXITED:
        return replies.exited(event.exit_code & 0xFF, pid)
    if event.kind == StopKind.TERMINATED:
        return replies.terminated(profile.signal_to_client(event.signal), pid)
    if event.kind == StopKind.NO_RESUMED:
        return b"N"
    if event.kind == StopKind.THREAD_EXITED:
        return b"w%02x;" % (event.exit_code & 0xFF) + session.format_thread(event.tid, event.pid or None)
    if profile.lldb_stop_replies:
        return _lldb_stop_reply(session, event)
    return _gdb_stop_reply(session, event)


def _gdb_stop_reply(session, event: StopEvent) -> bytes:
    """`Txx` with the event's own key, the expedited registers, `thread:` and `core:`.

    Built at the end of every single step and breakpoint hit: the registers are slices of one
    hex string, with no per-register decoding."""
    inferior = session.processes.get(event.pid) or session.inferior
    pairs = _event_pairs(session, event)
    thread = inferior.threads.get(event.tid)
    if thread is not None and thread.zombie:
        thread = None
    if thread is not None and not thread.running and inferior.unsupported is None:
        # (A thread that could not stop has no registers; a 32-bit program's are not shown.)
        table = session.table
        plan = _expedite_plan(table)
        if plan is not None:
            text = thread.gpr().hex().encode()
            for key, start, end in plan:
                pairs.append((key, text[2 * start:2 * end]))
        else:
            values = table.read_registers(inferior.registers(event.tid), table.expedite)
            for regnum, value in zip(table.expedite, values):
                pairs.append((b"%02x" % regnum, value.hex().encode()))
    client_tid = session.threads(inferior).client_tid(event.tid) if thread is not None else event.tid
    pairs.append((b"thread", session.format_thread(client_tid, event.pid or None)))
    if thread is not None:
        # The CPU the thread last ran on, as gdbserver sends it (MI's *stopped shows it).
        core = procfs.thread_core(inferior.pid, event.tid)
        if core is not None:
            pairs.append((b"core", b"%x" % core))
    return replies.stop_reply(session.profile.signal_to_client(event_signal(session, event)), pairs)


def _event_pairs(session, event: StopEvent) -> list[tuple[bytes, bytes]]:
    """The key naming what the stop is (`swbreak`, `fork`, `watch`...), when it has one."""
    state = session.state
    kind = event.kind
    if kind == StopKind.BREAKPOINT:
        if state.swbreak and not event.pc_after_int3:
            return [(b"swbreak", b"")]
    elif kind == StopKind.THREAD_CREATED:
        return [(b"create", b"")]
    elif kind in _FORK_KEYS and event.child_pid is not None:
        return [(_FORK_KEYS[kind], session.format_thread(event.child_pid, event.child_pid))]
    elif kind == StopKind.VFORK_DONE:
        return [(b"vforkdone", b"")]
    elif kind in _SYSCALL_KEYS and event.syscall is not None:
        return [(_SYSCALL_KEYS[kind], b"%x" % event.syscall)]
    elif kind == StopKind.EXECED and event.exec_path is not None:
        return [(b"exec", event.exec_path.encode(errors="surrogateescape").hex().encode())]
    elif kind == StopKind.HW_BREAKPOINT and state.hwbreak:
        return [(b"hwbreak", b"")]
    elif kind == StopKind.WATCHPOINT and event.watch_addr is not None:
        return [((event.watch_type or "watch").encode(), b"%x" % event.watch_addr)]
    return []


_PLANS: dict[int, list[tuple[bytes, int, int]] | None] = {}


def _expedite_plan(table) -> list[tuple[bytes, int, int]] | None:
    """Where the expedited registers sit in the general-register block, when they are plain
    slices of it (they are on x86-64): a stop reply then costs no register decoding."""
    key = id(table)
    if key not in _PLANS:
        plan: list[tuple[bytes, int, int]] | None = []
        for regnum in table.expedite:
            reg = table.by_number(regnum)
            if reg is None or reg.regset != "gpr" or reg.codec != "plain" or reg.slot != reg.size:
                plan = None
                break
            plan.append((b"%02x" % regnum, reg.offset, reg.offset + reg.size))
        _PLANS[key] = plan
    return _PLANS[key]


def _name_pair(name: str | None) -> tuple[bytes, bytes]:
    text = name or ""
    if text and all(c.isalnum() or c in "-_./ " for c in text):
        return b"name", text.encode()
    return b"hexname", text.encode().hex().encode()


def lldb_reason(session, event: StopEvent) -> tuple[str, str | None]:
    """lldb's reason word and, for watchpoints, its description ("addr index hit-addr")."""
    reason = _LLDB_REASONS.get(event.kind, "signal")
    if event.pc_after_int3:
        reason = "signal"  # the PC is not at the breakpoint: lldb would not find it there
    description = None
    if event.kind == StopKind.RUNTIME:
        return "exception", event.description or "runtime event"
    if event.kind == StopKind.WATCHPOINT and event.watch_addr is not None:
        index = event.watch_slot if event.watch_slot is not None else 0
        description = f"{event.watch_addr} {index} {(1 << 64) - 1}"
    return reason, description


def thread_stop_json(session, event: StopEvent | None, tid: int, with_registers: bool,
                     event_tid: int | None = None) -> dict:
    """lldb's description of one thread (its client id `tid`); `event_tid`: the client id of
    the event's thread, when the caller knows it."""
    threads = session.threads()
    info: dict = {"name": threads.name(tid), "tid": tid}
    if event is not None and event_tid is None and session.inferior.has_thread(event.tid):
        event_tid = threads.client_tid(event.tid)
    if event is not None and event_tid == tid:
        reason, description = lldb_reason(session, event)
        info["reason"] = reason
        info["signal"] = session.profile.signal_to_client(event_signal(session, event))
        if description is not None:
            info["description"] = description
    if with_registers:
        table = session.table
        values = table.read_registers(threads.registers(tid), table.expedite)
        info["registers"] = {str(n): v.hex() for n, v in zip(table.expedite, values)}
    return info


def _running(inferior, threads, tid: int) -> bool:
    kernel = threads.kernel_tid(tid)
    return kernel is not None and inferior.thread(kernel).running


def _lldb_stop_reply(session, event: StopEvent) -> bytes:
    inferior = session.inferior
    tid = event.tid
    threads = session.threads(inferior)
    live = inferior.has_thread(tid)
    client_tid = threads.client_tid(tid) if live else tid
    pairs: list[tuple[bytes, bytes]] = [(b"thread", b"%x" % client_tid),
                                        _name_pair(threads.name(client_tid) if live or threads.has(tid) else "")]
    if session.state.threads_in_stop_reply:
        tids = threads.ids()
        pairs.append((b"threads", b",".join(b"%x" % t for t in tids)))
        if len(tids) > 1:
            infos = [thread_stop_json(session, event, t, False, client_tid) for t in tids]
            text = json.dumps(infos, separators=(",", ":"), sort_keys=True)
            pairs.append((b"jstopinfo", text.encode().hex().encode()))
        pairs.append((b"thread-pcs", b",".join(b"%016x" % threads.pc(t) for t in tids
                                                if not _running(inferior, threads, t))))
    if live and not inferior.thread(tid).running and inferior.unsupported is None:
        table = session.table
        regnums = list(range(GPR_COUNT))
        values = table.read_registers(inferior.registers(tid), regnums)
        for regnum, value in zip(regnums, values):
            pairs.append((b"%02x" % regnum, value.hex().encode()))
    reason, description = lldb_reason(session, event)
    pairs.append((b"reason", reason.encode()))
    if description is not None:
        pairs.append((b"description", description.encode().hex().encode()))
    return replies.stop_reply(session.profile.signal_to_client(event_signal(session, event)), pairs)
