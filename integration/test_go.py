"""Go programs under gdbstub with real gdb and lldb, checked against oracles outside the project.

Every check runs on Go 1.19, 1.21 and 1.27, on DWARF and `-s -w` builds, on 1.25 (`-s -w`),
and on a cgo build (DWARF and stripped), built once per session through tests/gotoolchains.py's
cache:

- tests/goprograms/waiters writes its own runtime.Stack(all) dump and stops in main.stopHere.
  Through gdb/MI, `monitor goroutines` lists every dumped goroutine with its id and wait
  reason, and `monitor goroutine N bt` prints the dump's frames and `created by` line;
  `info threads` shows every task of /proc/PID/task, the goroutine-running threads named
  `g<ID> <start function>`; `monitor info symbol` agrees with `go tool addr2line`.
  Stripped builds break by an address taken from the DWARF twin with `go tool nm` (the
  twins are checked to share the .text placement and a byte-identical .gopclntab).
- tests/goprograms/goevents: a spinning program gets hundreds of SIGURGs (strace) yet runs
  to its exit without one stop under lldb and gdb; an unrecovered panic and fatal errors
  (a sync misuse, concurrent map writes, a deadlock) stop the client before the exit, on the
  panicking goroutine, whose backtrace holds the frame Go prints, `monitor go panic` prints
  what Go then prints (the message, every kind of panic value, the goroutine header), and
  continuing ends the program as without a debugger; runtime.Breakpoint() stops with
  SIGTRAP and continuing finishes the program.
- waiters with 10,000 extra goroutines: `monitor goroutines` lists every one the dump has
  (its time is printed; bench/go_threads_bench.py measures the thread lists).
- lldb: `thread list` names goroutine threads, `process plugin packet monitor goroutines`.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from go_harness import (
    BUILDS,
    Backtrace,
    DumpGoroutine,
    GoBuild,
    LLDB_THREAD,
    Listed,
    addr2line,
    entry_address,
    gdb_pcs_into_asmcgocall,
    go_server,
    has_symbols,
    line_of,
    lwp_of,
    marks,
    mi_connect,
    rsp_client,
    mi_stream,
    mi_threads,
    nm,
    parse_backtrace,
    parse_dump,
    parse_goroutines,
    parse_info_symbol,
    run_plain,
    same_text,
    strace_signals,
    syscall_number,
    task_ids,
    timed,
)
from harness import gdb_batch_argv, run_gdb
from lldb_harness import run_lldb_batch
from packets.framing import Notification
from mi import MiSession

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed (make setup)"),
]

needs_lldb = pytest.mark.skipif(shutil.which("lldb") is None,
                                reason="lldb is not installed (make setup installs it)")
needs_strace = pytest.mark.skipif(shutil.which("strace") is None,
                                  reason="strace is not installed (apt-get install strace)")

WAITERS = "waiters"
EVENTS = "goevents"
WAITERS_MAIN = str(Path(__file__).resolve().parent.parent / "tests" / "goprograms"
                   / WAITERS / "main.go")
SYS_READ = 0
SYS_NANOSLEEP = (35, 230)  # nanosleep, clock_nanosleep: C's sleep()
SPIN_SECONDS = "1"
SIGURG = 23
SYMBOL_SAMPLES = 40


@pytest.fixture(scope="module", params=BUILDS, ids=[b.id for b in BUILDS])
def gobuild(request) -> GoBuild:
    return request.param


def _user_goroutine(start: str) -> bool:
    """Go's all-goroutines dump leaves out goroutines started in the runtime."""
    return not start.startswith("runtime.") or start == "runtime.main"


def _created_at(d: DumpGoroutine, statement: str) -> bool:
    return d.created_by is not None and d.created_by[1:] == (
        WAITERS_MAIN, line_of(WAITERS, "main.go", statement))


# ---------------------------------------------------------------------------------------
# The stripped twin


def test_stripped_build_shares_the_dwarf_twins_layout(gobuild: GoBuild) -> None:
    for program in (WAITERS, EVENTS):
        binary, twin = gobuild.binary(program), gobuild.twin(program)
        assert has_symbols(twin)
        if gobuild.stripped:
            assert binary != twin and not has_symbols(binary)
            assert same_text(binary, twin), f"{binary} and {twin} differ in layout"
        else:
            assert binary == twin


# ---------------------------------------------------------------------------------------
# One stop in waiters' main.stopHere, looked at from gdb/MI


@dataclass
class WaitersStop:
    gobuild: GoBuild
    twin: Path
    pid: int
    stop: dict                      # the *stopped payload of the breakpoint hit
    stop_addr: int
    stop_lwp: int
    tasks: set[int]                 # /proc/PID/task at the stop
    syscalls: dict[int, int | None]  # per task, the system call it is in
    threads: list[dict]             # -thread-info
    info_threads: str               # `info threads`
    listed: dict[int, Listed]       # `monitor goroutines`
    backtraces: dict[int, Backtrace]
    backtrace_texts: dict[int, str]
    symbols: dict[int, str]         # address -> `monitor info symbol` output
    help: str
    errors: dict[str, str]          # what wrong Go monitor commands answer
    select: str                     # `monitor goroutine N select` (goroutines not threads)
    dump: list[DumpGoroutine]
    cgo_thread_bt: str | None       # cgo builds: gdb's `bt` of the thread in the C call

    def spinner(self) -> DumpGoroutine:
        return next(d for d in self.dump if _created_at(d, "go spin()"))


