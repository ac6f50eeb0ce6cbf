"""The gdbstub command line: failures are one clear message and a non-zero exit (never a
traceback), the start-up lines match gdbserver's, and the default listen address is
loopback only."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from testprograms import Programs

ROOT = Path(__file__).resolve().parent.parent

# A failing start must end well within this; a hang is a bug in its own right.
FAIL_TIMEOUT = 20.0


def gdbstub() -> str:
    """The gdbstub entry point of the venv running the tests."""
    for candidate in (Path(sys.executable).parent / "gdbstub", ROOT / ".venv" / "bin" / "gdbstub"):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError("gdbstub is not installed; run `make setup`")


def run_stub(*args: str, timeout: float = FAIL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([gdbstub(), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit; a short stderr with one line naming every needle; no traceback."""
    err = result.stderr
    assert result.returncode != 0, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, err  # the message, maybe gdbserver's 'Exiting'
    matching = [line for line in lines if all(n in line for n in needles)]
    assert len(matching) == 1, err
    return matching[0]


def test_help() -> None:
    result = run_stub("--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    assert "Usage" in text
    assert "COMM" in text and "--attach" in text and "--once" in text


def test_version_is_the_package_version() -> None:
    result = run_stub("--version")
    assert result.returncode == 0, result.stderr
    assert version("gdbstub") in result.stdout


def test_missing_program(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-program"
    assert_clean_failure(run_stub("--once", "127.0.0.1:0", str(missing)), str(missing))


def test_program_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "plain-file"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    assert_clean_failure(run_stub("--once", "127.0.0.1:0", str(plain)), str(plain))


def test_a_32_bit_program_is_refused_in_one_line(programs: Programs) -> None:
    # gdbstub debugs x86-64 programs: an i386 one would be shown with x86-64 registers.
    program = programs.threads.parent / "exit32"
    assert_clean_failure(run_stub("--once", "127.0.0.1:0", str(program)), str(program), "32-bit")


def test_attaching_to_a_32_bit_program_is_refused_in_one_line(programs: Programs) -> None:
    victim = subprocess.Popen([str(programs.threads.parent / "pause32")])
    try:
        assert_clean_failure(run_stub("--once", "--attach", "127.0.0.1:0", str(victim.pid)),
                             str(victim.pid), "32-bit")
        assert victim.poll() is None  # left alone, running
    finally:
        victim.kill()
        victim.wait()


def test_attach_to_a_missing_pid() -> None:
    # No process can have a pid above pid_max.
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    assert_clean_failure(run_stub("--once", "--attach", "127.0.0.1:0", str(pid)), str(pid))


def test_missing_program_argument() -> None:
    result = run_stub("--once", "127.0.0.1:0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv,needle", [
    (["--wrapper", "env", "127.0.0.1:0", "prog"], "--wrapper"),   # no terminating --
    (["--wrapper", "--", "127.0.0.1:0", "prog"], "--wrapper"),    # no command
    (["--multi"], "COMM"),
])
def test_bad_wrapper_or_multi_is_one_clear_line(argv: list[str], needle: str) -> None:
    assert_clean_failure(run_stub(*argv), needle)


def test_wrapper_that_never_runs_the_program_fails_cleanly(programs: Programs) -> None:
    # `true` exits without exec'ing the program: a clear error, no process left behind.
    assert_clean_failure(run_stub("--once", "--wrapper", "true", "--", "127.0.0.1:0", str(programs.simple)),
                         "simple")


def test_port_in_use(programs: Programs) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_stub("--once", f"127.0.0.1:{port}", str(programs.simple))
    # The exact text GDB's testsuite matches to retry on another port.
    line = assert_clean_failure(result, "Address already in use")
    assert re.search(r"Can't (bind address|listen on socket): Address already in use\.", line)
    created = re.search(r"pid = (\d+)", result.stderr)
    if created:
        assert not process_alive(int(created.group(1))), "the inferior outlived the server"


def test_unresolvable_comm(programs: Programs) -> None:
    result = run_stub("--once", "garbage:1234:99999", str(programs.simple))
    assert_clean_failure(result, "garbage:1234:99999: cannot resolve name")


@contextlib.contextmanager
def listening_stub(comm: str, program: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """Start gdbstub and wait for its 'Listening on port N'; yields (process, port, pid)."""
    process = subprocess.Popen([gdbstub(), "--once", comm, str(program)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    pid = None
    # A thread drains stderr, so a silent stub cannot block the test and a chatty one
    # cannot block on a full pipe.
    lines_in: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        for line in process.stderr or ():
            lines_in.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        port = None
        deadline = time.monotonic() + FAIL_TIMEOUT
        lines = []
        while port is None and time.monotonic() < deadline:
            try:
                line = lines_in.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            lines.append(line)
            if m := re.search(r"Process .* created; pid = (\d+)", line):
                pid = int(m.group(1))
            if m := re.search(r"Listening on port (\d+)", line):
                port = int(m.group(1))
        assert port is not None, "".join(lines)
        assert pid is not None, "'Process PROG created; pid = N' must come first:\n" + "".join(lines)
        yield process, port, pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(10)
        if pid is not None and process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def listeners(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                    found.append(address)
    return found


@pytest.mark.parametrize("comm", [":0", "localhost:0"])
def test_default_listen_address_is_loopback(comm: str, programs: Programs) -> None:
    with listening_stub(comm, programs.spin) as (_, port, _pid):
        addresses = listeners(port)
        assert addresses, f"nothing listens on port {port}"
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
        assert set(addresses) <= loopback, addresses


def test_once_exits_when_the_connection_closes(programs: Programs) -> None:
    with listening_stub("127.0.0.1:0", programs.spin) as (process, port, pid):
        # 'Listening on port' must mean ready: connect at once, no retry.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        process.wait(FAIL_TIMEOUT)  # --once: the end of the connection ends the server
        deadline = time.monotonic() + 5
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(pid), "the inferior outlived the server"


# -- a unix-socket COMM ------------------------------------------------------------------------


def serve_on_socket(path: Path, program: Path) -> tuple[subprocess.Popen[str], str]:
    """Start gdbstub on a socket path; returns it and its first lines once it listens."""
    process = subprocess.Popen([gdbstub(), "--once", str(path), str(program)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    lines = process.stderr.readline() + process.stderr.readline()
    assert f"Listening on {path}" in lines, lines
    return process, lines


def end(process: subprocess.Popen[str], lines: str) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    if m := re.search(r"pid = (\d+)", lines):
        assert not process_alive(int(m.group(1)))


def test_unix_socket_is_for_its_owner_only(programs: Programs, tmp_path: Path) -> None:
    path = tmp_path / "stub.sock"
    os.chmod(tmp_path, 0o755)  # the directory lets others through: the socket must not
    process, lines = serve_on_socket(path, programs.simple)
    try:
        assert path.is_socket() and path.stat().st_mode & 0o777 == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # the owner can
    finally:
        end(process, lines)
    assert not path.exists()  # removed at exit


def test_unix_socket_refuses_to_replace_a_file(programs: Programs, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")
    result = run_stub("--once", str(path), str(programs.simple))
    assert_clean_failure(result, f"{path} exists and is not a socket")
    assert path.read_text() == "keep me\n"


def test_unix_socket_of_a_live_server_is_left_alone(programs: Programs, tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen()
        result = run_stub("--once", str(path), str(programs.simple))
        assert_clean_failure(result, f"{path} is in use by another server")
        assert path.is_socket()


def test_unix_socket_left_by_a_dead_server_is_replaced(programs: Programs, tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # closed without unlinking, as a killed server leaves it
    process, lines = serve_on_socket(path, programs.simple)
    end(process, lines)


def test_debug_format_is_gdbserver_s() -> None:
    from gdbstub.options import parse

    assert parse(["--debug-format=all", "127.0.0.1:0", "prog"]).debug_timestamps
    assert parse(["--debug-format=timestamp", "127.0.0.1:0", "prog"]).debug_timestamps
    assert not parse(["--debug-format=timestamp,none", "127.0.0.1:0", "prog"]).debug_timestamps
    assert not parse(["127.0.0.1:0", "prog"]).debug_timestamps


def test_unknown_debug_format(programs: Programs) -> None:
    result = run_stub("--once", "--debug-format=colour", "127.0.0.1:0", str(programs.simple))
    assert_clean_failure(result, 'Unknown debug-format argument: "colour"')
