"""Benchmark gdbstub against gdbserver in the same run and report gdbstub / gdbserver ratios.

usage: python bench/run.py [--quick] [--reps N] [--output FILE] [--run-control-in-turns]

Each repetition runs one full session per server (the order alternates between repetitions so
that drift in machine load does not favour either), and every metric is the median over the
repetitions. With --run-control-in-turns, single steps and breakpoint hits are measured apart,
with both servers' sessions open and the servers taking turns batch by batch. The table goes to stdout, the results to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import measurements
import servers
import target_program
from measurements import DESCRIPTIONS, METRICS, Sizes

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

# What the project aims for (ratio gdbstub / gdbserver, rates) and the level below which it is a
# defect. A 1-byte m round trip may take at most 1.1x gdbserver's time: a rate of 1/1.1.
TARGETS: dict[str, tuple[float, float | None]] = {
    "m1_round_trips": (1 / 1.1, None),
    "bulk_m_max_packet": (3.0, None),
    "bulk_x_max_packet": (3.0, None),
    "bulk_X_write": (1.5, None),
    "single_steps": (1.2, 0.7),
    "breakpoint_hits": (1.2, 0.7),
}
# gdbserver has no x packet (gdb 13's): gdbstub's x is compared with gdbserver's m.
REFERENCE_METRIC = {"bulk_x_max_packet": "bulk_m_max_packet"}
# Launch to the first stop reply: an absolute target, and the part of it no Python server using
# trio can avoid (starting the interpreter and importing trio), measured in the same run.
STARTUP_TARGET_MS = 50.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    parser.add_argument("--reps", type=int, help="repetitions per server (default 3, quick 1)")
    parser.add_argument("--mib", type=int, help="bulk-read buffer size in MiB")
    parser.add_argument("--steps", type=int, help="single steps per repetition")
    parser.add_argument("--hits", type=int, help="breakpoint hits per repetition")
    parser.add_argument("--round-trips", type=int, help="requests per small-packet kind")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--run-control-in-turns", action="store_true",
                        help="time steps and breakpoint hits in batches, the servers taking turns "
                             "(see measurements.run_control_in_turns)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run gdbstub in the caller's environment (by default it runs from "
                             "a bytecode cache, as an installed package would)")
    return parser.parse_args(argv)


def choose_sizes(args: argparse.Namespace) -> Sizes:
    base = measurements.QUICK if args.quick else measurements.FULL
    return Sizes(
        mib=args.mib or base.mib,
        round_trips=args.round_trips or base.round_trips,
        steps=args.steps or base.steps,
        breakpoint_hits=args.hits or base.breakpoint_hits,
    )


def run(specs: tuple[servers.ServerSpec, ...], sizes: Sizes, reps: int, in_turns: bool = False
        ) -> tuple[dict[str, dict[str, list[float | None]]], list[str], dict]:
    """Samples per server per metric, the errors met, and per-server details."""
    target = target_program.build()
    samples: dict[str, dict[str, list[float | None]]] = {s.name: {m: [] for m in METRICS} for s in specs}
    errors: list[str] = []
    details: dict[str, dict] = {}
    for rep in range(reps):
        order = specs if rep % 2 == 0 else tuple(reversed(specs))
        for spec in order:
            began = time.perf_counter()
            try:
                result = measurements.measure_session(spec, target, sizes, with_run_control=not in_turns)
            except Exception as exc:  # noqa: BLE001 - report it, keep measuring the rest
                errors.append(f"{spec.name} repetition {rep + 1}: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
                continue
            for metric, value in result.values.items():
                samples[spec.name][metric].append(value)
            details[spec.name] = result.details
            print(f"  repetition {rep + 1}/{reps} {spec.name}: {time.perf_counter() - began:.1f} s",
                  file=sys.stderr, flush=True)
        if in_turns:
            began = time.perf_counter()
            try:
                rates = measurements.run_control_in_turns(order, target, sizes)
            except Exception as exc:  # noqa: BLE001 - report it, keep measuring the rest
                errors.append(f"steps and hits, repetition {rep + 1}: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
                continue
            for name, values in rates.items():
                for metric, value in values.items():
                    samples[name][metric].append(value)
            print(f"  repetition {rep + 1}/{reps} steps and hits, in turns: "
                  f"{time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    return samples, errors, details


def startup_floor_ms(specs: tuple[servers.ServerSpec, ...], runs: int = 5) -> float:
    """Median wall time of `python -c 'import trio'` in gdbstub's environment."""
    spec = next(s for s in specs if s.name == "gdbstub")
    python = str(servers.REPO / ".venv" / "bin" / "python")
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([python, "-c", "import trio"], check=True, env=spec.environment())
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(samples: dict[str, dict[str, list[float | None]]]) -> list[dict]:
    rows = []
    for metric, (unit, better) in METRICS.items():
        reference = median(samples["gdbserver"][metric])
        ours = median(samples["gdbstub"][metric])
        compared = median(samples["gdbserver"][REFERENCE_METRIC.get(metric, metric)])
        ratio = ours / compared if ours is not None and compared else None
        row = {"metric": metric, "description": DESCRIPTIONS[metric], "unit": unit, "better": better,
               "gdbserver": reference, "gdbstub": ours, "ratio": ratio,
               "samples": {name: samples[name][metric] for name in samples}}
        if metric in TARGETS:
            goal, defect = TARGETS[metric]
            row["target_ratio"] = goal
            row["verdict"] = verdict(ratio, goal, defect)
        rows.append(row)
    return rows


