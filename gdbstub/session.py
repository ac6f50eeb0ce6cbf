"""One client connection: protocol state, the reader task, and dispatch of commands to handlers.

The reader task always reads, so a 0x03 arriving while the program runs is seen at once; it
acknowledges packets in ack mode and queues them. The command loop handles one packet at a time:
resume commands wait there for the stop while the reader keeps reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from packets import commands as cmds
from packets import framing, replies

from . import handlers  # noqa: F401  (registers every handler)
from . import profiles
from .profiles import ClientProfile
from .handlers.registry import HANDLERS
from .target import Inferior, TargetError, Tracer

log = logging.getLogger("gdbstub.session")
packet_log = logging.getLogger("gdbstub.packets")

PACKET_SIZE = 0x20000


@dataclass
class ProtocolState:
    no_ack: bool = False
    features: dict[str, str | bool] = field(default_factory=dict)
    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    error_strings: bool = False
    thread_events: bool = False
    general_thread: int = 0   # 0: the thread of the last stop
    continue_thread: int = -1
    supported_seen: bool = False
    no_ack_came_first: bool = False
    thread_suffix: bool = False
    extended: bool = False
    threads_in_stop_reply: bool = False


class ConnectionClosed(Exception):
    pass


class Session:
    def __init__(self, stream: trio.abc.Stream, server) -> None:
        self.stream = stream
        self.server = server
        self.state = ProtocolState()
        self.profile: ClientProfile = profiles.GDB
        self._decoder = framing.Decoder(max_packet_size=PACKET_SIZE)
        self._send_lock = trio.Lock()
        self._last_reply: bytes = b""
        self._queue_send, self._queue_receive = trio.open_memory_channel[object](1000)
        self.detached = False
        self.client_gone = False
        self.killed = False
        self.stop_requested_exit = False
        self.xfer_cache: dict[tuple[str, str], bytes] = {}
        self.hostio = None
        self.thread_list_cursor: list[int] = []

    # -- facts handlers use --------------------------------------------------------------
    @property
    def inferior(self) -> Inferior | None:
        return self.server.inferior

    @property
    def tracer(self) -> Tracer:
        return self.server.tracer

    @property
    def table(self):
        return self.server.register_table

    def require_inferior(self) -> Inferior:
        inferior = self.server.inferior
        if inferior is None or not inferior.alive:
            raise TargetError("no process")
        return inferior

    # -- the connection ------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, nursery.cancel_scope)
                await self._command_loop()
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionClosed):
            pass

    async def _read_loop(self, scope: trio.CancelScope) -> None:
        try:
            while True:
                data = await self.stream.receive_some(PACKET_SIZE + 64)
                if not data:
                    break
                for event in self._decoder.feed(data):
                    await self._on_event(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        self.client_gone = True
        inferior = self.server.inferior
        if inferior is not None and inferior.is_running():
            # The command loop is waiting for a stop that nobody will read: end the session now.
            scope.cancel()
        self._queue_send.close()

    async def _on_event(self, event) -> None:
        if isinstance(event, framing.Packet):
            if not self.state.no_ack:
                await self._send_raw(b"+")
            packet_log.debug("<- %r", event.payload[:2000])
            await self._queue_send.send(event)
        elif isinstance(event, framing.Interrupt):
            packet_log.debug("<- ^C")
            inferior = self.server.inferior
            if inferior is not None and inferior.is_running():
                inferior.request_interrupt()
        elif isinstance(event, framing.BadChecksum):
            packet_log.debug("<- bad checksum %r", event.payload[:200])
            if not self.state.no_ack:
                await self._send_raw(b"-")
            else:
                # Without acks there is no resend: like gdbserver, act on the packet as it came.
                await self._queue_send.send(framing.Packet(event.payload))
        elif isinstance(event, framing.Nak):
            if self._last_reply:
                await self._send_raw(self._last_reply)
        elif isinstance(event, framing.Overlong):
            if not self.state.no_ack:
                await self._send_raw(b"+")
            await self._queue_send.send(event)

    async def _command_loop(self) -> None:
        async for event in self._queue_receive:
            if isinstance(event, framing.Overlong):
                await self.send(replies.error(0x01, f"packet too long ({event.length} bytes)",
                                              self.state.error_strings))
                continue
            reply = await self.handle_payload(event.payload)
            if reply is not None:
                await self.send(reply)
            if self.stop_requested_exit:
                return

    async def handle_payload(self, payload: bytes) -> bytes | None:
        try:
            command = cmds.parse_command(payload)
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
            return replies.error(0x01, str(exc), self.state.error_strings)
        except cmds.MalformedCommand as exc:
            return replies.error(0x16, str(exc), self.state.error_strings)
        except OSError as exc:
            log.debug("command %r failed: %s", payload[:80], exc)
            return replies.error(0x01, str(exc), self.state.error_strings)

    async def send(self, payload: bytes) -> None:
        packet_log.debug("-> %r", payload[:2000])
        data = framing.frame(payload)
        self._last_reply = data
        await self._send_raw(data)

    async def send_notification(self, payload: bytes) -> None:
        await self._send_raw(framing.frame_notification(payload))

    async def _send_raw(self, data: bytes) -> None:
        async with self._send_lock:
            await self.stream.send_all(data)

    # -- threads -------------------------------------------------------------------------
    def thread_id(self, tid: int) -> cmds.ThreadId:
        pid = self.server.inferior.pid if self.server.inferior is not None else None
        return cmds.ThreadId(pid, tid)

    def format_thread(self, tid: int) -> bytes:
        return self.thread_id(tid).format(self.state.multiprocess and self.profile.multiprocess_ids)

    def resolve_thread(self, thread: cmds.ThreadId | None) -> int:
        """The tid a register or memory command is about."""
        inferior = self.require_inferior()
        tid = thread.tid if thread is not None else self.state.general_thread
        if tid in (0, -1):
            last = inferior.last_event
            if last is not None and last.tid in inferior.threads:
                return last.tid
            return min(inferior.threads)
        if tid not in inferior.threads:
            raise TargetError(f"no thread {tid:x}")
        return tid
