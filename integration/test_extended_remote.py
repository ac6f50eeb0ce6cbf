"""`SERVER --multi COMM` with gdb's `target extended-remote`: the client runs, kills, re-runs
and attaches to programs while the server stays up, as with gdbserver.

Each session is run against gdbserver and against gdbstub and the normalised transcripts are
compared.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import Programs, gdb_batch_argv, process_state, run_gdb, start_server


def extended_session(kind: str, program: Path | None, commands: list[str], *, once: bool = True,
                     file: Path | None = None) -> tuple[str, str]:
    """gdb's normalised output and the server's stderr, for a `--multi` server."""
    text, stderr, _ = extended_run(kind, commands, once=once, file=file)
    return text, stderr


def extended_run(kind: str, commands: list[str], *, once: bool = True, file: Path | None = None,
                 env: dict[str, str] | None = None) -> tuple[str, str, str]:
    """gdb's normalised output, the server's stderr and what the programs printed."""
    with start_server(kind, None, extra=["--multi"], once=once, env=env) as server:
        argv = gdb_batch_argv(f"target extended-remote {server.address}", file, commands)
        run = run_gdb(argv, timeout=60)
        assert not run.timed_out, run.raw
        server.process.wait(timeout=10)  # --once, or `monitor exit`: the server ends
        return run.text, server.stderr, server.inferior_output()


def test_run_kill_and_run_again_with_new_arguments(reference: str, candidate: str, programs: Programs) -> None:
    program = programs.simple
    commands = [f"set remote exec-file {program}", "break main", "run", "next", "info inferiors",
                "kill", "run", "continue", "info inferiors", "run 3", "continue", "print $_exitcode",
                "monitor exit"]
    ours, our_log = extended_session(candidate, None, commands, file=program)
    theirs, _ = extended_session(reference, None, commands, file=program)
    assert ours == theirs
    assert "[Inferior 1 (process <PID>) killed]" in ours and "$1 = 3" in ours, ours
    # One server started all three, saying so as gdbserver does.
    assert len(re.findall(r"^Process .*simple created; pid = \d+$", our_log, re.M)) == 3, our_log


def attach_session(kind: str, spin: Path, commands_for, file: Path | None = None) -> list[str]:
    """Run `commands_for(pid)` against a fresh spinning program; gdb's output without the
    lines that say where the attach found it (that differs from run to run). The program
    must be left running and untraced (the commands detach it)."""
    spinner = subprocess.Popen([str(spin)], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        text, _ = extended_session(kind, None, commands_for(spinner.pid), file=file)
        assert process_state(spinner.pid) in ("R", "S"), kind
        assert re.search(r"^TracerPid:\s+0$", Path(f"/proc/{spinner.pid}/status").read_text(), re.M)
    finally:
        spinner.kill()
        spinner.wait()
    return [line for line in text.splitlines() if not re.search(r"spin\.c|^\d+\s", line)]


def test_attach_detach_then_run(reference: str, candidate: str, programs: Programs) -> None:
    def commands(pid: int) -> list[str]:
        return [f"attach {pid}", "info inferiors", "detach", f"file {programs.simple}",
                f"set remote exec-file {programs.simple}", "run", "monitor exit"]

    outputs = {kind: attach_session(kind, programs.spin, commands) for kind in (reference, candidate)}
    assert outputs[candidate] == outputs[reference]
    assert "[Inferior 1 (process <PID>) detached]" in outputs[candidate], outputs[candidate]
    assert "[Inferior 1 (process <PID>) exited normally]" in outputs[candidate], outputs[candidate]


def test_the_server_stays_up_for_the_next_client(candidate: str, programs: Programs) -> None:
    # Without --once a --multi server outlives its clients and the programs they ran.
    with start_server(candidate, None, extra=["--multi"], once=False) as server:
        for _ in range(2):
            argv = gdb_batch_argv(f"target extended-remote {server.address}", programs.simple,
                                  [f"set remote exec-file {programs.simple}", "run"])
            run = run_gdb(argv, timeout=60)
            assert "[Inferior 1 (process <PID>) exited normally]" in run.text, run.raw
            assert server.process.poll() is None, server.stderr
        run = run_gdb(gdb_batch_argv(f"target extended-remote {server.address}", None, ["monitor exit"]),
                      timeout=60)
        assert server.process.wait(timeout=10) == 0, server.stderr


@pytest.mark.parametrize("argv", [["--multi"], ["--multi", "--once"]])
def test_multi_without_comm_is_one_clear_line(argv: list[str]) -> None:
    from harness import gdbstub_executable

    run = subprocess.run([gdbstub_executable(), *argv], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "COMM" in run.stderr, run.stderr


def test_multi_with_a_program_starts_it_first(reference: str, candidate: str, programs: Programs) -> None:
    outputs = {}
    for kind in (reference, candidate):
        with start_server(kind, programs.simple, ["4"], extra=["--multi"]) as server:
            argv = gdb_batch_argv(f"target extended-remote {server.address}", programs.simple,
                                  ["continue", "print $_exitcode", f"set remote exec-file {programs.simple}",
                                   "run 5", "print $_exitcode", "monitor exit"])
            run = run_gdb(argv, timeout=60)
            assert not run.timed_out, run.raw
            outputs[kind] = run.text
    assert outputs[candidate] == outputs[reference]
    assert "$1 = 4" in outputs[candidate] and "$2 = 5" in outputs[candidate], outputs[candidate]


def test_restart_without_vrun(reference: str, candidate: str, programs: Programs) -> None:
    # `set remote run-packet off`: gdb's second `run` kills and restarts with `R`.
    program = programs.simple
    # (gdb refuses to restart a program run with arguments: it cannot pass them in `R`.)
    commands = [f"set remote exec-file {program}", "break main", "run", "next", "set remote run-packet off",
                "set remote exec-file", "run", "info inferiors", "continue", "monitor exit"]
    ours, our_log = extended_session(candidate, None, commands, file=program)
    theirs, _ = extended_session(reference, None, commands, file=program)
    assert ours == theirs
    assert ours.count("Breakpoint 1, main") == 2 and "exited normally" in ours, ours
    assert len(re.findall(r"^Process .*simple created; pid = \d+$", our_log, re.M)) == 2, our_log


def test_info_os_processes_and_threads(reference: str, candidate: str, programs: Programs) -> None:
    # IDE attach pickers and `info os processes` read the system's processes from the server.
    spinner = subprocess.Popen([str(programs.spin), "--some", "arguments"], stdin=subprocess.DEVNULL)
    rows: dict[str, list[str]] = {}
    try:
        time.sleep(0.2)
        for kind in (reference, candidate):
            with start_server(kind, programs.simple) as server:
                argv = gdb_batch_argv(f"target remote {server.address}", programs.simple,
                                      ["info os processes", "info os threads", "kill"])
                run = run_gdb(argv, timeout=60)
            # The spinner's rows, without the core it happens to run on.
            rows[kind] = [re.sub(r"\s+[\d,]+\s*$", "", line) for line in run.raw.splitlines()
                          if re.match(rf"{spinner.pid}\s", line)]
    finally:
        spinner.kill()
        spinner.wait()
    assert len(rows[reference]) == 2, rows  # one process, one thread
    assert rows[candidate] == rows[reference]
    assert f"{programs.spin} --some arguments" in rows[candidate][0], rows


def test_the_program_gets_the_server_s_environment_with_the_user_s_changes(reference: str, candidate: str) -> None:
    # gdb sends QEnvironmentReset before each run: back to the server's own environment (it
    # once emptied it), then the variables set and unset with `set/unset environment`.
    env = Path("/usr/bin/env")
    commands = [f"set remote exec-file {env}", "set environment GDBSTUB_TEST_VAR=one two",
                "unset environment HOME", "run", "monitor exit"]
    printed = {}
    for kind in (reference, candidate):
        _, _, output = extended_run(kind, commands, file=env)
        printed[kind] = sorted(line for line in output.splitlines() if not line.startswith("_="))
    assert printed[candidate] == printed[reference]
    assert "GDBSTUB_TEST_VAR=one two" in printed[candidate] and any(
        line.startswith("PATH=") for line in printed[candidate]), printed[candidate]
    assert not any(line.startswith("HOME=") for line in printed[candidate])


@pytest.mark.parametrize("extended", [False, True], ids=["remote", "extended-remote"])
def test_wrapper_runs_the_program_in_its_environment(reference: str, candidate: str, programs: Programs,
                                                     extended: bool) -> None:
    # --wrapper env VAR=VALUE --: every program starts through the wrapper, and its first stop
    # is the program's own (the wrapper's exec is let through).
    program = programs.simple
    commands = ["break main", "continue" if not extended else "run",
                'print (char *) getenv("GDBSTUB_WRAPPED")', "info inferiors", "kill"]
    outputs = {}
    for kind in (reference, candidate):
        extra = ["--wrapper", "env", "GDBSTUB_WRAPPED=yes", "--"] + (["--multi"] if extended else [])
        with start_server(kind, None if extended else program, extra=extra) as server:
            setup = [f"set remote exec-file {program}"] if extended else []
            target = "extended-remote" if extended else "remote"
            run = run_gdb(gdb_batch_argv(f"target {target} {server.address}", program, setup + commands),
                          timeout=60)
            assert not run.timed_out, run.raw
            outputs[kind] = run.text
    assert outputs[candidate] == outputs[reference]
    assert '"yes"' in outputs[candidate], outputs[candidate]


def test_two_inferiors_at_once(reference: str, candidate: str, programs: Programs) -> None:
    # add-inferior, then run a second program while the first is stopped at a breakpoint; each
    # is resumed alone (gdb's schedule-multiple off) and ends on its own.
    simple, threads = programs.simple, programs.threads
    commands = [f"set remote exec-file {simple}", "break main", "run",
                f"add-inferior -exec {threads}", "inferior 2", f"set remote exec-file {threads}", "run",
                "info inferiors", "info threads", "inferior 1", "next", "continue",
                "inferior 2", "continue", "info inferiors", "monitor exit"]
    ours, our_log = extended_session(candidate, None, commands, file=simple)
    theirs, _ = extended_session(reference, None, commands, file=simple)
    assert ours == theirs
    assert "[Inferior 1 (process <PID>) exited normally]" in ours, ours
    assert "[Inferior 2 (process <PID>) exited normally]" in ours, ours
    assert our_log.count("Child exited with status 0") == 2, our_log


def test_attach_a_second_process_while_the_first_is_stopped(reference: str, candidate: str,
                                                            programs: Programs) -> None:
    def commands(pid: int) -> list[str]:
        return [f"set remote exec-file {programs.simple}", "break main", "run", "add-inferior",
                "inferior 2", f"attach {pid}", "info inferiors", "detach", "inferior 1", "continue",
                "monitor exit"]

    outputs = {kind: attach_session(kind, programs.spin, commands, programs.simple)
               for kind in (reference, candidate)}
    assert outputs[candidate] == outputs[reference]
    assert "[Inferior 1 (process <PID>) exited normally]" in outputs[candidate], outputs[candidate]


@pytest.mark.parametrize("shell", ["on", "off"])
def test_start_in_a_working_directory_with_or_without_a_shell(reference: str, candidate: str,
                                                                programs: Programs, tmp_path: Path,
                                                                shell: str) -> None:
    # gdb's `set cwd` (QSetWorkingDir) and `start` (a temporary breakpoint on main, then run),
    # with gdb's startup-with-shell either way (QStartupWithShell).
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    commands = [f"set startup-with-shell {shell}", f"set cwd {workdir}",
                f"set remote exec-file {programs.simple}", "start", "next",
                "print (char *) getcwd(0, 0)", "kill", "monitor exit"]
    outputs = {}
    for kind in (reference, candidate):
        outputs[kind], _ = extended_session(kind, None, commands, file=programs.simple)
    assert outputs[candidate] == outputs[reference]
    assert f'"{workdir}"' in outputs[candidate], outputs[candidate]
    assert "Temporary breakpoint 1, main" in outputs[candidate], outputs[candidate]


@pytest.mark.parametrize("shell", ["on", "off"])
def test_startup_with_shell_runs_the_users_shell(reference: str, candidate: str, programs: Programs,
                                                 tmp_path: Path, shell: str) -> None:
    # gdbserver starts a program as `$SHELL -c "exec PROG ARGS"` with every word escaped (no
    # globbing, no expansion), unless startup-with-shell is off. A $SHELL that logs its calls
    # shows whether it ran; the program's command line (/proc, through `info proc`) shows that
    # the arguments came through as given, and the first stop is the program's, not the shell's.
    # gdbserver 13 refuses (and ends on) an argument with a space when there is no shell.
    arguments = "'a b' '*' '$HOME' x\\ y" if shell == "on" else "'*' '$HOME' '>out' '`id`'"
    commands = [f"set startup-with-shell {shell}", f"set remote exec-file {programs.simple}",
                f"start {arguments}", "info proc cmdline", "info inferiors", "kill", "monitor exit"]
    outputs, calls = {}, {}
    for kind in (reference, candidate):
        log = tmp_path / f"{kind.split('/')[-1]}-shell.log"
        fake_shell = tmp_path / f"{kind.split('/')[-1]}-shell"
        # It runs the command itself: one exec for the shell and one for the program, as
        # both servers count them.
        fake_shell.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nshift\neval "$1"\n')
        fake_shell.chmod(0o755)
        outputs[kind], _, _ = extended_run(kind, commands, file=programs.simple,
                                           env={"SHELL": str(fake_shell)})
        calls[kind] = log.read_text().splitlines() if log.exists() else []
    assert outputs[candidate] == outputs[reference]
    given = "a b * $HOME x y" if shell == "on" else "* $HOME >out `id`"
    assert f"cmdline = '{programs.simple} {given}'" in outputs[candidate], outputs[candidate]
    assert "Temporary breakpoint 1, main" in outputs[candidate], outputs[candidate]
    assert len(calls[candidate]) == len(calls[reference]) == (1 if shell == "on" else 0), calls
    if shell == "on":
        assert calls[candidate][0].startswith(f"-c exec {programs.simple}"), calls


def test_no_process_means_no_target_description(reference: str, candidate: str, programs: Programs) -> None:
    # Connected to a --multi server before any `run`, gdb takes the architecture it is told
    # (gdb.base/catch-syscall.exp sets i386): the server has no process to describe.
    commands = ["set architecture i386", "show architecture", "set architecture i386:x86-64",
                f"set remote exec-file {programs.simple}", "run", "show architecture", "monitor exit"]
    outputs = {kind: extended_session(kind, None, commands, file=programs.simple)[0]
               for kind in (reference, candidate)}
    assert outputs[candidate] == outputs[reference]
    assert 'The target architecture is set to "i386".' in outputs[candidate], outputs[candidate]
