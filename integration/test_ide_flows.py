"""IDE debugging sessions through gdb/MI, each run against gdbserver and against gdbstub.

Each flow sends what an IDE sends for a remote session, as its sources show:

- VS Code's C/C++ extension (cppdbg), microsoft/MIEngine:
  src/MIDebugEngine/Engine.Impl/DebuggedProcess.cs (GetInitializeCommands: mi-async,
  pagination, -environment-cd, -file-exec-and-symbols, `show architecture`, -break-insert main,
  -target-select remote; the connection stop is continued past; HandleBreakModeEvent: on each
  stop -thread-info and -stack-list-frames; the entry breakpoint is deleted once hit),
  src/MICore/Debugger.cs (pause is -exec-interrupt; AddInternalBreakAction/CmdBreakInternal:
  a breakpoint set or removed while the program runs is changed after an -exec-interrupt, then
  -exec-continue), src/MICore/CommandFactories/MICommandFactory.cs and gdb.cs (-break-insert
  -f, -stack-list-frames 0 1000, -stack-select-frame, -var-create - * "EXPR", -var-assign,
  -data-evaluate-expression), src/MICore/Transports/ServerTransport.cs,
  ClientServerTransport.cs and src/MICore/JsonLaunchOptions.cs (debugServerPath: the server
  runs as a child in miDebuggerPath's directory; gdb connects once serverStarted appears on
  what it watches, stdout by default and stderr with filterStderr).
- Eclipse CDT, eclipse-cdt/cdt, dsf-gdb/org.eclipse.cdt.dsf.gdb/src/org/eclipse/cdt/dsf/:
  gdb/launching/FinalLaunchSequence.java and FinalLaunchSequence_7_12.java (the settings,
  mi-async, non-stop), gdb/service/DebugNewProcessSequence.java (-file-exec-and-symbols,
  -target-select remote), StartOrRestartProcessSequence_7_0.java (temporary breakpoint on main,
  -exec-continue), gdb/service/GDBRunControl_7_0_NS.java (non-stop: -exec-interrupt and
  -exec-continue with --thread-group i1 for the process, --thread N for one thread),
  GDBRunControl_7_2_NS.java (a breakpoint changed while every thread runs: the process's first
  thread is interrupted, the breakpoint changed, the thread resumed), mi/service/
  IMIRunControl.java (executeWithTargetAvailable: the same in all-stop, around the whole
  program) and MIRunControl.java (all-stop: plain -exec-interrupt and -exec-continue, or
  --thread N), mi/service/command/commands/MIExecInterrupt.java, MIExecContinue.java and
  MICommand.java (--thread, --frame, --thread-group); and
  cross/org.eclipse.cdt.launch.remote/src/org/eclipse/cdt/launch/remote/launching/
  RemoteGdbLaunchDelegate.java (the automatic remote launcher runs `GDBSERVER :PORT PROGRAM
  ARGS` and waits for "Listening on port"). Non-stop is off by default
  (IGDBLaunchConfigurationConstants.DEBUGGER_NON_STOP_DEFAULT), so both modes are run.
- CLion: its gdb driver is not public. The flow follows its documented Remote Debug settings
  (symbol file, sysroot, path mappings, 'target remote' args, see
  jetbrains.com/help/clion/remote-debug.html) and the MI commands every front end sends.
- Emacs, emacs-mirror/emacs lisp/progmodes/gdb-mi.el: `set non-stop 1` (dropped when gdb
  refuses it), gud-break `break FILE:LINE`, gud-remove `clear FILE:LINE`, gud-go
  -exec-continue, gud-watch -var-create, tooltips -data-evaluate-expression.

The recipes are read from README.md (the blocks after `<!-- recipe: NAME -->`), with only the
program and the address replaced, so the README shows what these tests run.

What is compared: the async records (reduced to their class and reason by
mi.record_classes) of the reference and the candidate run of a flow, in order for all-stop
flows, and step by step as multisets in non-stop flows, where threads report their stops in
any order. Thread creation and exit race with stops (gdb hears of a thread at the next stop,
or not at all when it came and went between two), so =thread-created/=thread-exited are only
counted. What is checked against ground truth: the program's own output, the breakpoint's
function and line from the source, the thread count from /proc, argument values.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import (
    PROGRAMS_SRC,
    ROOT,
    Programs,
    build_programs,
    free_port,
    gdbstub_executable,
    line_of,
    run_client,
    run_gdb,
    start_server,
)
from lldb_harness import LLDB_TIMEOUT, lldb_batch_argv, lldb_environment, start_any
from lldb_harness import normalize as normalize_lldb
from mi import MiSession, frame_of, record_classes, thread_events

ROLES = ("reference", "candidate")
FOREVER = "2000000000"  # threads_race's ROUNDS: the workers loop until the test ends them
WORKERS = 3
PAUSES = 100            # pauses pressed at random moments in the cppdbg flow
NS_PAUSES = 30          # ... in the CDT non-stop flow (every thread reports each one)
CDT_PAUSES = 20         # ... in the CDT all-stop flow
TOGGLES = 40            # a conditional breakpoint added and removed while the threads run

HIT_LINE = line_of("threads_race.c", "hit-body")  # in hit(), which the workers call
ADD_LINE = line_of("threads.c", "add-share")      # in add_share(), which the workers call

README_ADDRESS = "127.0.0.1:2345"
README_PROGRAM = "examples/build/counter"
_RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\n```\w*\n(.*?)```", re.S)


def recipe(name: str) -> str:
    """The README code block tagged `<!-- recipe: NAME -->`."""
    return dict(_RECIPE.findall((ROOT / "README.md").read_text()))[name]


def launch_json(name: str, *, program: Path, address: str) -> dict[str, Any]:
    """A launch.json recipe from the README, for `program` served on `address`."""
    text = recipe(name).replace("${workspaceFolder}/" + README_PROGRAM, str(program))
    text = text.replace("${workspaceFolder}", str(ROOT)).replace(README_ADDRESS, address)
    return json.loads(text)


def command_line(name: str, address: str) -> list[str]:
    """A command-line recipe from the README, on `address`, with the example's full path."""
    words = shlex.split(recipe(name).replace(README_ADDRESS, address))
    return [str(ROOT / w) if w == README_PROGRAM else w for w in words]