def verdict(ratio: float | None, goal: float, defect: float | None) -> str:
    if ratio is None:
        return "unmeasured"
    if ratio >= goal:
        return "meets target"
    if defect is not None and ratio < defect:
        return "DEFECT"
    return "below target"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def print_table(rows: list[dict]) -> None:
    header = ("metric", "unit", "gdbserver", "gdbstub", "ratio", "note")
    lines = [header]
    for row in rows:
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        note = f"{row['better']} is better"
        if row["metric"] in REFERENCE_METRIC:
            note += f"; ratio to gdbserver's {DESCRIPTIONS[REFERENCE_METRIC[row['metric']]]}"
        if "verdict" in row:
            note += f"; target >= {row['target_ratio']:.1f}x: {row['verdict']}"
        lines.append((row["description"], row["unit"], _fmt(row["gdbserver"]), _fmt(row["gdbstub"]), ratio, note))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligns = ["<", "<", ">", ">", ">", "<"]
    for index, line in enumerate(lines):
        print("  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(line, aligns, widths)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = choose_sizes(args)
    reps = args.reps or (1 if args.quick else 3)
    print(f"sizes: {sizes}, repetitions: {reps}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    specs = servers.SERVERS
    if not args.no_bytecode_cache:
        specs = tuple(servers.with_bytecode_cache(s) if s is servers.GDBSTUB else s for s in specs)
    samples, errors, details = run(specs, sizes, reps, args.run_control_in_turns)
    rows = summarize(samples)
    print_table(rows)
    floor_ms = startup_floor_ms(specs)
    startup = next(r["gdbstub"] for r in rows if r["metric"] == "startup_to_first_stop")
    print(f"launch to first stop: {_fmt(startup)} ms (target <= {STARTUP_TARGET_MS:.0f} ms); "
          f"starting Python and importing trio alone: {floor_ms:.0f} ms")
    load_after = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if max(load_before, load_after) > cpus * 0.75:
        # Both servers share the machine with whatever else runs: ratios hold up better than
        # absolute numbers, but neither is worth much on a saturated machine.
        print(f"warning: load average {load_before:.1f} before, {load_after:.1f} after, on {cpus} CPUs: "
              "numbers are noisy")
    for error in errors:
        print(f"error: {error}")
    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.perf_counter() - began, 2),
        "quick": args.quick,
        "repetitions": reps,
        "run_control_in_turns": args.run_control_in_turns,
        "sizes": vars(sizes),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": cpus, "load_average_before": load_before, "load_average_after": load_after},
        "servers": {spec.name: {"version": spec.version(), "command": list(spec.command),
                                "environment_changes": dict(spec.env),
                                **details.get(spec.name, {})} for spec in specs},
        "metrics": rows,
        "startup_floor_ms": floor_ms,
        "startup_target_ms": STARTUP_TARGET_MS,
        "errors": errors,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
