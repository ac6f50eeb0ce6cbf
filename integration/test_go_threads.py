"""Goroutines as the client's threads (`--go-goroutines`, `monitor go threads on`), with real
gdb and lldb, checked against the program's own goroutine dump, /proc and `go tool addr2line`.

- tests/goprograms/waiters, stopped in main.stopHere: every goroutine of its runtime.Stack dump
  is a gdb thread `Thread PID.(1000000000 + goid)` named `g<ID> <start function> [<wait
  reason>]`; the kernel threads that run no goroutine keep their ids; the stop is goroutine
  1's. A parked goroutine's thread has the scheduler's saved pc (in runtime.gopark, says
  addr2line) and gdb unwinds it with DWARF through the dump's frames; writing its registers and
  stepping it are refused with a message, and the process is intact after. A goroutine inside
  a cgo call is one thread, the kernel thread running the C code: gdb's backtrace of it has
  the C frames `monitor goroutine N bt` prints; lldb's goes on into the dump's Go frames.
- tests/goprograms/hoppers: its workers sleep every round, so the scheduler moves them between
  threads; `next` after `next` stays on the goroutine gdb stopped in (its `id` argument, the
  program's own value, does not change), and `monitor go threads on` takes effect at the next
  stop without losing gdb's selected thread.
- With 10,000 extra goroutines, qfThreadInfo/qsThreadInfo and the paged qXfer:threads list every
  one of them (their time is in bench/go_threads_bench.py).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from go_harness import (
    BUILDS,
    GoBuild,
    LLDB_THREAD,
    addr2line,
    entry_address,
    go_server,
    line_of,
    lwp_of,
    mi_connect,
    mi_stream,
    mi_threads,
    gdb_pcs_into_asmcgocall,
    parse_backtrace,
    parse_dump,
    parse_goroutines,
    rsp_client,
    task_ids,
)
from lldb_harness import run_lldb_batch
from mi import MiError, MiSession
from packets.framing import unescape_binary

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed (make setup)"),
]

WAITERS = "waiters"
HOPPERS = "hoppers"
BASE = 1_000_000_000   # a goroutine's thread id is BASE + its goroutine id
GO_THREADS = ["--go-goroutines"]
WAITERS_MAIN = str(Path(__file__).resolve().parent.parent / "tests" / "goprograms"
                   / WAITERS / "main.go")


@pytest.fixture(scope="module", params=BUILDS, ids=[b.id for b in BUILDS])
def gobuild(request) -> GoBuild:
    return request.param


def _value(printed: str) -> int:
    match = re.search(r"= (0x[0-9a-f]+)", printed)
    assert match, printed
    return int(match.group(1), 16)


def _tid_of(thread: dict) -> int:
    return lwp_of(thread)


def _printed(text: str) -> str:
    """What gdb's `print` printed, without its `$N = `."""
    return text.strip().split(" = ", 1)[-1]


# ---------------------------------------------------------------------------------------
# waiters, stopped in main.stopHere, goroutines as threads from the start


@dataclass
class Stop:
    gobuild: GoBuild
    pid: int
    stop: dict
    tasks: set[int]
    threads: list[dict]            # -thread-info
    listed: dict                   # `monitor goroutines`
    dump: list
    worker: object                 # the dump's goroutine parked in main.worker
    worker_view: dict[str, str]    # what gdb shows on its thread, and what it refuses
    select_text: str               # `monitor goroutine N select`
    alive_after: bool              # the program still answers after the refusals
    cgo_view: dict[str, str]       # cgo builds: the goroutine in a C call, its thread's `bt`
                                   # and `monitor goroutine N bt`


