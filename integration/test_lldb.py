"""lldb as a client: scripted lldb sessions against gdbstub, each compared with the same
session against lldb-server (lldb's own server) after normalising pids, tids, ports and
addresses.

Known, deliberate differences, handled where they arise:
- lldb-server runs the program on a pseudo-terminal and forwards its output to lldb (lldb
  prints it); gdbstub's program writes to the server's own stdout, as under gdbserver. The
  program's output is taken out of lldb's transcript and checked where each server puts it.
- lldb's default signal policy stops on SIGURG and SIGWINCH; until lldb sends QPassSignals
  (which it does once the user runs `process handle`), gdbstub passes SIGURG, SIGWINCH,
  SIGCHLD, SIGPROF... to the program without a stop, for the sake of runtimes that send
  them to themselves all the time. lldb-server reports them and lldb stops.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import Programs, line_of, wait_for_file
from lldb_harness import (
    LLDB_KINDS,
    PROLOGUE,
    LldbConsole,
    LldbRun,
    normalize,
    run_lldb_batch,
    start_any,
)

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("lldb") is None or shutil.which("lldb-server") is None,
                       reason="lldb and lldb-server are not installed (make setup installs them)"),
]

SIMPLE_OUTPUT = "counter=15 buf=Hello origin=18,4\n"


def _diff(expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile="lldb-server", tofile="gdbstub"))


def assert_same(reference: str, candidate: str, what: str) -> None:
    if reference != candidate:
        pytest.fail(f"gdbstub differs from lldb-server in {what}:\n"
                    + _diff(reference, candidate)
                    + f"\n--- full gdbstub transcript ---\n{candidate}")


def without_program_output(text: str, output: str) -> str:
    """lldb's transcript minus the program's own lines (which only lldb-server forwards)."""
    lines = text.splitlines(keepends=True)
    for wanted in output.splitlines(keepends=True):
        if wanted in lines:
            lines.remove(wanted)
    return "".join(lines)


def program_output(kind: str, run: LldbRun, server_stdout: str, output: str) -> int:
    """How many times the program's `output` reached the user, wherever the server puts it."""
    if kind == "lldb-server":
        return run.raw.replace("\r\n", "\n").count(output)
    return server_stdout.count(output)


def compile_c(source: str, directory: Path, name: str, *flags: str) -> Path:
    """Build a C program from `source` with debug info into `directory`."""
    path = directory / f"{name}.c"
    path.write_text(source)
    binary = directory / name
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", *flags, "-o",
                    str(binary), str(path)], check=True, capture_output=True, text=True)
    return binary


# ---------------------------------------------------------------------------------------
# The main session on simple.c

LOG_NAME = "packets.log"


def simple_session() -> list[str]:
    add_return = line_of("simple.c", "add-return")
    return [
        "b main",
        f"b simple.c:{add_return}",
        "c",
        "bt",
        "frame variable",
        "c",
        "bt",
        "frame variable",
        "register read rax",
        "register write rax 0x1234",
        "register read rax",
        "register read rip rsp rbp",
        "memory read --size 1 --count 16 &buf",
        "memory read --format x --size 4 --count 2 &origin",
        "s",
        "n",
        "finish",
        "breakpoint disable",
        "watchpoint set variable counter",
        "c",
        "frame variable",
        "watchpoint delete",
        "kill",
    ]


@pytest.fixture(scope="module")
def simple_runs(programs: Programs, tmp_path_factory) -> dict[str, tuple[LldbRun, str]]:
    """The main session, once per server: lldb's transcript and lldb's packet log."""
    runs = {}
    for kind in LLDB_KINDS:
        cwd = tmp_path_factory.mktemp(kind.replace("-", "_"))
        with start_any(kind, programs.simple) as server:
            run = run_lldb_batch(server, programs.simple, simple_session(), cwd=cwd,
                                 packet_log=cwd / LOG_NAME)
            server.wait_exit(5.0)
        assert not run.timed_out, run.raw
        runs[kind] = (run, (cwd / LOG_NAME).read_text(errors="replace"))
    return runs


