"""Profile gdbstub (under cProfile) while the benchmark client drives one workload against it.

usage: python bench/profile_server.py WORKLOAD [--count N] [--top N] [--output FILE]
                                         [--pyinstrument PYTHON]

WORKLOAD is one of: steps, breakpoints, bulk-m, bulk-x, bulk-X (writes), round-trips-m,
round-trips-g. The server
runs as ``python -m cProfile -o FILE -m gdbstub --once ...``; the client kills the process at the
end, so the server exits normally and cProfile writes its file, of which the top functions by
internal and by cumulative time are printed.

cProfile counts every resumption of a coroutine as a call and slows small functions a lot; for a
wall-clock view with less distortion, ``--pyinstrument PYTHON`` runs the server under the
pyinstrument of another interpreter (a scratch venv with pyinstrument installed, never the
project's), with the project and its venv's packages on PYTHONPATH, and prints its text report.
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import time
from pathlib import Path

import measurements
import servers  # first: it puts the repository root on sys.path, for tests.rsp_client
import target_program
from tests.rsp_client import parse_stop_reply

WORKLOADS = ("steps", "breakpoints", "bulk-m", "bulk-x", "bulk-X", "round-trips-m",
             "round-trips-g")
DEFAULT_COUNTS = {"steps": 5000, "breakpoints": 2000, "bulk-m": 64, "bulk-x": 64, "bulk-X": 64,
                  "round-trips-m": 5000, "round-trips-g": 5000}


def profiled_gdbstub(output: Path) -> servers.ServerSpec:
    python = servers.REPO / ".venv" / "bin" / "python"
    return servers.ServerSpec("gdbstub (cProfile)", (str(python), "-m", "cProfile", "-o", str(output),
                                                     "-m", "gdbstub", "--once", "127.0.0.1:0"))


def pyinstrument_gdbstub(python: Path, output: Path) -> servers.ServerSpec:
    return servers.ServerSpec("gdbstub (pyinstrument)", (
        str(python), "-m", "pyinstrument", "--interval", "0.0001", "--show-all", "-r", "text",
        "-o", str(output), "-m", "gdbstub", "--once", "127.0.0.1:0"))


def project_pythonpath() -> str:
    site = next((servers.REPO / ".venv" / "lib").glob("python3*/site-packages"))
    return os.pathsep.join([str(servers.REPO), str(site)])


def drive(spec: servers.ServerSpec, workload: str, count: int) -> str:
    """Run ``workload`` against a fresh server; returns a one-line result."""
    target = target_program.build()
    mib = count if workload.startswith("bulk") else 1
    with servers.start(spec, target.argv(mib, count + 1000)) as server:
        client = server.connect()
        try:
            features, _ = client.handshake()
            ready = target.symbols["bench_ready"]
            client.request_ok(b"Z0,%x,1" % ready)
            stop = parse_stop_reply(client.request(b"vCont;c"))
            client.request_ok(b"z0,%x,1" % ready)
            packet_size = int(str(features["PacketSize"]), 16)
            if workload == "steps":
                result = f"{measurements.single_steps(client, stop.thread, count):,.0f} steps/s"
            elif workload == "breakpoints":
                rate = measurements.breakpoint_hits(client, stop.thread, target.symbols["bench_tick"], count)
                result = f"{rate:,.0f} hits/s"
            elif workload == "bulk-X":
                sizes = measurements.Sizes(mib=mib, round_trips=0, steps=0, breakpoint_hits=0)
                rate = measurements.bulk_write(client, target, sizes, packet_size)
                result = f"{rate:,.1f} MB/s"
            elif workload.startswith("bulk"):
                binary = workload == "bulk-x"
                buffer = measurements.read_u64(client, target.symbols["bench_buffer"])
                chunk = packet_size - 2 if binary else (packet_size - 1) // 2
                rate, _ = measurements.bulk_read(client, buffer, mib << 20, chunk, binary)
                result = f"{rate:,.1f} MB/s"
            else:
                packet = b"g" if workload == "round-trips-g" else b"m%x,1" % stop.register_value(measurements.RSP)
                result = f"{measurements.round_trips(client, packet, count):,.0f} req/s"
            measurements.kill(client, stop.thread)
        finally:
            client.close()
        server.process.wait(timeout=60)  # cProfile writes its file as the server exits
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--count", type=int, help="steps, hits, requests, or MiB for bulk reads")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--output", type=Path, help="profile file (default bench/results/server.prof or .txt)")
    parser.add_argument("--pyinstrument", type=Path, metavar="PYTHON",
                        help="profile with pyinstrument, installed for this interpreter")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    results = Path(__file__).resolve().parent / "results"
    output = args.output or results / ("server.txt" if args.pyinstrument else "server.prof")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    count = args.count or DEFAULT_COUNTS[args.workload]
    began = time.perf_counter()
    if args.pyinstrument:
        os.environ["PYTHONPATH"] = project_pythonpath()  # inherited by the server only
        spec = pyinstrument_gdbstub(args.pyinstrument, output)
    else:
        spec = profiled_gdbstub(output)
    result = drive(spec, args.workload, count)
    print(f"{args.workload} x {count} under {spec.name}: {result} ({time.perf_counter() - began:.1f} s)")
    if not output.exists():
        print(f"no profile written to {output}", file=sys.stderr)
        return 1
    if args.pyinstrument:
        print(output.read_text())
        return 0
    stats = pstats.Stats(str(output))
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"profile: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