def _worker_view(mi: MiSession, threads: list[dict], goid: int) -> dict[str, str]:
    [thread] = [t for t in threads if _tid_of(t) == BASE + goid]
    mi.command(f"-thread-select {thread['id']}")
    view = {"pc": mi_stream(mi, "p/x $pc"), "sp": mi_stream(mi, "p/x $sp"),
            "bt": mi_stream(mi, "bt")}
    try:
        view["write"] = mi_stream(mi, "set var $rax = 1")
    except MiError as exc:
        view["write"] = f"error: {exc}"
    start = len(mi.log)
    try:
        mi.console("stepi")
        mi.wait_stopped(timeout=60)
    except MiError as exc:
        view["step_error"] = str(exc)
    view["step"] = "".join(r["payload"] for r in mi.log[start:]
                           if isinstance(r.get("payload"), str))
    view["pc_after_step"] = mi_stream(mi, "p/x $pc")
    return view


@pytest.fixture(scope="module")
def stop(gobuild: GoBuild, tmp_path_factory) -> Stop:
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path_factory.mktemp("waiters") / "dump.txt"
    with go_server(binary, env={"GOAWARE_DUMP": str(dump_path)}, options=GO_THREADS) as server, \
            MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command(f"-break-insert *{entry_address(gobuild, WAITERS, 'main.stopHere'):#x}")
        mi.command("-exec-continue", expect="running")
        stopped = mi.wait_stopped(timeout=120)
        assert stopped.get("reason") == "breakpoint-hit", stopped
        pid = server.inferior_pid
        tasks = task_ids(pid)
        threads = mi_threads(mi)
        listed = parse_goroutines(mi_stream(mi, "monitor goroutines"))
        dump = parse_dump(dump_path.read_text())
        worker = next(d for d in dump if d.created_by is not None and d.created_by[1:] == (
            WAITERS_MAIN, line_of(WAITERS, "main.go", "go worker(block)")))
        select_text = mi_stream(mi, f"monitor goroutine {worker.goid} select")
        view = _worker_view(mi, threads, worker.goid)
        alive_after = parse_goroutines(mi_stream(mi, "monitor goroutines")).keys() == listed.keys()
        cgo_view = {}
        if gobuild.cgo:
            in_c = next(goid for goid, g in listed.items() if g.start == "main.cgoSleeper")
            [thread] = [t for t in threads if _tid_of(t) == BASE + in_c]
            mi.command(f"-thread-select {thread['id']}")
            cgo_view = {"goid": str(in_c), "bt": mi_stream(mi, "bt"),
                        "monitor": mi_stream(mi, f"monitor goroutine {in_c} bt")}
        mi_stream(mi, "kill")
    return Stop(gobuild, pid, stopped, tasks, threads, listed, dump, worker, view, select_text,
                alive_after, cgo_view)


def test_every_goroutine_is_a_thread(stop: Stop):
    goroutine_threads = {_tid_of(t) - BASE: t for t in stop.threads if _tid_of(t) > BASE}
    # Every goroutine of the program's own dump, and every one the runtime has besides.
    assert {d.goid for d in stop.dump} <= set(goroutine_threads)
    assert set(goroutine_threads) == set(stop.listed)
    for goid, thread in goroutine_threads.items():
        g = stop.listed[goid]
        # The wait reason in brackets, for a goroutine that waits.
        assert thread.get("name") in (f"g{goid} {g.start}", f"g{goid} {g.start} [{g.state}]"), \
            thread
        assert thread["details"].startswith(f"goroutine {goid} ["), thread
    for d in stop.dump:
        wait_reason = d.state.split(", ")[0]
        if wait_reason not in ("running", "runnable", "syscall"):
            assert goroutine_threads[d.goid]["name"].endswith(f" [{wait_reason}]"), d.header


def test_kernel_threads_without_a_goroutine_keep_their_ids(stop: Stop):
    kernel = {_tid_of(t) for t in stop.threads if _tid_of(t) < BASE}
    assert kernel <= stop.tasks
    # A task not shown by its own id runs a goroutine, shown by the goroutine's id.
    hidden = stop.tasks - kernel
    running_on = {g.tid: goid for goid, g in stop.listed.items() if g.tid is not None}
    assert hidden <= set(running_on), (hidden, running_on)
    shown = {_tid_of(t) for t in stop.threads}
    assert {BASE + running_on[tid] for tid in hidden} <= shown