def test_simple_session_under_gdbstub(simple_runs) -> None:
    """What the session must show on its own: stops, frames, values, the watchpoint hit."""
    run, log = simple_runs["gdbstub"]
    out = run.text
    main_first = line_of("simple.c", "main-first")
    add_return = line_of("simple.c", "add-return")
    bump_body = line_of("simple.c", "bump-body")
    bump_end = line_of("simple.c", "bump-end")
    loop_call = line_of("simple.c", "loop-call")
    assert run.returncode == 0, run.raw
    assert "stop reason = signal SIGSTOP" in out
    assert re.search(rf"stop reason = breakpoint 1\.1\n +frame #0: 0x<ADDR> "
                     rf"simple`main\(argc=1, argv=0x<ADDR>\) at simple\.c:{main_first}:", out)
    # bt at add: all frames with symbols and lines.
    assert re.search(rf"\* frame #0: 0x<ADDR> simple`add\(a=0, b=1\) at simple\.c:{add_return}:\d+\n"
                     rf" +frame #1: 0x<ADDR> simple`bump\(n=1\) at simple\.c:{bump_body}:\d+\n"
                     rf" +frame #2: 0x<ADDR> simple`main\(argc=1, argv=0x<ADDR>\) "
                     rf"at simple\.c:{loop_call}:\d+\n", out), out
    assert "(int) a = 0\n(int) b = 1\n(int) sum = 1\n" in out
    assert "(lldb) register read rax\n     rax = 0x0000000000000001\n" in out
    assert ("(lldb) register write rax 0x1234\n(lldb) register read rax\n"
            "     rax = 0x0000000000001234\n") in out
    assert "68 65 6c 6c 6f 00 00 00 00 00 00 00 00 00 00 00  hello..........." in out
    assert re.search(r"0x<ADDR>: 0x00000003 0x00000004\n", out)
    assert "stop reason = step in" in out
    assert "stop reason = step over" in out
    assert "stop reason = step out" in out
    # The watchpoint: counter goes from 1 to 3 in bump(2); lldb reports the hit after the
    # store, on the line after the assignment.
    assert re.search(rf"Watchpoint 1 hit:\nold value: 1\nnew value: 3\n[\s\S]*"
                     rf"stop reason = watchpoint 1\n +frame #0: 0x<ADDR> "
                     rf"simple`bump\(n=2\) at simple\.c:{bump_end}:", out), out
    assert "(int) n = 2\n" in out
    assert "Process <PID> exited with status = 9 (0x00000009)" in out
    # `memory read` went through lldb's `x` packet and got raw bytes back.
    x_replies = re.findall(r"send packet: \$x[0-9a-f]+,[0-9a-f]+#..\n.*read packet: \$(.)", log)
    assert x_replies, "lldb sent no x packet"
    assert "E" not in x_replies, "an x packet got an error reply"


def test_simple_session_equals_lldb_server(simple_runs) -> None:
    reference = simple_runs["lldb-server"][0].text
    candidate = simple_runs["gdbstub"][0].text
    assert "<lldb timed out" not in reference
    assert_same(reference, candidate, "the simple.c session")


# ---------------------------------------------------------------------------------------
# Threads

