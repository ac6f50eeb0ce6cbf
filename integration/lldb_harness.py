"""Run lldb against a debug server (lldb-server or gdbstub), and normalise what lldb prints
so that two servers that behave alike produce equal transcripts.

gdbstub is started through harness.start_server. lldb-server is started as
`lldb-server gdbserver 127.0.0.1:0 --pipe FD -- PROG ARGS`: it writes the port it listens on
to FD, and the inferior is the child it forked. lldb runs with a clean environment (the
distribution's lldb prints a harmless Python traceback at start-up, which is dropped).

Two ways to drive lldb:
- run_lldb_batch: `lldb -b -o CMD ...` for sessions where every command runs to its end;
- LldbConsole: lldb on a pseudo-terminal, typed into like a user, for what batch mode cannot
  do (batch mode waits for a `continue` to stop, so nothing can interrupt the program).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import (
    Server,
    ServerStartError,
    START_TIMEOUT,
    _LineCollector,
    kill_inferior,
    run_client,
    start_server,
    stop_process,
)

LLDB_SERVER = "lldb-server"
LLDB_KINDS = ("lldb-server", "gdbstub")
LLDB_TIMEOUT = 60.0


def lldb_environment() -> dict[str, str]:
    """What lldb (and lldb-server) run with: a minimal, stable environment."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C", "LANG": "C", "TERM": "dumb"}


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from every one of its threads."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in
                          Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _read_port(fd: int, process: subprocess.Popen, timeout: float) -> int | None:
    """The port lldb-server writes (decimal, NUL-terminated) to the --pipe descriptor."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\0" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None and not data:
            return None
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            data += chunk
    text = data.split(b"\0")[0].strip()
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def start_lldb_server(program: str | Path, args: Sequence[str] = (), *,
                      cwd: str | Path | None = None, timeout: float = START_TIMEOUT,
                      exit_grace: float = 5.0) -> Iterator[Server]:
    """Start lldb-server serving `program`; teardown as harness.start_server's."""
    program_path = Path(program).resolve()
    read_fd, write_fd = os.pipe()
    argv = [LLDB_SERVER, "gdbserver", "127.0.0.1:0", "--pipe", str(write_fd), "--",
            str(program_path), *args]
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=lldb_environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=[write_fd],
            start_new_session=True)
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    server = Server(kind="lldb-server", argv=argv, process=process, program=program_path,
                    _stderr=_LineCollector(process.stderr),
                    _stdout=_LineCollector(process.stdout))
    try:
        try:
            port = _read_port(read_fd, process, timeout)
        finally:
            os.close(read_fd)
        if port is None:
            raise ServerStartError(
                f"{' '.join(argv)} did not report its port within {timeout}s "
                f"(exit status {process.poll()}); stderr:\n{server.stderr}")
        server.port = port
        # lldb-server forks the program before it listens; its only child is the inferior.
        children = [c for c in _children(process.pid) if _runs(c, program_path)]
        server.inferior_pid = children[0] if children else None
        yield server
    finally:
        stop_process(process, exit_grace)
        kill_inferior(server.inferior_pid, program_path)
        if server._stderr is not None:
            server._stderr.join(2.0)