def _symbol_samples(gobuild: GoBuild, twin: Path) -> list[int]:
    """Addresses inside Go functions of the twin (entries, and random PCs in their bodies):
    functions whose entry addr2line names after themselves, i.e. known to pclntab."""
    symbols = [s for s in nm(gobuild.minor, twin).values()
               if s.kind in ("T", "t") and s.size > 0 and "." in s.name]
    rng = random.Random(gobuild.id)
    chosen = rng.sample(symbols, 3 * SYMBOL_SAMPLES)
    named = addr2line(gobuild.minor, twin, [s.addr for s in chosen])
    go_funcs = [s for s, (func, _, _) in zip(chosen, named) if func == s.name]
    assert len(go_funcs) >= SYMBOL_SAMPLES, "too few Go functions in the sample"
    addrs = []
    for s in go_funcs[:SYMBOL_SAMPLES]:
        addrs.append(s.addr if rng.random() < 0.25 else s.addr + rng.randrange(s.size))
    return addrs


@pytest.fixture(scope="module")
def waiters_stop(gobuild: GoBuild, tmp_path_factory) -> WaitersStop:
    binary, twin = gobuild.binary(WAITERS), gobuild.twin(WAITERS)
    dump_path = tmp_path_factory.mktemp("waiters") / "dump.txt"
    samples = _symbol_samples(gobuild, twin)
    with go_server(binary, env={"GOAWARE_DUMP": str(dump_path)}) as server, \
            MiSession() as mi:
        assert server.inferior_pid is not None
        mi_connect(mi, binary, server)
        if gobuild.stripped:
            mi.command(f"-break-insert *{entry_address(gobuild, WAITERS, 'main.stopHere'):#x}")
        else:
            mi.command("-break-insert main.stopHere")
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped(timeout=120)
        assert stop.get("reason") == "breakpoint-hit", stop
        pid = server.inferior_pid
        tasks = task_ids(pid)
        syscalls = {tid: syscall_number(pid, tid) for tid in tasks}
        threads = mi_threads(mi)
        stop_lwp = next(lwp_of(t) for t in threads if t["id"] == stop["thread-id"])
        info_threads = mi_stream(mi, "info threads")
        listed_text = mi_stream(mi, "monitor goroutines")
        listed = parse_goroutines(listed_text)
        texts = {goid: mi_stream(mi, f"monitor goroutine {goid} bt") for goid in listed}
        symbols = {addr: mi_stream(mi, f"monitor info symbol {addr:#x}") for addr in samples}
        help_text = mi_stream(mi, "monitor help")
        errors = {command: mi_stream(mi, f"monitor {command}") for command in ERROR_COMMANDS}
        worker = next(d for d in parse_dump(dump_path.read_text())
                      if _created_at(d, "go worker(block)"))
        select = mi_stream(mi, f"monitor goroutine {worker.goid} select")
        cgo_thread_bt = None
        if gobuild.cgo:
            in_c = next(g for g in listed.values() if g.start == "main.cgoSleeper")
            gdb_id = next(t["id"] for t in threads if lwp_of(t) == in_c.tid)
            mi.command(f"-thread-select {gdb_id}")
            cgo_thread_bt = mi_stream(mi, "bt")
        mi_stream(mi, "kill")
    return WaitersStop(
        gobuild, twin, pid, stop, int(stop["frame"]["addr"], 16), stop_lwp, tasks, syscalls,
        threads, info_threads, listed,
        {goid: parse_backtrace(text) for goid, text in texts.items()}, texts, symbols,
        help_text, errors, select, parse_dump(dump_path.read_text()), cgo_thread_bt)


# Wrong uses of the Go commands, and the message each must give (in the command's output).
ERROR_COMMANDS = {
    "goroutine 999999 bt": "no goroutine 999999\n",
    "goroutine x1 bt": "'x1' is not a goroutine id\n",
    "goroutine 999999 select": "no goroutine 999999\n",
    "go threads maybe": "go threads: expected on or off, not 'maybe'\n",
    "info symbol zz": "'zz' is not an address\n",
    "info symbol 0x10": "no Go function at 0x10\n",
    "go panic": "no panic or fatal error in progress\n",
}


def test_every_dumped_goroutine_is_listed_with_its_wait_reason(waiters_stop: WaitersStop):
    s = waiters_stop
    spinner = s.spinner()
    for d in s.dump:
        assert d.goid in s.listed, f"goroutine {d.goid} ({d.header}) not listed"
        state = s.listed[d.goid].state
        wait_reason = d.state.split(", ")[0]  # ", locked to thread", ", N minutes"
        if d is spinner:
            # It spins: the runtime may have just preempted it, at the dump or at the stop.
            assert {wait_reason, state} <= {"running", "runnable"}, (d.header, state)
        else:
            assert state == wait_reason, f"goroutine {d.goid}: {state!r} vs {d.header!r}"
    # ... and no user goroutine that the dump does not have.
    users = {g.goid for g in s.listed.values() if _user_goroutine(g.start)}
    assert users == {d.goid for d in s.dump}
    assert s.listed[spinner.goid].start == "main.spin"


def test_backtraces_equal_the_dump(waiters_stop: WaitersStop):
    s = waiters_stop
    spinner = s.spinner()
    assert s.dump[0].goid == 1 and s.dump[0].state == "running"  # the goroutine that dumped
    for d in s.dump[1:]:
        bt = s.backtraces[d.goid]
        where = f"goroutine {d.goid}:\n{s.backtrace_texts[d.goid]}\nvs dump:\n{d}"
        assert (bt.created_by, bt.parent_goid) == (d.created_by, d.parent_goid), where
        if d is spinner:
            continue  # it ran on between the dump and the stop
        assert bt.header == d.header, where
        assert bt.frames == d.frames, where


