"""The Go symbol file of a stripped program, loaded by real gdb and lldb through gdbstub.

A stripped build (-ldflags=-s -w) and its unstripped twin (same toolchain and flags, so the
same code at the same addresses) of tests/goprograms/waiters are debugged the same way; the
twin's answers come from Go's own symbols and DWARF, which the project did not write:

- gdb: `monitor go symbol-file PATH` writes the file (its one-line report counts the
  functions of .gopclntab), `symbol-file PATH` loads it; then `break main.worker`, `break
  main.go:LINE` (a plain line and a line inside a call inlined into another function) are
  placed at the twin's addresses, and every stop's backtrace (-stack-list-frames: function,
  file, line, pc of each frame, inlined frames included) equals the twin's, hit by hit
  (at main.stopHere once `exec-file PROG` has made gdb look for the main function again;
  before, gdb's `bt` goes on past main.main, which is checked too).
  Runs on a PIE too, whose symbols move with the load bias.
- lldb 14: the file written at start-up by `--go-symbol-file PATH` is added with `target
  symbols add PATH` before connecting (lldb 14 reads no symbol table it adds once it has
  read the program's: see README); `breakpoint set -n main.stopHere` hits at the twin's
  address and `bt` names the same functions.
- errors: `monitor go symbol-file` with no path, an unwritable path, or a C program, says
  why; `--go-symbol-file` with no value, an unwritable path, or a C program exits non-zero
  with one line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from go_harness import (build, go_server, lwp_of, marks, mi_connect, mi_stream, mi_threads,
                        parse_backtrace, parse_dump, parse_goroutines, program_environment)
from harness import gdbstub_executable, run_client, start_server
from lldb_harness import lldb_batch_argv, lldb_environment
from mi import MiSession

from gdbstub.symbols.gobinary import GoBinary

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed (make setup)"),
]
needs_lldb = pytest.mark.skipif(shutil.which("lldb") is None,
                                reason="lldb is not installed (make setup installs it)")

PROGRAM = "waiters"
MARKS = marks(PROGRAM)
# (Go minor, PIE)
GDB_BUILDS = [("1.19", False), ("1.21", True), ("1.24", False), ("1.27", True)]
LLDB_BUILDS = [("1.19", False), ("1.24", False), ("1.27", True)]
# name -> where gdb is told to break. recvInline's line is only ever inlined (into
# main.inlineCaller), so its stops show an inlined frame.
BREAKPOINTS = {"worker": "main.worker",
               "stopHere": f"main.go:{MARKS['stopHere'][1]}",
               "recvInline": f"main.go:{MARKS['recvInline'][1]}"}


def _id(b: tuple[str, bool]) -> str:
    return f"go{b[0]}{'-pie' if b[1] else ''}"


@dataclass
class GdbRun:
    monitor: str                                 # what `monitor go symbol-file` said
    errors: dict[str, str]                       # wrong uses -> what they said
    addresses: dict[str, list[str]]              # breakpoint -> its locations
    hits: dict[str, list[tuple]]                 # breakpoint -> each stop's frames
    before_exec_file: tuple = ()                 # main.stopHere's frames before `exec-file`


def _locations(bkpt: dict) -> list[str]:
    if bkpt.get("addr") != "<MULTIPLE>":
        return [bkpt["addr"]]
    return sorted(loc["addr"] for loc in bkpt["locations"])


def _frames(mi: MiSession) -> tuple:
    stack = mi.command("-stack-list-frames")["payload"]["stack"]
    return tuple((f.get("func"), os.path.basename(f.get("file", "")), f.get("line"), f["addr"])
                 for f in stack)


def _gdb_run(binary: Path, symbol_file: Path | None) -> GdbRun:
    """Break at BREAKPOINTS and record every stop until main.stopHere's (the program gets
    there once every other goroutine is parked, so each hit before it is in both runs)."""
    run = GdbRun("", {}, {}, defaultdict(list))
    with go_server(binary) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        if symbol_file is not None:
            run.monitor = mi_stream(mi, f"monitor go symbol-file {symbol_file}")
            for wrong in ("monitor go symbol-file", f"monitor go symbol-file {symbol_file.parent}"
                          "/missing/x.gosym"):
                run.errors[wrong] = mi_stream(mi, wrong)
            mi.console("set confirm off")
            mi.console(f"symbol-file {symbol_file}")
        numbers = {}
        for name, location in BREAKPOINTS.items():
            bkpt = mi.command(f"-break-insert {location}")["payload"]["bkpt"]
            numbers[bkpt["number"]] = name
            run.addresses[name] = _locations(bkpt)
        while True:
            mi.command("-exec-continue", expect="running")
            stop = mi.wait_stopped(timeout=120)
            assert stop.get("reason") == "breakpoint-hit", stop
            name = numbers[stop["bkptno"]]
            if name == "stopHere" and symbol_file is not None:
                # gdb found the name of the main function ("main", not Go's "main.main")
                # when it read the stripped program, and keeps it through `symbol-file`, so
                # `bt` goes on past main.main; `exec-file` makes it look again (README).
                run.before_exec_file = _frames(mi)
                mi.console(f"exec-file {binary}")
            run.hits[name].append(_frames(mi))
            if name == "stopHere":
                break
        mi_stream(mi, "kill")
    return run


@pytest.fixture(scope="module", params=GDB_BUILDS, ids=[_id(b) for b in GDB_BUILDS])
def gdb_runs(request, tmp_path_factory) -> tuple[GdbRun, GdbRun, Path, Path]:
    minor, pie = request.param
    stripped = build(minor, PROGRAM, stripped=True, pie=pie)
    twin = build(minor, PROGRAM, pie=pie)
    path = tmp_path_factory.mktemp(_id(request.param)) / "waiters.gosym"
    return _gdb_run(stripped, path), _gdb_run(twin, None), path, stripped


def test_monitor_writes_the_symbol_file(gdb_runs) -> None:
    ours, _, path, stripped = gdb_runs
    nfunc = GoBinary(stripped).pclntab.nfunc
    assert re.fullmatch(rf"Go symbol file written to {re.escape(str(path))}: {nfunc} functions, "
                        r"\d+ line rows\n", ours.monitor), ours.monitor
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_monitor_says_what_is_wrong(gdb_runs) -> None:
    ours, _, path, _ = gdb_runs
    assert ours.errors == {
        "monitor go symbol-file": "go symbol-file: give the path of the file to write\n",
        f"monitor go symbol-file {path.parent}/missing/x.gosym":
            f"go symbol-file: cannot write {path.parent}/missing/x.gosym: No such file or "
            "directory\n",
    }


def test_breakpoints_are_placed_where_the_twins_are(gdb_runs) -> None:
    ours, twin, _, _ = gdb_runs
    assert ours.addresses == twin.addresses
    assert all(not a.startswith("<") for locations in ours.addresses.values() for a in locations)


def test_backtraces_at_each_stop_equal_the_twins(gdb_runs) -> None:
    ours, twin, _, _ = gdb_runs
    assert set(ours.hits) == set(BREAKPOINTS)
    for name in BREAKPOINTS:
        assert sorted(ours.hits[name]) == sorted(twin.hits[name]), name
    # What the frames hold: names of user functions, the inlined call, the caller chain.
    [stop_here] = ours.hits["stopHere"]
    assert [f[0] for f in stop_here] == ["main.stopHere", "main.main"]  # gdb stops at main
    assert stop_here[0][1:3] == ("main.go", str(MARKS["stopHere"][1]))
    [inlined] = ours.hits["recvInline"]
    assert [f[0] for f in inlined[:2]] == ["main.recvInline", "main.inlineCaller"]
    assert inlined[0][3] == inlined[1][3]  # one pc, two frames
    assert len(ours.hits["worker"]) == 2   # `go worker(block)` and the closure calling it


def test_without_exec_file_gdb_shows_frames_past_main_main(gdb_runs) -> None:
    ours, twin, _, _ = gdb_runs
    [stop_here] = twin.hits["stopHere"]
    assert [f[0] for f in stop_here] == ["main.stopHere", "main.main"]
    past = ours.before_exec_file
    assert past[:2] == stop_here
    assert [f[0] for f in past[2:4]] == ["runtime.main", "runtime.goexit"]


def test_gdb_unwinds_the_c_frames_of_a_cgo_call_through_the_file(tmp_path: Path) -> None:
    """Once gdb takes the symbol file for a stripped cgo program's symbols, it finds the C code's
    frames there (the program's .eh_frame is in the file): its backtrace of the thread inside
    the C call has the C frames `monitor goroutine N bt` prints, then runtime.asmcgocall. (gdb
    goes no further: it never unwinds from a stack to one at lower addresses, and goroutine
    stacks are below the thread's. lldb does, test_lldb_unwinds_a_cgo_call_into_its_goroutine.)"""
    binary = build("1.27", PROGRAM, stripped=True, cgo=True)
    path = tmp_path / "waiters.gosym"
    with go_server(binary) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi_stream(mi, f"monitor go symbol-file {path}")
        mi.console("set confirm off")
        mi.console(f"symbol-file {path}")
        mi.command("-break-insert main.stopHere")
        mi.command("-exec-continue", expect="running")
        assert mi.wait_stopped(timeout=120).get("reason") == "breakpoint-hit"
        in_c = next(g for g in parse_goroutines(mi_stream(mi, "monitor goroutines")).values()
                    if g.start == "main.cgoSleeper")
        monitor = parse_backtrace(mi_stream(mi, f"monitor goroutine {in_c.goid} bt"))
        thread = next(t["id"] for t in mi_threads(mi) if lwp_of(t) == in_c.tid)
        mi.command(f"-thread-select {thread}")
        stack = mi.command("-stack-list-frames")["payload"]["stack"]
        mi_stream(mi, "kill")
    functions = [f.get("func") for f in stack]
    assert "runtime.asmcgocall" in functions, stack
    c_frames = stack[:functions.index("runtime.asmcgocall")]
    assert monitor.c_frames and not monitor.c_frames_cut
    assert [int(f["addr"], 16) for f in c_frames] == [pc for _, _, pc in monitor.c_frames], \
        (stack, monitor)


def test_monitor_on_a_c_program(programs) -> None:
    with go_server(programs.simple) as server, MiSession() as mi:
        mi_connect(mi, programs.simple, server)
        said = mi_stream(mi, "monitor go symbol-file /tmp/never-written.gosym")
        mi_stream(mi, "kill")
    assert said == "go symbol-file: not a Go program (no Go runtime found in the executable)\n"
    assert not Path("/tmp/never-written.gosym").exists()


# --- lldb -------------------------------------------------------------------------------

_LLDB_BREAKPOINT = re.compile(r"^Breakpoint \d+: where = \S+?`(\S+) .*address = (0x[0-9a-f]+)$",
                              re.M)
_LLDB_FRAME = re.compile(r"^\s+\*? ?frame #\d+: (0x[0-9a-f]+) \S+?`(\S+)", re.M)


def _lldb_run(binary: Path, symbol_file: Path | None) -> tuple[str, str, list[tuple[str, str]]]:
    """(the server's stderr, lldb's transcript, frames of `bt` at main.stopHere)."""
    extra = ["--go-symbol-file", str(symbol_file)] if symbol_file is not None else []
    with start_server("gdbstub", binary, extra=extra, env=program_environment()) as server:
        commands = ["settings set target.preload-symbols false", f"target create {binary}"]
        if symbol_file is not None:
            commands.append(f"target symbols add {symbol_file}")
        commands += [f"gdb-remote {server.address}", "breakpoint set -n main.stopHere", "c", "bt",
                     "breakpoint set -n main.worker", "kill"]
        raw, _, timed_out = run_client(lldb_batch_argv(None, None, commands), lldb_environment(),
                                       None, 120)
        stderr = server.stderr
    assert not timed_out, raw
    raw = raw.replace("\r\n", "\n")
    bt = raw.split("(lldb) bt\n", 1)[1].split("(lldb) ", 1)[0]
    return stderr, raw, [(m.group(1), m.group(2)) for m in _LLDB_FRAME.finditer(bt)]


@needs_lldb
@pytest.mark.parametrize("minor,pie", LLDB_BUILDS, ids=[_id(b) for b in LLDB_BUILDS])
def test_lldb_breaks_by_name_and_names_the_frames(minor: str, pie: bool, tmp_path: Path) -> None:
    stripped, twin = build(minor, PROGRAM, stripped=True, pie=pie), build(minor, PROGRAM, pie=pie)
    path = tmp_path / "waiters.gosym"
    stderr, ours, our_bt = _lldb_run(stripped, path)
    nfunc = GoBinary(stripped).pclntab.nfunc
    assert f"Go symbol file written to {path} ({nfunc} functions)\n" in stderr, stderr
    _, theirs, their_bt = _lldb_run(twin, None)
    ours_bp, theirs_bp = _LLDB_BREAKPOINT.findall(ours), _LLDB_BREAKPOINT.findall(theirs)
    assert [f for f, _ in ours_bp] == ["main.stopHere", "main.worker"], ours
    assert ours_bp == theirs_bp
    assert "stop reason = breakpoint 1.1" in ours
    assert [name for _, name in our_bt[:3]] == ["main.stopHere", "main.main", "runtime.main"], ours
    assert our_bt == their_bt


_LLDB_THREAD = re.compile(r"^\s*\*?\s*thread #\d+, name = '([^']*)'", re.M)


@needs_lldb
@pytest.mark.parametrize("minor", ["1.19", "1.27"])
def test_lldb_unwinds_a_cgo_call_into_its_goroutine(minor: str, tmp_path: Path) -> None:
    """A stripped cgo program with its symbol file: lldb's backtrace of the thread inside the
    C call goes through the C frames and runtime.asmcgocall's switch of stacks (the file's rule
    for it) into the goroutine's Go frames, which are those of Go's own dump of it."""
    binary = build(minor, PROGRAM, stripped=True, cgo=True)
    path, dump = tmp_path / "waiters.gosym", tmp_path / "dump.txt"
    env = program_environment({"GOAWARE_DUMP": str(dump)})
    with start_server("gdbstub", binary, extra=["--go-symbol-file", str(path)], env=env) as server:
        commands = ["settings set target.preload-symbols false", f"target create {binary}",
                    f"target symbols add {path}", f"gdb-remote {server.address}",
                    "breakpoint set -n main.stopHere", "c", "thread backtrace all", "kill"]
        raw, _, timed_out = run_client(lldb_batch_argv(None, None, commands), lldb_environment(),
                                       None, 120)
    assert not timed_out, raw
    raw = raw.replace("\r\n", "\n")
    threads = _LLDB_THREAD.split(raw.split("(lldb) thread backtrace all\n", 1)[1])
    in_c = [bt for name, bt in zip(threads[1::2], threads[2::2])
            if re.fullmatch(r"g\d+ main\.cgoSleeper", name)]
    assert len(in_c) == 1, raw
    names = [m.group(2) for m in _LLDB_FRAME.finditer(in_c[0])]
    assert "libc.so.6" in in_c[0] and "runtime.asmcgocall.abi0" in names, in_c[0]
    go_frames = names[names.index("runtime.asmcgocall.abi0") + 1:]
    assert go_frames[-1] == "runtime.goexit.abi0", in_c[0]
    goroutine = next(d for d in parse_dump(dump.read_text())
                     if d.frames and d.frames[-1][0] == "main.cgoSleeper")
    # Go's dump elides runtime.cgocall, as it elides runtime frames of a goroutine in a call.
    expected = [f for f, _, _ in goroutine.frames]
    assert [f for f in go_frames[:-1] if f != "runtime.cgocall"] == expected, (in_c[0], goroutine)
    assert go_frames[0] == "runtime.cgocall", in_c[0]


# --- the command line -------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([gdbstub_executable(), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, env=program_environment())


def test_cli_needs_a_path() -> None:
    for args in (["--go-symbol-file"], ["--go-symbol-file="]):
        run = _cli(*args)
        assert (run.returncode, run.stderr) == (1, "gdbstub: --go-symbol-file needs a PATH\n"), run


def test_cli_cannot_write(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.gosym"
    run = _cli(f"--go-symbol-file={target}", "127.0.0.1:0",
               str(build("1.27", PROGRAM, stripped=True)))
    assert run.returncode != 0
    assert run.stderr.splitlines()[-1] == \
        f"gdbstub: --go-symbol-file: cannot write {target}: No such file or directory", run.stderr
    assert "Listening" not in run.stderr


def test_cli_on_a_c_program(programs, tmp_path: Path) -> None:
    run = _cli("--go-symbol-file", str(tmp_path / "x.gosym"), "127.0.0.1:0", str(programs.simple))
    assert run.returncode != 0
    assert run.stderr.splitlines()[-1] == \
        f"gdbstub: --go-symbol-file: {programs.simple} is not a Go program", run.stderr
    assert not list(tmp_path.iterdir())
