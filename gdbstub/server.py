"""The server: owns the tracer, the debugged process and the listener, and runs sessions.

Lifecycle follows gdbserver's: start or attach, listen, serve one client at a time; when the
process ends (exit, kill, detach) the server exits. With `--once` it exits when the first client
leaves; otherwise it keeps the process stopped and waits for the next client. A client that
vanishes leaves no breakpoint bytes behind, and the server never leaves a process in a traced stop
when it exits: a launched program is killed, an attached one is detached.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys

import trio

from .arch import cpu_has_avx, x86_64_table
from .launch_settings import LaunchSettings
from .options import Options
from .symbols.elf_sections import may_be_go
from .session import Session
from .process import Inferior, LaunchError, RunSettings, StopEvent, StopKind, Tracer, attach, launch
from .transport import Comm, Connection, open_listener

log = logging.getLogger("gdbstub")

ADDR_NO_RANDOMIZE = 0x0040000


def say(text: str) -> None:
    """gdbserver-compatible status lines go to stderr, flushed: tools wait for them."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _disable_randomization() -> None:
    # The personality is inherited through posix_spawn and exec; our own mappings stay as they are.
    libc = ctypes.CDLL(None, use_errno=True)
    current = libc.personality(0xFFFFFFFF)
    if current != -1:
        libc.personality(current | ADDR_NO_RANDOMIZE)