def test_cgo_call_backtrace_joins_the_c_frames_gdb_unwinds(waiters_stop: WaitersStop):
    """A goroutine inside a C call: `monitor goroutine N bt` gives the C frames, innermost
    first, at the pcs gdb's own unwinder (libc's and the program's CFI) finds on the thread
    running the call, up to Go's asmcgocall; then the goroutine's Go frames (equal to the dump,
    test_backtraces_equal_the_dump). Other goroutines have no C frames."""
    s = waiters_stop
    if not s.gobuild.cgo:
        assert all(not bt.c_frames and not bt.c_frames_cut for bt in s.backtraces.values())
        return
    in_c = next(g for g in s.listed.values() if g.start == "main.cgoSleeper")
    bt = s.backtraces[in_c.goid]
    where = f"{s.backtrace_texts[in_c.goid]}\nvs gdb:\n{s.cgo_thread_bt}"
    assert bt.c_frames and not bt.c_frames_cut, where
    assert [f for f, _, _ in bt.frames][:2] == ["main._Cfunc_csleep", "main.cgoSleeper"], where
    gdb_pcs = gdb_pcs_into_asmcgocall(s.gobuild.minor, s.twin, s.cgo_thread_bt)
    assert [pc for _, _, pc in bt.c_frames] == gdb_pcs, where
    # The C function the goroutine called (unnamed in a stripped program), libc's sleep under it.
    names = [name for name, _, _ in bt.c_frames]
    assert "sleep" in names, where
    if s.gobuild.stripped:
        assert names[-1] is None and bt.c_lines[-1] is None, where
    else:
        assert names[-1].startswith("_cgo_") and names[-1].endswith("_Cfunc_csleep"), where
        # Its file:line, from the program's DWARF, is gdb's for that pc (the call to sleep in
        # csleep, which gdb shows as a frame inlined there).
        gdb_line = re.search(r"^#\d+\s+0x0*%x in \S+ \(.*\) at (\S+):(\d+)$" % bt.c_frames[-1][2],
                             s.cgo_thread_bt, re.M)
        assert gdb_line is not None, where
        assert bt.c_lines[-1] == (gdb_line.group(1), int(gdb_line.group(2))), where
    others = [b for goid, b in s.backtraces.items() if goid != in_c.goid]
    assert all(not b.c_frames and not b.c_frames_cut for b in others)


def test_main_goroutine_is_in_stopHere(waiters_stop: WaitersStop):
    s = waiters_stop
    main = s.listed[1]
    assert (main.state, main.start, main.tid) == ("running", "runtime.main", s.stop_lwp)
    [where] = addr2line(s.gobuild.minor, s.twin, [s.stop_addr])
    assert where[0] == "main.stopHere"
    assert main.location == f"main.stopHere {where[1]}:{where[2]}"
    assert s.backtraces[1].frames == [
        where, ("main.main", WAITERS_MAIN, line_of(WAITERS, "main.go", "stopHere(block)"))]
    assert s.backtraces[1].created_by is None  # Go never prints one for goroutine 1


def test_spinning_goroutine(waiters_stop: WaitersStop):
    s = waiters_stop
    g = s.listed[s.spinner().goid]
    if g.tid is not None:  # usually: it spins on its own thread
        top = s.backtraces[g.goid].frames[0]
        assert top[:2] == ("main.spin", WAITERS_MAIN)
        assert g.location == f"main.spin {top[1]}:{top[2]}"


def test_info_threads_shows_every_task(waiters_stop: WaitersStop):
    s = waiters_stop
    assert {lwp_of(t) for t in s.threads} == s.tasks
    assert len(s.threads) == len(s.tasks)
    shown = {int(tid) for tid in re.findall(rf"\bThread {s.pid}\.(\d+)", s.info_threads)}
    assert shown == s.tasks, s.info_threads


def test_goroutine_threads_are_named_after_their_goroutine(waiters_stop: WaitersStop):
    s = waiters_stop
    by_lwp = {lwp_of(t): t for t in s.threads}
    on_threads = {g.tid: g for g in s.listed.values() if g.tid is not None}
    assert set(on_threads) <= s.tasks
    for tid, thread in by_lwp.items():
        g = on_threads.get(tid)
        if g is None:
            assert not re.match(r"g\d+ ", thread.get("name", "")), thread
            assert "goroutine" not in thread.get("details", ""), thread
            continue
        assert thread["name"] == f"g{g.goid} {g.start}", thread
        assert thread["details"] == f"goroutine {g.goid} [{g.state}] {g.location}", thread
    # The thread that hit the breakpoint runs goroutine 1, and gdb says so.
    assert by_lwp[s.stop_lwp]["name"] == "g1 runtime.main"
    assert f'Thread {s.pid}.{s.stop_lwp} "g1 runtime.main" (goroutine 1 [running] ' \
        in s.info_threads, s.info_threads
    # The dump's goroutines in a system call each hold a thread, and the kernel agrees on
    # what that thread is doing.
    in_syscall = [d for d in s.dump if d.state == "syscall"]
    assert len(in_syscall) == 1 + s.gobuild.cgo, [d.header for d in in_syscall]
    for d in in_syscall:
        tid = s.listed[d.goid].tid
        assert tid is not None, f"goroutine {d.goid} is in a system call on no thread"
        assert by_lwp[tid]["name"] == f"g{d.goid} {s.listed[d.goid].start}"
        names = [f for f, _, _ in d.frames]
        if "main.syscaller" in names:
            assert s.syscalls[tid] == SYS_READ, (tid, s.syscalls)
        else:
            assert "main.cgoSleeper" in names and s.syscalls[tid] in SYS_NANOSLEEP, d


def test_info_symbol_agrees_with_addr2line(waiters_stop: WaitersStop):
    s = waiters_stop
    addrs = sorted(s.symbols)
    expected = addr2line(s.gobuild.minor, s.twin, addrs)
    table = nm(s.gobuild.minor, s.twin)
    for addr, (func, file, line) in zip(addrs, expected):
        got = parse_info_symbol(s.symbols[addr])
        assert got == (func, addr - table[func].addr, file, line), \
            f"{addr:#x}: {s.symbols[addr]!r} vs addr2line {func} {file}:{line}"