@pytest.fixture(scope="session")
def counter() -> Path:
    """The README's example program, built if needed."""
    return build_programs(ROOT / "examples") / "counter"


# ---------------------------------------------------------------------------------------
# Recording a flow


@dataclass
class Run:
    """What one flow saw against one server."""

    steps: list[tuple[str, list[str]]] = field(default_factory=list)  # (step, record classes)
    threads: tuple[int, int] = (0, 0)   # =thread-created, =thread-exited
    output: str = ""

    def in_order(self) -> list[str]:
        return [c for _, classes in self.steps for c in classes]

    def by_step(self) -> tuple[list[tuple[str, list[str]]], int]:
        """Non-stop: each step's records in any order, but *running records only as a count
        over the session: gdb may print a thread's *running after the command's ^running,
        so that it falls in the next step (every other record comes before a stop the flow
        waits for)."""
        return ([(name, sorted(c for c in classes if c != "*running"))
                 for name, classes in self.steps], self.in_order().count("*running"))

    def transcript(self) -> str:
        return self.output


class Steps:
    """Cuts a session's async records into the steps of a flow."""

    def __init__(self, mi: MiSession, run: Run) -> None:
        self.mi, self.run, self._seen = mi, run, 0

    def end(self, name: str) -> None:
        records = self.mi.log[self._seen:]
        self._seen += len(records)
        self.run.steps.append((name, record_classes(records)))

    def close(self) -> None:
        self.run.threads = thread_events(self.mi.log)


_runs: dict[tuple[str, str], Run] = {}


def run_flow(flow: Callable[..., Run], role: str, reference: str, candidate: str,
             *args: Any) -> Run:
    """The run of `flow` for `role`; each flow runs once per role and module."""
    key = (flow.__name__, role)
    if key not in _runs:
        _runs[key] = flow(reference if role == "reference" else candidate, *args)
    return _runs[key]


def check_flow(flow: Callable[..., Run], role: str, reference: str, candidate: str, *args: Any,
               compare: Callable[[Run], Any] = Run.in_order) -> None:
    """Run `flow` for `role` (its own assertions check it); the candidate's run must also
    compare equal to the reference's."""
    run = run_flow(flow, role, reference, candidate, *args)
    if role == "candidate":
        assert compare(run) == compare(run_flow(flow, "reference", reference, candidate, *args))


