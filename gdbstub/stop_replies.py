"""Turning the controller's stop events into the client's stop-reply packets.

gdb wants GDB signal numbers, `thread:`, `swbreak:`/`hwbreak:`/`watch:` when negotiated, and the
registers it reads at every stop (rbp, rsp, rip) expedited so that a stop costs one round trip.
"""

from __future__ import annotations

import signal

from packets import replies

from . import signals
from .target import StopEvent, StopKind


def stop_reply(session, event: StopEvent) -> bytes:
    state = session.state
    inferior = session.server.inferior
    pid = inferior.pid if inferior is not None else None
    if event.kind == StopKind.EXITED:
        return replies.exited(event.exit_code & 0xFF, pid if state.multiprocess else None)
    if event.kind == StopKind.TERMINATED:
        return replies.terminated(signals.to_gdb(event.signal), pid if state.multiprocess else None)

    if event.kind == StopKind.NO_RESUMED:
        return b"N"
    if event.kind == StopKind.THREAD_EXITED:
        return b"w%02x;" % (event.exit_code & 0xFF) + session.format_thread(event.tid)

    if event.kind == StopKind.INTERRUPTED:
        signo = signal.SIGINT
    elif event.kind in (StopKind.BREAKPOINT, StopKind.STEP, StopKind.WATCHPOINT,
                        StopKind.HW_BREAKPOINT, StopKind.TRAP, StopKind.INITIAL,
                        StopKind.THREAD_CREATED):
        signo = signal.SIGTRAP
    else:
        signo = event.signal
    pairs: list[tuple[bytes, bytes]] = []
    if event.kind == StopKind.BREAKPOINT:
        if state.swbreak:
            pairs.append((b"swbreak", b""))
        elif not session.profile.rewind_breakpoints:
            # An old client that does not know swbreak steps the PC back itself.
            thread = inferior.thread(event.tid)
            thread.set_pc(thread.pc() + 1)
    elif event.kind == StopKind.THREAD_CREATED:
        pairs.append((b"create", b""))
    elif event.kind == StopKind.HW_BREAKPOINT and state.hwbreak:
        pairs.append((b"hwbreak", b""))
    elif event.kind == StopKind.WATCHPOINT and event.watch_addr is not None:
        pairs.append(((event.watch_type or "watch").encode(), b"%x" % event.watch_addr))
    if event.tid in inferior.threads:
        regs = inferior.registers(event.tid)
        table = session.table
        values = table.read_registers(regs, table.expedite)
        for regnum, value in zip(table.expedite, values):
            pairs.append((b"%02x" % regnum, value.hex().encode()))
    pairs.append((b"thread", session.format_thread(event.tid)))
    return replies.stop_reply(signals.to_gdb(signo), pairs)