def test_monitor_help_lists_the_go_commands(waiters_stop: WaitersStop):
    for command in ("goroutines", "goroutine N bt", "goroutine N select", "go threads on|off",
                    "info symbol ADDR", "go panic"):
        assert f"\n  {command}\n" in waiters_stop.help, waiters_stop.help


def test_wrong_go_commands_say_why(waiters_stop: WaitersStop):
    assert waiters_stop.errors == ERROR_COMMANDS


def test_go_commands_on_a_c_program(programs):
    """A program without a Go runtime: the Go commands say so, and threads keep their names."""
    with go_server(programs.threads) as server, MiSession() as mi:
        mi_connect(mi, programs.threads, server)
        listed = mi_stream(mi, "monitor goroutines")
        names = {t.get("name") for t in mi_threads(mi)}
    assert listed == "not a Go program (no Go runtime found in the executable)\n"
    assert names == {programs.threads.name[:15]}


def test_goroutine_select_says_how_to_see_a_goroutine(waiters_stop: WaitersStop):
    """The server cannot change the client's selected thread: with goroutines not shown as
    threads, `select` says how to show them (test_go_threads.py covers the rest)."""
    worker = next(d for d in waiters_stop.dump if _created_at(d, "go worker(block)"))
    assert waiters_stop.select.startswith(
        f"goroutine {worker.goid}: run `monitor go threads on` (or start with --go-goroutines)"), \
        waiters_stop.select


# ---------------------------------------------------------------------------------------
# The same stop, looked at from lldb

@needs_lldb
def test_lldb_thread_list_names_goroutine_threads(gobuild: GoBuild, tmp_path):
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(gobuild, WAITERS, "main.stopHere")
    with go_server(binary, env={"GOAWARE_DUMP": str(dump_path)}) as server:
        run = run_lldb_batch(server, binary, [
            f"breakpoint set -a {stop_here:#x}", "c", "thread list",
            "process plugin packet monitor goroutines", "kill"], timeout=120)
    assert not run.timed_out, run.raw
    raw = run.raw.replace("\r\n", "\n")
    threads_text = raw.split("(lldb) thread list\n", 1)[1].split("(lldb) ", 1)[0]
    names: dict[int, str] = {}
    stopped = []
    for match in LLDB_THREAD.finditer(threads_text):
        tid = int(match.group(2))
        name = re.search(r", name = '([^']*)'", match.group(3))
        names[tid] = name.group(1) if name else ""
        if match.group(1) == "*":
            stopped.append((tid, match.group(3)))
    monitor = raw.split("(lldb) process plugin packet monitor goroutines\n", 1)[1]
    listed = parse_goroutines(monitor.split("  packet: qRcmd,", 1)[0])
    dump = parse_dump(dump_path.read_text())

    [(stopped_tid, stopped_text)] = stopped
    assert stopped_text.endswith("name = 'g1 runtime.main', stop reason = breakpoint 1.1"), \
        stopped_text
    assert listed[1].tid == stopped_tid
    on_threads = {g.tid: g for g in listed.values() if g.tid is not None}
    assert set(on_threads) <= set(names), (on_threads, names)
    for tid, name in names.items():
        g = on_threads.get(tid)
        if g is None:
            assert not re.match(r"g\d+ ", name), (tid, name)
        else:
            assert name == f"g{g.goid} {g.start}", (tid, name)
    assert {d.goid for d in dump} <= set(listed)
    for d in dump:
        if d.state == "syscall":
            assert names[listed[d.goid].tid] == f"g{d.goid} {listed[d.goid].start}"


# ---------------------------------------------------------------------------------------
# Runtime signals: SIGURG


@needs_strace
def test_spinning_program_gets_many_sigurgs(gobuild: GoBuild):
    """The oracle for the two tests below: undebugged, the runtime sends SIGURG often."""
    count, run = strace_signals(gobuild.binary(EVENTS), ["spin", SPIN_SECONDS], "SIGURG")
    assert (run.returncode, run.stdout) == (0, "spun\n"), run
    print(f"\n{gobuild.id}: {count} SIGURG in {SPIN_SECONDS} s")
    assert count >= 20


def _lldb_stop_signals(log: str) -> list[int]:
    """The signal of every stop reply lldb read after it first resumed the program, other
    than SIGTRAP: in a dynamically linked (cgo) program lldb stops at its own breakpoint in
    the dynamic loader and steps over it, unseen by the user."""
    after = log.split("send packet: $vCont;c", 1)
    if len(after) == 1:
        after = log.split("send packet: $c", 1)
    assert len(after) == 2, "lldb never resumed the program"
    signals = [int(sig, 16) for sig in re.findall(r"read packet: \$[TS]([0-9a-f]{2})", after[1])]
    return [s for s in signals if s != 5]


# The client's own signal policy: by default neither client stops (lldb 14 has no
# QPassSignals for SIGURG but gdbstub passes it quietly); asked to stop on SIGURG, the
# runtime's own ones still do not stop (they are preemption requests, not events). The
# second case runs on one build per toolchain and on a cgo one, to keep the run short.
ASK_STOP = [b for b in BUILDS if b.stripped != (b.minor == "1.21")]


def _ask_stop_params() -> list:
    return [pytest.param(b, ask, id=f"{b.id}-{'stop-asked' if ask else 'default'}")
            for b in BUILDS for ask in (False, True) if not ask or b in ASK_STOP]


