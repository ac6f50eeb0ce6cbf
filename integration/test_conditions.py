"""Breakpoint conditions and dprintf evaluated in the server (gdb's agent expressions).

The ground truth is gdb itself: at every hit of an unconditional breakpoint, gdb prints what
each condition of the table gives (its own evaluation, in the client). Then each condition is
set on a breakpoint that the server evaluates (gdb compiles it to bytecode and sends it with
Z0), and the iterations at which the program stopped must be exactly those gdb found true.
dprintf with `set dprintf-style agent` is compared with gdbserver's output (unconditional) and
with gdb's own dprintf (conditional: gdbserver prints at every hit whatever the condition,
where gdb prints only when it holds, and so does gdbstub).

The program is tests/programs/conditions.c.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import gdb_batch_argv, gdb_prologue, line_of, run_gdb, start_server

ITERATIONS = 64

# C conditions over probe()'s arguments, a struct read through a pointer, arrays, globals and
# registers: comparisons signed and unsigned, arithmetic, shifts, narrow types, && || ?: and !.
CONDITIONS = [
    "i == 37",
    "i % 7 == 3",
    "i / 3 == 5",
    "w < 0",
    "w > -50 && w < 50",
    "(u >> 28) == 3",
    "u % 1000 < 300",
    "s < -2000 || s > 20000",
    "c == 107",
    "r->x < 0",
    "r->y == -4",
    "r->name[1] == 98",
    "r->next != 0 && r->next->x > 2",
    "r->big > 0x100000000LL",
    "(r->flags & 0x80) != 0",
    "counter_global > 500",
    "small_global + i == 10",
    "!(i & 1)",
    "~i == -10",
    "i * i - 40 * i > 0",
    "-i < -60",
    "i >= 10 ? w > -200 : s > 5000",
    "(i << 3) == 88",
    "records[i % 4].x == 5",
    "(unsigned char) (i * 9) > 200",
    "$rdi == 12",
]


@pytest.fixture(scope="module")
def program(programs) -> Path:
    return Path(programs.simple).parent / "conditions"


def _probe_line(programs) -> int:
    return line_of(programs.source("conditions.c"), "probe")


def _gdb_script(tmp_path: Path, target: str, program: Path, commands: list[str]) -> list[str]:
    """A gdb command line running `commands` from a file (`commands ... end` blocks need one)."""
    script = tmp_path / f"script{len(list(tmp_path.iterdir()))}.gdb"
    script.write_text("\n".join([*gdb_prologue(""), target, *commands]) + "\n")
    return ["gdb", "-nx", "-batch", "-x", str(script), str(program)]


def _gdb_truth(tmp_path: Path, program: Path, line: int, candidate: str) -> dict[int, list[bool]]:
    """gdb's own evaluation of every condition at every hit: iteration -> [bool per condition]."""
    values = ", ".join(f"(({c}) != 0)" for c in CONDITIONS)
    fmt = "TRUTH %d" + " %d" * len(CONDITIONS) + "\\n"
    with start_server(candidate, program, [str(ITERATIONS)]) as server:
        run = run_gdb(_gdb_script(tmp_path, f"target remote {server.address}", program, [
            f"break conditions.c:{line}", "commands", "silent", f'printf "{fmt}", i, {values}',
            "continue", "end", "continue"]))
    truth = {}
    for match in re.finditer(r"^TRUTH ([\d ]+)$", run.raw, re.M):
        numbers = [int(n) for n in match.group(1).split()]
        truth[numbers[0]] = [bool(n) for n in numbers[1:]]
    assert sorted(truth) == list(range(ITERATIONS)), run.raw[-3000:]
    return truth


