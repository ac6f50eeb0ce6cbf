"""Benchmark all-stop run control on a process of 1,000 threads: gdbstub beside gdbserver.

usage: python bench/threads_bench.py [--threads N] [--cycles N] [--lists N] [--output FILE]

The debuggee (tests/programs/threads_bench.c) starts N threads that block at a barrier that
never opens, then its main thread calls tick() in a loop. Both servers run at once, each
with its own copy of the program, driven by a raw RSP client the way gdb drives them, and
the measurements alternate between the two so that drift in machine load favours neither:

  stop      `vCont;c` sent -> stop reply received: main hits the breakpoint on tick() and
            the server stops the other N threads before it answers
  cycle     one whole breakpoint cycle as gdb does it without displaced stepping:
            z0, vCont;s:main, Z0, vCont;c -> stop reply
  xfer      the thread list through qXfer:threads:read, in gdb's chunk sizes, until 'l'
  finfo     the thread list through qfThreadInfo / qsThreadInfo until 'l'

Every answer is checked (the stop is a SIGTRAP on the main thread at tick(), both lists hold
N + 1 threads), so a fast wrong answer cannot pass for a result. Medians and the ratio
gdbstub / gdbserver go to stdout as a table and to bench/results/threads.json; the target
is a ratio of at most 1 (gdbstub not slower).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import servers  # first: it puts the repository root on sys.path, for tests.rsp_client
from tests.rsp_client import Client, ProtocolError, StopReply, parse_stop_reply

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "tests" / "programs"
PROGRAM = PROGRAMS / "build" / "threads_bench"
RESULTS = Path(__file__).resolve().parent / "results" / "threads.json"
RIP = 0x10  # gdb's amd64 register number of the program counter
TARGET_RATIO = 1.0

METRICS: dict[str, str] = {
    "stop": "vCont;c -> stop reply (all threads stopped)",
    "cycle": "z0, vCont;s, Z0, vCont;c -> stop reply",
    "xfer": "qXfer:threads:read until 'l'",
    "finfo": "qfThreadInfo/qsThreadInfo until 'l'",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1000, help="blocked threads (default 1000)")
    parser.add_argument("--cycles", type=int, default=30, help="breakpoint cycles per server")
    parser.add_argument("--lists", type=int, default=20, help="thread-list reads per server and kind")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run gdbstub in the caller's environment (by default it runs from "
                             "a bytecode cache, as an installed package would)")
    return parser.parse_args(argv)


def build_program() -> Path:
    subprocess.run(["make", "-s", "-C", str(PROGRAMS)], check=True)
    return PROGRAM


def symbol_offset(binary: Path, name: str) -> int:
    """The symbol's address in the file (the program is position independent)."""
    out = subprocess.run(["nm", str(binary)], capture_output=True, check=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise LookupError(f"{name} not in {binary}")


def load_base(pid: int, binary: Path) -> int:
    """Where the kernel mapped the executable (its first mapping in /proc/PID/maps)."""
    target = str(binary.resolve())
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == target and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise LookupError(f"{target} is not mapped in process {pid}")


def parse_thread_id(text: bytes) -> tuple[int, int]:
    """'pPID.TID' (multiprocess syntax) as numbers."""
    pid, _, tid = text.removeprefix(b"p").partition(b".")
    return int(pid, 16), int(tid, 16)


@dataclass
class Session:
    """One server with its own copy of the program, stopped at tick() on the main thread."""

    spec: servers.ServerSpec
    server: servers.RunningServer
    client: Client
    pid: int
    main_thread: bytes
    tick: int
    packet_size: int
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    @classmethod
    def open(cls, spec: servers.ServerSpec, program: Path, threads: int) -> Session:
        server = servers.start(spec, [str(program), str(threads)])
        try:
            client = server.connect()
            features, first = client.handshake()
            pid, _ = parse_thread_id(first.thread)
            tick = load_base(pid, program) + symbol_offset(program, "tick")
            packet_size = int(str(features.get("PacketSize", "3fff")), 16)
            client.request_ok(b"Z0,%x,1" % tick)
            # Run through the creation of every thread to the first tick() (not timed).
            stop = parse_stop_reply(client.request(b"vCont;c"))
            session = cls(spec, server, client, pid, stop.thread, tick, packet_size)
            session.check_stop(stop)
            return session
        except BaseException:
            server.stop(grace=1.0)
            raise

    def check_stop(self, stop: StopReply) -> None:
        if stop.signal != 5 or stop.thread != self.main_thread:
            raise ProtocolError(f"{self.spec.name}: unexpected stop {stop}")
        if RIP in stop.registers and stop.register_value(RIP) != self.tick:
            raise ProtocolError(f"{self.spec.name}: stopped at {stop.register_value(RIP):#x}, "
                                f"not at tick() {self.tick:#x}")

    def cycle(self) -> None:
        """One breakpoint cycle; records 'cycle' and, inside it, 'stop'."""
        client = self.client
        began = time.perf_counter()
        client.request_ok(b"z0,%x,1" % self.tick)
        stepped = parse_stop_reply(client.request(b"vCont;s:" + self.main_thread))
        if stepped.signal != 5 or stepped.thread != self.main_thread:
            raise ProtocolError(f"{self.spec.name}: step ended in {stepped}")
        client.request_ok(b"Z0,%x,1" % self.tick)
        resumed = time.perf_counter()
        stop = parse_stop_reply(client.request(b"vCont;c"))
        ended = time.perf_counter()
        self.check_stop(stop)
        self.samples["stop"].append(ended - resumed)
        self.samples["cycle"].append(ended - began)

    def read_xfer(self, threads: int) -> None:
        """qXfer:threads:read in the sizes gdb asks for: a 4 KiB buffer that doubles when full,
        each request at most the packet size less 5."""
        client = self.client
        began = time.perf_counter()
        document = bytearray()
        buffer_size = 4096
        while True:
            want = min(buffer_size - len(document), self.packet_size - 5)
            reply = client.request(b"qXfer:threads:read::%x,%x" % (len(document), want))
            if reply[:1] not in (b"m", b"l"):
                raise ProtocolError(f"{self.spec.name}: qXfer:threads answered {reply[:80]!r}")
            document += reply[1:]
            if reply[:1] == b"l":
                break
            if len(document) >= buffer_size:
                buffer_size *= 2
        elapsed = time.perf_counter() - began
        listed = document.count(b"<thread ")
        if listed != threads + 1:
            raise ProtocolError(f"{self.spec.name}: qXfer:threads listed {listed} threads")
        self.samples["xfer"].append(elapsed)

    def read_finfo(self, threads: int) -> None:
        client = self.client
        began = time.perf_counter()
        ids: list[bytes] = []
        reply = client.request(b"qfThreadInfo")
        while reply[:1] == b"m":
            ids += reply[1:].split(b",")
            reply = client.request(b"qsThreadInfo")
        elapsed = time.perf_counter() - began
        if reply != b"l" or len(set(ids)) != threads + 1:
            raise ProtocolError(f"{self.spec.name}: qfThreadInfo gave {len(ids)} threads, "
                                f"then {reply[:40]!r}")
        self.samples["finfo"].append(elapsed)

    def close(self) -> None:
        try:
            self.client.request(b"vKill;%x" % self.pid)
            self.client.close()
        except (OSError, ProtocolError):
            pass
        self.server.stop()


def measure(specs: tuple[servers.ServerSpec, ...], program: Path, args: argparse.Namespace
            ) -> dict[str, dict[str, list[float]]]:
    sessions = [Session.open(spec, program, args.threads) for spec in specs]
    try:
        for round_number in range(max(args.cycles, args.lists)):
            order = sessions if round_number % 2 == 0 else list(reversed(sessions))
            for session in order:
                if round_number < args.cycles:
                    session.cycle()
                if round_number < args.lists:
                    session.read_xfer(args.threads)
                    session.read_finfo(args.threads)
    finally:
        for session in sessions:
            session.close()
    return {s.spec.name: s.samples for s in sessions}


def summarise(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float | None]]:
    medians = {name: {m: statistics.median(v) if v else None for m, v in per.items()}
               for name, per in samples.items()}
    ratios: dict[str, float | None] = {}
    for metric in METRICS:
        stub, reference = medians["gdbstub"][metric], medians["gdbserver"][metric]
        ratios[metric] = stub / reference if stub is not None and reference else None
    return {"medians": medians, "ratios": ratios}  # type: ignore[dict-item]