@needs_lldb
@pytest.mark.parametrize("build,ask_stop", _ask_stop_params())
def test_spinning_program_under_lldb_never_stops(build: GoBuild, ask_stop: bool, tmp_path):
    binary = build.binary(EVENTS)
    log = tmp_path / "packets.log"
    commands = ["process handle SIGURG -s true -p true -n true"] if ask_stop else []
    with go_server(binary, ["spin", SPIN_SECONDS]) as server:
        run = run_lldb_batch(server, binary, [*commands, "c"], packet_log=log, timeout=120)
        server.wait_exit(10.0)
        output = server.inferior_output()
    assert not run.timed_out, run.raw
    text = log.read_text(errors="replace")
    passes = re.findall(r"send packet: \$QPassSignals:([0-9a-f;]*)#", text)
    if ask_stop:
        assert passes and all(f"{SIGURG:x}" not in p.split(";") for p in passes), passes
    else:
        assert passes == [], "lldb 14 sends no QPassSignals unless asked"
    assert _lldb_stop_signals(text) == [], text[-3000:]
    after = run.text.split("(lldb) c\n", 1)[1]
    assert re.search(r"Process <PID> exited with status = 0 ", after), after
    assert "stop reason" not in after, after
    assert output == "spun\n"


@pytest.mark.parametrize("build,ask_stop", _ask_stop_params())
def test_spinning_program_under_gdb_never_stops(build: GoBuild, ask_stop: bool, tmp_path):
    binary = build.binary(EVENTS)
    log = tmp_path / "remote.log"
    with go_server(binary, ["spin", SPIN_SECONDS]) as server, MiSession() as mi:
        mi.console(f"set remotelogfile {log}")
        mi_connect(mi, binary, server)
        if ask_stop:
            mi_stream(mi, "handle SIGURG stop print")
        start = len(mi.log)
        mi.command("-exec-continue", expect="running")
        end = mi.wait_stopped(timeout=120)
        assert end.get("reason") == "exited-normally", end
        stops = [r["payload"] for r in mi.log[start:]
                 if r.get("type") == "notify" and r.get("message") == "stopped"]
        assert stops == [end], stops  # the user saw one stop: the exit
        output = server.inferior_output()
    # gdb has exited: the log is complete. Besides the exit, the only stop replies allowed
    # are SIGTRAPs: in a dynamically linked (cgo) program gdb stops at its own breakpoint in
    # the dynamic loader and resumes unseen by the user.
    text = log.read_text(errors="replace")
    resumed = re.split(r"^w \$(?:vCont;c|c)\b.*$", text, maxsplit=1, flags=re.M)
    assert len(resumed) == 2, "gdb never resumed the program"
    replies = re.findall(r"^r .*?\$([TSWX][0-9a-f]{2})", resumed[1], flags=re.M)
    assert [r for r in replies if r != "T05"] == ["W00"], replies
    if ask_stop:
        passes = re.findall(r"^w \$QPassSignals:([0-9a-f;]*)#", text, flags=re.M)
        assert passes and "10" not in passes[-1].split(";"), passes  # 0x10: gdb's SIGURG
    assert output == "spun\n"


# ---------------------------------------------------------------------------------------
# Unrecovered panics and fatal errors


@dataclass(frozen=True)
class Death:
    mode: str
    message: str   # the first line Go prints
    mark: str      # the MARK of the user frame Go shows


DEATHS = [Death("panic", "panic: goevents: boom", "crash"),
          Death("fatal", "fatal error: sync: unlock of unlocked mutex", "unlockTwice"),
          Death("mapwrites", "fatal error: concurrent map writes", "mapWrite")]

_TRACE_HEADER = re.compile(r"^goroutine (\d+) \[running\]:$", re.M)
_HEADER = re.compile(r"^goroutine (\d+) \[.*\]:$")


def _go_trace(stderr: str) -> tuple[int, list[tuple[str, str, int]]]:
    """The goroutine id and frames of the first goroutine in a Go crash report."""
    match = _TRACE_HEADER.search(stderr)
    assert match, stderr
    block = stderr[match.end():].strip("\n").split("\n\n")[0].splitlines()
    frames = []
    for func_line, loc_line in zip(block[0::2], block[1::2]):
        if func_line.startswith("created by "):
            break
        file, _, line = loc_line.strip().split(" ")[0].rpartition(":")
        frames.append((func_line[:func_line.rindex("(")], file, int(line)))
    return int(match.group(1)), frames


def _stop_goroutine(mi: MiSession, stop: dict) -> tuple[int, dict]:
    """The goroutine id of the thread a stop is on (its name is `g<ID> <start>`), and the thread."""
    thread = next(t for t in mi_threads(mi) if t["id"] == stop["thread-id"])
    name = re.fullmatch(r"g(\d+) (\S+)", thread.get("name", ""))
    assert name, thread
    return int(name.group(1)), thread


def _panic_report(said: str) -> tuple[list[str], int]:
    """`monitor go panic` output: the message lines, and the goroutine id of its header."""
    messages, blank, header = said.partition("\n\n")
    match = _HEADER.match(header)
    assert blank and match and header == match.group(0) + "\n", said
    return messages.split("\n"), int(match.group(1))


