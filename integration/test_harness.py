"""Tests of the harness itself: normalisation, source line tags, process cleanup, and
that gdbserver sessions give the same transcript twice (else differential tests flake)."""

from __future__ import annotations

import socket

import pytest

from differential import run_scenario
from harness import (Programs, expand_lines, line_of, normalize, process_alive,
                     start_server)
from scenarios import SCENARIOS, by_name


def test_normalize_hides_pids_ports_and_addresses() -> None:
    a = normalize("[Inferior 1 (process 4242) exited normally]\n"
                  "#1  0x00005555555552cd in main (argc=1, argv=0x7fffffffe7d8) at simple.c:51\n"
                  "* 1    Thread 4242.4242 \"simple\" main () at simple.c:51\n"
                  "Remote debugging using 127.0.0.1:40001\n"
                  "rbx            0x7fffffffe7c8      140737488349128\n")
    b = normalize("[Inferior 1 (process 77) exited normally]\n"
                  "#1  0x00005555555562cd in main (argc=1, argv=0x7ffc1234e7d8) at simple.c:51\n"
                  "* 1    Thread 77.77 \"simple\" main () at simple.c:51\n"
                  "Remote debugging using 127.0.0.1:2345\n"
                  "rbx            0x7ffc1234e7c8      140720613353416\n")
    assert a == b


def test_normalize_keeps_data() -> None:
    # Values, byte dumps, line numbers and symbols must survive, or tests could not fail.
    pairs = [
        ("$1 = 15", "$1 = 16"),
        ("0x555555558060 <buf>:\t0x68\t0x65", "0x555555558060 <buf>:\t0x68\t0x66"),
        ("bump (n=1) at simple.c:27", "bump (n=1) at simple.c:28"),
        ("rip 0x5555555552cd 0x5555555552cd <main+69>",
         "rip 0x5555555552cd 0x5555555552cd <main+70>"),
        ("[Inferior 1 (process 1) exited with code 07]",
         "[Inferior 1 (process 1) exited with code 03]"),
        ("eflags 0x246 [ IF ZF PF ]", "eflags 0x202 [ IF ]"),
    ]
    for left, right in pairs:
        assert normalize(left) != normalize(right), (left, right)


def test_line_tags_resolve_to_the_tagged_line(programs: Programs) -> None:
    source = (programs.simple.parent.parent / "simple.c").read_text().splitlines()
    number = line_of("simple.c", "loop-call")
    assert "LINE:loop-call" in source[number - 1]
    assert expand_lines("break simple.c:{line:simple.c:loop-call}") == f"break simple.c:{number}"
    with pytest.raises(KeyError):
        line_of("simple.c", "no-such-tag")


def test_every_scenario_tag_exists() -> None:
    for scenario in SCENARIOS:
        for command in scenario.commands:
            assert "{" not in expand_lines(command), (scenario.name, command)


def test_server_teardown_leaves_no_inferior(programs: Programs) -> None:
    # Nobody connects: the inferior stays stopped at its first instruction until the
    # harness stops the server, after which it must be gone.
    with start_server("gdbserver", programs.spin, exit_grace=0.2) as server:
        assert server.port and server.inferior_pid
        pid = server.inferior_pid
        assert process_alive(pid)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    assert not process_alive(pid)


@pytest.mark.parametrize("name", ["print_pc_and_display", "threads_joined",
                                  "detach_then_runs_to_completion", "sigsegv_stop"])
def test_gdbserver_transcripts_are_stable(name: str, programs: Programs, tmp_path) -> None:
    scenario = by_name(name)
    build = programs.simple.parent
    first = run_scenario("gdbserver", scenario, tmp_path / "first", build)
    second = run_scenario("gdbserver", scenario, tmp_path / "second", build)
    assert first == second
