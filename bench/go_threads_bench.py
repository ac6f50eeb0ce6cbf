"""Benchmark the thread list of a Go program with 10,000 goroutines, goroutines as threads.

usage: python bench/go_threads_bench.py [--goroutines N] [--stops N] [--output FILE]

The debuggee is tests/goprograms/waiters (Go 1.27, through tests/gotoolchains.py) with
$GOAWARE_MANY=N extra goroutines parked on one channel; it blocks in main.stopHere, where each
server first stops it. Three servers run at once on their own copies of the program:

  gdbstub --go-goroutines   every goroutine is a thread: N + ~30 threads
  gdbstub                   the kernel's threads (named after their goroutines)
  gdbserver                 the kernel's threads

For each, a stop is made `--stops` times (vCont;c, then ^C: a new stop, so nothing read at the
previous one can be reused), and at each stop the client reads what gdb reads: the stop
reply, then the thread list through qXfer:threads:read (gdb's chunk sizes) and through
qfThreadInfo/qsThreadInfo. Every list is checked (goroutine threads: every goroutine of the
program's own dump is there). Medians go to stdout and bench/results/go_threads.json; the
target is a whole stop (reply and both lists) under 0.5 s with goroutines as threads.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import servers  # first: it puts the repository root on sys.path
from packets.framing import unescape_binary
from tests.godump import parse_dump
from tests.gotoolchains import build, go_binary, go_env
from tests.rsp_client import Client, ProtocolError, parse_stop_reply

RESULTS = Path(__file__).resolve().parent / "results" / "go_threads.json"
MINOR = "1.27"
BASE = 1_000_000_000
TARGET_SECONDS = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goroutines", type=int, default=10_000)
    parser.add_argument("--stops", type=int, default=10, help="stops measured per server")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def stop_here(binary: Path) -> int:
    out = subprocess.run([str(go_binary(MINOR)), "tool", "nm", str(binary)], capture_output=True,
                         text=True, check=True, env=go_env(MINOR)).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[-1] == "main.stopHere":
            return int(fields[0], 16)
    raise SystemExit("main.stopHere not found")


def read_xfer(client: Client, packet_size: int) -> bytes:
    document = bytearray()
    buffer_size = 4096
    while True:
        want = min(buffer_size - len(document), packet_size - 5)
        reply = client.request(b"qXfer:threads:read::%x,%x" % (len(document), want), timeout=120)
        if reply[:1] not in (b"m", b"l"):
            raise ProtocolError(f"qXfer:threads answered {reply[:80]!r}")
        document += unescape_binary(reply[1:])
        if reply[:1] == b"l":
            return bytes(document)
        if len(document) >= buffer_size:
            buffer_size *= 2


def read_finfo(client: Client) -> list[int]:
    ids: list[int] = []
    reply = client.request(b"qfThreadInfo", timeout=120)
    while reply[:1] == b"m":
        ids += [int(t.split(b".")[-1], 16) for t in reply[1:].split(b",")]
        reply = client.request(b"qsThreadInfo", timeout=120)
    if reply != b"l":
        raise ProtocolError(f"qfThreadInfo ended with {reply[:40]!r}")
    return ids


def measure(name: str, spec: servers.ServerSpec, binary: Path, args, dump_dir: Path) -> dict:
    dump_path = dump_dir / f"{name.replace(' ', '_')}.txt"
    spec = servers.ServerSpec(spec.name, spec.command, spec.env + (
        ("GOAWARE_DUMP", str(dump_path)), ("GOAWARE_MANY", str(args.goroutines))))
    samples: dict[str, list[float]] = {"stop": [], "xfer": [], "finfo": [], "total": []}
    counts = set()
    with servers.start(spec, [str(binary)]) as server:
        client = server.connect()
        features, _ = client.handshake()
        packet_size = int(str(features.get("PacketSize", "3fff")), 16)
        # What gdb passes without a stop (SIGURG among them: the runtime preempts with it).
        client.request_ok(b"QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97")
        client.request_ok(b"Z0,%x,1" % stop_here(binary))
        first = parse_stop_reply(client.request(b"vCont;c", timeout=120))
        if first.signal != 5:
            raise ProtocolError(f"{name}: first stop {first}")
        client.request_ok(b"z0,%x,1" % stop_here(binary))
        dump = parse_dump(dump_path.read_text())
        for _ in range(args.stops):
            client.send(b"vCont;c")
            time.sleep(0.05)
            began = time.perf_counter()
            client.send_raw(b"\x03")
            stop = parse_stop_reply(client.read_reply(timeout=120))
            stopped = time.perf_counter()
            xml = read_xfer(client, packet_size)
            listed = time.perf_counter()
            ids = read_finfo(client)
            ended = time.perf_counter()
            if stop.signal not in (2, 0):
                raise ProtocolError(f"{name}: interrupt stopped with {stop}")
            if xml.count(b"<thread ") != len(ids):
                raise ProtocolError(f"{name}: qXfer listed {xml.count(b'<thread ')}, "
                                    f"qfThreadInfo {len(ids)}")
            if "goroutines" in name and not {BASE + d.goid for d in dump} <= set(ids):
                raise ProtocolError(f"{name}: a goroutine of the dump is not a thread")
            counts.add(len(ids))
            samples["stop"].append(stopped - began)
            samples["xfer"].append(listed - stopped)
            samples["finfo"].append(ended - listed)
            samples["total"].append(ended - began)
        client.send(b"k")
        client.close()
    return {"threads": sorted(counts), **{k: statistics.median(v) for k, v in samples.items()}}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    binary = build(MINOR, "waiters")
    gdbstub = servers.with_bytecode_cache(servers.GDBSTUB)
    goroutines = servers.ServerSpec("gdbstub", (gdbstub.command[0], "--go-goroutines", *gdbstub.command[1:]),
                                  gdbstub.env)
    runs = [("gdbstub --go-goroutines", goroutines), ("gdbstub", gdbstub),
            ("gdbserver", servers.GDBSERVER)]
    results = {}
    with tempfile.TemporaryDirectory() as dump_dir:
        for name, spec in runs:
            results[name] = measure(name, spec, binary, args, Path(dump_dir))
    print(f"waiters (Go {MINOR}) with {args.goroutines} extra goroutines, medians of "
          f"{args.stops} stops (ms)")
    print(f"{'server':26} {'threads':>8} {'stop':>8} {'qXfer':>8} {'qfThread':>9} {'total':>8}")
    for name, r in results.items():
        print(f"{name:26} {'/'.join(map(str, r['threads'])):>8} {r['stop'] * 1e3:8.1f} "
              f"{r['xfer'] * 1e3:8.1f} {r['finfo'] * 1e3:9.1f} {r['total'] * 1e3:8.1f}")
    total = results["gdbstub --go-goroutines"]["total"]
    print(f"goroutines as threads: a whole stop takes {total:.3f} s "
          f"(target < {TARGET_SECONDS} s): {'met' if total < TARGET_SECONDS else 'NOT met'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "machine": platform.platform(), "goroutines": args.goroutines, "stops": args.stops,
        "go": MINOR, "target_seconds": TARGET_SECONDS, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