def print_table(summary: dict, threads: int) -> None:
    medians, ratios = summary["medians"], summary["ratios"]
    print(f"\nall-stop with {threads} blocked threads + main (medians, ms; ratio = gdbstub/gdbserver,"
          f" target <= {TARGET_RATIO:g})")
    print(f"{'metric':<8} {'gdbserver':>10} {'gdbstub':>10} {'ratio':>7}  {'':4} what")
    for metric, what in METRICS.items():
        reference, stub, ratio = medians["gdbserver"][metric], medians["gdbstub"][metric], ratios[metric]
        verdict = "ok" if ratio is not None and ratio <= TARGET_RATIO else "SLOW"
        print(f"{metric:<8} {reference * 1e3:>10.2f} {stub * 1e3:>10.2f} {ratio:>7.2f}  {verdict:4} {what}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    program = build_program()
    gdbstub = servers.GDBSTUB if args.no_bytecode_cache else servers.with_bytecode_cache(servers.GDBSTUB)
    specs = (servers.GDBSERVER, gdbstub)
    began = time.time()
    samples = measure(specs, program, args)
    summary = summarise(samples)
    print_table(summary, args.threads)
    results = {
        "benchmark": "threads",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(began)),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "versions": {spec.name: spec.version() for spec in specs},
        "threads": args.threads + 1,
        "cycles": args.cycles,
        "lists": args.lists,
        "metrics": METRICS,
        "unit": "seconds",
        "medians": summary["medians"],
        "ratios": summary["ratios"],
        "target_ratio": TARGET_RATIO,
        "target_met": {m: r is not None and r <= TARGET_RATIO for m, r in summary["ratios"].items()},
        "samples": samples,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
