"""How soon a 0x03 and a disconnect are answered while 1,000 threads run: gdbstub beside gdbserver.

usage: python bench/running_latency.py [--threads N] [--rounds N] [--output FILE]

Four measurements, each repeated ROUNDS times on a fresh server and program, alternating
between the servers (tests/running_latency.py does the work; tests/programs/threads_bench.c
is the program):

  interrupt-together   `vCont;c` and 0x03 in one write -> the stop reply
  interrupt-after      0x03 in its own write just after `vCont;c` -> the stop reply
  close-launched       the client closes while the program runs -> the program is gone
  close-attached       the same for an attached program -> running, untraced

Medians go to stdout with the ratio gdbstub / gdbserver and to bench/results/running.json.
Target: each gdbstub median under 50 ms. gdbserver 13 does not notice a client that closes
while the program runs (it waits for the program): those rows say "never" (5 s waited).
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
from running_latency import disconnect_latency, interrupt_latency  # noqa: E402

PROGRAM = REPO / "tests" / "programs" / "build" / "threads_bench"
RESULTS = Path(__file__).resolve().parent / "results" / "running.json"
TARGET_MS = 50.0
SERVERS = {"gdbstub": GDBSTUB, "gdbserver": ["gdbserver"]}


PATIENCE = 5.0  # seconds a server is given to release the program after the close


def measure(kind: str, command: list[str], threads: int, log: Path) -> float | None:
    """Milliseconds, or None for a program never released (within PATIENCE)."""
    if kind == "interrupt-together":
        elapsed, reply = interrupt_latency(PROGRAM, threads, log, True, command)
    elif kind == "interrupt-after":
        elapsed, reply = interrupt_latency(PROGRAM, threads, log, False, command)
    elif kind == "close-launched":
        elapsed, state, _ = disconnect_latency(PROGRAM, threads, log, False, command, PATIENCE)
        reply = b"released" if state in (None, "Z", "X") else b"never"
    else:
        elapsed, state, tracer = disconnect_latency(PROGRAM, threads, log, True, command, PATIENCE)
        reply = b"released" if tracer == 0 and state in ("R", "S") else b"never"
    if reply == b"never":
        return None
    if not (reply.startswith(b"T02") or reply == b"released"):
        raise SystemExit(f"{kind} with {command[0]}: wrong outcome {reply[:40]!r}")
    return elapsed * 1000


def median(values: list[float | None]) -> float | None:
    """The median, None when any run never ended (a program never released)."""
    return None if None in values or not values else statistics.median(values)


def shown(ms: float | None) -> str:
    return "never" if ms is None else f"{ms:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    kinds = ["interrupt-together", "interrupt-after", "close-launched", "close-attached"]
    samples: dict[str, dict[str, list[float | None]]] = {k: {s: [] for s in SERVERS} for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for kind in kinds:
                for name, command in SERVERS.items():
                    samples[kind][name].append(measure(kind, command, args.threads, Path(tmp) / "server.log"))
    results = {}
    print(f"{'measurement':<20} {'gdbstub ms':>11} {'gdbserver ms':>13} {'ratio':>7}")
    for kind in kinds:
        ours, theirs = (median(samples[kind][s]) for s in ("gdbstub", "gdbserver"))
        ratio = ours / theirs if ours is not None and theirs else None
        results[kind] = {"gdbstub_ms": ours, "gdbserver_ms": theirs, "ratio": ratio,
                         "target_ms": TARGET_MS, "samples": samples[kind]}
        print(f"{kind:<20} {shown(ours):>11} {shown(theirs):>13} "
              f"{'-' if ratio is None else f'{ratio:.2f}':>7}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"threads": args.threads, "rounds": args.rounds,
                                       "results": results}, indent=2))
    met = all(r["gdbstub_ms"] is not None and r["gdbstub_ms"] < TARGET_MS for r in results.values())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
