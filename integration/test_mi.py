"""gdb/MI sessions as VS Code's cppdbg drives them, against gdbserver and the candidate.

Each test runs once per server; the assertions are about what an IDE relies on (the
async *stopped records and their reason, frame, line and values), so the gdbserver run
shows that the test itself holds and the candidate run that the stub does the same.
"""

from __future__ import annotations

import os
import random
import time

from harness import Programs, line_of, start_server, wait_for_file
from mi import MiSession, frame_of


def _line(tag: str, source: str = "simple.c") -> str:
    return str(line_of(source, tag))


def test_breakpoints_stepping_and_evaluation(server_kind: str, programs: Programs) -> None:
    with start_server(server_kind, programs.simple) as server, MiSession() as mi:
        first = mi.connect_like_cppdbg(programs.simple, server.address)
        assert "reason" not in first  # the connection stop: no breakpoint, no signal

        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "breakpoint-hit"
        assert stop["bkptno"] == "1"
        # The CPU the thread last ran on, from the stop reply's core: (gdb shows it in MI).
        assert 0 <= int(stop["core"]) < os.cpu_count()
        assert frame_of(stop)["func"] == "main"
        assert frame_of(stop)["line"] == _line("main-first")

        inserted = mi.command(f"-break-insert -f simple.c:{_line('loop-call')}")
        assert inserted["payload"]["bkpt"]["line"] == _line("loop-call")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert (stop["reason"], stop["bkptno"]) == ("breakpoint-hit", "2")
        assert frame_of(stop)["line"] == _line("loop-call")

        mi.command("-exec-step", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "end-stepping-range"
        assert (frame_of(stop)["func"], frame_of(stop)["line"]) == ("bump", _line("bump-body"))
        assert frame_of(stop)["args"] == [{"name": "n", "value": "1"}]

        mi.command("-exec-step", expect="running")
        stop = mi.wait_stopped()
        assert (frame_of(stop)["func"], frame_of(stop)["line"]) == ("add", _line("add-body"))

        frames = mi.command("-stack-list-frames")["payload"]["stack"]
        assert [f["func"] for f in frames] == ["add", "bump", "main"]
        assert [f["level"] for f in frames] == ["0", "1", "2"]

        mi.command("-exec-finish", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "function-finished"
        assert frame_of(stop)["func"] == "bump"
        assert stop["return-value"] == "1"  # add(0, 1)

        mi.command("-exec-next", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "end-stepping-range"
        assert frame_of(stop)["line"] == _line("bump-end")

        assert mi.command("-data-evaluate-expression counter")["payload"]["value"] == "1"
        buf = mi.command("-data-evaluate-expression buf")["payload"]["value"]
        assert buf.startswith('"hello"')

        # Variable objects, which cppdbg's Watch and Variables panes are built on.
        var = mi.command('-var-create - * "origin"')["payload"]
        assert var["numchild"] == "2"
        children = mi.command(f"-var-list-children --all-values {var['name']}")["payload"]
        values = {c["exp"]: c["value"] for c in children["children"]}
        assert values == {"x": "3", "y": "4"}

        mi.command("-gdb-set var counter = 41")
        assert mi.command("-data-evaluate-expression counter+1")["payload"]["value"] == "42"

        mi.command("-break-delete")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "exited-normally"
    assert "counter=55 buf=Hello" in server.inferior_output()  # 41 + 2 + 3 + 4 + 5


def test_interrupt_a_running_program(server_kind: str, programs: Programs) -> None:
    with start_server(server_kind, programs.spin) as server, MiSession() as mi:
        mi.connect_like_cppdbg(programs.spin, server.address)
        mi.command("-exec-continue", expect="running")
        assert mi.wait_stopped()["reason"] == "breakpoint-hit"  # main
        mi.command("-break-delete")

        seen = []
        for _ in range(2):  # the second pause shows the first resume really resumed
            mi.command("-exec-continue", expect="running")
            mi.wait_for("running", kind="notify")
            time.sleep(0.3)
            mi.command("-exec-interrupt")
            stop = mi.wait_stopped(timeout=15)
            assert stop["reason"] == "signal-received"
            assert stop["signal-name"] == "SIGINT"
            assert frame_of(stop)["func"] in ("main", "tick")
            seen.append(int(mi.command("-data-evaluate-expression ticks")["payload"]["value"]))
        assert 0 < seen[0] < seen[1]


def test_detach_lets_the_program_finish(server_kind: str, programs: Programs,
                                        tmp_path) -> None:
    marker = tmp_path / "marker.txt"
    with start_server(server_kind, programs.simple, ["0", str(marker)]) as server, \
            MiSession() as mi:
        mi.connect_like_cppdbg(programs.simple, server.address)
        mi.command("-exec-continue", expect="running")
        mi.wait_stopped()
        mi.command("-break-insert bump")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert frame_of(stop)["func"] == "bump"
        mi.command("-gdb-set var counter = 50")
        mi.command("-target-detach")
        # The breakpoints must be gone and the process running on its own.
        assert wait_for_file(marker, 10), "the detached program did not run to its end"
        assert marker.read_text() == "counter=65 buf=Hello\n"  # 50 + 1 + 2 + 3 + 4 + 5


def test_crash_and_exit_records(server_kind: str, programs: Programs) -> None:
    with start_server(server_kind, programs.crash, ["segv"]) as server, MiSession() as mi:
        mi.connect_like_cppdbg(programs.crash, server.address, break_main=False)
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert (stop["reason"], stop["signal-name"]) == ("signal-received", "SIGSEGV")
        assert frame_of(stop)["func"] == "write_null"
        assert frame_of(stop)["line"] == _line("null-write", "crash.c")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert (stop["reason"], stop["signal-name"]) == ("exited-signalled", "SIGSEGV")

    with start_server(server_kind, programs.simple, ["7"]) as server, MiSession() as mi:
        mi.connect_like_cppdbg(programs.simple, server.address, break_main=False)
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert (stop["reason"], stop["exit-code"]) == ("exited", "07")


def test_non_stop_a_breakpoint_stops_one_thread(server_kind: str, programs: Programs) -> None:
    program = programs.threads.parent / "threads_race"
    with start_server(server_kind, program, ["1", "3"]) as server, MiSession() as mi:
        mi.connect_like_cdt(program, server.address, non_stop=True)
        mi.command("-break-insert hit")
        mi.command("-exec-continue --all", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "breakpoint-hit" and frame_of(stop)["func"] == "hit", stop
        states = mi.thread_states()
        # The worker stopped; main, waiting in pthread_join, runs on.
        assert states == {stop["thread-id"]: "stopped", "1": "running"}, states
        mi.command("-exec-interrupt --all")
        mi.wait_stopped()
        assert set(mi.thread_states().values()) == {"stopped"}
        mi.command("-break-delete")
        mi.command("-exec-continue --all", expect="running")
        assert mi.wait_for("stopped", kind="notify")["payload"]["reason"] == "exited-normally"


def test_non_stop_pause_at_random_moments(server_kind: str, programs: Programs) -> None:
    # Pause pressed 100 times at random moments while four threads call hit() in a loop: every
    # pause stops every thread (each reports its stop) and nothing hangs.
    program = programs.threads.parent / "threads_race"
    rng = random.Random(4)
    with start_server(server_kind, program, ["4", "2000000000"]) as server, MiSession() as mi:
        mi.connect_like_cdt(program, server.address, non_stop=True)
        mi.command("-exec-continue --all", expect="running")
        deadline = time.monotonic() + 10
        while len(mi.thread_states()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(100):
            time.sleep(rng.uniform(0, 0.02))
            mi.command("-exec-interrupt --all")
            mi.wait_all_stopped()
            mi.command("-exec-continue --all", expect="running")
        mi.command("-exec-interrupt --all")
        mi.wait_all_stopped()
        assert len(mi.thread_states()) == 5
