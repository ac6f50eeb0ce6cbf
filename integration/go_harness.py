"""Helpers for the Go integration tests (integration/test_go.py).

- the build matrix (Go 1.19, 1.21, 1.27 with DWARF and `-s -w`, 1.25 with `-s -w`; cgo),
  built once through
  tests/gotoolchains.py and its cache;
- oracles that trust nothing in the project: `go tool nm` and `go tool addr2line` run on the
  DWARF twin of a build (the stripped twin has the same functions at the same addresses,
  which `same_text` checks), strace, and the program run without a debugger;
- gdbstub started with a chosen environment for the program (harness.start_server passes
  the test process's environment on), gdb/MI `monitor` output, parsers of the Go monitor
  formats, and the one raw RSP client (tests/rsp_client.py) for timing one packet's round trip.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from harness import ROOT, Server, clean_environment, start_server
from mi import MiSession

sys.path.insert(0, str(ROOT / "tests"))
# These live in tests/ and are shared with the unit tests; godump parses runtime.Stack dumps.
from godump import DumpGoroutine, parse_dump  # noqa: E402,F401 - re-exported for the tests
from gotoolchains import build, go_tool  # noqa: E402
from rsp_client import Client  # noqa: E402

GOPROGRAMS = ROOT / "tests" / "goprograms"

# Variables that change what the Go runtime prints or how it schedules: the tests set what
# they need and nothing leaks in from the caller's environment.
_GO_RUNTIME_VARIABLES = ("GODEBUG", "GOTRACEBACK", "GOMAXPROCS", "GOGC", "GOAWARE_DUMP",
                         "GOAWARE_MANY")


@dataclass(frozen=True)
class GoBuild:
    """One toolchain and one set of link flags; `binary(program)` builds (or reuses) it."""

    minor: str
    stripped: bool = False
    cgo: bool = False

    @property
    def id(self) -> str:
        return f"go{self.minor}{'-cgo' if self.cgo else ''}-" \
               f"{'stripped' if self.stripped else 'dwarf'}"

    def binary(self, program: str) -> Path:
        return build(self.minor, program, stripped=self.stripped, cgo=self.cgo)

    def twin(self, program: str) -> Path:
        """The DWARF build with the same toolchain and cgo setting (the oracles read it)."""
        return build(self.minor, program, stripped=False, cgo=self.cgo)


BUILDS = [GoBuild("1.19"), GoBuild("1.19", stripped=True),
          GoBuild("1.21"), GoBuild("1.21", stripped=True),
          GoBuild("1.25", stripped=True),
          GoBuild("1.27"), GoBuild("1.27", stripped=True),
          GoBuild("1.27", cgo=True), GoBuild("1.27", cgo=True, stripped=True)]


def marks(program: str) -> dict[str, tuple[str, int]]:
    """`// MARK:name` comments of a Go program: name -> (absolute file, line)."""
    found = {}
    for path in sorted((GOPROGRAMS / program).glob("*.go")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "// MARK:" in line:
                found[line.split("// MARK:")[1].strip()] = (str(path), number)
    return found


def line_of(program: str, file: str, text: str) -> int:
    """The line of GOPROGRAMS/program/file whose stripped text is `text`."""
    lines = (GOPROGRAMS / program / file).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip() == text)


# ---------------------------------------------------------------------------------------
# Oracles on the binary


@dataclass(frozen=True)
class NmSymbol:
    name: str
    addr: int
    size: int
    kind: str


def nm(minor: str, binary: Path) -> dict[str, NmSymbol]:
    """`go tool nm -size` of a binary with a symbol table, by name."""
    out = {}
    for line in go_tool(minor, "nm", "-size", str(binary)).splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and re.fullmatch(r"[0-9a-f]+", parts[0]):
            out[parts[3]] = NmSymbol(parts[3], int(parts[0], 16), int(parts[1]), parts[2])
    return out


def entry_address(build: GoBuild, program: str, name: str) -> int:
    """A function's entry, read from the DWARF twin (valid in the stripped build too)."""
    return nm(build.minor, build.twin(program))[name].addr


# A thread line of lldb's `thread list`: selected mark, tid, the rest (name, stop reason).
LLDB_THREAD = re.compile(r"^([* ]) thread #\d+: tid = (\d+), (.*)$", re.M)


def addr2line(minor: str, binary: Path, addrs: Sequence[int]) -> list[tuple[str, str, int]]:
    """(function, file, line) of each address, from `go tool addr2line` (line 0 if unknown)."""
    out = go_tool(minor, "addr2line", str(binary),
                  stdin="".join(f"{a:#x}\n" for a in addrs)).splitlines()
    result = []
    for func, loc in zip(out[0::2], out[1::2]):
        file, _, line = loc.rpartition(":")
        result.append((func, file, int(line) if line.isdigit() else 0))
    assert len(result) == len(addrs), out
    return result


def _section(path: Path, name: str) -> tuple[int, bytes]:
    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        assert section is not None, f"{path} has no {name}"
        return section["sh_addr"], section.data()


