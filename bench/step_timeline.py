"""Where the time of a single step, or of a breakpoint-hit cycle, goes inside gdbstub, beside
gdbserver's rate with the same client.

usage: python bench/step_timeline.py [--workload steps|breakpoints] [--count N] [--reps N]

The benchmark client drives the workload as bench/run.py does: single steps (`vCont;s`), or
breakpoint hits with the client's step-over (`vCont;c` to the hit, `z0`, `vCont;s`, `Z0`).
gdbstub runs under this script (`step_timeline.py serve ARGS...`), which wraps, from outside
the server's code, the calls that bound each part, and writes the sums when the server exits:

  client        from a reply's send returning to the next request read: the client's own
                work, the kernel waking it and carrying its packet, the server noticing it
  requests      from a request read to its reply's send, for requests that resume nothing
                (`z0`, `Z0`): decoding, dispatch, the breakpoint's memory access, framing
  to resume     from a resuming request read to PTRACE_SINGLESTEP or PTRACE_CONT: decoding,
                dispatch, run control
  resume call   the PTRACE_SINGLESTEP or PTRACE_CONT system call (it wakes the thread, often
                on another CPU)
  program       from the resume to the first wait status of the thread: the kernel running the
                program until it stops, and the server's waitpid spin seeing it
  to reply      from that status to the reply's send: the status handling, the stop reply and
                framing
  send          the send system calls (each wakes the client)

System calls inside `requests` and `to reply` (siginfo, GETREGS, SETREGS, the core from /proc,
memory reads and writes) are counted apart. The server's Python is `requests`, `to resume` and
`to reply` less those calls; everything else costs the same whatever the server is written in,
and gdbserver makes the same calls. So the report gives, beside gdbserver's time per step or
cycle (from its rate with the same client, in runs alternating with gdbstub's), how much Python
time a ratio target leaves, and the highest ratio any server making these calls could reach
here: gdbserver's time over the time that is not the server's Python. The wrappers cost about a
microsecond a call: the parts add up to a little more than an unwrapped server's time.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUTPUT_VARIABLE = "GDBSTUB_TIMELINE_OUT"
PARTS = ("client", "requests", "to resume", "resume call", "program", "to reply", "send")
SYSCALLS = "system calls in requests and replies"
# Stop replies per unit of the workload: a step has one; a hit cycle two (the hit, the step over).
STOPS_PER_UNIT = {"steps": 1, "breakpoints": 2}
UNIT = {"steps": "step", "breakpoints": "hit"}


def serve(argv: list[str]) -> int:
    """Run gdbstub with the timers in place; the sums go to $GDBSTUB_TIMELINE_OUT at exit."""
    import servers  # noqa: F401  (the repository root on sys.path, for gdbstub)

    from gdbstub import cli, transport
    from gdbstub.process import memory, procfs, ptrace_calls, tracer

    clock = time.perf_counter_ns
    marks: dict[str, int] = {}
    sums = {part: 0 for part in PARTS} | {SYSCALLS: 0, "stops": 0}

    def between(part: str, start: str, end: str) -> None:
        if start in marks and end in marks and marks[end] >= marks[start]:
            sums[part] += marks[end] - marks[start]

    receive, send_all = transport.Connection.receive, transport.Connection.send_all

    # Nothing is counted before the first resume: the connection's set-up is not the workload.
    async def timed_receive(self, *args, **kwargs):
        data = await receive(self, *args, **kwargs)
        marks["read"] = clock()
        if "started" in marks:
            between("client", "sent", "read")
        return data

    async def timed_send(self, data: bytes) -> None:
        marks["sending"] = clock()
        await send_all(self, data)
        marks["sent"] = clock()
        if "started" not in marks:
            return
        between("send", "sending", "sent")
        if "status" in marks:
            between("to reply", "status", "sending")
            sums["stops"] += 1
            del marks["status"]
        elif "resume returned" not in marks:
            between("requests", "read", "sending")

    def timed_resume(call):
        def resume(tid: int, sig: int = 0) -> None:
            marks["resuming"] = clock()
            if "started" in marks:
                between("to resume", "read", "resuming")
            marks["started"] = marks["resuming"]
            call(tid, sig)
            marks["resume returned"] = clock()
            between("resume call", "resuming", "resume returned")
            marks.pop("status", None)
        return resume

    route = tracer.Tracer._route

    def timed_route(self, tid: int, status: int) -> None:
        if "resume returned" in marks:
            marks["status"] = clock()
            between("program", "resume returned", "status")
            del marks["resume returned"]
        route(self, tid, status)

    def counted(function):
        def call(*args, **kwargs):
            began = clock()
            try:
                return function(*args, **kwargs)
            finally:
                sums[SYSCALLS] += clock() - began
        return call

    transport.Connection.receive = timed_receive
    transport.Connection.send_all = timed_send
    ptrace_calls.singlestep = timed_resume(ptrace_calls.singlestep)
    ptrace_calls.cont = timed_resume(ptrace_calls.cont)
    tracer.Tracer._route = timed_route
    for name in ("siginfo", "get_regs", "set_regs"):
        setattr(ptrace_calls, name, counted(getattr(ptrace_calls, name)))
    procfs.thread_core = counted(procfs.thread_core)
    memory.ProcessMemory.read = counted(memory.ProcessMemory.read)
    memory.ProcessMemory.write = counted(memory.ProcessMemory.write)

    def write() -> None:
        Path(os.environ[OUTPUT_VARIABLE]).write_text(json.dumps(sums))

    atexit.register(write)
    sys.argv = ["gdbstub", *argv]
    return cli.main()


def measure(workload: str, count: int, reps: int) -> dict:
    import profile_server
    import servers

    results: dict[str, list[float]] = {"gdbserver": [], "gdbstub": []}
    parts: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "timeline.json"
        timed = servers.ServerSpec("gdbstub (timed)", (
            sys.executable, str(Path(__file__).resolve()), "serve", "--once", "127.0.0.1:0"),
            env=((OUTPUT_VARIABLE, str(output)),))
        for rep in range(reps):
            order = [servers.GDBSERVER, timed] if rep % 2 == 0 else [timed, servers.GDBSERVER]
            for spec in order:
                rate = float(profile_server.drive(spec, workload, count).split()[0].replace(",", ""))
                if spec is timed:
                    results["gdbstub"].append(rate)
                    sums = json.loads(output.read_text())
                    units = sums.pop("stops") / STOPS_PER_UNIT[workload]
                    for name, total in sums.items():
                        parts.setdefault(name, []).append(total / units / 1000)
                else:
                    results["gdbserver"].append(rate)
    return {"workload": workload, "rates": results, "parts_us": parts}


def report(measured: dict, target: float) -> str:
    unit = UNIT[measured["workload"]]
    rates = {name: statistics.median(values) for name, values in measured["rates"].items()}
    parts = {name: statistics.median(values) for name, values in measured["parts_us"].items()}
    gdbserver_us = 1e6 / rates["gdbserver"]
    total = sum(parts[part] for part in PARTS)
    python = parts["requests"] + parts["to resume"] + parts["to reply"] - parts[SYSCALLS]
    rest = total - python
    lines = [f"{'part of a ' + unit:<34}{'us':>8}"]
    for part in PARTS:
        lines.append(f"  {part:<32}{parts[part]:8.1f}")
    lines += [
        f"    {'of which system calls':<30}{parts[SYSCALLS]:8.1f}   (in requests and to reply)",
        f"  {'sum':<32}{total:8.1f}",
        "",
        f"gdbstub (timed): {rates['gdbstub']:,.0f} {unit}s/s; gdbserver: {rates['gdbserver']:,.0f} "
        f"{unit}s/s, {gdbserver_us:.1f} us a {unit} (medians of {len(measured['rates']['gdbstub'])} runs each)",
        f"the server's Python: {python:.1f} us a {unit}; the rest: {rest:.1f} us",
        f"a rate {target:.2f}x gdbserver's allows {gdbserver_us / target:.1f} us a {unit}, "
        f"leaving {gdbserver_us / target - rest:.1f} us for the server's Python",
        f"with no Python time at all, the rest alone would give {gdbserver_us / rest:.2f}x gdbserver's rate",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=tuple(STOPS_PER_UNIT), default="steps",
                        help="single steps, or breakpoint hits with the client's step-over")
    parser.add_argument("--count", "--steps", type=int, default=None,
                        help="steps or hits per run (default 5000 steps, 2000 hits)")
    parser.add_argument("--reps", type=int, default=3, help="runs per server")
    parser.add_argument("--target", type=float, default=1.2, help="the ratio to gdbserver's rate aimed at")
    args = parser.parse_args(argv)
    count = args.count or {"steps": 5000, "breakpoints": 2000}[args.workload]
    print(report(measure(args.workload, count, args.reps), args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