@pytest.mark.parametrize("death", DEATHS, ids=[d.mode for d in DEATHS])
def test_unrecovered_panic_stops_before_the_exit(gobuild: GoBuild, death: Death):
    binary = gobuild.binary(EVENTS)
    plain = run_plain(binary, [death.mode])
    assert plain.returncode == 2 and plain.stderr.startswith(death.message + "\n"), plain
    _, plain_frames = _go_trace(plain.stderr)
    file, line = marks(EVENTS)[death.mark]
    user = next(f for f in plain_frames if f[0].startswith("main."))
    assert user[1:] == (file, line), plain.stderr  # the oracle knows where the program died

    with go_server(binary, [death.mode]) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        assert mi_stream(mi, "monitor go panic") == "no panic or fatal error in progress\n"
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped(timeout=60)
        assert stop.get("reason") == "signal-received", stop  # a stop, not the exit
        assert stop.get("signal-name") == "SIGTRAP", stop
        goid, thread = _stop_goroutine(mi, stop)
        listed = parse_goroutines(mi_stream(mi, "monitor goroutines"))
        assert (listed[goid].state, listed[goid].tid) == ("running", lwp_of(thread)), listed
        assert listed[goid].start == thread["name"].split(" ", 1)[1]
        bt = parse_backtrace(mi_stream(mi, f"monitor goroutine {goid} bt"))
        assert user in bt.frames, (user, bt)
        said = mi_stream(mi, "monitor go panic")
        messages, said_goid = _panic_report(said)
        # Every thread that got into the fatal function prints its message (two map writers
        # can both see the race, with or without a debugger); Go then shows one goroutine.
        assert messages == [death.message] * len(messages), said
        if len(messages) == 1:
            assert said_goid == goid, said
        else:
            assert death.mode == "mapwrites" and listed[said_goid].state == "running", said
        stopped = {goid}
        for _ in range(8):
            mi.command("-exec-continue", expect="running")
            end = mi.wait_stopped(timeout=60)
            if end.get("reason") != "signal-received" or death.mode != "mapwrites":
                break
            # Another map writer reached the fatal function after the first one resumed.
            assert end.get("signal-name") == "SIGTRAP", end
            stopped.add(_stop_goroutine(mi, end)[0])
        assert (end.get("reason"), end.get("exit-code")) == ("exited", "02"), end
        server.wait_exit(10.0)
    # Go's own report, printed once the program went on to die: same message, same goroutine,
    # and it starts with what `monitor go panic` said when the one thread dying was stopped.
    report = server.stderr[server.stderr.index(death.message + "\n"):]
    reported_goid, reported_frames = _go_trace(report)
    assert reported_goid in stopped, (report, stopped)
    assert user in reported_frames
    if len(stopped) == 1 and len(messages) == 1:
        assert report.startswith(said), (said, report)


DEADLOCK = "fatal error: all goroutines are asleep - deadlock!"


def test_deadlock_stops_before_the_exit(gobuild: GoBuild):
    """The runtime finds the deadlock on a scheduler thread on its system stack, where no
    goroutine runs: the stop is on that thread, and `monitor go panic` shows what Go prints
    first: the message and the first goroutine of its all-goroutines report."""
    if gobuild.cgo:
        pytest.skip("the Go runtime does not detect deadlocks in cgo programs")
    binary = gobuild.binary(EVENTS)
    plain = run_plain(binary, ["deadlock"])
    assert plain.returncode == 2 and plain.stderr.startswith(DEADLOCK + "\n\n"), plain
    expected = "\n".join(plain.stderr.split("\n")[:3]) + "\n"
    assert expected.endswith("\ngoroutine 1 [chan receive]:\n"), plain.stderr
    with go_server(binary, ["deadlock"]) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped(timeout=60)
        assert (stop.get("reason"), stop.get("signal-name")) == ("signal-received", "SIGTRAP"), stop
        thread = next(t for t in mi_threads(mi) if t["id"] == stop["thread-id"])
        assert not re.match(r"g\d+ ", thread.get("name", "")), thread
        said = mi_stream(mi, "monitor go panic")
        # checkdead unlocks the scheduler before it calls fatal: a second thread going idle
        # can find the deadlock too and reach fatal while the first is held at its entry.
        # Each prints its message (Go too, when the first has not exited by then).
        repeats = said.count(DEADLOCK + "\n")
        assert repeats >= 1 and said == (DEADLOCK + "\n") * repeats + expected[len(DEADLOCK) + 1:], \
            (said, plain.stderr)
        for _ in range(4):
            mi.command("-exec-continue", expect="running")
            end = mi.wait_stopped(timeout=60)
            if end.get("reason") != "signal-received" or repeats == 1:
                break
        assert (end.get("reason"), end.get("exit-code")) == ("exited", "02"), end
        server.wait_exit(10.0)
    if repeats == 1:
        assert server.stderr[server.stderr.index(DEADLOCK):].startswith(said), server.stderr


# `goevents panicwith KIND` (tests/goprograms/goevents/panics.go): each way Go prints a panic
# value. Three releases cover the three printing rules: 1.19 (7-digit floats, no repanicked
# flag), 1.25 (new lines indented with a tab, "[recovered, repanicked]") and 1.27 (shortest
# floats, new _panic layout).
PANIC_KINDS = ["error", "wrapped", "stringer", "int", "uint8", "bool", "float", "float32",
               "complex", "myint", "mystring", "struct", "multiline", "nested", "repanic",
               "nilderef"]
PANIC_VALUE_BUILDS = [GoBuild("1.19", stripped=True), GoBuild("1.25"),
                      GoBuild("1.27", stripped=True)]


def _ask_panic_then_finish(mi: MiSession, stop: dict) -> tuple[str, dict]:
    """At the stop before a panic is printed (a SIGTRAP): what `monitor go panic` says, and
    the stop that ends the run once the program goes on."""
    assert (stop.get("reason"), stop.get("signal-name")) == ("signal-received", "SIGTRAP"), stop
    said = mi_stream(mi, "monitor go panic")
    mi.command("-exec-continue", expect="running")
    return said, mi.wait_stopped(timeout=60)