def same_text(stripped: Path, twin: Path) -> bool:
    """True when two builds place every function at the same address with the same lines:
    the same .text address and size, and byte-identical .gopclntab (whose function table
    holds each function's offset from the text start, its name and its line tables).

    The .text bytes themselves may differ a little: `-s -w` is recorded in the build
    information in .rodata, which moves later read-only data and so the RIP-relative
    operands that point there."""
    (text_addr, text), (_, table) = _section(stripped, ".text"), _section(stripped, ".gopclntab")
    (twin_addr, twin_text), (_, twin_table) = _section(twin, ".text"), _section(twin, ".gopclntab")
    return (text_addr, len(text), table) == (twin_addr, len(twin_text), twin_table)


def has_symbols(path: Path) -> bool:
    with path.open("rb") as f:
        elf = ELFFile(f)
        return elf.get_section_by_name(".symtab") is not None \
            or elf.get_section_by_name(".debug_info") is not None


# ---------------------------------------------------------------------------------------
# Running programs


def program_environment(env: Mapping[str, str] = ()) -> dict[str, str]:
    """The environment a test program runs with: clean_environment() minus the Go runtime's
    variables, plus `env`."""
    out = clean_environment()
    for name in _GO_RUNTIME_VARIABLES:
        out.pop(name, None)
    out.update(env)
    return out


@dataclass
class PlainRun:
    returncode: int
    stdout: str
    stderr: str