NAMED_THREADS = r"""
/* named_threads.c: three workers name themselves worker-1..3 and block reading a pipe;
   once all are named main calls all_named() (the breakpoint), then releases and joins them. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define NTHREADS 3

static int ready[2], release[2];

static void *worker(void *arg)
{
    char name[16], c;

    snprintf(name, sizeof name, "worker-%ld", (long)arg);
    pthread_setname_np(pthread_self(), name);
    write(ready[1], "r", 1);
    read(release[0], &c, 1); /* LINE:blocked */
    return NULL;
}

__attribute__((noinline)) void all_named(void)
{
    __asm__ volatile("");
}

int main(void)
{
    pthread_t threads[NTHREADS];
    char c;
    long i;

    pipe(ready);
    pipe(release);
    for (i = 0; i < NTHREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
    for (i = 0; i < NTHREADS; i++)
        read(ready[0], &c, 1);
    all_named();
    close(release[1]);
    for (i = 0; i < NTHREADS; i++)
        pthread_join(threads[i], NULL);
    printf("joined\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def named_threads(tmp_path_factory) -> Path:
    return compile_c(NAMED_THREADS, tmp_path_factory.mktemp("named"), "named_threads",
                     "-pthread")


def test_thread_list_with_names(named_threads: Path, tmp_path) -> None:
    commands = ["b all_named", "c", "thread list", "thread backtrace all", "c"]
    texts = {}
    for kind in LLDB_KINDS:
        with start_any(kind, named_threads) as server:
            run = run_lldb_batch(server, named_threads, commands, cwd=tmp_path)
            server.wait_exit(5.0)
            assert program_output(kind, run, server.inferior_output(), "joined\n") == 1
        assert not run.timed_out and run.returncode == 0, run.raw
        texts[kind] = without_program_output(run.text, "joined\n")
    out = texts["gdbstub"]
    listing = out.split("(lldb) thread list\n", 1)[1].split("(lldb)", 1)[0]
    assert re.search(r"^\* thread #1: tid = <TID>, 0x<ADDR> named_threads`all_named at "
                     r"named_threads\.c:\d+:\d+, name = 'named_threads', "
                     r"stop reason = breakpoint 1\.1$", listing, re.M), listing
    names = re.findall(r"^  thread #\d+: tid = <TID>, .*, name = '([\w-]+)'$", listing, re.M)
    assert sorted(names) == ["worker-1", "worker-2", "worker-3"], listing
    assert re.search(r"frame #\d+: 0x<ADDR> named_threads`worker\(arg=0x0*1\) at "
                     rf"named_threads\.c:{_line(named_threads, 'blocked')}:", out), out
    assert "Process <PID> exited with status = 0 (0x00000000)" in out
    assert_same(texts["lldb-server"], out, "the named-threads session")


def _line(binary: Path, tag: str) -> int:
    return line_of(binary.with_suffix(".c"), tag)


def _stopped_thread_lines(text: str) -> list[str]:
    listing = text.split("(lldb) thread list\n", 1)[1].split("(lldb)", 1)[0]
    return [line for line in listing.splitlines() if line.startswith("* thread")]


def test_thread_list_in_threads_c(programs: Programs, tmp_path) -> None:
    """threads.c: where the other threads are when a worker hits the breakpoint is a matter
    of scheduling, so the comparison keeps to what is certain: the stopped thread's line,
    every thread named 'threads', and the run to the end."""
    add_share = line_of("threads.c", "add-share")
    commands = [f"b threads.c:{add_share}", "c", "thread list", "bt", "breakpoint delete",
                "c"]
    texts = {}
    for kind in LLDB_KINDS:
        with start_any(kind, programs.threads) as server:
            run = run_lldb_batch(server, programs.threads, commands, cwd=tmp_path,
                                 packet_log=tmp_path / f"{kind}.log")
            server.wait_exit(5.0)
            assert program_output(kind, run, server.inferior_output(), "total=6000\n") == 1
        assert not run.timed_out and run.returncode == 0, run.raw
        texts[kind] = without_program_output(run.text, "total=6000\n")
    for kind, out in texts.items():
        listing = out.split("(lldb) thread list\n", 1)[1].split("(lldb)", 1)[0]
        threads = re.findall(r"^[* ] thread #\d+: tid = <TID>, .*, name = '(\w+)'", listing, re.M)
        assert 2 <= len(threads) <= 4 and set(threads) == {"threads"}, (kind, listing)
        assert "Process <PID> exited with status = 0 (0x00000000)" in out, (kind, out)
    stopped = {kind: _stopped_thread_lines(out) for kind, out in texts.items()}
    assert len(stopped["gdbstub"]) == 1 and re.search(
        rf"threads`add_share\(n=\d\) at threads\.c:{add_share}:\d+, name = 'threads', "
        rf"stop reason = breakpoint 1\.1$", stopped["gdbstub"][0]), stopped
    # Thread index numbers depend on how many threads existed: compare without them.
    strip = [re.sub(r"#\d+|n=\d", "", line) for line in stopped["gdbstub"]]
    assert strip == [re.sub(r"#\d+|n=\d", "", line) for line in stopped["lldb-server"]]


# ---------------------------------------------------------------------------------------
# Interrupting a running program (interactive lldb on a pty)


def _interrupt_session(kind: str, program: Path) -> str:
    with start_any(kind, program) as server, LldbConsole(program) as console:
        console.expect(r"\(lldb\) ")
        console.settle()
        for command in PROLOGUE:
            console.command(command)
        console.command(f"gdb-remote {server.address}", r"stop reason = signal SIGSTOP")
        console.command("c", r"Process \d+ resuming", quiet=1.0)
        console.command("process interrupt", r"Process \d+ stopped\n.*stop reason")
        console.command("bt", r"frame #0")
        console.command("frame select 0")
        console.command("kill", r"exited with status")
        console.close()
        return console.transcript


def _canonical_interrupt(text: str) -> str:
    """The interrupt transcript without what depends on where in the loop the stop fell:
    prompts (whose order against async output is timing), source listings, the exact
    frame #0 (tick or main, which line), and frame numbers below it."""
    text = normalize(text).replace("(lldb) ", "")
    lines = []
    for line in text.splitlines():
        if not line.strip() or re.match(r"^(->)? +\d+ |^ +\t *\^$", line):
            continue
        line = re.sub(r"spin`(tick|main) at spin\.c:\d+:\d+", "spin`<loop>", line)
        if re.match(r"^ +\* frame #0: 0x<ADDR> spin`<loop>$", line):
            continue  # frame 0 is the loop; its caller, if any, too
        line = re.sub(r"frame #\d+", "frame #N", line)
        lines.append(line)
    # bt from the frame in main downwards: the tick frame is there only if the stop fell in it.
    out = "\n".join(lines)
    return re.sub(r"(    frame #N: 0x<ADDR> spin`<loop>\n)+", "", out + "\n")