def _runs(pid: int, program: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")) == program
    except OSError:
        return False


@contextlib.contextmanager
def start_any(kind: str, program: str | Path, args: Sequence[str] = (), *,
              cwd: str | Path | None = None, extra: Sequence[str] = ()) -> Iterator[Server]:
    """lldb-server or gdbstub serving `program`, listening on a free port of 127.0.0.1."""
    if kind == "lldb-server":
        with start_lldb_server(program, args, cwd=cwd) as server:
            yield server
    elif kind == "gdbstub":
        with start_server("gdbstub", program, args, cwd=cwd, extra=extra) as server:
            yield server
    else:
        raise ValueError(f"unknown server kind {kind!r}")


# ---------------------------------------------------------------------------------------
# lldb in batch mode


@dataclass
class LldbRun:
    """One lldb run: what it printed, raw and normalised, and its exit status."""

    raw: str
    text: str
    returncode: int | None
    timed_out: bool = False


# Every run starts with these: no prompts for confirmation, no colours, a fixed width.
PROLOGUE = ("settings set auto-confirm true", "settings set use-color false",
            "settings set term-width 200")


def lldb_batch_argv(address: str | None, program: str | Path | None,
                    commands: Sequence[str]) -> list[str]:
    """`lldb -b` that connects to `address` with gdb-remote and runs `commands` (with no
    address, `commands` connect)."""
    argv = ["lldb", "--no-lldbinit", "--no-use-colors", "-b"]
    connect = [f"gdb-remote {address}"] if address is not None else []
    for command in [*PROLOGUE, *connect, *commands]:
        argv += ["-o", command]
    if program is not None:
        argv.append(str(program))
    return argv


def run_lldb_batch(server: Server, program: str | Path | None, commands: Sequence[str], *,
                   cwd: str | Path | None = None, timeout: float = LLDB_TIMEOUT,
                   replacements: Sequence[tuple[str, str]] = (),
                   packet_log: Path | None = None) -> LldbRun:
    """Connect lldb to `server`, run `commands` to their end, and normalise the output.

    With `packet_log`, lldb logs every packet it sends and reads to that file (its path is
    hidden in the transcript, so that two runs logging to two files still compare equal).
    """
    if packet_log is not None:
        commands = [f"log enable -f {packet_log} gdb-remote packets", *commands]
        replacements = [(str(packet_log), "<PACKET-LOG>"), *replacements]
    raw, returncode, timed_out = run_client(
        lldb_batch_argv(server.address, program, commands), lldb_environment(), cwd, timeout)
    text = normalize(raw, replacements)
    if timed_out:
        text += f"\n<lldb timed out after {timeout}s>\n"
    return LldbRun(raw=raw, text=text, returncode=returncode, timed_out=timed_out)


# ---------------------------------------------------------------------------------------
# lldb on a pseudo-terminal


class LldbConsole:
    """An interactive lldb on a pty: type a command, wait for what it prints.

    Interactive lldb runs the process asynchronously, so `continue` returns at once and
    `process interrupt` can follow. Async output (stop reports) may come after the prompt,
    so callers wait for the text they expect, then for the output to settle.
    """

    def __init__(self, program: str | Path | None, *, cwd: str | Path | None = None) -> None:
        master, slave = os.openpty()
        argv = ["lldb", "--no-lldbinit", "--no-use-colors"]
        if program is not None:
            argv.append(str(program))
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=lldb_environment(), stdin=slave, stdout=slave,
                stderr=slave, start_new_session=True)
        finally:
            os.close(slave)
        self._fd = master
        self._pending = ""      # read but not yet returned by expect()
        self.transcript = ""    # everything lldb printed

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; False at end of output."""
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # EIO: lldb closed the terminal
            return False
        if not data:
            return False
        text = _strip_terminal(data.decode(errors="replace"))
        self._pending += text
        self.transcript += text
        return True

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 20.0) -> str:
        """Everything up to and including the first match of `pattern`; TimeoutError if none."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self._pending)
            if match:
                text, self._pending = self._pending[:match.end()], self._pending[match.end():]
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.2)):
                raise TimeoutError(f"lldb never printed {regex.pattern!r}; it printed:\n"
                                   f"{self.transcript}")

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> str:
        """Read until lldb has printed nothing for `quiet` seconds; returns what came."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        size = len(self._pending)
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            if not self._read(0.05):
                break
            if len(self._pending) != size:
                size = len(self._pending)
                last = time.monotonic()
        text, self._pending = self._pending, ""
        return text

    def command(self, text: str, expect: str | None = None, timeout: float = 20.0,
                quiet: float = 0.5) -> str:
        """Type `text`; wait for `expect` (if given), then for the output to settle."""
        os.write(self._fd, text.encode() + b"\n")
        out = self.expect(expect, timeout) if expect else ""
        return out + self.settle(quiet)

    def close(self, timeout: float = 10.0) -> int | None:
        """Quit lldb (killing it if it does not go) and return its exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"quit\n")
            end = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < end:
                if not self._read(0.1):
                    break
        stop_process(self.process, 2.0)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        return self.process.returncode

    def __enter__(self) -> LldbConsole:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\x07")


def _strip_terminal(text: str) -> str:
    return _TERMINAL_ESCAPE.sub("", text).replace("\r\n", "\n").replace("\r", "")


# ---------------------------------------------------------------------------------------
# Normalisation

# lldb's embedded Python is broken in the distribution's package; it says so at start-up.
_STARTUP_NOISE = re.compile(
    r"Traceback \(most recent call last\):\n  File \"<string>\", line 1, in <module>\n"
    r"ModuleNotFoundError: No module named 'lldb\.embedded_interpreter'\n")


def _hide_pointer(match: re.Match[str]) -> str:
    # Pointers (stack, heap, text, libraries) move with the environment; small values are data.
    return "0x<ADDR>" if int(match.group(1), 16) >= 0x10000 else match.group(0)


# Each rule hides one thing that legitimately differs between two runs of one session.
_RULES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+"), r"\1:<PORT>"),
    (re.compile(r"\bProcess \d+\b"), "Process <PID>"),
    (re.compile(r"\btid = \d+"), "tid = <TID>"),
    (re.compile(r"\bpid = \d+"), "pid = <PID>"),
    (re.compile(r"\b0x([0-9a-f]+)\b"), _hide_pointer),
    (re.compile(r" +$"), ""),
]


def normalize(text: str, replacements: Sequence[tuple[str, str]] = ()) -> str:
    """Hide run-specific details (pids, tids, ports, addresses) in lldb output."""
    text = _strip_terminal(text)
    text = _STARTUP_NOISE.sub("", text)
    for old, new in replacements:
        if old:
            text = text.replace(old, new)
    lines = []
    for line in text.split("\n"):
        for pattern, repl in _RULES:
            line = pattern.sub(repl, line)  # type: ignore[arg-type]
        lines.append(line)
    return "\n".join(lines).strip("\n") + "\n"
