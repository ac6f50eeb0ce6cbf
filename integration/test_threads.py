"""Multi-threaded debugging with a real gdb: many threads, simultaneous breakpoint hits,
threads that come and go (the leader included), and signals sent to one thread.

Each test runs once against gdbserver (which shows that the test itself holds) and once
against the candidate. Long sessions are driven by a gdb Python script (tests/programs
threads_*.c are the programs) that records every stop as JSON; short ones are gdb batch
scripts whose normalised transcripts must equal gdbserver's.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import (Programs, clean_environment, expand_lines, gdb_batch_argv, run_gdb_batch,
                     start_server)

# How long a driven session may go without recording a stop before it is declared hung.
STALL_TIMEOUT = 10.0


@pytest.fixture(params=["reference", "candidate"])
def server_kind(request, reference: str, candidate: str) -> str:
    return reference if request.param == "reference" else candidate


@pytest.fixture(scope="session")
def build_dir(programs: Programs) -> Path:
    """The build directory of tests/programs (threads_*.c are built with the others)."""
    return programs.simple.parent


# ---------------------------------------------------------------------------------------
# A gdb Python driver: continue until the program exits (or a stop limit), record each stop


DRIVER = r'''
import json, os, re
import gdb

P = json.load(open(PARAMS_PATH))
result = {"stops": [], "snapshots": [], "exited": False, "exit_code": None, "errors": []}
progress = open(P["progress"], "a", buffering=1)


def on_stop(event):
    record = {"kind": type(event).__name__, "lwp": gdb.selected_thread().ptid[1]}
    if isinstance(event, gdb.BreakpointEvent):
        record["bp"] = [b.number for b in event.breakpoints]
        if P.get("arg"):
            record["arg"] = int(gdb.parse_and_eval(P["arg"]))
    elif isinstance(event, gdb.SignalEvent):
        record["signal"] = event.stop_signal
    result["stops"].append(record)


def on_exit(event):
    result["exited"] = True
    result["exit_code"] = getattr(event, "exit_code", None)


def snapshot():
    pid = gdb.selected_inferior().pid
    result["snapshots"].append({
        "stop": len(result["stops"]),
        "info_threads": gdb.execute("info threads", to_string=True),
        "proc_tasks": sorted(int(t) for t in os.listdir("/proc/%d/task" % pid)),
        "bt_all": gdb.execute("thread apply all bt", to_string=True),
    })


gdb.events.stop.connect(on_stop)
gdb.events.exited.connect(on_exit)
for location in P["breaks"]:
    gdb.execute("break " + location)
while not result["exited"] and len(result["stops"]) < P["limit"]:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error as exc:
        result["errors"].append(str(exc))
        break
    progress.write("%d\n" % len(result["stops"]))
    if len(result["stops"]) in P["snapshot_at"] and not result["exited"]:
        snapshot()
if not result["exited"]:
    gdb.execute("kill")
with open(P["result"], "w") as out:
    json.dump(result, out)
'''


@dataclass
class Driven:
    """What a driven session left: the recorded stops and what gdb and the program printed."""

    result: dict[str, Any] | None
    gdb_output: str
    inferior_output: str
    hung: bool

    def describe(self) -> str:
        stops = len(self.result["stops"]) if self.result else "?"
        return (f"hung={self.hung} stops={stops}\n--- gdb (tail) ---\n"
                f"{self.gdb_output[-3000:]}\n--- inferior ---\n{self.inferior_output[-2000:]}")


def run_watched(argv: list[str], progress: Path, *, stall: float, limit: float,
                cwd: Path) -> tuple[str, bool]:
    """Run gdb until it exits; kill it when `progress` stops growing for `stall` seconds.

    A stop that never comes leaves gdb waiting for ever; the watchdog turns that into a
    prompt failure instead of a long timeout.
    """
    out_path = cwd / "gdb.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=clean_environment(),
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        started = last_change = time.monotonic()
        last_size = -1
        hung = False
        while process.poll() is None:
            size = progress.stat().st_size if progress.exists() else 0
            now = time.monotonic()
            if size != last_size:
                last_size, last_change = size, now
            if now - last_change > stall or now - started > limit:
                hung = True
                process.kill()
                break
            time.sleep(0.1)
        process.wait(10)
    return out_path.read_text(errors="replace"), hung


def drive(kind: str, program: Path, args: list[str], workdir: Path, *, breaks: list[str],
          arg: str | None = None, limit: int = 100_000, snapshot_at: tuple[int, ...] = (),
          stall: float = STALL_TIMEOUT, total: float = 600.0) -> Driven:
    """Serve `program` with `kind` and let the driver continue it with `breaks` set."""
    workdir.mkdir(parents=True, exist_ok=True)
    params = {"breaks": breaks, "arg": arg, "limit": limit, "snapshot_at": list(snapshot_at),
              "progress": str(workdir / "progress"), "result": str(workdir / "result.json")}
    (workdir / "params.json").write_text(json.dumps(params))
    script = workdir / "driver.py"
    script.write_text(f"PARAMS_PATH = {str(workdir / 'params.json')!r}\n" + DRIVER)
    with start_server(kind, program, args, cwd=workdir) as server:
        argv = gdb_batch_argv(f"target remote {server.address}", program,
                              [f"source {script}"])
        output, hung = run_watched(argv, workdir / "progress", stall=stall, limit=total,
                                   cwd=workdir)
        server.wait_exit(5.0)
        inferior = server.inferior_output(5.0)
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return Driven(result, output, inferior, hung)


def lwps_listed(info_threads: str) -> list[int]:
    """The LWP ids in gdb's `info threads` table ('Thread PID.LWP' over the remote target)."""
    return sorted(int(m.group(1)) for m in re.finditer(r"\bThread \d+\.(\d+)", info_threads))