def test_conditions_evaluated_in_the_server_stop_where_gdb_says(programs, program, candidate, tmp_path):
    line = _probe_line(programs)
    truth = _gdb_truth(tmp_path, program, line, candidate)
    commands = ["set breakpoint condition-evaluation target", f"set remote exec-file {program}",
                f"set args {ITERATIONS}"]
    for index, condition in enumerate(CONDITIONS):
        commands += [f"echo CONDITION {index}\\n", f"break conditions.c:{line} if {condition}",
                     "commands", "silent", 'printf "HIT %d\\n", i', "continue", "end",
                     "run", "info breakpoints", "delete"]
    with start_server(candidate, None, extra=["--multi"]) as server:
        run = run_gdb(_gdb_script(tmp_path, f"target extended-remote {server.address}", program, commands),
                      timeout=240)
    blocks = re.split(r"^CONDITION (\d+)$", run.raw, flags=re.M)[1:]
    assert len(blocks) == 2 * len(CONDITIONS), run.raw[-3000:]
    for index, block in zip(blocks[0::2], blocks[1::2]):
        condition = CONDITIONS[int(index)]
        # gdb says who evaluated it: the server, or gdb itself had it not been sent.
        assert "target evals" in block, f"{condition!r} was not evaluated by the server:\n{block}"
        hits = [int(n) for n in re.findall(r"^HIT (\d+)$", block, re.M)]
        expected = [i for i in range(ITERATIONS) if truth[i][int(index)]]
        assert hits == expected, f"{condition!r}: stopped at {hits}, gdb evaluates it true at {expected}"
        assert "exited normally" in block, block


def _agent_dprintf(kind: str, program: Path, line: int, condition: str | None) -> str:
    """What `dprintf` prints, through the server (agent style), in the server's output."""
    commands = ["set dprintf-style agent",
                f'dprintf conditions.c:{line},"i=%d w=%ld u=%u s=%hd c=%c x=%#x name=%s\\n", '
                "i, w, u, s, c, r->x, r->name + 0"]
    if condition:
        commands.append(f"condition 1 {condition}")
    commands += ["continue"]
    with start_server(kind, program, ["12"]) as server:
        run = run_gdb(gdb_batch_argv(f"target remote {server.address}", program, commands))
        assert "exited normally" in run.raw, run.raw[-3000:]
        server.wait_exit(10)
        output = server.stdout
    return "".join(line + "\n" for line in output.splitlines() if line.startswith("i="))


def test_agent_dprintf_prints_what_gdbserver_prints(programs, program, candidate, reference):
    line = _probe_line(programs)
    expected = _agent_dprintf(reference, program, line, None)
    assert expected.count("\n") == 12
    assert _agent_dprintf(candidate, program, line, None) == expected


def test_agent_dprintf_with_a_condition_prints_what_gdb_prints(programs, program, candidate):
    line = _probe_line(programs)
    condition = "i % 3 == 1"
    with start_server(candidate, program, ["12"]) as server:
        run = run_gdb(gdb_batch_argv(f"target remote {server.address}", program, [
            "set dprintf-style gdb",
            f'dprintf conditions.c:{line},"i=%d w=%ld u=%u s=%hd c=%c x=%#x name=%s\\n", '
            "i, w, u, s, c, r->x, r->name + 0", f"condition 1 {condition}", "continue"]))
    expected = "".join(m + "\n" for m in re.findall(r"^i=.*$", run.raw, re.M))
    assert expected.count("\n") == 4, run.raw[-2000:]
    assert _agent_dprintf(candidate, program, line, condition) == expected


def test_threads_passing_false_conditions_miss_no_hit_and_print_once(programs, program, candidate, tmp_path):
    """Four threads run through one breakpoint at once; while one steps over it (its condition
    false), none may run past it unseen, and a dprintf prints once per hit."""
    line = _probe_line(programs)
    calls = 400
    with start_server(candidate, program, [str(calls), "threads"]) as server:
        run = run_gdb(_gdb_script(tmp_path, f"target remote {server.address}", program, [
            "set dprintf-style agent",
            f'dprintf conditions.c:{line_of(programs.source("conditions.c"), "tally")},"D %ld %d\\n", t, i',
            "condition 1 i % 100 == 0",
            f"break conditions.c:{line} if i % 50 == 7", "commands", "silent",
            'printf "HIT %ld %d\\n", w, i', "continue", "end", "continue"]), timeout=240)
        assert "exited normally" in run.raw, run.raw[-3000:]
        server.wait_exit(10)
        printed = re.findall(r"^D (\d+) (\d+)$", server.stdout, re.M)
    hits = re.findall(r"^HIT (\d+) (\d+)$", run.raw, re.M)
    every_thread = [str(t) for t in range(4)]
    assert sorted(hits) == sorted((t, str(i)) for t in every_thread for i in range(calls) if i % 50 == 7)
    assert sorted(printed) == sorted((t, str(i)) for t in every_thread for i in range(calls) if i % 100 == 0)
