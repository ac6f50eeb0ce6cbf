"""Pause at random moments: how soon a 0x03 stops a program whose threads are busy, blocked in
system calls, or being created and joined, with gdbstub beside gdbserver.

usage: python bench/pause_latency.py [--pauses N] [--max-wait SECONDS] [--output FILE]

The program is tests/programs/threads_pause.c (sixteen threads besides main: six spinning,
five in nanosleep or read, five creating and joining short-lived threads all the time). Each
pause resumes it (vCont;c), lets it run for a random moment (up to --max-wait), sends 0x03
and times the stop reply; the thread the reply names must exist (/proc, while stopped).
tests/running_latency.py does the work. Prints the median, 99th percentile and worst pause
of each server, and how many pauses took over the 100 ms target, and writes
bench/results/pause.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from raw_rsp import GDBSTUB  # noqa: E402
from running_latency import pause_latencies  # noqa: E402

PROGRAM = REPO / "tests" / "programs" / "build" / "threads_pause"
RESULTS = Path(__file__).resolve().parent / "results" / "pause.json"
TARGET_MS = 100.0
SERVERS = {"gdbstub": GDBSTUB, "gdbserver": ["gdbserver"]}


def summary(samples: list[tuple[float, bytes, bool]]) -> dict:
    ms = sorted(elapsed * 1000 for elapsed, _, _ in samples)
    return {
        "pauses": len(ms),
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "worst_ms": ms[-1],
        "over_target": sum(1 for m in ms if m > TARGET_MS),
        "not_a_stop": sum(1 for _, reply, _ in samples if not reply.startswith(b"T02")),
        "thread_missing": sum(1 for _, _, exists in samples if not exists),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pauses", type=int, default=1000)
    parser.add_argument("--max-wait", type=float, default=0.01)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in SERVERS.items():
            samples = pause_latencies(PROGRAM, args.pauses, Path(tmp) / "server.log", command,
                                      seed=1, max_wait=args.max_wait)
            results[name] = summary(samples)
    print(f"{'server':<10} {'pauses':>7} {'median ms':>10} {'p99 ms':>8} {'worst ms':>9} "
          f"{'>100 ms':>8} {'bad':>4}")
    for name, r in results.items():
        print(f"{name:<10} {r['pauses']:>7} {r['median_ms']:>10.1f} {r['p99_ms']:>8.1f} "
              f"{r['worst_ms']:>9.1f} {r['over_target']:>8} {r['not_a_stop'] + r['thread_missing']:>4}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"max_wait": args.max_wait, "results": results}, indent=2))
    ours = results["gdbstub"]
    return 0 if ours["worst_ms"] <= TARGET_MS and ours["not_a_stop"] + ours["thread_missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
