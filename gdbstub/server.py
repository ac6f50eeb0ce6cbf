"""The server: owns the process set and the listener, and runs sessions.

Lifecycle follows gdbserver's: start or attach, listen, serve one client at a time; when the
process ends (exit, kill, detach) the server exits, unless `--multi` keeps it up with no process
for the client to run or attach to the next one (extended-remote). With `--once` it exits when
the first client leaves; otherwise it keeps the process stopped and waits for the next client.
A client that vanishes leaves no breakpoint bytes behind, and the server never leaves a process
in a traced stop when it exits: a launched program is killed, an attached one is detached.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

import trio

from .arch import cpu_has_avx, x86_64_table
from .context import ServerContext, agent_output_to
from .launch_settings import LaunchSettings
from .options import Options
from .process import (Inferior, LaunchError, ProcessSet, RunSettings, StopEvent, StopKind, attach, launch,
                      procfs)
from .session import Session
from .symbols.elf_sections import may_be_go
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


def _shell() -> str:
    """The shell programs start through, as gdbserver picks it."""
    return os.environ.get("SHELL") or "/bin/sh"


def _write_go_symbol_file(inferior: Inferior, path: str) -> None:
    """--go-symbol-file: the symbol file of the program just started (symbols/gosymfile.py),
    written before the client connects, so it can load it first (lldb must: see README)."""
    from .symbols.gopclntab import PclntabError
    from .symbols.gosymfile import write_symbol_file

    if inferior.go is None:
        raise LaunchError(f"--go-symbol-file: {inferior.executable} is not a Go program")
    target = os.path.abspath(path)
    try:
        built = write_symbol_file(inferior.go.binary, target)
    except OSError as exc:
        raise LaunchError(f"--go-symbol-file: cannot write {target}: {exc.strerror or exc}") from None
    except PclntabError as exc:
        raise LaunchError(f"--go-symbol-file: cannot read the Go tables: {exc}") from None
    say(f"Go symbol file written to {target} ({built.functions} functions)")


class Server:
    """Owns the process set and the listener, serves one client at a time, and implements the
    process lifecycle its sessions use (`context.Lifecycle`)."""

    def __init__(self, options: Options, comm: Comm) -> None:
        self.options = options
        self.comm = comm
        has_avx = cpu_has_avx()
        self.processes = ProcessSet(use_xstate=has_avx)
        self.context = ServerContext(
            processes=self.processes,
            run_settings=RunSettings(),
            launch_settings=LaunchSettings(disable_randomization=options.disable_randomization,
                                           startup_with_shell=options.startup_with_shell),
            register_table=x86_64_table(has_avx),
            builtin_register_table=x86_64_table(has_avx=False, has_avx512=False, has_pkeys=False),
            lifecycle=self,
            default_program=options.program,
            agent_output=agent_output_to(sys.stderr if self.comm.kind == "stdio" else sys.stdout),
            go_goroutine_threads=options.go_goroutines,
        )
        self.exit_requested = False
        # The last program started (its argv): what `R` starts again.
        self._last_argv: list[str] | None = [options.program, *options.args] if options.program else None
        # The pids whose end (exit, kill, detach) is said or not to be said any more.
        self._end_said: set[int] = set()
        # Programs started here, then detached: the server waits for them before it exits.
        self._detached_children: list[int] = []

    # -- the process lifecycle ---------------------------------------------------------------
    def start_process(self) -> None:
        """The process named on the command line, if any: attached to, or launched."""
        opts = self.options
        if opts.attach_pid is not None:
            inferior = self._attach(opts.attach_pid)
        elif opts.program is not None:
            if opts.disable_randomization:
                _disable_randomization()
            started = launch(opts.program, opts.args, protocol_on_stdio=self.comm.kind == "stdio",
                             wrapper=opts.wrapper, shell=_shell() if opts.startup_with_shell else None)
            inferior = self._traced(started, launched=True)
            say(f"Process {opts.program} created; pid = {started.pid}")
        else:
            return
        if opts.go_symbol_file is not None:
            _write_go_symbol_file(inferior, opts.go_symbol_file)

    def _attach(self, pid: int) -> Inferior:
        started = attach(pid)
        inferior = self._traced(started, launched=False)
        say(f"Attached; pid = {started.pid}")
        return inferior

    def _traced(self, started, launched: bool) -> Inferior:
        inferior = self.processes.add(started, launched=launched, settings=self.context.run_settings)
        inferior.on_exec.append(self._open_go_view)  # a new program: what was Go of it is gone
        self._open_go_view(inferior)
        return inferior

    def _open_go_view(self, inferior: Inferior) -> None:
        inferior.go = None
        inferior.quiet_runtime_sigurg = False
        inferior.on_internal_breakpoint = None
        if inferior.unsupported is not None or not may_be_go(inferior.executable):
            return
        from .goview import GoView  # the Go readers load only for Go programs

        go = GoView.open(inferior)
        if go is not None:
            go.attach_to_process()
            inferior.go = go
            log.info("Go program (%s): goroutines and runtime signals handled", go.binary.version)

    def _make_room(self, alongside: bool) -> None:
        """Processes that are gone leave the set. Unless the client can tell processes apart
        (multiprocess, extended mode), a new one may start only when none is alive."""
        for inferior in self.processes:
            if inferior.alive and not alongside:
                raise LaunchError("a process is already being debugged; kill or detach it first")
            if not inferior.alive:
                self.processes.remove(inferior)

    def start_program(self, argv: list[str], settings: LaunchSettings, inherit_environment: bool = True,
                      alongside: bool = False, through_shell: bool = True) -> Inferior:
        self._make_room(alongside)
        if settings.disable_randomization:
            _disable_randomization()
        shell = _shell() if through_shell and settings.startup_with_shell else None
        started = launch(argv[0], argv[1:], env=settings.environment(inherit_environment),
                         cwd=settings.working_dir, protocol_on_stdio=self.comm.kind == "stdio",
                         stdio_paths=settings.stdio, wrapper=self.options.wrapper, shell=shell)
        inferior = self._traced(started, launched=True)
        self._last_argv = list(argv)
        say(f"Process {argv[0]} created; pid = {started.pid}")
        return inferior

    async def restart(self, settings: LaunchSettings) -> Inferior | None:
        for inferior in self.processes.live():
            await inferior.kill()
            self._end_said.add(inferior.pid)
        if self._last_argv is None:
            return None
        return self.start_program(self._last_argv, settings)

    def attach_process(self, pid: int, alongside: bool = False) -> Inferior:
        if self.processes.get(pid) is not None and self.processes.get(pid).alive:
            raise LaunchError(f"Cannot attach to process {pid}: already being debugged")
        self._make_room(alongside)
        return self._attach(pid)

    def announce_end(self, event: StopEvent) -> None:
        if event.pid in self._end_said:
            return
        self._end_said.add(event.pid)
        if event.kind == StopKind.EXITED:
            say(f"\nChild exited with status {event.exit_code}")
        else:
            name = signal.Signals(event.signal).name if event.signal in signal.Signals._value2member_map_ else ""
            say(f"\nChild terminated with signal = 0x{event.signal:x} ({name})")

    def announce_killed(self, inferior: Inferior) -> None:
        self._end_said.add(inferior.pid)

    async def detach(self, inferior: Inferior) -> None:
        if not inferior.alive:
            return
        say(f"Detaching from process {inferior.pid}")
        for pid in await inferior.detach():
            child = self.processes.get(pid)
            if child is not None:  # a fork child the client never heard of goes with its parent
                await child.detach()
                self._end_said.add(pid)
        self._end_said.add(inferior.pid)
        if not self.options.multi and procfs.parent_pid(inferior.pid) == os.getpid():
            self._detached_children.append(inferior.pid)

    async def _join_detached_children(self) -> None:
        """Wait for the programs started here and detached to end, as gdbserver joins them:
        they share the server's terminal, and the server's end would hang it up under them
        (SIGHUP killed a program detached in the middle of its work)."""
        for pid in self._detached_children:
            while True:
                try:
                    ended, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break  # the tracer's drain took its exit status
                if ended:
                    break
                await trio.sleep(0.05)

    def request_exit(self) -> None:
        self.exit_requested = True

    def process_gone(self) -> bool:
        return not self.processes.live()

    async def release(self) -> None:
        """The server is going away: leave nothing stopped or patched behind."""
        for inferior in self.processes.live():
            if inferior.launched:
                await inferior.kill()
            else:
                await inferior.detach()

    async def after_disconnect(self) -> None:
        """The client left without ending the processes: undo its patches, keep them stopped
        for the next client. Unless none will come: `release` then kills or detaches them at
        once, and stopping a thousand threads first would only make them wait."""
        if self.options.once or self.exit_requested or self.comm.kind == "stdio":
            return
        if any(p.is_running() for p in self.processes.live()):
            self.processes.request_interrupt()
            with trio.move_on_after(5):
                await self.processes.wait_for_stop()
        for inferior in self.processes.live():
            inferior.forget_client()

    # -- serving ---------------------------------------------------------------------
    async def serve(self) -> int:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.processes.run)
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
                await self._join_detached_children()  # a signal ends this wait
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
                if self.exit_requested or self.options.once:
                    return
                if self.process_gone() and not self.options.multi:
                    return
        finally:
            listener.close()

    async def _serve_one(self, conn: Connection) -> None:
        session = Session(conn, self.context)
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
