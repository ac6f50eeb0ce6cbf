"""A real gdb session, end to end, against gdbstub and gdbserver in the same run.

usage: python bench/gdb_session_bench.py [--nexts N] [--reps N] [--output FILE]

Three figures, each the median wall time over the repetitions (the order of the servers alternates
between repetitions, so drift in machine load favours neither):

  connect   gdb's `target remote` over a TCP port, the server already listening: from the
            command to gdb's next prompt (gdb prints a marker line there, timed by the bench).
  script    the whole batch run: `target remote`, `break bench_ready`, `continue`, `up`,
            N `next`s over the loop in main, `bt`, `info registers`, `x/10000x bench_buffer`,
            `kill`.
  gdb_cpu   gdb's own user+system CPU time in that run (no server can make the script
            take less than this, since gdb works between the packets).

Both servers run `--once 127.0.0.1:0 bench/build/target 1 ITERATIONS`; gdb must print the
bench_buffer contents the program wrote (the first word of its pseudo-random block) and the loop
counter must have moved by the number of `next`s, or no figure is reported. The issue's
targets: script <= 0.8x gdbserver's time, connect no slower than with gdbserver.
Writes bench/results/gdb_session.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import servers
import target_program

RESULTS = Path(__file__).resolve().parent / "results" / "gdb_session.json"
MARK = "@@connected@@"


def gdb_argv(port: int, program: Path, nexts: int) -> list[str]:
    steps = ["-ex", "next"] * nexts
    return ["gdb", "-nx", "-batch", "-ex", "set confirm off", "-ex", "set sysroot",
            "-ex", "set pagination off", "-ex", f"target remote 127.0.0.1:{port}",
            "-ex", f"echo {MARK}\\n",
            "-ex", "break bench_ready", "-ex", "continue", "-ex", "up",
            "-ex", "print bench_ticks", *steps, "-ex", "print bench_ticks",
            "-ex", "bt", "-ex", "info registers", "-ex", "x/10000x bench_buffer",
            "-ex", "kill", str(program)]


def one_run(spec: servers.ServerSpec, target: target_program.TargetProgram, nexts: int
            ) -> tuple[float, float, float]:
    """(connect seconds, script seconds, gdb's own CPU seconds) of one gdb run, after checking
    what gdb printed."""
    with servers.start(spec, target.argv(1, 10 * nexts + 100)) as server:
        started = time.perf_counter()
        gdb = subprocess.Popen(gdb_argv(server.port, target.path, nexts), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        assert gdb.stdout is not None
        connected = None
        lines = []
        for line in gdb.stdout:
            if connected is None and MARK in line:
                connected = time.perf_counter() - started
            lines.append(line)
        _, _, usage = os.wait4(gdb.pid, 0)
        elapsed = time.perf_counter() - started
        gdb.returncode = 0  # reaped above: Popen must not wait for it again
    text = "".join(lines)
    check(spec.name, text, nexts)
    if connected is None:
        raise SystemExit(f"{spec.name}: gdb never reached the prompt after target remote:\n{text[-2000:]}")
    return connected, elapsed, usage.ru_utime + usage.ru_stime


def check(name: str, text: str, nexts: int) -> None:
    """The session did what it says: the loop ran once per `next`, and memory reads right."""
    ticks = [int(v) for v in re.findall(r"^\$\d+ = (\d+)$", text, re.M)]
    # Each `next` in the loop is either the call (one tick) or the loop's own line.
    if len(ticks) != 2 or not nexts // 3 <= ticks[1] - ticks[0] <= nexts:
        raise SystemExit(f"{name}: bench_ticks did not move by the nexts ({ticks}):\n{text[-3000:]}")
    first_word = int.from_bytes(target_program.block()[:4], "little")
    if not re.search(rf"^0x[0-9a-f]+:\s+0x{first_word:08x}\s", text, re.M):
        raise SystemExit(f"{name}: x/10000x did not show the buffer's first word {first_word:#010x}")
    if "Remote connection closed" in text or "Remote communication error" in text:
        raise SystemExit(f"{name}: the connection failed:\n{text[-2000:]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nexts", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    target = target_program.build()
    specs = (servers.GDBSERVER, servers.with_bytecode_cache(servers.GDBSTUB))
    kinds = ("connect", "script", "gdb_cpu")
    samples: dict[str, dict[str, list[float]]] = {s.name: {k: [] for k in kinds} for s in specs}
    for rep in range(args.reps):
        for spec in specs if rep % 2 == 0 else tuple(reversed(specs)):
            for kind, value in zip(kinds, one_run(spec, target, args.nexts)):
                samples[spec.name][kind].append(value)
    medians = {name: {k: statistics.median(v) for k, v in kinds.items()} for name, kinds in samples.items()}
    ratios = {k: medians["gdbstub"][k] / medians["gdbserver"][k] for k in ("connect", "script")}
    print(f"gdb session: {args.nexts} nexts, bt, info registers, x/10000x; median of {args.reps}")
    print(f"{'':12}{'gdbserver':>12}{'gdbstub':>12}{'ratio':>8}")
    for kind in kinds:
        print(f"{kind:12}{medians['gdbserver'][kind]:11.3f}s{medians['gdbstub'][kind]:11.3f}s"
              f"{medians['gdbstub'][kind] / medians['gdbserver'][kind]:8.2f}")
    print(f"targets: script <= 0.8x ({'met' if ratios['script'] <= 0.8 else 'NOT met'}), "
          f"connect <= 1.0x ({'met' if ratios['connect'] <= 1.0 else 'NOT met'})")
    # gdb's own CPU time is spent whichever server answers: the script cannot take less.
    floor = medians["gdbstub"]["gdb_cpu"] / medians["gdbserver"]["script"]
    print(f"gdb's own CPU time alone is {floor:.2f}x gdbserver's script time "
          f"(the least any server could reach)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"nexts": args.nexts, "reps": args.reps, "seconds": samples,
                                       "median_seconds": medians, "ratios": ratios,
                                       "gdb_cpu_floor_ratio": floor}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
