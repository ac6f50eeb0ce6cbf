"""How long gdbstub's event loop can go without running other work while 1,000 threads stop.

usage: python bench/loop_stall.py [--threads N] [--cycles N] [--output FILE]

Everything the server does runs on one trio event loop: while it stops a process of many
threads, a 0x03 or a new connection is only answered when the loop gets to it. This runs the
process controller in-process on tests/programs/threads_bench.c (N threads blocked, main
calling tick()), hits a breakpoint on tick() again and again (each hit stops every thread),
and meanwhile a task that asks to wake up every millisecond records how late each wake-up
is: the worst lateness is the longest stretch the loop was busy. A blocking call on the loop
(a waitpid that waits, a sleep) shows up here at once. Target: under 50 ms. gdbserver has no
such loop to compare with; the stop time itself is in bench/threads_bench.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import threads_bench  # noqa: E402

from gdbstub.arch import cpu_has_avx  # noqa: E402
from gdbstub.process import ProcessSet, Resume, StopKind, launch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "loop_stall.json"
TARGET_MS = 50.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1000, help="blocked threads beside main")
    parser.add_argument("--cycles", type=int, default=50, help="breakpoint hits, each a full stop")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    return parser.parse_args(argv)


async def measure(program: Path, threads: int, cycles: int) -> dict:
    lateness: list[float] = []
    stops: list[float] = []
    processes = ProcessSet(use_xstate=cpu_has_avx())
    async with trio.open_nursery() as nursery:
        await nursery.start(processes.run)
        inf = processes.add(launch(str(program), [str(threads)]), launched=True)
        try:
            tick = threads_bench.load_base(inf.pid, program) + threads_bench.symbol_offset(program, "tick")
            inf.breakpoints.insert(tick)
            inf.resume({}, Resume("continue"))
            with trio.fail_after(120):
                await inf.wait_for_stop()  # every thread created, main at tick(): not measured

            async def ticker() -> None:
                while True:
                    asked = trio.current_time()
                    await trio.sleep(0.001)
                    lateness.append(trio.current_time() - asked - 0.001)

            nursery.start_soon(ticker)
            for _ in range(cycles):
                began = time.perf_counter()
                inf.breakpoints.remove(tick)  # as gdb steps over it: out, step, back in, go
                inf.resume({inf.last_event.tid: Resume("step")}, None)  # the others stay stopped
                with trio.fail_after(60):
                    ev = await inf.wait_for_stop()
                await trio.sleep(0.005)
                inf.breakpoints.insert(tick)
                inf.resume({}, Resume("continue"))
                with trio.fail_after(60):
                    ev = await inf.wait_for_stop()
                if ev.kind != StopKind.BREAKPOINT:
                    raise RuntimeError(f"expected the breakpoint, got {ev}")
                stops.append(time.perf_counter() - began)
                # The server awaits the client's next packet here: the loop runs other work.
                await trio.sleep(0.005)
        finally:
            with trio.CancelScope(shield=True):
                if inf.alive:
                    await inf.kill()
            nursery.cancel_scope.cancel()
    return {"wakeups": len(lateness), "worst_ms": max(lateness) * 1e3,
            "p99_ms": sorted(lateness)[int(len(lateness) * 0.99)] * 1e3,
            "median_ms": statistics.median(lateness) * 1e3,
            "cycle_median_ms": statistics.median(stops) * 1e3}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    program = threads_bench.build_program()
    result = trio.run(measure, program, args.threads, args.cycles)
    met = result["worst_ms"] < TARGET_MS
    print(f"{args.threads + 1} threads, {args.cycles} breakpoint cycles (median {result['cycle_median_ms']:.1f} ms):"
          f" loop late by at most {result['worst_ms']:.1f} ms (p99 {result['p99_ms']:.1f} ms,"
          f" median {result['median_ms']:.2f} ms over {result['wakeups']} wake-ups);"
          f" target < {TARGET_MS:g} ms: {'ok' if met else 'MISSED'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"benchmark": "loop_stall", "threads": args.threads + 1,
                                       "cycles": args.cycles, "target_ms": TARGET_MS, "target_met": met,
                                       **result}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
