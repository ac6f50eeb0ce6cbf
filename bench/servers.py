"""Starting a stub server under test (gdbserver or gdbstub) on a free port, and stopping it.

Both servers are started the same way, ``SERVER --once 127.0.0.1:0 PROGRAM ARGS...``, and both
announce their port with a ``Listening on port N`` line on stderr. ``RunningServer.connect``
gives the benchmark's client of it: tests/rsp_client.py, the project's one RSP client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The bench scripts run with bench/ on sys.path; the client lives in tests/, imported from the
# repository root. Every bench module that uses the client imports this one first.
sys.path.insert(0, str(REPO))

from tests.rsp_client import Client  # noqa: E402

_PORT_LINE = re.compile(rb"Listening on port (\d+)")


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: tuple[str, ...]  # everything before the program and its arguments
    # Environment changes for the server: (name, value), or (name, None) to remove the variable.
    env: tuple[tuple[str, str | None], ...] = ()

    def environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        for name, value in self.env:
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        return environment

    def version(self) -> str:
        """The first line of ``--version`` (for the results file)."""
        try:
            out = subprocess.run([self.command[0], "--version"], capture_output=True, timeout=30,
                                 env=self.environment())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        lines = out.stdout.decode(errors="replace").strip().splitlines()
        return lines[0] if lines else "unknown"


GDBSERVER = ServerSpec("gdbserver", ("gdbserver", "--once", "127.0.0.1:0"))
GDBSTUB = ServerSpec("gdbstub", (str(REPO / ".venv" / "bin" / "gdbstub"), "--once", "127.0.0.1:0"))
SERVERS = (GDBSERVER, GDBSTUB)

# An installed package runs from compiled bytecode; a source tree under PYTHONDONTWRITEBYTECODE
# recompiles every module at each start. This cache (outside the source tree) gives the former.
BYTECODE_CACHE = REPO / "bench" / "build" / "pycache"
BYTECODE_ENV = (("PYTHONDONTWRITEBYTECODE", None), ("PYTHONPYCACHEPREFIX", str(BYTECODE_CACHE)))


def with_bytecode_cache(spec: ServerSpec) -> ServerSpec:
    """``spec`` running from cached bytecode, the cache filled beforehand (so no run pays for it)."""
    cached = ServerSpec(spec.name, spec.command, spec.env + BYTECODE_ENV)
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-c", "import gdbstub.cli, gdbstub.server"], check=True,
                   env=cached.environment())
    return cached


class ServerFailed(Exception):
    pass


@dataclass
class RunningServer:
    """A started server. Use as a context manager: leaving it always ends the server."""

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    stderr_lines: list[bytes] = field(default_factory=list)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, grace: float = 5.0) -> None:
        """Wait for the server to exit by itself (``--once``), then terminate, then kill."""
        process = self.process
        for action in (None, process.terminate, process.kill):
            if action is not None:
                action()
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def connect(self) -> Client:
        """A client of the server. Its replies are trusted in no-ack mode: every measurement
        checks what it reads, and summing 128 KiB replies would slow the bulk reads."""
        return Client.connect(self.port, timeout=30.0, verify_checksums=False)

    def stderr_text(self) -> str:
        return b"".join(self.stderr_lines).decode(errors="replace")


def start(spec: ServerSpec, program: list[str], timeout: float = 30.0) -> RunningServer:
    """Start ``spec`` on ``program`` and return once it listens."""
    process = subprocess.Popen([*spec.command, *program], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=spec.environment())
    assert process.stderr is not None
    lines: list[bytes] = []
    port_found = threading.Event()
    port_box: list[int] = []

    def drain() -> None:
        # Read stderr until it closes, so a chatty server can never block on a full pipe.
        for line in process.stderr:  # type: ignore[union-attr]
            lines.append(line)
            match = _PORT_LINE.search(line)
            if match and not port_box:
                port_box.append(int(match.group(1)))
                port_found.set()
        port_found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not port_found.wait(timeout) or not port_box:
        process.kill()
        process.wait()
        text = b"".join(lines).decode(errors="replace")
        raise ServerFailed(f"{spec.name} did not start listening: {text.strip()[-500:]}")
    return RunningServer(spec, process, port_box[0], lines)