class Server:
    def __init__(self, options: Options, comm: Comm) -> None:
        self.options = options
        self.comm = comm
        self.tracer = Tracer()
        self.inferior: Inferior | None = None
        self.go = None  # a goview.GoView for Go programs
        has_avx = cpu_has_avx()
        self.use_xstate = has_avx
        self.register_table = x86_64_table(has_avx)
        # What gdb assumes of amd64 when it reads no target description (gdbserver answers
        # such a client in it too): the SSE registers, then orig_rax, fs_base and gs_base.
        self.builtin_register_table = x86_64_table(has_avx=False, has_avx512=False, has_pkeys=False)
        # The client's run-control settings: the process takes them, and so does the next one.
        self.run_settings = RunSettings()
        self.exit_requested = False
        self._exit_said = False
        self.launch_settings = LaunchSettings(disable_randomization=options.disable_randomization)

    # -- the process -----------------------------------------------------------------
    def start_process(self) -> None:
        opts = self.options
        if opts.attach_pid is not None:
            started = attach(opts.attach_pid)
            self.inferior = Inferior(started, launched=False, use_xstate=self.use_xstate,
                                     settings=self.run_settings)
            self.inferior.last_event = StopEvent(StopKind.SIGNAL, started.pid, signal.SIGSTOP)
            say(f"Attached; pid = {started.pid}")
        else:
            if opts.disable_randomization:
                _disable_randomization()
            started = launch(opts.program, opts.args, protocol_on_stdio=self.comm.kind == "stdio")
            self.inferior = Inferior(started, launched=True, use_xstate=self.use_xstate,
                                     settings=self.run_settings)
            say(f"Process {opts.program} created; pid = {started.pid}")
        self.tracer.add(self.inferior)
        self._open_go_view()

    def _open_go_view(self) -> None:
        self.go = None
        if not may_be_go(self.inferior.executable):
            return
        from .goview import GoView  # the Go readers load only for Go programs

        self.go = GoView.open(self.inferior)
        if self.go is not None:
            self.go.attach_to_process()
            log.info("Go program (%s): goroutines and runtime signals handled", self.go.binary.version)

    def replace_process(self, argv: list[str] | None, pid: int | None, settings,
                        inherit_environment: bool = True) -> Inferior:
        """Start (argv) or attach to (pid) a new process once the old one is gone (vRun, A, vAttach)."""
        if self.inferior is not None and self.inferior.alive:
            raise LaunchError("a process is already being debugged; kill or detach it first")
        if self.inferior is not None:
            self.tracer.remove(self.inferior)
        if pid is not None:
            started = attach(pid)
            inferior = Inferior(started, launched=False, use_xstate=self.use_xstate, settings=self.run_settings)
            inferior.last_event = StopEvent(StopKind.SIGNAL, started.pid, signal.SIGSTOP)
            say(f"Attached; pid = {started.pid}")
        else:
            if settings.disable_randomization:
                _disable_randomization()
            env = settings.environment(inherit_environment)
            started = launch(argv[0], argv[1:], env=env, cwd=settings.working_dir,
                             protocol_on_stdio=self.comm.kind == "stdio", stdio_paths=settings.stdio)
            inferior = Inferior(started, launched=True, use_xstate=self.use_xstate, settings=self.run_settings)
            say(f"Process {argv[0]} created; pid = {started.pid}")
        self.inferior = inferior
        self._exit_said = False
        self.tracer.add(inferior)
        self._open_go_view()
        return inferior

    def on_exit(self, event: StopEvent) -> None:
        if self._exit_said:
            return
        self._exit_said = True
        if event.kind == StopKind.EXITED:
            say(f"\nChild exited with status {event.exit_code}")
        else:
            name = signal.Signals(event.signal).name if event.signal in signal.Signals._value2member_map_ else ""
            say(f"\nChild terminated with signal = 0x{event.signal:x} ({name})")

    def on_killed(self) -> None:
        self._exit_said = True

    async def detach(self) -> None:
        inferior = self.inferior
        if inferior is None or not inferior.alive:
            return
        say(f"Detaching from process {inferior.pid}")
        await inferior.detach()
        self._exit_said = True

    def process_gone(self) -> bool:
        return self.inferior is None or not self.inferior.alive

    async def release(self) -> None:
        """The server is going away: leave nothing stopped or patched behind."""
        inferior = self.inferior
        if inferior is None or not inferior.alive:
            return
        if inferior.launched:
            await inferior.kill()
        else:
            await inferior.detach()

    async def after_disconnect(self) -> None:
        """The client left without ending the process: undo our patches, keep it stopped."""
        inferior = self.inferior
        if inferior is None or not inferior.alive:
            return
        if inferior.is_running():
            inferior.request_interrupt()
            with trio.move_on_after(5):
                await inferior.wait_for_stop()
        if inferior.alive:
            inferior.forget_client()

    # -- serving ---------------------------------------------------------------------
    async def serve(self) -> int:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.tracer.run)
            # A signal ends the serving, not the tracer: releasing the process needs its events.
            serving = trio.CancelScope()
            # Started (not just scheduled) before anything is announced: a SIGTERM sent as soon
            # as "Listening on" appears must find the handler, not the default action.
            await nursery.start(self._watch_signals, serving)
            try:
                with serving:
                    self.start_process()
                    if self.comm.kind == "stdio":
                        say("Remote debugging using stdio")
                        await self._serve_one(Connection.stdio())
                    else:
                        await self._serve_listener()
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(15):
                        await self.release()
                nursery.cancel_scope.cancel()
        return 0

    async def _serve_listener(self) -> None:
        listener, port = await open_listener(self.comm)
        try:
            while True:
                if port is not None:
                    say(f"Listening on port {port}")
                else:
                    say(f"Listening on {self.comm.path}")
                conn = await listener.accept()
                peer = conn.peer()
                if peer is not None:
                    say(f"Remote debugging from host {peer[0]}, port {peer[1]}")
                await self._serve_one(conn)
                if self.exit_requested or self.process_gone() or self.options.once:
                    return
        finally:
            listener.close()

    async def _serve_one(self, conn: Connection) -> None:
        session = Session(conn, self)
        try:
            await session.run()
        finally:
            with trio.CancelScope(shield=True):
                if session.hostio is not None:
                    session.hostio.close_all()
                await self.after_disconnect()
                conn.close()

    async def _watch_signals(self, scope: trio.CancelScope, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                scope.cancel()
                return
