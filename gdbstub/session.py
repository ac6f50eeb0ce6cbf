"""One client connection: protocol state, the read loop, and dispatch of commands to handlers.

While the program is stopped, one loop reads a packet, runs its handler and writes the reply,
without a task switch: a small request costs two system calls. While the program runs, a watcher
task keeps reading, so a 0x03 interrupts it at once and a vanished client ends the session.
"""

from __future__ import annotations

import logging
from collections import deque

import trio

from packets import commands as cmds
from packets import framing, replies

from . import handlers  # noqa: F401  (registers every handler)
from . import profiles
from .profiles import ClientProfile
from .stop_replies import stop_reply, take_stop
from .handlers.general import PACKET_SIZE
from .handlers.registry import HANDLERS
from .notifications import StopNotifier
from .protocol_state import ProtocolState
from .context import ServerContext
from .process import Inferior, ProcessSet, PtraceError, StopEvent, StopKind, TargetError
from .session_threads import ThreadIds
from .transport import Connection

log = logging.getLogger("gdbstub.session")
packet_log = logging.getLogger("gdbstub.packets")

_PARSE_CACHE: dict[bytes, cmds.Command] = {}
_PARSE_CACHE_MAX = 4096
_CACHEABLE_LENGTH = 64


def _parse(payload: bytes) -> cmds.Command:
    """Parse, remembering short packets: clients repeat the same ones (m, p, vCont;s) often."""
    command = _PARSE_CACHE.get(payload)
    if command is None:
        command = cmds.parse_command(payload)
        if len(payload) <= _CACHEABLE_LENGTH:
            if len(_PARSE_CACHE) >= _PARSE_CACHE_MAX:
                _PARSE_CACHE.clear()
            _PARSE_CACHE[payload] = command
    return command


_RESUMES = (cmds.VCont, cmds.Continue, cmds.ContinueWithSignal, cmds.Step, cmds.StepWithSignal)


class ConnectionClosed(Exception):
    pass


