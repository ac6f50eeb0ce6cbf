"""Soak: long runs that turn leaks into figures, gdbstub beside gdbserver (make soak).

usage: python bench/soak.py [--cycles N] [--threads N] [--relaunches N] [--output FILE]

  breakpoints  one server on tests/programs/threads_bench.c with 50 blocked threads and a
               main thread calling tick(): N breakpoint cycles as gdb does them (z0,
               vCont;s, Z0, vCont;c -> stop at tick()), every stop checked. The server's
               resident memory and open descriptors are sampled after a warm-up tenth and at
               the end: growth is what a long session would leak.
  relaunches   N times: start `SERVER --once` on tests/programs/simple.c, connect, handshake,
               disconnect. Each server must exit 0 and its program must be gone (killed and
               reaped, not a zombie) within 5 s; this process's own descriptors must not grow.

Targets (gdbstub): resident memory growth under 5 MB, descriptors flat, no zombie or
leftover program, no failed relaunch. Figures go to stdout and bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import servers
import threads_bench

REPO = Path(__file__).resolve().parent.parent
SIMPLE = REPO / "tests" / "programs" / "build" / "simple"
RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
RSS_GROWTH_TARGET_KB = 5 * 1024


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20000, help="breakpoint cycles per server")
    parser.add_argument("--threads", type=int, default=50, help="blocked threads beside main")
    parser.add_argument("--relaunches", type=int, default=2000, help="--once start/connect/leave cycles")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    return parser.parse_args(argv)


def resident_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return text[text.rindex(")") + 2]


def breakpoint_soak(spec: servers.ServerSpec, cycles: int, threads: int) -> dict:
    session = threads_bench.Session.open(spec, threads_bench.build_program(), threads)
    server_pid = session.server.process.pid
    try:
        warm_up = max(1, cycles // 10)
        began = time.perf_counter()
        for _ in range(warm_up):
            session.cycle()
        start_kb, start_fds = resident_kb(server_pid), descriptors(server_pid)
        curve = []
        for done in range(warm_up, cycles):
            session.cycle()
            if (done + 1) % max(1, cycles // 10) == 0:
                curve.append((done + 1, resident_kb(server_pid)))
        elapsed = time.perf_counter() - began
        end_kb, end_fds = resident_kb(server_pid), descriptors(server_pid)
    finally:
        session.close()
    return {"cycles": cycles, "seconds": elapsed, "rss_start_kb": start_kb, "rss_end_kb": end_kb,
            "rss_growth_kb": end_kb - start_kb, "fds_start": start_fds, "fds_end": end_fds,
            "rss_curve_kb": curve}


def own_descriptors() -> int:
    gc.collect()  # a finished server's pipe is closed when its Popen object goes
    return descriptors(os.getpid())


def relaunch_soak(spec: servers.ServerSpec, relaunches: int) -> dict:
    own_fds_start = None
    failures: list[str] = []
    leftovers: list[tuple[int, str | None]] = []
    began = time.perf_counter()
    for i in range(relaunches):
        server = servers.start(spec, [str(SIMPLE)])
        try:
            client = server.connect()
            _, stop = client.handshake()
            pid, _ = threads_bench.parse_thread_id(stop.thread)
            client.close()
            status = server.process.wait(timeout=10)
        except Exception as exc:  # noqa: BLE001 - a failed cycle is a figure, not the end
            failures.append(f"cycle {i}: {exc!r}")
            server.stop(grace=1.0)
            continue
        if status != 0:
            failures.append(f"cycle {i}: exit status {status}")
        deadline = time.monotonic() + 5
        while process_state(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        if process_state(pid) is not None:
            leftovers.append((pid, process_state(pid)))
        del server
        if own_fds_start is None:
            own_fds_start = own_descriptors()  # after one cycle has opened what any cycle needs
    elapsed = time.perf_counter() - began
    return {"relaunches": relaunches, "seconds": elapsed, "failures": failures[:20],
            "failed": len(failures), "leftover_programs": leftovers[:20], "leftover": len(leftovers),
            "zombies": sum(1 for _, state in leftovers if state == "Z"),
            "own_fds_start": own_fds_start, "own_fds_end": own_descriptors()}


def without_once(spec: servers.ServerSpec) -> servers.ServerSpec:
    return servers.ServerSpec(spec.name, tuple(a for a in spec.command if a != "--once"), spec.env)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    gdbstub = servers.with_bytecode_cache(servers.GDBSTUB)
    specs = (servers.GDBSERVER, gdbstub)
    began = time.time()
    results: dict = {"benchmark": "soak",
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(began)),
                     "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                 "cpus": os.cpu_count()},
                     "versions": {spec.name: spec.version() for spec in specs},
                     "threads": args.threads + 1, "servers": {}}
    for spec in specs:
        print(f"{spec.name}: {args.cycles} breakpoint cycles, {args.threads + 1} threads ...", flush=True)
        breakpoints = breakpoint_soak(spec, args.cycles, args.threads)
        print(f"{spec.name}: {args.relaunches} --once relaunches ...", flush=True)
        relaunches = relaunch_soak(spec, args.relaunches)
        results["servers"][spec.name] = {"breakpoints": breakpoints, "relaunches": relaunches}

    print(f"\n{'':10} {'cycles/s':>9} {'RSS start':>10} {'growth':>8} {'fds':>9} "
          f"{'relaunch/s':>10} {'failed':>6} {'leftover':>8} {'own fds':>9}")
    for name, per in results["servers"].items():
        b, r = per["breakpoints"], per["relaunches"]
        print(f"{name:10} {b['cycles'] / b['seconds']:>9.0f} {b['rss_start_kb'] / 1024:>8.1f}MB "
              f"{b['rss_growth_kb'] / 1024:>6.2f}MB {b['fds_start']:>4}->{b['fds_end']:<4} "
              f"{r['relaunches'] / r['seconds']:>10.1f} {r['failed']:>6} {r['leftover']:>8} "
              f"{r['own_fds_start']:>4}->{r['own_fds_end']:<4}")
    stub = results["servers"]["gdbstub"]
    met = {"rss_growth_under_5MB": stub["breakpoints"]["rss_growth_kb"] < RSS_GROWTH_TARGET_KB,
           "descriptors_flat": stub["breakpoints"]["fds_start"] == stub["breakpoints"]["fds_end"]
           and stub["relaunches"]["own_fds_start"] == stub["relaunches"]["own_fds_end"],
           "no_leftover_or_zombie": stub["relaunches"]["leftover"] == 0,
           "no_failed_relaunch": stub["relaunches"]["failed"] == 0}
    results["targets_met"] = met
    print("\ngdbstub targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in met.items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.output}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
