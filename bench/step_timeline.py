"""Where the time of one single step goes inside gdbstub, beside gdbserver's step rate.

usage: python bench/step_timeline.py [--steps N] [--reps N]

The benchmark client single-steps a thread (`vCont;s`) as bench/run.py does. gdbstub runs under
this script (`step_timeline.py serve ARGS...`), which wraps, from outside the server's code, the
calls that bound each part of a step, and writes the sums when the server exits:

  client        from the reply's send returning to the next request read: the client's own
                work, the kernel waking it and carrying its packet, the server noticing it
  to resume     from the request read to PTRACE_SINGLESTEP: decoding, dispatch, run control
  resume call   the PTRACE_SINGLESTEP system call (it wakes the thread, often on another CPU)
  program       from the resume to the first wait status of the thread: the kernel running one
                instruction and stopping the thread, and the server's waitpid spin seeing it
  to reply      from that status to the reply's send: the status handling, the stop reply
                (with its system calls: siginfo, GETREGS and the core from /proc, counted
                apart) and framing
  send          the send system call (it wakes the client)

The server's Python is `to resume` plus `to reply` less its system calls; everything else costs
the same whatever the server is written in. gdbserver's time per step comes from its rate
with the same client, alternating with gdbstub's run, so the report can say how much Python
time per step a ratio target leaves. The wrappers cost about a microsecond a call: the parts
add up to a little more than an unwrapped server's step.
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
PARTS = ("client", "to resume", "resume call", "program", "to reply", "send")


def serve(argv: list[str]) -> int:
    """Run gdbstub with the timers in place; the sums go to $GDBSTUB_TIMELINE_OUT at exit."""
    import servers  # noqa: F401  (the repository root on sys.path, for gdbstub)

    from gdbstub import cli, transport
    from gdbstub.process import procfs, ptrace_calls, tracer

    clock = time.perf_counter_ns
    marks: dict[str, int] = {}
    sums = {part: 0 for part in PARTS} | {"syscalls in to reply": 0, "steps": 0}

    def between(part: str, start: str, end: str) -> None:
        if start in marks and end in marks and marks[end] >= marks[start]:
            sums[part] += marks[end] - marks[start]

    receive, send_all = transport.Connection.receive, transport.Connection.send_all

    async def timed_receive(self, *args, **kwargs):
        data = await receive(self, *args, **kwargs)
        marks["read"] = clock()
        if "resumed" in marks:  # the reply to a step went out: the client's turn is over
            between("client", "sent", "read")
        marks.pop("resumed", None)
        return data

    async def timed_send(self, data: bytes) -> None:
        marks["sending"] = clock()
        await send_all(self, data)
        marks["sent"] = clock()
        if "status" in marks:
            between("to reply", "status", "sending")
            between("send", "sending", "sent")
            sums["steps"] += 1
            marks["resumed"] = marks.pop("status")

    singlestep = ptrace_calls.singlestep

    def timed_singlestep(tid: int, sig: int = 0) -> None:
        marks["resuming"] = clock()
        between("to resume", "read", "resuming")
        singlestep(tid, sig)
        marks["resume returned"] = clock()
        between("resume call", "resuming", "resume returned")
        marks.pop("status", None)

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
                sums["syscalls in to reply"] += clock() - began
        return call

    transport.Connection.receive = timed_receive
    transport.Connection.send_all = timed_send
    ptrace_calls.singlestep = timed_singlestep
    tracer.Tracer._route = timed_route
    ptrace_calls.siginfo = counted(ptrace_calls.siginfo)
    ptrace_calls.get_regs = counted(ptrace_calls.get_regs)
    procfs.thread_core = counted(procfs.thread_core)

    def write() -> None:
        Path(os.environ[OUTPUT_VARIABLE]).write_text(json.dumps(sums))

    atexit.register(write)
    sys.argv = ["gdbstub", *argv]
    return cli.main()


def measure(steps: int, reps: int) -> dict:
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
                rate = float(profile_server.drive(spec, "steps", steps).split()[0].replace(",", ""))
                if spec is timed:
                    results["gdbstub"].append(rate)
                    sums = json.loads(output.read_text())
                    for name, total in sums.items():
                        if name != "steps":
                            parts.setdefault(name, []).append(total / sums["steps"] / 1000)
                else:
                    results["gdbserver"].append(rate)
    return {"rates": results, "parts_us": parts}


def report(measured: dict, target: float) -> str:
    rates = {name: statistics.median(values) for name, values in measured["rates"].items()}
    parts = {name: statistics.median(values) for name, values in measured["parts_us"].items()}
    gdbserver_us = 1e6 / rates["gdbserver"]
    total = sum(parts[part] for part in PARTS)
    python = parts["to resume"] + parts["to reply"] - parts["syscalls in to reply"]
    lines = [f"{'part of a step':<34}{'us':>8}"]
    for part in PARTS:
        lines.append(f"  {part:<32}{parts[part]:8.1f}")
        if part == "to reply":
            lines.append(f"    {'of which system calls':<30}{parts['syscalls in to reply']:8.1f}")
    lines += [
        f"  {'sum':<32}{total:8.1f}",
        "",
        f"gdbstub (timed): {rates['gdbstub']:,.0f} steps/s; gdbserver: {rates['gdbserver']:,.0f} "
        f"steps/s, {gdbserver_us:.1f} us a step (medians of {len(measured['rates']['gdbstub'])} runs each)",
        f"the server's Python: {python:.1f} us a step; the rest: {total - python:.1f} us",
        f"a rate {target:.2f}x gdbserver's allows {gdbserver_us / target:.1f} us a step, "
        f"leaving {gdbserver_us / target - (total - python):.1f} us for the server's Python",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="single steps per run")
    parser.add_argument("--reps", type=int, default=3, help="runs per server")
    parser.add_argument("--target", type=float, default=1.2, help="the ratio to gdbserver's rate aimed at")
    args = parser.parse_args(argv)
    print(report(measure(args.steps, args.reps), args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