def tasks_of(pid: int | None) -> int:
    """How many threads the process has now, from /proc."""
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def wait_for_tasks(pid: int | None, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while tasks_of(pid) < count:
        assert time.monotonic() < deadline, f"the program has {tasks_of(pid)} threads"
        time.sleep(0.01)


def interrupt(mi: MiSession) -> dict[str, Any]:
    """All-stop pause: -exec-interrupt, and the SIGINT stop it brings."""
    mi.command("-exec-interrupt")
    stop = mi.wait_stopped(timeout=15)
    assert (stop.get("reason"), stop.get("signal-name")) == ("signal-received", "SIGINT"), stop
    return stop


def pause_at_random(mi: MiSession, steps: Steps, count: int, rng: random.Random,
                    on_stop: Callable[[MiSession, dict[str, Any]], Any]) -> None:
    """All-stop: pause pressed `count` times at random moments; each -exec-interrupt brings
    its SIGINT stop (none lost, none late), the IDE's queries (`on_stop`), -exec-continue."""
    for _ in range(count):
        time.sleep(rng.uniform(0, 0.02))
        on_stop(mi, interrupt(mi))
        mi.command("-exec-continue", expect="running")
    steps.end(f"{count} pauses")


def assert_at_hit(stop: dict[str, Any], bkptno: str) -> None:
    assert (stop.get("reason"), stop.get("bkptno")) == ("breakpoint-hit", bkptno), stop
    assert frame_of(stop)["func"] == "hit"
    assert frame_of(stop)["line"] == str(HIT_LINE)


def value(mi: MiSession, command: str) -> str:
    return mi.command(command)["payload"]["value"]


def assert_at_add_share(stop: dict[str, Any], bkptno: str) -> None:
    assert (stop.get("reason"), stop.get("bkptno")) == ("breakpoint-hit", bkptno), stop
    assert frame_of(stop)["func"] == "add_share"
    assert frame_of(stop)["line"] == str(ADD_LINE)


def end_session(mi: MiSession, steps: Steps, remove: str) -> None:
    """Remove the breakpoint (`remove`), continue, and see the program exit."""
    mi.command(remove)
    mi.command("-exec-continue", expect="running")
    assert mi.wait_stopped()["reason"] == "exited-normally"
    steps.end("session")
    steps.close()


def threads_report(run: Run, server: Any) -> Run:
    """threads.c's own report, once the server is gone; gdb heard of as many thread ends as
    starts, of the threads it saw (a worker may come and go between two stops)."""
    run.output = server.inferior_output()
    assert "total=6000" in run.output
    created, exited = run.threads
    assert 2 <= created == exited <= 4, run.threads
    return run


def end_race(mi: MiSession, steps: Steps, *, context: str = "",
             resume: str = "-exec-continue") -> int:
    """At a pause in threads_race: set `rounds` to 0 through a variable object (the
    Variables view), read `calls`, resume; the workers leave their loops and the program
    ends. `context`: the --thread/--frame options the IDE gives. Returns the calls read."""
    rounds = mi.command(f'-var-create {context}- * "rounds"')["payload"]["name"]
    mi.command(f'-var-assign {rounds} "0"')
    calls = int(value(mi, f'-data-evaluate-expression {context}"calls"'))
    mi.command(resume, expect="running")
    assert mi.wait_stopped()["reason"] == "exited-normally"
    steps.end("rounds = 0: the program ends")
    steps.close()
    return calls


def race_report(run: Run, server: Any, calls: int) -> Run:
    """threads_race's own report, once the server is gone: the calls read at the last pause
    (each worker may then be inside hit(), one call short of counting it), no SIGTRAP
    received; and gdb heard of every thread's start and end."""
    run.output = server.inferior_output()
    match = re.search(r"calls=(\d+) sigtraps=(\d+)", run.output)
    assert match, run.output
    assert calls <= int(match.group(1)) <= calls + WORKERS, (calls, run.output)
    assert match.group(2) == "0", run.output
    assert run.threads == (WORKERS + 1, WORKERS + 1)
    return run


# ---------------------------------------------------------------------------------------
# VS Code (cppdbg / MIEngine)


def mi_engine_on_stop(mi: MiSession, stop: dict[str, Any]) -> tuple[list, list]:
    """HandleBreakModeEvent: the thread list, then the stopped thread's frames."""
    threads = mi.command("-thread-info")["payload"]["threads"]
    frames = mi.command("-stack-list-frames 0 1000")["payload"]["stack"]
    return threads, frames


@contextlib.contextmanager
def paused_like_mi_engine(mi: MiSession) -> Iterator[dict[str, Any]]:
    """AddInternalBreakAction: -exec-interrupt, the action, then -exec-continue."""
    yield interrupt(mi)
    mi.command("-exec-continue", expect="running")


def vscode_attach_flow(kind: str, programs: Programs) -> Run:
    """cppdbg with miDebuggerServerAddress, the server already running."""
    program = programs.threads.parent / "threads_race"
    rng = random.Random(7)
    run = Run()
    with start_server(kind, program, [str(WORKERS), FOREVER]) as server, MiSession() as mi:
        config = launch_json("vscode-attach", program=program, address=server.address)
        steps = Steps(mi, run)
        first = mi.connect_like_cppdbg(Path(config["program"]),
                                       config["miDebuggerServerAddress"], cwd=config["cwd"])
        assert "reason" not in first  # the connection stop, which MIEngine continues past
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert stop["reason"] == "breakpoint-hit" and frame_of(stop)["func"] == "main", stop
        mi_engine_on_stop(mi, stop)
        mi.command(f"-break-delete {stop['bkptno']}")  # the entry breakpoint
        assert value(mi, '-var-create - * "argc"') == "3"
        assert value(mi, '-data-evaluate-expression "argv[1]"').endswith(f'"{WORKERS}"')
        steps.end("launch: stop at main")

        mi.command("-exec-continue", expect="running")
        wait_for_tasks(server.inferior_pid, WORKERS + 1)
        # Two breakpoints set while the program runs; one is never hit (the SIGTRAP handler:
        # a breakpoint's trap that reached the program would stop there).
        with paused_like_mi_engine(mi):
            hit_bp = mi.command(f"-break-insert -f threads_race.c:{HIT_LINE}")["payload"]["bkpt"]
            trap_bp = mi.command("-break-insert -f on_sigtrap")["payload"]["bkpt"]
        stop = mi.wait_stopped()
        assert_at_hit(stop, hit_bp["number"])
        threads, frames = mi_engine_on_stop(mi, stop)
        assert len(threads) == tasks_of(server.inferior_pid) == WORKERS + 1
        assert [f["func"] for f in frames[:2]] == ["hit", "worker"]
        # The Variables pane: a variable object per local of the selected frame.
        worker_id = frame_of(stop)["args"][0]["value"]
        assert worker_id in {str(i) for i in range(WORKERS)}
        assert value(mi, '-var-create - * "id"') == worker_id
        mi.command("-stack-select-frame 1")
        assert int(value(mi, '-var-create - * "i"')) >= 0
        mi.command("-stack-select-frame 0")
        assert int(value(mi, '-data-evaluate-expression "calls"')) >= 0
        steps.end("breakpoints set while running; one is hit")

        for _ in range(2):  # Continue: hit again, by one worker or another
            mi.command("-exec-continue", expect="running")
            stop = mi.wait_stopped()
            assert_at_hit(stop, hit_bp["number"])
            mi_engine_on_stop(mi, stop)
        mi.command(f"-break-delete {hit_bp['number']}")
        mi.command("-exec-continue", expect="running")
        steps.end("hit twice more, removed while stopped")

        pause_at_random(mi, steps, PAUSES, rng, mi_engine_on_stop)

        with paused_like_mi_engine(mi):
            mi.command(f"-break-delete {trap_bp['number']}")
        steps.end("breakpoint removed while running")

        mi_engine_on_stop(mi, interrupt(mi))
        calls = end_race(mi, steps)
    return race_report(run, server, calls)


def vscode_server_flow(kind: str, programs: Programs) -> Run:
    """cppdbg with debugServerPath: MIEngine starts the server, as it starts gdbserver."""
    program = programs.threads
    config = launch_json("vscode-server", program=program, address=f"127.0.0.1:{free_port()}")
    if kind == "gdbserver":
        config["debugServerPath"] = shutil.which("gdbserver")
    else:
        assert Path(config["debugServerPath"]).samefile(gdbstub_executable())
    argv = [config["debugServerPath"], *shlex.split(config["debugServerArgs"])]
    run = Run()
    # ServerTransport: the server's working directory is miDebuggerPath's; gdb starts once
    # serverStarted is seen on stderr (filterStderr), which start_server waits for too.
    with start_server(kind, program, argv=argv, cwd=Path(config["miDebuggerPath"]).parent) \
            as server, MiSession() as mi:
        assert config["filterStderr"] is True
        assert re.search(config["serverStarted"], server.stderr)
        steps = Steps(mi, run)
        mi.connect_like_cppdbg(Path(config["program"]), config["miDebuggerServerAddress"],
                               cwd=config["cwd"])
        bp = mi.command(f"-break-insert -f threads.c:{ADD_LINE}")["payload"]["bkpt"]
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert frame_of(stop)["func"] == "main"
        mi_engine_on_stop(mi, stop)
        mi.command(f"-break-delete {stop['bkptno']}")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert_at_add_share(stop, bp["number"])
        threads, frames = mi_engine_on_stop(mi, stop)
        assert [f["func"] for f in frames[:2]] == ["add_share", "worker"]
        assert 2 <= len(threads) <= 4  # main and the workers started so far
        assert value(mi, '-var-create - * "n"') in {"1", "2", "3"}
        assert int(value(mi, '-data-evaluate-expression "total"')) >= 0
        end_session(mi, steps, f"-break-delete {bp['number']}")
    return threads_report(run, server)


@pytest.mark.parametrize("role", ROLES)
def test_vscode_attach_to_running_server(role, reference, candidate, programs) -> None:
    check_flow(vscode_attach_flow, role, reference, candidate, programs)


@pytest.mark.parametrize("role", ROLES)
def test_vscode_starts_the_server(role, reference, candidate, programs) -> None:
    check_flow(vscode_server_flow, role, reference, candidate, programs)


# ---------------------------------------------------------------------------------------
# Eclipse CDT (dsf-gdb)


def cdt_on_stop(mi: MiSession, stop: dict[str, Any]) -> list:
    """What the Debug view asks for a stopped thread: its process's threads, its depth and
    frames."""
    tid = stop["thread-id"]
    mi.command("-list-thread-groups i1")
    mi.command(f"-thread-info {tid}")
    mi.command(f"-stack-info-depth --thread {tid} 11")
    return mi.command(f"-stack-list-frames --thread {tid} 0 10")["payload"]["stack"]


def cdt_launch(mi: MiSession, program: Path, server: Any, address: str, *,
               non_stop: bool) -> str:
    """The launch, to the temporary breakpoint on main, then Resume until every worker
    runs; returns main's thread id."""
    mi.connect_like_cdt(program, address, non_stop=non_stop, cwd=ROOT)
    mi.command("-break-insert -t -f main")
    mi.command("-exec-continue", expect="running")
    stop = mi.wait_stopped()
    assert stop["reason"] == "breakpoint-hit" and frame_of(stop)["func"] == "main", stop
    cdt_on_stop(mi, stop)
    tid = stop["thread-id"]
    assert value(mi, f'-var-create --thread {tid} --frame 0 - * "argc"') == "3"
    mi.command("-exec-continue --thread-group i1" if non_stop else "-exec-continue",
               expect="running")
    wait_for_tasks(server.inferior_pid, WORKERS + 1)
    return tid


@contextlib.contextmanager
def thread_paused_like_cdt(mi: MiSession, tid: str, kind: str) -> Iterator[None]:
    """GDBRunControl_7_2_NS.executeWithTargetAvailable while every thread runs: interrupt the
    process's first thread, change the breakpoint, resume that thread."""
    mi.command(f"-exec-interrupt --thread {tid}")
    stop = mi.wait_stopped()
    # gdbserver now and then reports its own SIGSTOP for this interrupt (1 run in 6 here, while
    # workers' hits are in flight) instead of signal 0; gdbstub must always say 0.
    allowed = {"0", "SIGSTOP"} if kind == "gdbserver" else {"0"}
    assert stop["thread-id"] == tid and stop.get("signal-name") in allowed, stop
    yield
    mi.command(f"-exec-continue --thread {tid}", expect="running")


def pause_non_stop(mi: MiSession) -> None:
    """Suspend the process: every thread reports its own stop, for this pause only."""
    mi.command("-exec-interrupt --thread-group i1")
    stops = mi.wait_all_stopped()
    assert len(stops) == WORKERS + 1
    assert {(s["reason"], s["signal-name"]) for s in stops} == {("signal-received", "0")}, stops


def cdt_non_stop_flow(kind: str, programs: Programs) -> Run:
    """Non-stop mode, the server started by the Automatic Remote Debugging Launcher."""
    program = programs.threads.parent / "threads_race"
    port = free_port()
    exe = gdbstub_executable() if kind == "gdbstub" else "gdbserver"
    argv = [exe, f":{port}", str(program), str(WORKERS), FOREVER]
    rng = random.Random(11)
    run = Run()
    with start_server(kind, program, argv=argv, exit_grace=1.0) as server, MiSession() as mi:
        steps = Steps(mi, run)
        main_tid = cdt_launch(mi, program, server, f"127.0.0.1:{port}", non_stop=True)
        steps.end("launch, resume")
        with thread_paused_like_cdt(mi, main_tid, kind):  # a breakpoint added while all run
            bkpt = mi.command(f"-break-insert -f threads_race.c:{HIT_LINE}")["payload"]["bkpt"]
        bkptno = bkpt["number"]
        # Each worker calls hit() in a loop: each stops there, alone; main runs on.
        stops = [mi.wait_stopped() for _ in range(WORKERS)]
        for stop in stops:
            assert_at_hit(stop, bkptno)
        assert sorted(frame_of(s)["args"][0]["value"] for s in stops) == ["0", "1", "2"]
        states = mi.thread_states()
        assert len(states) == tasks_of(server.inferior_pid) == WORKERS + 1
        assert {t for t, s in states.items() if s == "running"} == {main_tid}, states
        tid = stops[0]["thread-id"]
        frames = cdt_on_stop(mi, stops[0])
        assert [f["func"] for f in frames[:2]] == ["hit", "worker"]
        assert (value(mi, f'-var-create --thread {tid} --frame 0 - * "id"')
                == frame_of(stops[0])["args"][0]["value"])
        assert int(value(mi, f'-data-evaluate-expression --thread {tid} --frame 1 "i"')) >= 0
        steps.end("breakpoint set while running stops each worker")

        # Removed while main runs (the workers are stopped: CDT sends it as it is).
        mi.command(f"-break-delete {bkptno}")
        mi.command("-exec-continue --thread-group i1", expect="running")
        steps.end("breakpoint removed while main runs; resume")

        for n in range(NS_PAUSES):
            time.sleep(rng.uniform(0, 0.02))
            pause_non_stop(mi)
            mi.command("-exec-continue --thread-group i1", expect="running")
            steps.end(f"pause {n}")

        mi.command("-exec-interrupt --thread 2")  # one thread, from the Debug view
        stop = mi.wait_stopped()
        assert stop["thread-id"] == "2"
        states = mi.thread_states()
        assert {t for t, s in states.items() if s == "stopped"} == {"2"}, states
        cdt_on_stop(mi, stop)
        mi.command("-exec-continue --thread 2", expect="running")
        steps.end("suspend and resume one thread")

        pause_non_stop(mi)
        steps.end("pause")
        calls = end_race(mi, steps, context=f"--thread {main_tid} --frame 0 ",
                         resume="-exec-continue --thread-group i1")
    return race_report(run, server, calls)


def cdt_conditional_breakpoint_flow(kind: str, programs: Programs) -> Run:
    """Non-stop mode: a conditional breakpoint toggled while every thread runs. gdb
    evaluates the condition (false for every worker) at each hit and resumes the worker, so
    hits are always in flight when the breakpoint is removed."""
    program = programs.threads.parent / "threads_race"
    run = Run()
    with start_server(kind, program, [str(WORKERS), FOREVER]) as server, MiSession() as mi:
        steps = Steps(mi, run)
        main_tid = cdt_launch(mi, program, server, server.address, non_stop=True)
        steps.end("launch, resume")
        for n in range(TOGGLES):
            with thread_paused_like_cdt(mi, main_tid, kind):
                bkpt = mi.command(f'-break-insert -f -c "id == {WORKERS}" '
                                  f"threads_race.c:{HIT_LINE}")["payload"]["bkpt"]
            time.sleep(0.01)
            with thread_paused_like_cdt(mi, main_tid, kind):
                mi.command(f"-break-delete {bkpt['number']}")
            steps.end(f"toggle {n}")
        pause_non_stop(mi)  # every thread is still running: each stops for the pause
        steps.end("pause")
        calls = end_race(mi, steps, context=f"--thread {main_tid} --frame 0 ",
                         resume="-exec-continue --thread-group i1")
    return race_report(run, server, calls)


def cdt_all_stop_flow(kind: str, programs: Programs) -> Run:
    """All-stop mode (CDT's default), the server started by hand (Manual Launcher)."""
    program = programs.threads.parent / "threads_race"
    rng = random.Random(13)
    run = Run()
    with start_server(kind, program, [str(WORKERS), FOREVER]) as server, MiSession() as mi:
        steps = Steps(mi, run)
        main_tid = cdt_launch(mi, program, server, server.address, non_stop=False)
        # executeWithTargetAvailable: interrupt, insert, resume.
        interrupt(mi)
        bp = mi.command(f"-break-insert -f threads_race.c:{HIT_LINE}")["payload"]["bkpt"]
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped()
        assert_at_hit(stop, bp["number"])
        tid = stop["thread-id"]
        frames = cdt_on_stop(mi, stop)
        assert [f["func"] for f in frames[:2]] == ["hit", "worker"]
        assert len(mi.thread_states()) == tasks_of(server.inferior_pid) == WORKERS + 1
        assert (value(mi, f'-var-create --thread {tid} --frame 0 - * "id"')
                == frame_of(stop)["args"][0]["value"])
        mi.command(f"-break-delete {bp['number']}")
        mi.command(f"-exec-continue --thread {tid}", expect="running")
        steps.end("launch, breakpoint set while running, hit, removed")

        pause_at_random(mi, steps, CDT_PAUSES, rng, cdt_on_stop)

        interrupt(mi)
        calls = end_race(mi, steps, context=f"--thread {main_tid} --frame 0 ")
    return race_report(run, server, calls)


@pytest.mark.parametrize("role", ROLES)
def test_eclipse_non_stop(role, reference, candidate, programs) -> None:
    check_flow(cdt_non_stop_flow, role, reference, candidate, programs, compare=Run.by_step)


# A worker may trap on the breakpoint just before the client removes it; its trap is then
# handled with the int3 gone. Like gdbserver (linux-low's check_stopped_by_breakpoint and
# status_pending), the stub puts the PC back on the restored instruction and lets the thread
# run on, as if it had not hit: no SIGTRAP stop, no PC left inside an instruction.


@pytest.mark.parametrize("role", ["reference", "candidate"])
def test_eclipse_non_stop_conditional_breakpoint(role, reference, candidate, programs) -> None:
    check_flow(cdt_conditional_breakpoint_flow, role, reference, candidate, programs,
               compare=Run.by_step)


@pytest.mark.parametrize("role", ROLES)
def test_eclipse_all_stop(role, reference, candidate, programs) -> None:
    check_flow(cdt_all_stop_flow, role, reference, candidate, programs)


# ---------------------------------------------------------------------------------------
# CLion (Remote Debug)


def clion_flow(kind: str, programs: Programs, sources: Path) -> Run:
    """The Remote Debug settings: symbol file, sysroot, path mappings, 'target remote' args."""
    program = programs.threads
    run = Run()
    with start_server(kind, program) as server, MiSession() as mi:
        steps = Steps(mi, run)
        mi.command("-gdb-set mi-async on")
        mi.command(f"-file-exec-and-symbols {program}")                  # Symbol file
        mi.command("-gdb-set sysroot /")                                   # Sysroot
        mi.console(f"set substitute-path {PROGRAMS_SRC} {sources}")        # Path mappings
        mi.console(f"target remote tcp:{server.address}")                 # 'target remote' args
        mi.wait_stopped()
        bp = mi.command(f"-break-insert -f threads.c:{ADD_LINE}")["payload"]["bkpt"]
        for _ in range(2):
            mi.command("-exec-continue", expect="running")
            stop = mi.wait_stopped()
            assert_at_add_share(stop, bp["number"])
            assert frame_of(stop)["fullname"] == str(sources / "threads.c")  # path mapping
            assert 2 <= len(mi.thread_states()) <= 4
            frames = mi.command(f"-stack-list-frames --thread {stop['thread-id']}")
            assert [f["func"] for f in frames["payload"]["stack"][:2]] == ["add_share", "worker"]
            assert value(mi, f'-var-create --thread {stop["thread-id"]} --frame 0 - * "n"') \
                in {"1", "2", "3"}
            assert int(value(mi, '-data-evaluate-expression "total"')) >= 0
        end_session(mi, steps, f"-break-delete {bp['number']}")
    return threads_report(run, server)


@pytest.fixture(scope="module")
def mapped_sources(tmp_path_factory) -> Path:
    """threads.c where a path mapping says it is: another directory than the build's."""
    sources = tmp_path_factory.mktemp("mapped-sources")
    shutil.copy(PROGRAMS_SRC / "threads.c", sources / "threads.c")
    return sources


@pytest.mark.parametrize("role", ROLES)
def test_clion_remote_debug(role, reference, candidate, programs, mapped_sources) -> None:
    check_flow(clion_flow, role, reference, candidate, programs, mapped_sources)


# ---------------------------------------------------------------------------------------
# Command lines: Emacs, gdb, lldb (CodeLLDB)


def counter_line(text: str) -> int:
    """The line of counter.c that holds `text` (the example has no LINE tags)."""
    lines = (ROOT / "examples" / "counter.c").read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


COUNTER_OUTPUT = "done: 5 steps, total 15 (step 5 added 5)"


def emacs_flow(kind: str, counter: Path) -> Run:
    line = counter_line("tally.steps++;")
    run = Run()
    with start_server(kind, counter) as server:
        argv = command_line("emacs", server.address)
        assert argv[:2] == ["gdb", "-i=mi"]
        with MiSession(interpreter=argv[1], extra_args=tuple(argv[2:])) as mi:
            steps = Steps(mi, run)
            mi.wait_stopped()  # the connection, made by -ex before gud says anything
            # gud asks for non-stop mode; gdb, connected in all-stop mode, refuses.
            mi.command("-gdb-set non-stop 1", expect="error")
            mi.command(f"break counter.c:{line}")                        # gud-break
            mi.command("-exec-continue", expect="running")                # gud-go
            stop = mi.wait_stopped()
            assert stop["reason"] == "breakpoint-hit", stop
            assert (frame_of(stop)["func"], frame_of(stop)["line"]) == ("step_once", str(line))
            assert frame_of(stop)["args"] == [{"name": "step", "value": "1"}]
            mi.command("-thread-info")
            frames = mi.command("-stack-list-frames")["payload"]["stack"]
            assert [f["func"] for f in frames] == ["step_once", "main"]
            assert mi.command("-var-create - * tally")["payload"]["numchild"] == "3"  # gud-watch
            assert value(mi, '-data-evaluate-expression "tally.total"') == "0"      # tooltip
            end_session(mi, steps, f"clear counter.c:{line}")           # gud-remove
    run.output = server.inferior_output()
    assert COUNTER_OUTPUT in run.output
    return run


@pytest.mark.parametrize("role", ROLES)
def test_emacs_gud(role, reference, candidate, counter) -> None:
    check_flow(emacs_flow, role, reference, candidate, counter)


def gdb_flow(kind: str, counter: Path) -> Run:
    with start_server(kind, counter) as server:
        argv = command_line("gdb", server.address)
        # The recipe as typed, run to its end (-batch) without the user's gdbinit.
        result = run_gdb([argv[0], "-batch", "-nx", *argv[1:]], cwd=ROOT)
    assert "Breakpoint 1, step_once (step=1)" in result.text, result.raw
    assert re.search(r"^#1 .* in main \(", result.text, re.M), result.raw
    return Run(output=result.text)


@pytest.mark.parametrize("role", ROLES)
def test_gdb_command_line(role, reference, candidate, counter) -> None:
    check_flow(gdb_flow, role, reference, candidate, counter, compare=Run.transcript)


def codelldb_flow(kind: str, counter: Path) -> Run:
    """CodeLLDB's custom launch: its target and process commands, then a breakpoint."""
    with start_any(kind, counter) as server:
        config = launch_json("codelldb", program=counter, address=server.address)
        commands = [*config["targetCreateCommands"], *config["processCreateCommands"],
                    "breakpoint set -n step_once", "continue", "bt", "process kill"]
        raw, _, timed_out = run_client(lldb_batch_argv(None, None, commands),
                                       lldb_environment(), ROOT, LLDB_TIMEOUT)
    assert not timed_out, raw
    assert "stop reason = breakpoint 1.1" in raw, raw
    assert re.search(r"frame #1: .* counter`main", raw), raw
    # The program's own lines come through lldb-server's terminal, or gdbstub's stdout.
    own = re.compile(r"^(hello from counter|  step \d|done: )")
    return Run(output="".join(line for line in normalize_lldb(raw).splitlines(keepends=True)
                              if not own.match(line)))


# lldb's reference is lldb-server, not gdbserver: against gdbserver, lldb 14 misplaces
# breakpoints in a PIE program (it stops in _start on a SIGTRAP instead).
@pytest.mark.parametrize("role", ROLES)
def test_codelldb_custom_launch(role, counter) -> None:
    check_flow(codelldb_flow, role, "lldb-server", "gdbstub", counter, compare=Run.transcript)
