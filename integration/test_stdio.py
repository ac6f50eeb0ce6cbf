"""Transports other than TCP. `target remote | SERVER - PROG`: gdb starts the server itself
and speaks RSP over the server's stdin/stdout, so the inferior's own output must go elsewhere
(gdbserver sends it to stderr, which gdb shows). And a unix-domain socket path as COMM."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import Programs, gdb_batch_argv, kill_inferior, run_gdb, run_gdb_pipe, server_argv


@pytest.fixture(params=["reference", "candidate"])
def server_kind(request, reference: str, candidate: str) -> str:
    return reference if request.param == "reference" else candidate


def test_session_over_stdio(server_kind: str, programs: Programs, tmp_path) -> None:
    argv = server_argv(server_kind, "-", programs.simple, ["5"], once=False)
    run = run_gdb_pipe(argv, programs.simple, ["break main", "continue", "bt", "continue"],
                       cwd=tmp_path, timeout=60)
    pid = re.search(r"pid = (\d+)", run.raw)
    if pid:  # gdb closes the pipe at its end; make sure nothing outlives the test
        kill_inferior(int(pid.group(1)), programs.simple)
    out = run.raw
    assert not run.timed_out, out
    hit = out.find("Breakpoint 1, main (")
    assert hit >= 0, out
    assert re.search(r"^#0  main \(argc=2, argv=0x[0-9a-f]+\) at simple\.c:\d+$",
                     out[hit:], re.M), out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 05\]", out), out
    # The inferior printed on its stdout; it must not have been lost or mixed into RSP.
    assert "counter=15 buf=Hello origin=18,4" in out, out


def test_session_over_a_unix_socket(programs: Programs, tmp_path) -> None:
    """COMM may be a socket path (gdb: `target remote PATH`); gdbserver has no such listener,
    so this runs against gdbstub alone. The socket file is gone once the server exits."""
    path = tmp_path / "gdbstub.sock"
    argv = server_argv("gdbstub", str(path), programs.simple, ["5"], once=True)
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = server.stderr.readline() + server.stderr.readline()
        assert f"Listening on {path}" in line, line
        run = run_gdb(gdb_batch_argv(f"target remote {path}", programs.simple,
                                     ["break main", "continue", "bt", "continue"]),
                      cwd=tmp_path, timeout=60)
        out = run.raw
        assert not run.timed_out, out
        assert "Breakpoint 1, main (" in out, out
        assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 05\]", out), out
        assert server.wait(timeout=10) == 0
        assert not path.exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_bare_monitor_is_an_unknown_command(server_kind: str, programs: Programs, tmp_path) -> None:
    # What GDB's testsuite expects of both servers (gdb.server/server-mon.exp): gdb shows the
    # server's words, then its own "Protocol error".
    argv = server_argv(server_kind, "-", programs.simple, [], once=False)
    run = run_gdb_pipe(argv, programs.simple, ["monitor", "kill"], cwd=tmp_path, timeout=60)
    assert not run.timed_out, run.raw
    assert re.search(r"Unknown monitor command.*Protocol error", run.raw, re.S), run.raw