def test_process_interrupt(programs: Programs) -> None:
    transcripts = {kind: _interrupt_session(kind, programs.spin) for kind in LLDB_KINDS}
    out = normalize(transcripts["gdbstub"])
    stop = out.split("process interrupt", 1)[1]
    assert re.search(r"Process <PID> stopped\n\* thread #1, name = 'spin', "
                     r"stop reason = signal SIGSTOP\n +frame #0: 0x<ADDR> "
                     r"spin`(tick|main) at spin\.c:\d+", stop), out
    assert re.search(r"frame #\d: 0x<ADDR> spin`main at spin\.c:\d+", stop), out
    assert "Process <PID> exited with status = 9 (0x00000009)" in stop, out
    assert_same(_canonical_interrupt(transcripts["lldb-server"]),
                _canonical_interrupt(transcripts["gdbstub"]), "the interrupt session")


# ---------------------------------------------------------------------------------------
# Detach


def test_detach_lets_the_program_finish(programs: Programs, tmp_path) -> None:
    texts = {}
    for kind in LLDB_KINDS:
        cwd = tmp_path / kind
        cwd.mkdir()
        marker = cwd / "marker"
        with start_any(kind, programs.simple, ["0", str(marker)], cwd=cwd) as server:
            pid = server.inferior_pid
            run = run_lldb_batch(server, programs.simple,
                                 ["b bump", "c", "frame variable", "detach"], cwd=cwd)
            server.wait_exit(10.0)
            # Detached, the program runs on by itself and writes its marker at the end.
            assert wait_for_file(marker, 10.0), (kind, run.raw, server.stderr)
            assert marker.read_text() == "counter=15 buf=Hello\n"
        assert not run.timed_out and run.returncode == 0, run.raw
        assert pid is not None
        texts[kind] = without_program_output(run.text, SIMPLE_OUTPUT)
    out = texts["gdbstub"]
    assert re.search(r"Process <PID> detached", out), out
    assert "(int) n = 1\n" in out, out
    assert_same(texts["lldb-server"], out, "the detach session")


# ---------------------------------------------------------------------------------------
# Signals a program sends itself

