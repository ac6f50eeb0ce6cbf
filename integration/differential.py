"""Run one scenario against one server and render everything observable as one text.

The transcript holds gdb's normalised output, what the inferior wrote on its stdout and,
when the scenario has one, the marker file the program wrote at its end. Two servers
that behave alike give equal transcripts.
"""

from __future__ import annotations

from pathlib import Path

from harness import PROGRAMS_BUILD, expand_lines, run_gdb_batch, start_server, wait_for_file
from scenarios import Scenario

# How long a detached inferior may take to reach its end and write its marker.
MARKER_TIMEOUT = 10.0


def run_scenario(kind: str, scenario: Scenario, workdir: Path,
                 build_dir: Path = PROGRAMS_BUILD) -> str:
    """Serve `scenario.program` with `kind`, drive it with gdb, and return the transcript."""
    workdir.mkdir(parents=True, exist_ok=True)
    program = build_dir / scenario.program
    commands = [expand_lines(c) for c in scenario.commands]
    # The server runs in `workdir` so relative marker names print the same for every run.
    with start_server(kind, program, scenario.args, cwd=workdir) as server:
        run = run_gdb_batch(server, program, commands, sysroot=scenario.sysroot,
                            cwd=workdir, before_connect=scenario.before_connect,
                            replacements=[(str(workdir), "<WORKDIR>")])
        sections = [f"--- gdb (exit {run.returncode}) ---", run.text.rstrip("\n")]
        if scenario.marker is not None:
            marker = workdir / scenario.marker
            if wait_for_file(marker, MARKER_TIMEOUT):
                sections += ["--- marker ---", marker.read_text().rstrip("\n")]
            else:
                sections += ["--- marker ---", "<not written>"]
        server.wait_exit(5.0)
        sections += ["--- inferior stdout ---", server.inferior_output().rstrip("\n")]
    return "\n".join(sections) + "\n"