def run_plain(binary: Path, args: Sequence[str] = (), env: Mapping[str, str] = (),
              timeout: float = 60.0) -> PlainRun:
    """The program run without a debugger."""
    result = subprocess.run([str(binary), *args], env=program_environment(env),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    return PlainRun(result.returncode, result.stdout, result.stderr)


@contextlib.contextmanager
def go_server(binary: Path, args: Sequence[str] = (), env: Mapping[str, str] = (),
              options: Sequence[str] = ()) -> Iterator[Server]:
    """gdbstub serving `binary` on a free port, the program started with `env`; `options`:
    the server's own (e.g. --go-goroutines).

    start_server gives the server (and so the program) the test process's environment; it is
    set for the moment the server starts and restored at once.
    """
    saved = dict(os.environ)
    stack = contextlib.ExitStack()
    try:
        os.environ.clear()
        os.environ.update(program_environment(env))
        server = stack.enter_context(start_server("gdbstub", binary, args, extra=options))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with stack:
        yield server


def strace_signals(binary: Path, args: Sequence[str], signame: str,
                   env: Mapping[str, str] = ()) -> tuple[int, PlainRun]:
    """How many times the program received `signame` (strace -f), and how the run ended."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "strace.log"
        result = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=none", "-e", f"signal={signame}",
             "-o", str(log), str(binary), *args],
            env=program_environment(env), stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=120)
        count = len(re.findall(rf"--- {signame} \{{", log.read_text()))
    return count, PlainRun(result.returncode, result.stdout, result.stderr)


def task_ids(pid: int) -> set[int]:
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def syscall_number(pid: int, tid: int) -> int | None:
    """The system call a stopped thread is in (from /proc; None when it is in none)."""
    first = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
    return int(first) if first.lstrip("-").isdigit() and int(first) >= 0 else None


# ---------------------------------------------------------------------------------------
# gdb/MI


def mi_connect(mi: MiSession, binary: Path, server: Server) -> dict:
    """Load `binary` and connect to `server`; the payload of the stop at the entry point."""
    mi.command("-gdb-set mi-async on")
    mi.console("set pagination off")
    mi.command(f"-file-exec-and-symbols {binary}")
    mi.command(f"-target-select remote {server.address}", expect="connected")
    return mi.wait_stopped()


def mi_stream(mi: MiSession, command: str, *, timeout: float = 60.0) -> str:
    """A CLI command through MI; returns what it printed (console and target streams: gdb
    prints a `monitor` command's output on the target stream)."""
    start = len(mi.log)
    mi.console(command, timeout=timeout)
    return "".join(r["payload"] for r in mi.log[start:]
                   if r.get("type") in ("console", "target") and isinstance(r.get("payload"), str))


def mi_threads(mi: MiSession) -> list[dict]:
    """-thread-info: every thread gdb knows, with `name`, `details`, `target-id`."""
    return mi.command("-thread-info")["payload"]["threads"]


def lwp_of(thread: dict) -> int:
    """The kernel tid of a -thread-info entry ('Thread PID.TID')."""
    match = re.fullmatch(r"Thread \d+\.(\d+)", thread["target-id"])
    assert match, thread
    return int(match.group(1))


# ---------------------------------------------------------------------------------------
# The Go monitor formats


@dataclass(frozen=True)
class Listed:
    """One line of `monitor goroutines`."""

    goid: int
    state: str
    location: str
    start: str
    tid: int | None


_LISTED = re.compile(r"^goroutine (\d+) \[(.*)\]: (.*)  start=(\S+)  (?:thread (\d+)|no thread)$")


def parse_goroutines(text: str) -> dict[int, Listed]:
    out = {}
    for line in text.splitlines():
        match = _LISTED.match(line)
        assert match, f"unexpected `monitor goroutines` line {line!r}"
        goid = int(match.group(1))
        assert goid not in out, f"goroutine {goid} listed twice"
        out[goid] = Listed(goid, match.group(2), match.group(3), match.group(4),
                           int(match.group(5)) if match.group(5) else None)
    return out


@dataclass
class Backtrace:
    """The text of `monitor goroutine N bt`, parsed."""

    header: str
    frames: list[tuple[str, str, int]] = field(default_factory=list)
    created_by: tuple[str, str, int] | None = None
    parent_goid: int | None = None
    unavailable: bool = False
    c_frames: list[tuple[str | None, str, int]] = field(default_factory=list)  # (symbol, object, pc)
    c_lines: list[tuple[str, int] | None] = field(default_factory=list)  # each C frame's file:line
    c_frames_cut: bool = False      # the C frames did not lead back to the goroutine's stack


_C_FRAME = re.compile(
    r"^(?:(\S+)\+0x[0-9a-f]+|\?\?) \[C\] (\S+) pc=(0x[0-9a-f]+)(?: (\S+):(\d+))?$")
_FRAME = re.compile(r"^(\S+)\(\.\.\.\) (\S+):(\d+)(?: \+0x[0-9a-f]+)?$")
_CREATED = re.compile(r"^created by (\S+?)(?: in goroutine (\d+))? (\S+):(\d+)$")


def gdb_pcs_into_asmcgocall(minor: str, twin: Path, bt: str) -> list[int]:
    """The pcs of gdb's `bt` frames up to the return into runtime.asmcgocall (found by
    address in the DWARF twin: a stripped build has no names), i.e. the C frames of a thread
    inside a cgo call. An inlined frame shares its caller's pc and shows none. From Go 1.21
    the linker's symbol for the assembly function is runtime.asmcgocall.abi0."""
    table = nm(minor, twin)
    asmcgocall = table.get("runtime.asmcgocall.abi0") or table["runtime.asmcgocall"]
    pcs = []
    for match in re.finditer(r"^#\d+\s+0x([0-9a-f]+) in ", bt, re.M):
        pc = int(match.group(1), 16)
        if asmcgocall.addr <= pc < asmcgocall.addr + asmcgocall.size:
            return pcs
        pcs.append(pc)
    raise AssertionError(f"gdb's backtrace never reached runtime.asmcgocall:\n{bt}")


def parse_backtrace(text: str) -> Backtrace:
    lines = text.splitlines()
    assert lines and re.fullmatch(r"goroutine \d+ \[.*\]:", lines[0]), text
    bt = Backtrace(lines[0])
    for line in lines[1:]:
        if (c_frame := _C_FRAME.match(line)) is not None:
            assert not bt.frames and not bt.c_frames_cut, f"a C frame after Go frames: {text}"
            bt.c_frames.append((c_frame.group(1), c_frame.group(2), int(c_frame.group(3), 16)))
            bt.c_lines.append((c_frame.group(4), int(c_frame.group(5))) if c_frame.group(4)
                              else None)
        elif line.startswith("(C frames end here"):
            bt.c_frames_cut = True
        elif (frame := _FRAME.match(line)) is not None:
            assert bt.created_by is None, f"a frame after 'created by': {text}"
            bt.frames.append((frame.group(1), frame.group(2), int(frame.group(3))))
        elif (created := _CREATED.match(line)) is not None:
            bt.created_by = (created.group(1), created.group(3), int(created.group(4)))
            bt.parent_goid = int(created.group(2)) if created.group(2) else None
        elif line.startswith("(stack unavailable"):
            bt.unavailable = True
        else:
            raise AssertionError(f"unexpected backtrace line {line!r} in:\n{text}")
    return bt


# A function name may hold spaces (generic shapes: `F[go.shape.interface { Error() string }]`).
_SYMBOL = re.compile(r"^(.+?)(?: \+ (0x[0-9a-f]+))? at (\S+):(\d+)(?: \(inlined .*\))?$")


def parse_info_symbol(text: str) -> tuple[str, int, str, int]:
    """`monitor info symbol` output: (function, offset, file, line)."""
    match = _SYMBOL.match(text.strip())
    assert match, f"unexpected `monitor info symbol` output {text!r}"
    return (match.group(1), int(match.group(2) or "0", 16), match.group(3),
            int(match.group(4)))


# ---------------------------------------------------------------------------------------
# A raw RSP client (for timing one packet's round trip without gdb in between): the project's
# one, tests/rsp_client.py.


def rsp_client(address: str, timeout: float = 60.0) -> Client:
    return Client.connect(address, timeout)


def timed(fn, *args):
    """(fn(*args), seconds it took)."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start