@pytest.mark.parametrize("kind", PANIC_KINDS)
@pytest.mark.parametrize("build", PANIC_VALUE_BUILDS, ids=[b.id for b in PANIC_VALUE_BUILDS])
def test_go_panic_prints_the_value_as_go_does(build: GoBuild, kind: str):
    binary = build.binary(EVENTS)
    plain = run_plain(binary, ["panicwith", kind])
    assert plain.returncode == 2 and plain.stderr.startswith("panic: "), plain
    with go_server(binary, ["panicwith", kind]) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped(timeout=60)
        if kind == "nilderef":
            # gdb stops at the SIGSEGV and passes it on: Go's handler makes it a panic.
            assert stop.get("signal-name") == "SIGSEGV", stop
            mi.command("-exec-continue", expect="running")
            stop = mi.wait_stopped(timeout=60)
        said, end = _ask_panic_then_finish(mi, stop)
        assert (end.get("reason"), end.get("exit-code")) == ("exited", "02"), end
        server.wait_exit(10.0)
    # Exactly Go's first lines up to the panicking goroutine's header, in the same run, and
    # without a debugger (but for the struct's address, which may change between runs).
    report = server.stderr[server.stderr.index("panic: "):]
    assert said.endswith("\n\ngoroutine 1 [running]:\n") and report.startswith(said), (said, report)
    if kind != "struct":
        assert plain.stderr.startswith(said), (said, plain.stderr)


@pytest.mark.parametrize("build", PANIC_VALUE_BUILDS, ids=[b.id for b in PANIC_VALUE_BUILDS])
def test_go_panic_shows_a_panic_in_flight(build: GoBuild):
    """Stopped in a deferred call while a panic runs them (runtime.Breakpoint() there): not
    fatal yet, and the error value has not been through Error(). Its message is read from the
    error itself (a *fmt.wrapError); the program then recovers it and prints Error()."""
    binary = build.binary(EVENTS)
    with go_server(binary, ["panicwith", "inflight"]) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-exec-continue", expect="running")
        said, end = _ask_panic_then_finish(mi, mi.wait_stopped(timeout=60))
        assert end.get("reason") == "exited-normally", end
        server.wait_exit(10.0)
    recovered = re.search(r"^recovered: (.*)$", server.stderr, re.M)
    assert recovered, server.stderr
    assert said == (f"panic: {recovered.group(1)}\n\ngoroutine 1 [running]:\n"
                    "(not fatal yet: deferred calls are running and may recover it)\n"), said


@needs_lldb
def test_lldb_sees_the_panic_as_an_exception(gobuild: GoBuild):
    """lldb shows the stop as an exception with the runtime's description, on the thread of
    the panicking goroutine. (lldb -b ends the session at a stop it sees as a crash, so this
    checks the stop alone; continuing to the exit is checked with gdb above.)"""
    binary = gobuild.binary(EVENTS)
    with go_server(binary, ["panic"]) as server:
        run = run_lldb_batch(server, binary, ["c"], timeout=120)
    assert not run.timed_out, run.raw
    after = run.raw.split("(lldb) c\n", 1)[1]
    stopped = re.search(r"^\* thread #\d+, name = 'g\d+ (\S+)', stop reason = (.*)$", after,
                        re.M)
    assert stopped, after
    assert stopped.group(2) == "Go runtime: unrecovered panic", after
    assert stopped.group(1).startswith("main.main."), after  # the `go func() {...}` in main
    assert "exited" not in after, after


# ---------------------------------------------------------------------------------------
# runtime.Breakpoint()


def test_runtime_breakpoint_stops_and_continues(gobuild: GoBuild):
    binary, twin = gobuild.binary(EVENTS), gobuild.twin(EVENTS)
    plain = run_plain(binary, ["breakpoint"])
    # Without a debugger the INT3 kills the program; with one it is a place to stop.
    assert plain.returncode == 2 and "SIGTRAP: trace trap" in plain.stderr, plain
    with go_server(binary, ["breakpoint"]) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-exec-continue", expect="running")
        stop = mi.wait_stopped(timeout=60)
        assert (stop.get("reason"), stop.get("signal-name")) == ("signal-received", "SIGTRAP")
        pc = int(stop["frame"]["addr"], 16)
        [(func, _, _)] = addr2line(gobuild.minor, twin, [pc - 1])  # the INT3 itself
        assert func in ("runtime.breakpoint", "runtime.Breakpoint"), func
        thread = next(t for t in mi_threads(mi) if t["id"] == stop["thread-id"])
        assert thread["name"] == "g1 runtime.main", thread
        bt = parse_backtrace(mi_stream(mi, "monitor goroutine 1 bt"))
        assert ("main.hardcodedBreakpoint", *marks(EVENTS)["breakpoint"]) in bt.frames, bt
        mi.command("-exec-continue", expect="running")
        end = mi.wait_stopped(timeout=60)
        assert end.get("reason") == "exited-normally", end
        output = server.inferior_output()
    assert output == "before\nafter\n"


HOPPERS = "hoppers"
PREEMPTION_STEPS = 40


def test_stepping_never_enters_the_preemption_handler(gobuild: GoBuild):
    """While gdb steps a thread, a SIGURG the runtime sends it (it preempts a goroutine that
    has run 10 ms, which a goroutine held stopped by the debugger soon has) waits for the
    thread's next continue. Delivered with the step, the step would end at the handler's first
    instruction (runtime.sigtramp); dropped, the runtime would never preempt that thread again
    and the program could hang at its next stop-the-world: it must run to its end."""
    binary = gobuild.binary(HOPPERS)
    hop = entry_address(gobuild, HOPPERS, "main.hop")
    with go_server(binary) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command(f"-break-insert *{hop:#x}")
        mi.command("-exec-continue", expect="running")
        mi.wait_stopped(timeout=120)
        mi.command("-break-delete")
        pcs = []
        for _ in range(PREEMPTION_STEPS):
            time.sleep(0.015)  # stopped for longer than a time slice
            mi.command("-exec-step-instruction", expect="running")
            pcs.append(int(mi.wait_stopped(timeout=60)["frame"]["addr"], 16))
        mi.command("-exec-continue", expect="running")
        end = mi.wait_stopped(timeout=120)
    functions = {func for func, _, _ in addr2line(gobuild.minor, gobuild.twin(HOPPERS), pcs)}
    assert not functions & {"runtime.sigtramp", "runtime.cgoSigtramp", "runtime.sighandler"}, \
        functions
    assert end.get("reason") == "exited-normally", end