STORM = r"""
/* storm.c: with handlers installed, sends itself SIGURG, SIGCHLD, SIGWINCH and SIGPROF,
   ROUNDS times each, spinning between rounds; prints how many of each arrived; exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t counts[65];

static void on_signal(int signo)
{
    counts[signo]++;
}

int main(int argc, char **argv)
{
    static const int sigs[] = { SIGURG, SIGCHLD, SIGWINCH, SIGPROF };
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    struct sigaction sa = { 0 };
    volatile unsigned long spin;
    int r, i;

    sa.sa_handler = on_signal;
    for (i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, NULL);
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < 4; i++)
            kill(getpid(), sigs[i]);
        for (spin = 0; spin < 20000; spin++)
            ;
    }
    printf("urg=%d chld=%d winch=%d prof=%d\n", counts[SIGURG], counts[SIGCHLD],
           counts[SIGWINCH], counts[SIGPROF]);
    return 0;
}
"""
ROUNDS = 250
STORM_OUTPUT = f"urg={ROUNDS} chld={ROUNDS} winch={ROUNDS} prof={ROUNDS}\n"
STORM_SIGNALS = {23: "SIGURG", 17: "SIGCHLD", 28: "SIGWINCH", 27: "SIGPROF"}


@pytest.fixture(scope="module")
def storm(tmp_path_factory) -> Path:
    return compile_c(STORM, tmp_path_factory.mktemp("storm"), "storm")


def _signal_stops(log: str) -> list[int]:
    """Signals of the stop replies lldb read, other than SIGTRAP (lldb's own breakpoints)."""
    signals = [int(s, 16) for s in re.findall(r"read packet: \$T([0-9a-f]{2})", log)]
    return [s for s in signals if s not in (5, 19)]  # SIGSTOP: the stop at launch


def test_signal_storm_runs_to_exit_without_a_stop(storm: Path, tmp_path) -> None:
    with start_any("gdbstub", storm, [str(ROUNDS)]) as server:
        run = run_lldb_batch(server, storm, ["c"], cwd=tmp_path,
                             packet_log=tmp_path / LOG_NAME)
        server.wait_exit(5.0)
        stdout = server.inferior_output()
    assert not run.timed_out and run.returncode == 0, run.raw
    after = run.text.split("(lldb) c\n", 1)[1]
    # Not one stop: lldb goes from 'resuming' straight to the exit.
    assert after.count("stopped") == 0, after
    assert re.search(r"Process <PID> resuming\nProcess <PID> exited with status = 0 "
                     r"\(0x00000000\)\n", after), after
    # Every signal reached the program's handlers.
    assert stdout.count(STORM_OUTPUT) == 1, stdout
    log = (tmp_path / LOG_NAME).read_text(errors="replace")
    assert _signal_stops(log) == [], log[-3000:]


def test_signal_storm_under_lldb_server_stops(storm: Path, tmp_path) -> None:
    """The contrast: lldb-server reports every signal and lldb's default policy stops at the
    first SIGURG. This is why gdbstub passes such signals quietly for lldb."""
    with start_any("lldb-server", storm, [str(ROUNDS)]) as server:
        run = run_lldb_batch(server, storm, ["c"], cwd=tmp_path,
                             packet_log=tmp_path / LOG_NAME)
    assert not run.timed_out, run.raw
    assert "stop reason = signal SIGURG" in run.text, run.text
    log = (tmp_path / LOG_NAME).read_text(errors="replace")
    assert _signal_stops(log)[:1] == [23], log[-3000:]


def test_signal_policy_set_by_the_user_equals_lldb_server(storm: Path, tmp_path) -> None:
    """Once the user sets a signal's handling, lldb sends QPassSignals; from then on gdbstub
    stops exactly where lldb-server does."""
    commands = ["process handle SIGURG -s false -n false", "c", "c", "kill"]
    texts = {}
    for kind in LLDB_KINDS:
        with start_any(kind, storm, [str(ROUNDS)]) as server:
            run = run_lldb_batch(server, storm, commands, cwd=tmp_path)
        assert not run.timed_out, run.raw
        texts[kind] = run.text
    out = texts["gdbstub"]
    assert "Process <PID> stopped and restarted: thread 1 received signal: SIGCHLD" in out, out
    assert "stop reason = signal SIGWINCH" in out, out
    assert "SIGURG" not in out.split("(lldb) c\n", 1)[1], out
    assert_same(texts["lldb-server"], out, "the session with a user signal policy")