def bt_sections(bt_all: str) -> dict[int, str]:
    """`thread apply all bt` split per thread: LWP -> the backtrace printed for it."""
    sections: dict[int, str] = {}
    parts = re.split(r"^Thread \d+ \(Thread \d+\.(\d+)[^\n]*\n", bt_all, flags=re.M)
    for lwp, text in zip(parts[1::2], parts[2::2]):
        sections[int(lwp)] = text
    return sections


# ---------------------------------------------------------------------------------------
# 200 threads, each calling work(id) K times, all alive at once


MANY_THREADS = 200
MANY_ROUNDS = 3


@pytest.fixture
def many_kind(request, server_kind: str, candidate: str) -> str:
    return server_kind


def test_many_threads_every_hit_reported_once(many_kind: str, build_dir: Path,
                                              tmp_path: Path) -> None:
    n, k = MANY_THREADS, MANY_ROUNDS
    run = drive(many_kind, build_dir / "threads_many", [str(n), str(k)], tmp_path,
                breaks=["work"], arg="id", snapshot_at=(1, n * k // 2))
    assert not run.hung and run.result is not None, run.describe()
    result = run.result
    assert result["errors"] == [], run.describe()
    assert result["exited"] and result["exit_code"] == 0, run.describe()
    stops = result["stops"]

    # Every stop is a breakpoint stop at work(): no lost and no doubled hit, no SIGTRAP
    # (or any other signal) of the debugger's own leaking through as a signal stop.
    assert Counter(s["kind"] for s in stops) == {"BreakpointEvent": n * k}, run.describe()
    assert Counter(s["arg"] for s in stops) == {i: k for i in range(n)}
    per_lwp = Counter(s["lwp"] for s in stops)
    assert len(per_lwp) == n and set(per_lwp.values()) == {k}
    # Each work(id) ran on one thread only: gdb attributed each hit to the right thread.
    assert all(len({s["lwp"] for s in stops if s["arg"] == i}) == 1 for i in range(n))
    # The program saw every call and no SIGTRAP.
    assert f"threads={n} rounds={k} calls={n * k} bad=0 sigtraps=0" in run.inferior_output

    # At the first stop all n workers and main exist; in the middle some may have ended.
    # Either way gdb's thread list is exactly the kernel's.
    assert [s["stop"] for s in result["snapshots"]] == [1, n * k // 2]
    for snap in result["snapshots"]:
        listed = lwps_listed(snap["info_threads"])
        assert listed == snap["proc_tasks"], snap["info_threads"]
        sections = bt_sections(snap["bt_all"])
        assert sorted(sections) == listed
        no_frame = [lwp for lwp, text in sections.items() if not re.search(r"^#0 ", text, re.M)]
        assert no_frame == [], snap["bt_all"][-3000:]
    assert len(lwps_listed(result["snapshots"][0]["info_threads"])) == n + 1


# ---------------------------------------------------------------------------------------
# Several threads reaching one breakpoint at the same moment, thousands of times


RACE_THREADS = 4
RACE_STOPS = 3000


@pytest.fixture
def race_kind(request, server_kind: str, candidate: str) -> str:
    return server_kind


def test_simultaneous_hits(race_kind: str, build_dir: Path, tmp_path: Path) -> None:
    """4 threads call hit() in a tight loop: hits arrive while the others are being stopped."""
    run = drive(race_kind, build_dir / "threads_race", [str(RACE_THREADS), "1000000"],
                tmp_path, breaks=["hit"], arg="id", limit=RACE_STOPS)
    assert not run.hung and run.result is not None, run.describe()
    stops = run.result["stops"]
    assert run.result["errors"] == [], run.describe()
    assert len(stops) == RACE_STOPS
    assert Counter(s["kind"] for s in stops) == {"BreakpointEvent": RACE_STOPS}
    # Every thread got to run and hit: none was left behind stopped.
    assert set(s["arg"] for s in stops) == set(range(RACE_THREADS))
    assert len({s["lwp"] for s in stops}) == RACE_THREADS


# ---------------------------------------------------------------------------------------
# Stops that come while new threads are still starting


SPAWN_ROUNDS = 20
SPAWN_BATCH = 10
# The window is a matter of microseconds; each run of the program probes it 20 times.
SPAWN_RUNS = 3


@pytest.fixture
def spawn_kind(request, server_kind: str, candidate: str) -> str:
    return server_kind


def test_stop_while_threads_are_starting(spawn_kind: str, build_dir: Path,
                                         tmp_path: Path) -> None:
    """Main starts 10 threads and at once hits a breakpoint, 20 times; the threads stay
    alive, so every stop must stop all of those started so far."""
    for attempt in range(SPAWN_RUNS):
        run = drive(spawn_kind, build_dir / "threads_spawn", [str(SPAWN_ROUNDS),
                    str(SPAWN_BATCH)], tmp_path / f"run{attempt}", breaks=["spawned"], arg="i")
        assert not run.hung and run.result is not None, f"run {attempt}: {run.describe()}"
        stops = run.result["stops"]
        assert [s["kind"] for s in stops] == ["BreakpointEvent"] * SPAWN_ROUNDS, run.describe()
        assert [s["arg"] for s in stops] == list(range(SPAWN_ROUNDS))
        assert run.result["exited"] and run.result["exit_code"] == 0, run.describe()
        assert run.inferior_output == (f"rounds={SPAWN_ROUNDS} "
                                       f"threads={SPAWN_ROUNDS * SPAWN_BATCH}\n")


# ---------------------------------------------------------------------------------------
# Short sessions compared with gdbserver's


# Run-specific numbers that the shared normalisation keeps: the tid a pthread_join futex
# waits on, and the tids and pids the program prints.
_LOCAL_RULES = [
    (re.compile(r"\bexpected=\d+"), "expected=<TID>"),
    (re.compile(r"\btid=\d+"), "tid=<TID>"),
    (re.compile(r"\bpid=\d+"), "pid=<PID>"),
]


def _normalise(text: str) -> str:
    for pattern, repl in _LOCAL_RULES:
        text = pattern.sub(repl, text)
    # The task list printed from /proc: keep how many, not which.
    return re.sub(r"^tasks \[([\d, ]*)\]$",
                  lambda m: f"tasks <{len(m.group(1).split(','))} tasks>", text, flags=re.M)


@dataclass
class Session:
    raw: str          # what gdb printed
    transcript: str   # normalised gdb output and program output, for the comparison
    inferior: str     # what the program printed


def session(kind: str, program: Path, args: list[str], commands: list[str],
            workdir: Path) -> Session:
    workdir.mkdir(parents=True, exist_ok=True)
    with start_server(kind, program, args, cwd=workdir) as server:
        run = run_gdb_batch(server, program, [expand_lines(c) for c in commands],
                            cwd=workdir, timeout=60)
        server.wait_exit(5.0)
        inferior = server.inferior_output(5.0)
    transcript = _normalise(f"--- gdb (exit {run.returncode}) ---\n{run.text}"
                            f"--- inferior ---\n{inferior}")
    return Session(run.raw, transcript, inferior)


def same_as_reference(reference: str, candidate: str, program: Path, args: list[str],
                      commands: list[str], tmp_path: Path) -> tuple[Session, Session]:
    """Run the session on both servers; fail with a diff when the transcripts differ."""
    expected = session(reference, program, args, commands, tmp_path / "reference")
    assert expected.transcript.startswith("--- gdb (exit 0) ---"), expected.transcript
    actual = session(candidate, program, args, commands, tmp_path / "candidate")
    if actual.transcript != expected.transcript:
        diff = "".join(difflib.unified_diff(
            expected.transcript.splitlines(keepends=True),
            actual.transcript.splitlines(keepends=True), fromfile=reference, tofile=candidate))
        pytest.fail(f"{candidate} differs from {reference}:\n{diff}")
    return expected, actual


def _hits(raw: str, function: str) -> list[str]:
    """The argument lists of breakpoint hits in `function`, in order."""
    return re.findall(rf"hit Breakpoint \d+, {function} \(([^)]*)\)", raw)


# Prints the threads of the stopped process that /proc shows alive (not zombies).
LIVE_TASKS = ("python import os; pid = gdb.selected_inferior().pid; "
              "print('live tasks', sorted(int(t) for t in os.listdir('/proc/%d/task' % pid) "
              "if open('/proc/%d/task/%s/stat' % (pid, t)).read().rsplit(')', 1)[1].split()[0] "
              "not in 'ZX'))")


@pytest.fixture
def leader_kind(request, server_kind: str, candidate: str) -> str:
    return server_kind


def test_leader_exits_worker_runs_on(leader_kind: str, build_dir: Path, tmp_path: Path) -> None:
    """main calls pthread_exit; the worker's breakpoints still hit, gdb lists the live
    thread only, and the process's exit code arrives."""
    run = session(leader_kind, build_dir / "threads_life", ["leader-exit"],
                  ["break after_leader", "continue", "info threads", LIVE_TASKS,
                   "thread apply all bt 1", "continue", "continue", "continue"], tmp_path)
    assert _hits(run.raw, "after_leader") == ["i=0", "i=1", "i=2"], run.raw
    live = re.search(r"^live tasks \[(\d+)\]$", run.raw, re.M)
    assert live, run.raw
    table = run.raw[run.raw.index("Target Id"):live.start()]
    assert lwps_listed(table) == [int(live.group(1))], run.raw
    assert re.search(r"^#0 +after_leader \(i=0\)", run.raw, re.M), run.raw
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 07\]", run.raw), run.raw
    assert run.inferior == "leader gone=1\nworker done calls=3\n"


def test_thread_joined_before_stop_is_gone(build_dir: Path, reference: str, candidate: str,
                                           tmp_path: Path) -> None:
    """A short-lived thread ended and was joined: at the next stop only main is listed."""
    commands = ["break after_join", "continue", "info threads",
                "python import os; print('tasks', sorted(int(t) for t in "
                "os.listdir('/proc/%d/task' % gdb.selected_inferior().pid)))",
                "continue"]
    expected, actual = same_as_reference(reference, candidate, build_dir / "threads_life",
                                         ["joined"], commands, tmp_path)
    for run in (expected, actual):
        tasks = re.search(r"^tasks \[(\d+)\]$", run.raw, re.M)
        assert tasks, run.raw
        table = run.raw[run.raw.index("Target Id"):tasks.start()]
        assert lwps_listed(table) == [int(tasks.group(1))], run.raw
        assert "exited normally]" in run.raw and run.inferior == "joined\n"


def test_thread_exits_while_others_stay_stopped(build_dir: Path, reference: str,
                                                candidate: str, tmp_path: Path) -> None:
    """With scheduler-locking the stopped thread alone runs to its end while main stays
    stopped in pthread_join; gdb hears of the exit, and the session goes on."""
    commands = ["break short_task", "continue", "info threads", "set scheduler-locking on",
                "continue", "info threads", "thread 1", "set scheduler-locking off",
                "continue"]
    expected, actual = same_as_reference(reference, candidate, build_dir / "threads_life",
                                         ["joined"], commands, tmp_path)
    for run in (expected, actual):
        assert "The current thread <Thread ID 2> has terminated." in run.raw, run.raw
        first, second = run.raw.split("Target Id")[1:3]
        assert len(lwps_listed(first)) == 2, run.raw     # main and the short-lived thread
        assert len(lwps_listed(second.split("The current thread")[0])) == 1, run.raw
        assert "exited normally]" in run.raw and run.inferior == "joined\n"


def test_tgkill_reported_on_target_thread(build_dir: Path, reference: str, candidate: str,
                                          tmp_path: Path) -> None:
    """SIGUSR1 sent with tgkill to one worker stops that worker, and is delivered to it."""
    commands = ["handle SIGUSR1 stop print pass", "continue", "thread", "bt 2", "continue"]
    expected, actual = same_as_reference(reference, candidate, build_dir / "threads_life",
                                         ["tgkill"], commands, tmp_path)
    for run in (expected, actual):
        assert re.search(r'^Thread \d+ "threads_life" received signal SIGUSR1', run.raw, re.M), run.raw
        current = re.search(r"^\[Current thread is \d+ \(Thread \d+\.(\d+)\)\]$", run.raw, re.M)
        target = re.search(r"^target tid=(\d+)$", run.inferior, re.M)
        handled = re.search(r"^handled by tid=(\d+)$", run.inferior, re.M)
        assert current and target and handled, run.raw + run.inferior
        assert current.group(1) == target.group(1) == handled.group(1)
        assert "in worker (arg=0x2)" in run.raw
        assert "exited normally]" in run.raw