class Session(ThreadIds):
    def __init__(self, conn: Connection, context: ServerContext) -> None:
        self.conn = conn
        self.context = context
        self.state = ProtocolState()
        self.profile: ClientProfile = profiles.GDB
        self._decoder = framing.Decoder(max_packet_size=PACKET_SIZE)
        self._last_reply: bytes = b""
        self._pending_ack = False
        self._backlog: deque = deque()
        self._thread_text: dict[tuple, bytes] = {}
        self.client_gone = False
        # A 0x03 came while waiting for the current stop.
        self._interrupted = False
        # Why the last lldb `A` launch failed (qLaunchSuccess reports it), or None.
        self.last_launch_error: str | None = None
        self.stop_requested_exit = False
        # `monitor go threads on|off` waits for the next resume that steps nothing (see
        # handlers/resume.py): the client's selected thread must stay in the list it has
        # until a stop reply names a thread of the new one.
        self.go_threads_at_next_stop: bool | None = None
        self.xfer_cache: dict[tuple[str, str], bytes] = {}
        self.hostio = None
        self.thread_list_cursor: list[tuple[int, int]] = []  # (pid, tid) still to list
        # tid -> (its register version, the layout, the encoded 'g' reply): see read_registers.
        self.register_replies: dict[int, tuple[int, object, bytes]] = {}
        # Set by a resume (the threads whose stops are reported first): the reply is the stop.
        self._stop_expected: list[int] | None = None
        # The process the client works on (Hg pPID.TID, the last stop, the last one started);
        # None: the one added last.
        self.selected_pid: int | None = None
        # Non-stop mode: the stops the client has yet to hear of, and the task that reports
        # them (running only in that mode). A notification goes out only between a request's
        # handling and the next one, never between a request and its reply (`_wire`).
        self.notifier = StopNotifier(self)
        self._wire = trio.Lock()
        self._nursery: trio.Nursery | None = None

    # -- facts handlers use --------------------------------------------------------------
    @property
    def processes(self) -> ProcessSet:
        return self.context.processes

    @property
    def inferior(self) -> Inferior | None:
        """The process the client works on."""
        processes = self.context.processes
        if self.selected_pid is not None:
            selected = processes.get(self.selected_pid)
            if selected is not None:
                return selected
        return processes.current

    @property
    def go(self):
        """The Go runtime's view of the process (a goview.GoView), or None."""
        inferior = self.inferior
        return inferior.go if inferior is not None and inferior.alive else None

    @property
    def table(self):
        if self.state.builtin_registers:
            return self.context.builtin_register_table
        return self.context.register_table

    def require_resumable(self) -> Inferior:
        """The process, for a resume: also once it is gone with its end not yet reported."""
        inferior = self.inferior
        if inferior is None or not inferior.resumable:
            raise TargetError("no process")
        return inferior

    def require_inferior(self) -> Inferior:
        inferior = self.inferior
        if inferior is None or not inferior.alive:
            raise TargetError("no process")
        return inferior

    # -- the connection ------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the client until it leaves, or a command ends the session (k, D, monitor exit)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                while not self.stop_requested_exit:
                    data = await self.conn.receive()
                    if not data:
                        self.client_gone = True
                        break
                    await self._feed(data)
            except (ConnectionError, ConnectionClosed, trio.ClosedResourceError):
                self.client_gone = True
            finally:
                nursery.cancel_scope.cancel()
                if self.state.non_stop:
                    self.processes.non_stop = False  # whoever comes next starts in all-stop

    async def _feed(self, data: bytes) -> None:
        self._backlog.extend(self._decoder.feed(data))
        while self._backlog and not self.stop_requested_exit:
            # The lock is free but for a notification going out (non-stop): take it without
            # the scheduling turn `async with` costs (a tenth of a 1-byte `m` round trip).
            try:
                self._wire.acquire_nowait()
            except trio.WouldBlock:
                await self._wire.acquire()
            try:
                await self._on_event(self._backlog.popleft())
            finally:
                self._wire.release()

    # -- non-stop mode -------------------------------------------------------------------
    def set_non_stop(self, on: bool) -> None:
        """QNonStop: stops are reported as notifications as they come (on), or as the reply
        to the resume (off)."""
        if on and not self.state.non_stop:
            for inferior in self.processes.live():
                inferior.count_unreported_as_running()
        self.state.non_stop = on
        self.processes.non_stop = on
        if self._nursery is not None:
            self.notifier.switch(on, self._nursery)

    async def send_notification(self, payload: bytes) -> None:
        if packet_log.isEnabledFor(logging.DEBUG):
            packet_log.debug("-> %%%r", payload[:2000])
        async with self._wire:
            await self.conn.send_all(framing.frame_notification(payload))

    def render_stop(self, event: StopEvent, select: bool = False) -> bytes:
        """A stop as this client is told of it (the reply to a resume, `?`, `vStopped`, or a
        notification). `select`: the client's selection follows the stop (all-stop); in
        non-stop mode it stays where the client put it."""
        if select and event.pid:
            self.selected_pid = event.pid
        inferior = self.processes.get(event.pid) or self.inferior
        if event.is_exit:
            self.context.lifecycle.announce_end(event)
        elif inferior is not None and inferior.has_thread(event.tid):
            if select:
                self.state.general_thread = self.threads(inferior).client_tid(event.tid)
            take_stop(self, event)
        return stop_reply(self, event)

    async def _on_event(self, event) -> None:
        if isinstance(event, framing.Packet):
            if not self.state.no_ack:
                self._pending_ack = True
            if packet_log.isEnabledFor(logging.DEBUG):
                packet_log.debug("<- %r", event.payload[:2000])
            reply = await self.handle_payload(event.payload)
            if reply is not None:
                await self.send(reply)
            elif self._stop_expected is not None:
                await self.report_stop()
            elif self._pending_ack:
                await self._send_raw(b"")
        elif isinstance(event, framing.Interrupt):
            if self.state.non_stop:
                packet_log.debug("<- ^C")
                self.processes.request_interrupt()
            else:
                self.interrupt_while_stopped()
        elif isinstance(event, framing.BadChecksum):
            packet_log.debug("<- bad checksum %r", event.payload[:200])
            if not self.state.no_ack:
                await self._send_raw(b"-")
            else:
                # Without acks there is no resend: like gdbserver, act on the packet as it came.
                await self._on_event(framing.Packet(event.payload))
        elif isinstance(event, framing.Nak):
            if self._last_reply:
                await self._send_raw(self._last_reply)
        elif isinstance(event, framing.Overlong):
            if not self.state.no_ack:
                self._pending_ack = True
            await self.send(replies.error(0x01, f"packet too long ({event.length} bytes)",
                                          self.state.error_strings))

    def stop_acks(self) -> None:
        """No-ack mode from now on: no `+`/`-`, and packets are taken whatever their checksum
        (nobody would resend them), so they are not summed."""
        self.state.no_ack = True
        self._decoder.verify_checksums = False

    def interrupt_while_stopped(self) -> None:
        """gdb sends a 0x03 for a Ctrl-C even when the program has just stopped (between the
        single steps of a software watchpoint, say) and waits for the stop it asked for: the
        next resume gives it. lldb's interrupts only race with a stop, so they are dropped."""
        inferior = self.inferior
        if self.profile.interrupt_outlasts_stop and inferior is not None and inferior.alive:
            packet_log.debug("<- ^C (the program is stopped: it stops again when resumed)")
            self.processes.interrupt_after_stop(inferior)
        else:
            packet_log.debug("<- ^C (the program is stopped: nothing to interrupt)")

    async def handle_payload(self, payload: bytes) -> bytes | None:
        try:
            command = _parse(payload)
        except cmds.MalformedCommand as exc:
            return replies.error(0x16, str(exc), self.state.error_strings)
        entry = HANDLERS.get(type(command))
        if entry is None:
            return b""
        try:
            if entry.is_async:
                return await entry.function(self, command)
            return entry.function(self, command)
        except TargetError as exc:
            if isinstance(command, _RESUMES) and not self.state.error_strings \
                    and not self.profile.lldb_stop_replies:
                # gdb shows a refused resume as "Remote failure reply: E01": the reason goes
                # first as console output, which gdb prints while it waits for the stop.
                await self.send(replies.console_output(f"gdbstub: {exc}\n".encode()))
            return replies.error(0x01, str(exc), self.state.error_strings)
        except (cmds.MalformedCommand, ValueError) as exc:
            # A well-formed packet with arguments the target cannot take (a 'G' of the wrong
            # length, say): the client hears why and the session goes on.
            return replies.error(0x16, str(exc), self.state.error_strings)
        except (OSError, PtraceError) as exc:
            # A thread that vanished under a request (it exited, or was killed) must not end
            # the session: the client gets an error and goes on.
            log.debug("command %r failed: %s", payload[:80], exc)
            return replies.error(0x01, str(exc), self.state.error_strings)

    async def send(self, payload: bytes) -> None:
        if packet_log.isEnabledFor(logging.DEBUG):
            packet_log.debug("-> %r", payload[:2000])
        data = framing.frame(payload)
        self._last_reply = data
        await self._send_raw(data)

    async def _send_raw(self, data: bytes) -> None:
        if self._pending_ack:
            # The '+' for the packet being answered goes out with its reply: one write.
            data = b"+" + data
            self._pending_ack = False
        if data:
            await self.conn.send_all(data)

    # -- the program runs: its stop is the reply --------------------------------------------
    def expect_stop(self, prefer: list[int]) -> None:
        """A resume was done: the reply is the next stop (see `report_stop`)."""
        self._stop_expected = prefer

    async def report_stop(self) -> None:
        """Wait for the stop of what was resumed and send it as the reply (all-stop)."""
        prefer, self._stop_expected = self._stop_expected or [], None
        try:
            event = await self._wait_for_stop(prefer, self.state.features.get("no-resumed") is True)
        except ConnectionError:
            raise
        except (TargetError, OSError, PtraceError) as exc:
            log.debug("waiting for the stop failed: %s", exc)
            await self.send(replies.error(0x01, str(exc), self.state.error_strings))
            return
        process = self.processes.get(event.pid)
        if event.kind == StopKind.EXECED and process is not None and process.unsupported is not None:
            # Said where the user looks (gdb prints it before the stop), not only in errors.
            await self.send(replies.console_output(f"gdbstub: {process.unsupported}\n".encode()))
        await self.send(self.render_stop(event, select=True))

    async def _wait_for_stop(self, prefer: list[int], report_no_resumed: bool) -> StopEvent:
        """The next stop, while still reading the client: a 0x03 interrupts the program and a
        vanished client ends the session at once."""
        if self._pending_ack:
            await self._send_raw(b"")  # acknowledge the resume before it runs for long
        processes = self.processes
        self._interrupted = False
        if self.take_early_interrupt():
            self._interrupted = True
            processes.request_interrupt()
        event = processes.poll_for_stop(prefer, report_no_resumed)
        if event is None:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_while_running, processes)
                    event = await processes.wait_for_stop(prefer, report_no_resumed)
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                if group.subgroup(lambda e: isinstance(e, ConnectionClosed)) is not None:
                    raise ConnectionClosed() from None
                raise
        if self._interrupted and event.kind not in (StopKind.INTERRUPTED, StopKind.EXITED, StopKind.TERMINATED):
            # The 0x03 lost the race to another stop (a step's end, a breakpoint): gdb still
            # waits for the stop it asked for, which the next resume gives (gdbserver's
            # SIGINT stays queued in the program likewise). Reported with this stop, it
            # would be lost, and the program run on past the user's Ctrl-C.
            if self.profile.interrupt_outlasts_stop:
                packet_log.debug("<- ^C came with another stop: the program stops again when resumed")
                processes.interrupt_after_stop(processes.get(event.pid))
        return event

    def take_early_interrupt(self) -> bool:
        """Whether a 0x03 came in the same read as the resume being handled (or right after
        it): it is meant for this run. It is taken out of the backlog."""
        if any(isinstance(event, framing.Interrupt) for event in self._backlog):
            self._backlog = deque(e for e in self._backlog if not isinstance(e, framing.Interrupt))
            packet_log.debug("<- ^C (sent with the resume)")
            return True
        return False

    async def _watch_while_running(self, processes: ProcessSet) -> None:
        while True:
            await self.conn.wait_readable()
            data = self.conn.receive_nowait()
            if data is None:
                continue
            if not data:
                self.client_gone = True
                raise ConnectionClosed()
            for event in self._decoder.feed(data):
                if isinstance(event, framing.Interrupt):
                    packet_log.debug("<- ^C")
                    self._interrupted = True
                    processes.request_interrupt()
                else:
                    self._backlog.append(event)  # answered once the program has stopped