def test_the_stop_is_goroutine_one(stop: Stop):
    [thread] = [t for t in stop.threads if t["id"] == stop.stop["thread-id"]]
    assert _tid_of(thread) == BASE + 1
    assert thread["name"] == "g1 runtime.main"
    [where] = addr2line(stop.gobuild.minor, stop.gobuild.twin(WAITERS),
                        [int(stop.stop["frame"]["addr"], 16)])
    assert where[0] == "main.stopHere"


def test_parked_goroutine_has_its_saved_registers(stop: Stop):
    view = stop.worker_view
    pc, sp = _value(view["pc"]), _value(view["sp"])
    [(func, _, _)] = addr2line(stop.gobuild.minor, stop.gobuild.twin(WAITERS), [pc])
    assert func == "runtime.gopark", view
    assert sp % 8 == 0 and sp != 0
    if not stop.gobuild.stripped:
        # gdb's own unwinder, with the program's DWARF, walks the goroutine's stack: every
        # frame of the dump is in its backtrace, in order.
        shown = [(m.group(1), m.group(2), int(m.group(3))) for m in re.finditer(
            r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*\) at (\S+):(\d+)$", view["bt"], re.M)]
        frames = [f for f in stop.worker.frames if f in shown]
        assert frames == stop.worker.frames, view["bt"]


def test_parked_goroutine_refuses_register_writes_and_steps(stop: Stop):
    view = stop.worker_view
    assert view["write"].startswith("error:") and "E01" in view["write"], view["write"]
    assert f"goroutine {stop.worker.goid} [chan receive] is not running on a thread: " \
           "it cannot be stepped on its own" in view["step"], view["step"]
    # Nothing moved: the goroutine is where it was, the program as it was.
    assert _value(view["pc_after_step"]) == _value(view["pc"])
    assert stop.alive_after


def test_a_goroutine_in_a_cgo_call_is_the_thread_running_the_c_code(stop: Stop):
    if not stop.gobuild.cgo:
        return
    goid = int(stop.cgo_view["goid"])
    kernel_tid = stop.listed[goid].tid
    assert kernel_tid in stop.tasks
    # One thread: the goroutine's id stands for the kernel thread, which is not listed apart.
    assert kernel_tid not in {_tid_of(t) for t in stop.threads}
    monitor = parse_backtrace(stop.cgo_view["monitor"])
    assert monitor.c_frames and not monitor.c_frames_cut, stop.cgo_view["monitor"]
    # gdb unwinds the thread's C frames itself (libc's and the program's CFI), at the pcs the
    # server's unwinder found, and reaches runtime.asmcgocall.
    pcs = gdb_pcs_into_asmcgocall(stop.gobuild.minor, stop.gobuild.twin(WAITERS),
                                  stop.cgo_view["bt"])
    assert pcs == [pc for _, _, pc in monitor.c_frames], stop.cgo_view


def test_monitor_select_names_the_thread(stop: Stop):
    goid = stop.worker.goid
    assert stop.select_text.startswith(f"goroutine {goid} is thread {BASE + goid} "), \
        stop.select_text


# ---------------------------------------------------------------------------------------
# hoppers: stepping one goroutine while the scheduler moves it


DWARF_BUILDS = [b for b in BUILDS if not b.stripped]


@pytest.mark.parametrize("build", DWARF_BUILDS, ids=[b.id for b in DWARF_BUILDS])
def test_next_stays_on_the_goroutine(build: GoBuild):
    binary = build.binary(HOPPERS)
    steps = []
    with go_server(binary, options=GO_THREADS) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-break-insert main.hop")
        mi.command("-exec-continue", expect="running")
        first = mi.wait_stopped(timeout=120)
        assert first.get("reason") == "breakpoint-hit", first
        mi.command("-break-delete")
        worker_id = _printed(mi_stream(mi, "p id"))
        for _ in range(12):
            mi.command("-exec-next", expect="running")
            stopped = mi.wait_stopped(timeout=120)
            try:
                printed = _printed(mi_stream(mi, "p id"))
            except MiError as exc:
                printed = f"error: {exc}"
            steps.append((stopped.get("reason"), stopped.get("thread-id"), stopped.get("frame", {}),
                          printed, parse_goroutines(mi_stream(mi, "monitor goroutines")),
                          {k: v for k, v in stopped.items() if k != "frame"}))
        mi_stream(mi, "kill")
    thread_id = first["thread-id"]
    assert re.fullmatch(r"[0-3]", worker_id), worker_id
    kernel_threads = set()
    where = [(step[5], step[2].get("func"), step[3]) for step in steps]
    print("\n".join(map(str, where)))
    for reason, tid, frame, printed_id, listed, _ in steps:
        assert (reason, tid) == ("end-stepping-range", thread_id), where
        assert frame.get("func") in ("main.hop", "main.worker"), where
        assert printed_id == worker_id, where
        running = [g for g in listed.values() if g.state == "running" and g.tid is not None
                   and g.location.split(" ")[0] in ("main.hop", "main.worker")]
        kernel_threads.update(g.tid for g in running)
    print(f"\n{build.id}: 12 `next`s on one goroutine ran on {len(kernel_threads)} "
          f"kernel thread(s)")


def test_go_threads_on_at_the_next_stop():
    build = DWARF_BUILDS[-1]
    binary = build.binary(HOPPERS)
    with go_server(binary) as server, MiSession() as mi:
        mi_connect(mi, binary, server)
        mi.command("-break-insert main.hop")
        mi.command("-exec-continue", expect="running")
        before = mi.wait_stopped(timeout=120)
        said = mi_stream(mi, "monitor go threads on")
        # Until the program runs again, gdb's threads and its selection are as they were.
        unchanged = {_tid_of(t) for t in mi_threads(mi)}
        current = mi.command("-thread-info")["payload"].get("current-thread-id")
        mi.command("-exec-continue", expect="running")
        after = mi.wait_stopped(timeout=120)
        threads = mi_threads(mi)
        on_goroutine = mi_stream(mi, "p id")
        off = mi_stream(mi, "monitor go threads off")
        mi.command("-exec-continue", expect="running")
        back = mi.wait_stopped(timeout=120)
        kernel_again = mi_threads(mi)
        mi_stream(mi, "kill")
    assert said == "from the next stop on, every goroutine is a thread\n"
    assert all(tid < BASE for tid in unchanged) and current == before["thread-id"]
    [stopped] = [t for t in threads if t["id"] == after["thread-id"]]
    assert _tid_of(stopped) > BASE and re.fullmatch(r"g\d+ main\.main\.gowrap1", stopped["name"])
    assert re.fullmatch(r"\$\d+ = [0-3]\n", on_goroutine), on_goroutine
    assert off == "from the next stop on, the threads are the kernel's threads\n"
    [stopped] = [t for t in kernel_again if t["id"] == back["thread-id"]]
    assert _tid_of(stopped) < BASE


# ---------------------------------------------------------------------------------------
# lldb


@pytest.mark.skipif(shutil.which("lldb") is None, reason="lldb is not installed (make setup)")
def test_lldb_lists_goroutines_as_threads(gobuild: GoBuild, tmp_path):
    binary = gobuild.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(gobuild, WAITERS, "main.stopHere")
    with go_server(binary, env={"GOAWARE_DUMP": str(dump_path)}, options=GO_THREADS) as server:
        run = run_lldb_batch(server, binary, [
            f"breakpoint set -a {stop_here:#x}", "c", "thread list", "thread backtrace all",
            "kill"], timeout=120)
    assert not run.timed_out, run.raw
    raw = run.raw.replace("\r\n", "\n")
    listing = raw.split("(lldb) thread list\n", 1)[1].split("(lldb) ", 1)[0]
    names = {int(m.group(2)): m.group(3) for m in LLDB_THREAD.finditer(listing)}
    stopped = [int(m.group(2)) for m in LLDB_THREAD.finditer(listing) if m.group(1) == "*"]
    assert stopped == [BASE + 1], listing
    dump = parse_dump(dump_path.read_text())
    for d in dump:
        assert BASE + d.goid in names, (d.goid, listing)
        assert f"name = 'g{d.goid} " in names[BASE + d.goid], names[BASE + d.goid]
    if gobuild.cgo and not gobuild.stripped:
        # The goroutine in a C call: lldb unwinds its thread from the C frames into the Go
        # frames (through asmcgocall's frame pointer), which are the dump's.
        [d] = [d for d in dump if d.frames and d.frames[-1][0] == "main.cgoSleeper"]
        thread = raw.split("(lldb) thread backtrace all\n", 1)[1]
        block = thread.split(f"name = 'g{d.goid} main.cgoSleeper'", 1)[1].split("thread #", 1)[0]
        functions = [m.group(1) for m in re.finditer(r"frame #\d+: 0x[0-9a-f]+ \S+?`(\S+)", block)]
        assert "runtime.asmcgocall.abi0" in functions, block
        after = functions[functions.index("runtime.asmcgocall.abi0") + 1:]
        assert [f.removesuffix(".abi0") for f in after if f != "runtime.cgocall"][:len(d.frames)] \
            == [f for f, _, _ in d.frames], block


# ---------------------------------------------------------------------------------------
# 10,000 goroutines: every one is listed, through both ways of listing


MANY = 10_000


def test_ten_thousand_goroutine_threads_are_all_listed(tmp_path):
    build = BUILDS[-3]   # one build is enough: the paging is the server's, not Go's
    binary = build.binary(WAITERS)
    dump_path = tmp_path / "dump.txt"
    stop_here = entry_address(build, WAITERS, "main.stopHere")
    env = {"GOAWARE_DUMP": str(dump_path), "GOAWARE_MANY": str(MANY)}
    with go_server(binary, env=env, options=GO_THREADS) as server:
        client = rsp_client(server.address, timeout=120)
        try:
            client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
            assert client.request(b"?").startswith(b"T")
            assert client.request(b"Z0,%x,1" % stop_here) == b"OK"
            stop = client.request(b"c", timeout=120)
            assert stop.startswith(b"T05"), stop
            listed = _thread_info_ids(client)
            xml = _xfer_threads(client)
        finally:
            client.close()
    dump = parse_dump(dump_path.read_text())
    assert len(dump) > MANY
    goroutine_ids = {tid - BASE for tid in listed if tid > BASE}
    assert {d.goid for d in dump} <= goroutine_ids
    xml_ids = {int(m.group(1), 16) for m in re.finditer(r'<thread id="p[0-9a-f]+\.([0-9a-f]+)"', xml)}
    assert xml_ids == set(listed)
    assert len(listed) == len(set(listed))


def _thread_info_ids(client) -> list[int]:
    ids: list[int] = []
    reply = client.request(b"qfThreadInfo", timeout=120)
    while reply.startswith(b"m"):
        ids += [int(t.split(b".")[-1], 16) for t in reply[1:].split(b",")]
        reply = client.request(b"qsThreadInfo", timeout=120)
    assert reply == b"l", reply
    return ids


def _xfer_threads(client) -> str:
    data = b""
    while True:
        reply = client.request(b"qXfer:threads:read::%x,%x" % (len(data), 0x3fff), timeout=120)
        data += unescape_binary(reply[1:])
        if reply.startswith(b"l"):
            return data.decode()
        assert reply.startswith(b"m"), reply[:100]
