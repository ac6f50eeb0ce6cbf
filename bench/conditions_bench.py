"""Conditional breakpoints with a false condition, end to end with a real gdb: the server
evaluating the condition (gdb's agent expressions) against gdb evaluating it at every hit.

usage: python bench/conditions_bench.py [--hits N] [--reps N] [--output FILE]

The program is tests/programs/conditions.c making N calls; gdb runs `break probe-line if
i == N-1`, `continue`, `print i` and `kill` over `target remote | SERVER - PROG N`, so N-1 hits
are false and one is true. Each row is the median wall time of the whole gdb run:

  gdbstub, server-side       gdbstub evaluates the condition (gdb's default with it)
  gdbserver, gdb-side        `set breakpoint condition-evaluation host`: gdbserver without it
  gdbserver, server-side     gdbserver's own agent evaluation, for reference
  gdbstub, gdb-side          the same gdb-side evaluation through gdbstub

The issue's target: gdbstub server-side at least 3x faster than gdbserver gdb-side. Each run
must print `$1 = N-1`, or the figures are not reported. Writes bench/results/conditions.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "tests" / "programs" / "build" / "conditions"
SOURCE = REPO / "tests" / "programs" / "conditions.c"
RESULTS = Path(__file__).resolve().parent / "results" / "conditions.json"
SERVERS = {"gdbstub": [str(REPO / ".venv" / "bin" / "gdbstub")], "gdbserver": ["gdbserver"]}
MODES = {"server-side": "target", "gdb-side": "host"}
ROWS = [("gdbstub", "server-side"), ("gdbserver", "gdb-side"), ("gdbserver", "server-side"),
        ("gdbstub", "gdb-side")]


def probe_line() -> int:
    for number, text in enumerate(SOURCE.read_text().splitlines(), start=1):
        if "LINE:probe" in text:
            return number
    raise SystemExit(f"no LINE:probe in {SOURCE}")


def one_run(server: str, mode: str, hits: int) -> float:
    stub = " ".join([*SERVERS[server], "-", str(PROGRAM), str(hits)])
    argv = ["gdb", "-nx", "-batch", "-ex", "set confirm off", "-ex", "set sysroot",
            "-ex", f"set breakpoint condition-evaluation {MODES[mode]}",
            "-ex", f"target remote | {stub}",
            "-ex", f"break conditions.c:{probe_line()} if i == {hits - 1}",
            "-ex", "continue", "-ex", "print i", "-ex", "kill", str(PROGRAM)]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if not re.search(rf"^\$1 = {hits - 1}$", out.stdout, re.M):
        raise SystemExit(f"{server} {mode}: gdb did not stop at i == {hits - 1}:\n{out.stdout[-2000:]}"
                         f"{out.stderr[-2000:]}")
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=10_000, help="calls, all but the last with a false condition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    subprocess.run(["make", "-s", "-C", str(PROGRAM.parent.parent)], check=True)
    times: dict[str, list[float]] = {f"{s} {m}": [] for s, m in ROWS}
    for rep in range(args.reps):
        rows = ROWS if rep % 2 == 0 else list(reversed(ROWS))  # drift favours neither
        for server, mode in rows:
            times[f"{server} {mode}"].append(one_run(server, mode, args.hits))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians["gdbserver gdb-side"]
    print(f"{args.hits} hits, {args.hits - 1} with a false condition; median of {args.reps} gdb runs")
    print(f"{'':28}{'seconds':>10}{'hits/s':>10}{'speed-up vs gdbserver gdb-side':>34}")
    for name, seconds in medians.items():
        print(f"{name:28}{seconds:10.2f}{args.hits / seconds:10.0f}{baseline / seconds:33.2f}x")
    ratio = baseline / medians["gdbstub server-side"]
    print(f"target: gdbstub server-side >= 3x gdbserver gdb-side: {ratio:.2f}x "
          f"({'met' if ratio >= 3 else 'NOT met'})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"hits": args.hits, "reps": args.reps, "seconds": times,
                                       "median_seconds": medians, "speedup_vs_gdbserver_gdb_side": ratio},
                                      indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
