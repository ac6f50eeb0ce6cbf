"""Run a debug server (gdbserver or gdbstub) and a real gdb against it, and normalise
what gdb prints so that two servers that behave alike produce equal transcripts.

The server is started the way GDB's own testsuite starts gdbserver
(`SERVER --once 127.0.0.1:0 PROG ARGS...`); its port is read from the
'Listening on port N' line on its stderr and the inferior's pid from
'Process PROG created; pid = N'. On teardown the server is stopped and any
inferior still alive is killed, so no test leaves a process behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testprograms import PROGRAMS_DIR as PROGRAMS_SRC  # noqa: E402
from testprograms import Programs, build_programs  # noqa: E402,F401  (re-exported to the tests)

PROGRAMS_BUILD = PROGRAMS_SRC / "build"

SERVER_KINDS = ("gdbserver", "gdbstub")

# How long a server may take to say 'Listening on port N'. The stub is Python and the
# machine may be busy with a parallel build, so be generous; a healthy start is ~0.3 s.
START_TIMEOUT = 20.0
GDB_TIMEOUT = 60.0


class ServerStartError(RuntimeError):
    """The server exited or stayed silent before it was listening."""


def gdbstub_executable() -> str:
    """The gdbstub entry point of the venv running the tests (falls back to PATH)."""
    candidate = Path(sys.executable).parent / "gdbstub"
    if candidate.exists():
        return str(candidate)
    venv = ROOT / ".venv" / "bin" / "gdbstub"
    if venv.exists():
        return str(venv)
    found = shutil.which("gdbstub")
    if found is None:
        raise FileNotFoundError("gdbstub is not installed; run `make setup`")
    return found


def server_argv(kind: str, comm: str, program: str | Path | None = None,
                args: Sequence[str] = (), *, attach_pid: int | None = None,
                once: bool = True, extra: Sequence[str] = ()) -> list[str]:
    """The command line that starts `kind` on `comm`, serving `program` or attached to a pid."""
    if kind == "gdbserver":
        exe = "gdbserver"
    elif kind == "gdbstub":
        exe = gdbstub_executable()
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    argv = [exe]
    if once:
        argv.append("--once")
    argv += extra
    if attach_pid is not None:
        argv += ["--attach", comm, str(attach_pid)]
    elif program is not None:
        argv += [comm, str(program), *args]
    else:
        argv.append(comm)  # --multi: the client runs or attaches to programs
    return argv


def clean_environment() -> dict[str, str]:
    """A stable environment for servers, inferiors and gdb: C locale, no debuginfod."""
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env.pop("DEBUGINFOD_URLS", None)
    env.pop("PYTHONSTARTUP", None)
    return env


class _LineCollector:
    """Reads a pipe on a thread and keeps its text, so the writer never blocks."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._eof = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            with self._changed:
                self._lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """The first match of `pattern` in a line, waiting up to `timeout` for it."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    match = pattern.search(line)
                    if match:
                        return match
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def join(self, timeout: float) -> bool:
        """Wait for EOF; True if the writer closed the pipe in time."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


LISTENING_RE = re.compile(r"Listening on port (\d+)")
CREATED_RE = re.compile(r"Process .* created; pid = (\d+)")
ATTACHED_RE = re.compile(r"Attached; pid = (\d+)")


@dataclass
class Server:
    """A running debug server and what it has printed so far."""

    kind: str
    argv: list[str]
    process: subprocess.Popen
    program: Path | None
    port: int | None = None
    inferior_pid: int | None = None
    _stderr: _LineCollector | None = field(default=None, repr=False)
    _stdout: _LineCollector | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self._stderr.text if self._stderr else ""

    @property
    def stdout(self) -> str:
        """The server's stdout, which is also where the inferior writes."""
        return self._stdout.text if self._stdout else ""

    def wait_exit(self, timeout: float) -> int | None:
        """The server's exit status, or None if it is still running after `timeout`."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def inferior_output(self, timeout: float = 5.0) -> str:
        """Everything written to the server's stdout, once every writer has closed it."""
        if self._stdout is not None:
            self._stdout.join(timeout)
        return self.stdout


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now, for a server that must be
    given a fixed port (as an IDE's configuration gives it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` from /proc (None when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: the state follows the last ')'.
    return stat[stat.rindex(")") + 2]


def process_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def _is_our_inferior(pid: int, program: Path | None) -> bool:
    """Guard against pid reuse: only kill a process that runs `program`."""
    if program is None:
        return True
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        # A zombie or a process being torn down; nothing left to kill.
        return False
    return Path(exe.removesuffix(" (deleted)")) == program.resolve()