TICKS = "ticks"


def test_dprintf_prints_once_per_call_while_the_runtime_preempts(gobuild: GoBuild):
    """A dprintf run by the server (agent style) in a function a never-blocking goroutine
    calls 3000 times: the runtime's SIGURGs, queued while the thread waits at the breakpoint,
    come as the server steps it over the breakpoint. Each must wait for the thread's next
    continue, or its handler returns to the breakpoint and the dprintf prints twice."""
    binary = gobuild.binary(TICKS)
    where = f"*{entry_address(gobuild, TICKS, 'main.tick'):#x}"
    with go_server(binary) as server:
        run = run_gdb(gdb_batch_argv(f"target remote {server.address}", binary, [
            "set dprintf-style agent", f'dprintf {where},"T\\n"', "continue"]), timeout=240)
        assert "exited normally" in run.raw, run.raw[-2000:]
        server.wait_exit(10)
        printed = server.stdout.splitlines()
    assert "ticks 3000" in printed, printed[-5:]
    assert printed.count("T") == 3000


# ---------------------------------------------------------------------------------------
# 10,000 goroutines

MANY = 10_000


def test_ten_thousand_goroutines_are_all_listed(gobuild: GoBuild, tmp_path):
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(gobuild, WAITERS, "main.stopHere")
    env = {"GOAWARE_DUMP": str(dump_path), "GOAWARE_MANY": str(MANY)}
    with go_server(binary, env=env) as server:
        client = rsp_client(server.address, timeout=120)
        try:
            client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
            assert client.request(b"?").startswith(b"T")
            assert client.request(b"Z0,%x,1" % stop_here) == b"OK"
            stop = client.request(b"c", timeout=120)
            assert stop.startswith(b"T05") and b"swbreak" in stop, stop
            (output, reply), first = timed(client.monitor, "goroutines", 120)
            (again, _), second = timed(client.monitor, "goroutines", 120)
            assert reply == b"OK"
        finally:
            client.close()
    listed = parse_goroutines(output)
    print(f"\n{gobuild.id}: `monitor goroutines` with {len(listed)} goroutines: "
          f"{first * 1000:.0f} ms ({second * 1000:.0f} ms asked again, same stop); "
          f"{len(output)} bytes")
    dump = parse_dump(dump_path.read_text())
    assert len(dump) > MANY
    for d in dump:
        assert d.goid in listed, f"goroutine {d.goid} missing"
        if d.state == "chan receive":
            assert listed[d.goid].state == "chan receive"
    parked = [g for g in listed.values() if g.location.startswith("main.parked ")]
    assert len(parked) == MANY
    assert again == output


# ---------------------------------------------------------------------------------------
# Non-stop mode


def test_non_stop_goroutines_are_read_from_a_stopped_program(gobuild: GoBuild, tmp_path):
    # While threads run (non-stop mode), the goroutine list would be read from a scheduler that
    # changes under the reader: it is refused with a clear message. Once every thread is
    # stopped (vCont;t), it is the program's own (its dump at main.stopHere is the truth).
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(gobuild, WAITERS, "main.stopHere")
    with go_server(binary, env={"GOAWARE_DUMP": str(dump_path)}) as server:
        client = rsp_client(server.address)
        try:
            client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
            assert client.request(b"QNonStop:1") == b"OK"
            assert client.request(b"?").startswith(b"T")
            assert client.request(b"vStopped") == b"OK"
            assert client.request(b"Z0,%x,1" % stop_here) == b"OK"
            assert client.request(b"vCont;c") == b"OK"
            event = client.next_event(60)
            assert isinstance(event, Notification) and b"swbreak" in event.payload, event
            while client.request(b"vStopped") != b"OK":
                pass
            output, reply = client.monitor("goroutines")
            assert reply == b"OK" and "running (non-stop mode)" in output, (output, reply)
            assert client.request(b"vCont;t") == b"OK"
            while not client.nothing_pending(1.0):  # each thread's stop, as it comes
                assert isinstance(client.next_event(), Notification)
                while client.request(b"vStopped") != b"OK":
                    pass
            output = _listed_goroutines(client)
        finally:
            client.close()
    _assert_every_dumped_goroutine_listed(output, dump_path)


def test_a_program_that_execs_a_go_program_gets_its_goroutines(gobuild: GoBuild, tmp_path):
    # A shell that execs the Go program: what gdbstub knows of the program is read again
    # after the exec (no Go runtime before it, the Go program's after it).
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(gobuild, WAITERS, "main.stopHere")
    with go_server(Path("/bin/sh"), ["-c", f"exec {binary}"], env={"GOAWARE_DUMP": str(dump_path)}) as server:
        client = rsp_client(server.address)
        try:
            client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;exec-events+")
            assert client.request(b"?").startswith(b"T")
            output, _ = client.monitor("goroutines")
            assert "not a Go program" in output, output
            exec_stop = client.resume(b"vCont;c", timeout=60)
            assert b"exec:" in exec_stop, exec_stop
            assert client.request(b"Z0,%x,1" % stop_here) == b"OK"
            stop = client.resume(b"vCont;c", timeout=60)
            assert stop.startswith(b"T05") and b"swbreak" in stop, stop
            output = _listed_goroutines(client)
        finally:
            client.close()
    _assert_every_dumped_goroutine_listed(output, dump_path)


def _listed_goroutines(client) -> str:
    output, reply = client.monitor("goroutines")
    assert reply == b"OK", (output, reply)
    return output


def _assert_every_dumped_goroutine_listed(output: str, dump_path: Path) -> None:
    """The program's own dump (at main.stopHere) is the truth: each goroutine is listed."""
    listed = parse_goroutines(output)
    for d in parse_dump(dump_path.read_text()):
        assert d.goid in listed, f"goroutine {d.goid} missing"