def kill_inferior(pid: int | None, program: Path | None, timeout: float = 5.0) -> None:
    """SIGKILL the inferior if it is still alive, and wait for it to go."""
    if pid is None or not process_alive(pid) or not _is_our_inferior(pid, program):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def stop_process(process: subprocess.Popen, grace: float) -> None:
    """Wait `grace` seconds for a process to exit by itself, then SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        process.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def start_server(kind: str, program: str | Path | None, args: Sequence[str] = (), *,
                 comm: str = "127.0.0.1:0", cwd: str | Path | None = None,
                 attach_pid: int | None = None, extra: Sequence[str] = (),
                 once: bool = True, timeout: float = START_TIMEOUT,
                 exit_grace: float = 5.0, env: dict[str, str] | None = None,
                 argv: Sequence[str] | None = None) -> Iterator[Server]:
    """Start `kind` serving `program` (or attached to `attach_pid`) and wait until it listens.

    On exit from the block the server gets `exit_grace` seconds to exit by itself (it
    should, after gdb killed, detached or ran the inferior to its end), then is
    stopped; an inferior it started and that is still alive is killed. A process it
    attached to belongs to the caller and is left alone. `env`: variables to set for it.
    `argv`: the whole command line, when the test builds it as an IDE would.
    """
    program_path = Path(program).resolve() if program is not None else None
    if argv is None:
        argv = server_argv(kind, comm, program_path, args, attach_pid=attach_pid,
                           once=once, extra=extra)
    argv = list(argv)
    process = subprocess.Popen(
        argv, cwd=cwd, env={**clean_environment(), **(env or {})}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    server = Server(kind=kind, argv=argv, process=process, program=program_path,
                    _stderr=_LineCollector(process.stderr),
                    _stdout=_LineCollector(process.stdout))
    try:
        assert server._stderr is not None
        listening = server._stderr.wait_for(LISTENING_RE, timeout)
        started = (server._stderr.wait_for(CREATED_RE, 0)
                   or server._stderr.wait_for(ATTACHED_RE, 0))
        if started:
            server.inferior_pid = int(started.group(1))
        elif attach_pid is not None:
            server.inferior_pid = attach_pid
        if listening is None:
            raise ServerStartError(
                f"{' '.join(argv)} did not report 'Listening on port' within {timeout}s "
                f"(exit status {process.poll()}); stderr:\n{server.stderr}")
        server.port = int(listening.group(1))
        yield server
    finally:
        stop_process(process, exit_grace)
        if attach_pid is None:
            kill_inferior(server.inferior_pid, program_path)
        if server._stderr is not None:
            server._stderr.join(2.0)


# ---------------------------------------------------------------------------------------
# gdb


@dataclass
class GdbRun:
    """One gdb batch run: what it printed, raw and normalised, and its exit status."""

    raw: str
    text: str
    returncode: int
    timed_out: bool = False


def gdb_prologue(sysroot: str | None) -> list[str]:
    """Settings every batch run starts with.

    An empty sysroot makes gdb read the program and its libraries from the local disk, as
    GDB's testsuite boards do; None keeps gdb's default 'target:' so that files come over
    vFile, as they do for a user who just types `target remote`.
    """
    commands = ["set confirm off", "set pagination off", "set width 0", "set height 0"]
    if sysroot is not None:
        commands.append(f"set sysroot {sysroot}".rstrip())
    return commands


def gdb_batch_argv(target: str, program: str | Path | None, commands: Sequence[str], *,
                   sysroot: str | None = "", before_connect: Sequence[str] = ()) -> list[str]:
    """The gdb command line for one batch run against `target` ('target remote ...')."""
    argv = ["gdb", "-nx", "-batch"]
    for command in [*gdb_prologue(sysroot), *before_connect, target, *commands]:
        argv += ["-ex", command]
    if program is not None:
        argv.append(str(program))
    return argv


def run_gdb(argv: Sequence[str], *, cwd: str | Path | None = None,
            timeout: float = GDB_TIMEOUT, replacements: Sequence[tuple[str, str]] = ()) -> GdbRun:
    """Run gdb to its end (or `timeout`) and normalise what it printed."""
    raw, returncode, timed_out = run_client(argv, clean_environment(), cwd, timeout)
    text = normalize(raw, replacements)
    if timed_out:
        text += f"\n<gdb timed out after {timeout}s>\n"
    return GdbRun(raw=raw, text=text, returncode=returncode, timed_out=timed_out)


def run_client(argv: Sequence[str], env: dict[str, str], cwd: str | Path | None,
               timeout: float) -> tuple[str, int, bool]:
    """Run a debugger client to its end (or `timeout`, then kill it): its combined output,
    exit status and whether it timed out."""
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.kill()
        out, _ = process.communicate()
    return out.decode(errors="replace"), process.returncode, timed_out


def run_gdb_batch(server: Server, program: str | Path | None, commands: Sequence[str], *,
                  sysroot: str | None = "", cwd: str | Path | None = None,
                  timeout: float = GDB_TIMEOUT, before_connect: Sequence[str] = (),
                  replacements: Sequence[tuple[str, str]] = ()) -> GdbRun:
    """Connect gdb to `server` with `target remote`, run `commands`, and normalise."""
    argv = gdb_batch_argv(f"target remote {server.address}", program, commands, sysroot=sysroot,
                          before_connect=before_connect)
    return run_gdb(argv, cwd=cwd, timeout=timeout, replacements=replacements)


def run_gdb_pipe(stub_argv: Sequence[str], program: str | Path | None,
                 commands: Sequence[str], *, sysroot: str | None = "",
                 cwd: str | Path | None = None, timeout: float = GDB_TIMEOUT) -> GdbRun:
    """`target remote | STUB - PROG`: gdb starts the server itself and speaks over its stdio."""
    target = "target remote | " + " ".join(_shell_quote(a) for a in stub_argv)
    return run_gdb(gdb_batch_argv(target, program, commands, sysroot=sysroot),
                   cwd=cwd, timeout=timeout)


def _shell_quote(word: str) -> str:
    if re.fullmatch(r"[\w@%+=:,./-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------------------
# Normalisation

# Each rule hides one thing that legitimately differs between two runs of the same
# session: process and thread ids, ports, addresses that move with the environment.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Remote debugging using .*"), "Remote debugging using <COMM>"),
    (re.compile(r"Remote debugging from host [^,]*, port \d+"),
     "Remote debugging from host <HOST>, port <PORT>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:<PORT>"),
    (re.compile(r"\bThread \d+\.\d+"), "Thread <PID>.<TID>"),
    (re.compile(r"\bThread 0x[0-9a-f]+ \(LWP \d+\)"), "Thread <PTID> (LWP <TID>)"),
    (re.compile(r"\bLWP \d+"), "LWP <TID>"),
    (re.compile(r"\bprocess \d+"), "process <PID>"),
    (re.compile(r"\bpid = \d+"), "pid = <PID>"),
    (re.compile(r"\bpid \d+"), "pid <PID>"),
    # Pointers (stack, heap, text, libraries) move with the environment and the
    # executable's path; short hex numbers (bytes, flags, small values) are data and kept.
    (re.compile(r"\b0x0*[0-9a-f]{5,}\b"), "0x<ADDR>"),
    # ... and so do their decimal renderings ('info registers' natural column).
    (re.compile(r"^(\w+\s+0x<ADDR>\s+)-?\d+$"), r"\1<ADDR>"),
    (re.compile(r"(?<![\w.])-?\d{10,}\b"), "<BIGNUM>"),
    # AVX-512 mask registers hold leftovers of libc's string routines, whose results
    # depend on how the environment strings happen to be aligned on the stack.
    (re.compile(r"^(k[0-7]\s+)0x[0-9a-f<>A-Z]+\s+\S+$"), r"\1<MASK>"),
    # Tables pad their columns to the widest cell, and pids differ in digits.
    (re.compile(r" {2,}"), " "),
]


def normalize(text: str, replacements: Sequence[tuple[str, str]] = ()) -> str:
    """Hide run-specific details (pids, ports, addresses, temp paths) in gdb output."""
    for old, new in replacements:
        if old:
            text = text.replace(old, new)
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        for pattern, repl in _RULES:
            line = pattern.sub(repl, line)
        lines.append(line.rstrip())
    return "\n".join(lines).strip("\n") + "\n"


# ---------------------------------------------------------------------------------------
# Programs and their sources


_LINE_TAG = re.compile(r"\{line:([\w.]+):([\w-]+)\}")


def line_of(source: str | Path, tag: str) -> int:
    """The 1-based line of `source` that carries the comment tag 'LINE:<tag>'."""
    path = Path(source)
    if not path.is_absolute():
        path = PROGRAMS_SRC / path
    marker = re.compile(rf"LINE:{re.escape(tag)}\b")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if marker.search(line):
            return number
    raise KeyError(f"no LINE:{tag} in {path}")


def expand_lines(command: str) -> str:
    """Replace every '{line:FILE:TAG}' in a gdb command by that line's number."""
    return _LINE_TAG.sub(lambda m: str(line_of(m.group(1), m.group(2))), command)


def wait_for_file(path: Path, timeout: float) -> bool:
    """True once `path` exists, polling for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
