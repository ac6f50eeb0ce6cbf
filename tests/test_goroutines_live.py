"""Goroutines read from a frozen Go process, against the program's own runtime.Stack dump.

tests/goprograms/waiters parks goroutines in ~20 known states (channel, select, sleep,
mutexes, cond, network poller, a raw read(2), a C call in the cgo build, a locked thread,
recursion, generics, wrappers, inlined calls), spins one, writes runtime.Stack(all) and
parks main in stopHere. Every goroutine of that dump must be listed with the same id and
the same header, and must print the same frames (function, file:line, +offset) and the same
"created by" line once Go's elision rules are applied. Every release of
tests/gotoolchains.py (1.19, 1.21, 1.24, 1.25, 1.27) with DWARF and stripped (-s -w); cgo,
PIE and race-detector (-race) builds on some of them (BUILDS).
"""

from __future__ import annotations

import io
import re
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.dwarf.callframe import FDE
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.structs import DWARFStructs
from elftools.elf.elffile import ELFFile

from godump import DumpGoroutine, parse_dump
from goprocess import FrozenGoProcess
from gotoolchains import build, go_tool, goroot
from gdbstub.symbols import gotraceback as tb
from gdbstub.symbols.cframes import MappedObjects
from gdbstub.symbols.elf_file import parse_proc_maps
from gdbstub.symbols.gocgo import cgo_call
from gdbstub.symbols.gosymfile import build_symbol_file
from gdbstub.symbols.gobinary import GoBinary
from gdbstub.symbols.goruntime import (G_RUNNING, G_SYSCALL, Goroutine, GoRuntime,
                                       ThreadState)

SOURCE = Path(__file__).parent / "goprograms" / "waiters" / "main.go"
# (minor, cgo, stripped, pie, race): every release with DWARF and stripped, a cgo build,
# PIEs, and race-detector builds (cgo, with ThreadSanitizer's own threads in the process).
BUILDS = [("1.19", False, False, False, False), ("1.19", False, True, False, False),
          ("1.21", False, False, False, False), ("1.21", False, True, False, False),
          ("1.24", False, False, False, False), ("1.24", False, True, False, False),
          ("1.25", False, False, False, False), ("1.25", False, True, False, False),
          ("1.27", False, False, False, False), ("1.27", False, True, False, False),
          ("1.27", True, False, False, False), ("1.27", True, True, False, False),
          ("1.19", False, True, True, False), ("1.24", False, False, True, False),
          ("1.27", False, True, True, False), ("1.27", True, False, True, False),
          ("1.19", True, False, False, True), ("1.24", True, True, False, True),
          ("1.27", True, False, False, True)]  # -race with -buildmode=pie: "not supported"


# The race runtime's assembly that calls ThreadSanitizer (runtime/race_amd64.s).
RACE_CALLS = frozenset({"racecall", "racecalladdr", "racecallatomic", "racefuncenter",
                        "racefuncexit"})


def _marks(path: Path) -> dict[str, int]:
    return {line.split("// MARK:")[1].strip(): n
            for n, line in enumerate(path.read_text().splitlines(), 1) if "// MARK:" in line}


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1)
                if line.strip() == text)


@dataclass
class Frozen:
    minor: str
    cgo: bool
    stripped: bool
    pie: bool
    race: bool
    bias: int
    process: FrozenGoProcess
    binary: GoBinary
    runtime: GoRuntime
    threads: list[ThreadState]
    goroutines: dict[int, Goroutine]
    dump: list[DumpGoroutine]


def _auxv_entry(pid: int) -> int:
    raw = Path(f"/proc/{pid}/auxv").read_bytes()
    pairs = struct.iter_unpack("<QQ", raw)
    return next(value for key, value in pairs if key == 9)  # AT_ENTRY


def _freeze(process: FrozenGoProcess, binary: GoBinary, bias: int):
    """Freeze once main is parked in stopHere (it prints "ready" just before)."""
    for _ in range(20):
        time.sleep(0.1)
        process.freeze()
        threads = process.thread_states()
        runtime = GoRuntime(binary, process.read_memory, load_bias=bias)
        listed = runtime.goroutines(threads)
        main = next(g for g in listed if g.goid == 1)
        if main.status != G_RUNNING and main.wait_reason == "chan receive":
            return runtime, threads, listed
        process.thaw()
    raise AssertionError("main never parked in stopHere")


@pytest.fixture(scope="module", params=BUILDS,
                ids=[f"go{m}{'-race' if r else '-cgo' if c else ''}{'-pie' if p else ''}-"
                     f"{'stripped' if s else 'dwarf'}" for m, c, s, p, r in BUILDS])
def frozen(request, tmp_path_factory):
    minor, cgo, stripped, pie, race = request.param
    path = build(minor, "waiters", cgo=cgo, stripped=stripped, pie=pie, race=race)
    process = FrozenGoProcess(path, tmp_path_factory.mktemp("dump") / "dump.txt")
    try:
        binary = GoBinary(path)
        assert binary.elf.has_symtab != stripped and binary.elf.is_pie == pie
        bias = binary.elf.load_bias_from_maps(
            parse_proc_maps(Path(f"/proc/{process.pid}/maps").read_text()))
        assert bias == binary.elf.load_bias_from_entry(_auxv_entry(process.pid))
        assert (bias != 0) == pie
        runtime, threads, listed = _freeze(process, binary, bias)
        yield Frozen(minor, cgo, stripped, pie, race, bias, process, binary, runtime, threads,
                     {g.goid: g for g in listed}, parse_dump(process.dump()))
    finally:
        process.close()


def _others(f: Frozen) -> list[DumpGoroutine]:
    """The dump without its first block (the goroutine that wrote it)."""
    assert f.dump[0].goid == 1 and f.dump[0].state == "running"
    return f.dump[1:]


def _is_spinner(d: DumpGoroutine) -> bool:
    return d.created_by is not None and d.created_by[2] == _line_of(SOURCE, "go spin()")


def test_dump_goroutines_have_same_header_frames_and_creator(frozen):
    f, rt = frozen, frozen.runtime
    for d in _others(f):
        g = f.goroutines.get(d.goid)
        assert g is not None, f"goroutine {d.goid} missing"
        creator = rt.creator(g)
        shown = creator if tb.shows_creator(g, creator, rt.wrapper_func_id) else None
        assert (shown.function, shown.file, shown.line) == d.created_by
        if d.parent_goid is not None:
            assert g.parent_goid == d.parent_goid
        if _is_spinner(d):
            continue  # it runs: its state and stack at the dump are not its state now
        assert tb.goroutine_header(g) == d.header
        frames = tb.visible_frames(rt.backtrace(g), rt.wrapper_func_id)
        assert [(tb.func_name_for_print(fr.function), fr.file, fr.line) for fr in frames] \
            == d.frames, f"goroutine {d.goid}"


def _normalise(block: str) -> str:
    # Go prints argument words; pclntab alone cannot recover them, so both sides say (...).
    return re.sub(r"^(\S.*)\(.*\)$", r"\1(...)", block, flags=re.M)


def test_formatted_text_equals_dump_text(frozen):
    f = frozen
    text = (Path(f.process.dump_path)).read_text().strip().split("\n\n")
    blocks = {int(b.split()[1]): b for b in text}
    for d in _others(f):
        if _is_spinner(d):
            continue
        ours = tb.format_goroutine(f.runtime, f.goroutines[d.goid])
        assert _normalise(ours) == _normalise(blocks[d.goid])


def test_user_goroutines_are_exactly_the_dumped_ones(frozen):
    f = frozen
    users = {g.goid for g in f.goroutines.values() if not tb.is_system_goroutine(g)}
    assert users == {d.goid for d in f.dump}
    # main, plus one per go statement in main (and the cgo file's).
    started = [line for line in SOURCE.read_text().splitlines() if line.startswith("\tgo ")]
    assert len(users) == 1 + len(started) + (1 if f.cgo else 0)


def test_main_goroutine_parked_in_stopHere(frozen):
    f, rt = frozen, frozen.runtime
    main = f.goroutines[1]
    assert main.location == "sched" and main.thread_id is None
    frames = tb.visible_frames(rt.backtrace(main), rt.wrapper_func_id)
    marks = _marks(SOURCE)
    assert [(fr.function, fr.file, fr.line) for fr in frames] == [
        ("main.stopHere", str(SOURCE), marks["stopHere"]),
        ("main.main", str(SOURCE), _line_of(SOURCE, "stopHere(block)"))]
    assert tb.user_frame(rt.backtrace(main)).function == "main.stopHere"
    assert rt.creator(main) is not None and not tb.shows_creator(main, rt.creator(main),
                                                                  rt.wrapper_func_id)


ASYNC_PREEMPTION = frozenset({"runtime.asyncPreempt", "runtime.asyncPreempt2"})


def test_spinning_goroutine_is_found_from_its_thread(frozen):
    f, rt = frozen, frozen.runtime
    spinner = next(g for g in f.goroutines.values() if g.start_function == "main.spin")
    twin = build(f.minor, "waiters", cgo=f.cgo, stripped=False, pie=f.pie, race=f.race)
    if spinner.location == "unavailable":
        # Race builds: the thread runs ThreadSanitizer's C code, called from main.spin's
        # instrumentation through racecall, which moves to the g0 stack but keeps g and saves
        # no goroutine context. Its stack is unavailable, as Go itself says of a goroutine
        # running on another thread; it must not be shown where it last parked.
        assert f.race and spinner.status == G_RUNNING and spinner.pc is None
        regs = next(t for t in f.threads if t.tid == spinner.thread_id)
        assert not spinner.stack_lo <= regs.sp < spinner.stack_hi
        where = go_tool("1.27" if f.pie else f.minor, "addr2line", str(twin),
                        stdin=f"{regs.pc - f.bias:#x}\n").splitlines()[0]
        if where == "?":
            # ThreadSanitizer's C functions have no Go line table: Go's addr2line answers
            # "?" for them (1.24 on); binutils' (gcc's, needed for -race) names them from
            # the twin's ELF symbol table.
            where = subprocess.run(["addr2line", "-f", "-e", str(twin), f"{regs.pc - f.bias:#x}"],
                                   capture_output=True, text=True, check=True).stdout.split()[0]
        # A signal (the runtime's preemption) may have come meanwhile: the thread is then in
        # the handler, on the signal stack.
        assert where in ("racecall", "runtime.cgoSigtramp", "runtime.sigtramp") \
            or where.startswith("__"), where
        return
    frames = rt.backtrace(spinner)
    if f.race and frames and frames[0].function in RACE_CALLS \
            and not any(tb.is_user_function(fr.function) for fr in frames):
        # Race builds: the thread is in racecall between aligning its SP for C and moving to
        # the g0 stack (or back): no frame table describes that SP, so the backtrace ends in
        # racecall. It is the thread's own pc (or the one a signal interrupted), on the
        # goroutine's stack.
        regs = next(t for t in f.threads if t.tid == spinner.thread_id)
        assert spinner.location in ("registers", "signal") and frames[0].pc == spinner.pc
        assert spinner.location == "signal" or spinner.pc == regs.pc
        assert spinner.stack_lo <= spinner.sp < spinner.stack_hi
        return
    top = tb.visible_frames(frames, rt.wrapper_func_id)[0]
    assert (top.function, top.file) == ("main.spin", str(SOURCE))
    # Frames above main.spin are the runtime's, elided as Go elides them: in race builds the
    # thread may be inside the instrumentation's assembly (racecalladdr, runtime.raceread),
    # still on the goroutine's stack, called from main.spin.
    inner = frames[:frames.index(top)]
    assert not any(tb.is_user_function(fr.function) for fr in inner), inner
    # Else only the runtime's asynchronous preemption, which the signal handler injects into
    # the goroutine (runtime.asyncPreempt, then asyncPreempt2 as it parks).
    assert f.race or all(fr.function in ASYNC_PREEMPTION for fr in inner), inner
    if spinner.status == G_RUNNING and spinner.location == "registers":
        regs = next(t for t in f.threads if t.tid == spinner.thread_id)
        assert (spinner.pc, spinner.sp, frames[0].pc) == (regs.pc, regs.sp, regs.pc)
    if spinner.status == G_RUNNING:  # usually; it may also sit preempted at a stop
        # Its thread may be in the preemption signal's handler: then the goroutine is where
        # the signal interrupted it. Either way it is in main.spin, on its own stack; the
        # loop's back edge is attributed to line 1 by the compiler: trust addr2line, run on
        # the DWARF twin (same layout; addr2line misplaces text in stripped cgo builds).
        assert spinner.location in ("registers", "signal")
        assert spinner.stack_lo <= spinner.sp < spinner.stack_hi
        # Go 1.19's addr2line answers "?" for every PIE address; 1.27's reads them right.
        out = go_tool("1.27" if f.pie else f.minor, "addr2line", str(twin),
                      stdin=f"{top.sym_pc - f.bias:#x}\n")
        assert out.splitlines() == ["main.spin", f"{SOURCE}:{top.line}"]


def test_syscall_goroutine_runs_on_a_process_thread(frozen):
    f, rt = frozen, frozen.runtime
    g = next(g for g in f.goroutines.values()
             if any(fr.function == "main.syscaller" for fr in rt.backtrace(g)))
    assert g.status == G_SYSCALL and g.location == "syscall"
    assert g.thread_id in {t.tid for t in f.threads}
    # The kernel agrees: that thread is inside read(2) (orig_rax 0), and the others are not
    # (the program makes no other read(2) call that blocks).
    in_read = {tid for tid, nr in f.process.orig_rax.items() if nr == 0}
    assert g.thread_id in in_read


def test_cgo_call_joins_its_c_frames_to_the_goroutine(frozen):
    """The goroutine inside a C call (cgo builds): the C frames from its thread's registers
    reach runtime.asmcgocall, whose saved words name this goroutine and lead back to its stack;
    the Go frames unwound from there are Go's own dump of it. Goroutines whose thread runs Go
    code (a raw read(2), the spinner) have no C frames."""
    f = frozen
    calls = _cgo_calls(f)
    in_c = [g for g in f.goroutines.values() if g.start_function == "main.cgoSleeper"]
    assert len(in_c) == f.cgo
    for g in in_c:
        call = calls.pop(g.goid)
        assert call is not None and call.joined, call
        assert call.frames[0].pc == f.process.gprs[g.thread_id][16]
        assert "sleep" in [c.function for c in call.frames]
        assert f.binary.func_at(call.go_pc - f.bias).name == "runtime.cgocall"
        frames = tb.visible_frames(f.runtime.unwind(call.go_pc, call.go_sp),
                                   f.runtime.wrapper_func_id)
        d = next(d for d in f.dump if d.goid == g.goid)
        assert [(tb.func_name_for_print(fr.function), fr.file, fr.line) for fr in frames] \
            == d.frames
    assert all(call is None for call in calls.values()), calls


def test_symbol_file_unwinds_asmcgocall_as_the_server_does(frozen):
    """The symbol file's call-frame rule for runtime.asmcgocall, evaluated where the C code
    returns to it (system stack pointer and memory of the frozen process), gives the CFA and
    return address of the join the test above checked against Go's own dump: a client that
    loads the file unwinds from the C frames into the goroutine's."""
    f = frozen
    if not f.cgo:
        return
    g = next(g for g in f.goroutines.values() if g.start_function == "main.cgoSleeper")
    call = _cgo_calls(f)[g.goid]
    assert call is not None and call.joined
    cfi = _debug_frame(build_symbol_file(f.binary).data)
    # A caller's row is looked up at its return address - 1 (inside the call).
    cfa_rule, ra_rule = _cfi_row(cfi, call.asm_pc - f.bias - 1)
    cfa = _evaluate(cfa_rule.expr, {7: call.asm_sp}, f.process.read_memory)
    assert cfa == call.go_sp
    ra = struct.unpack("<Q", f.process.read_memory(cfa + ra_rule.arg, 8))[0]
    assert ra == call.go_pc


def _cgo_calls(f: Frozen) -> dict:
    """goid -> gocgo.cgo_call of every goroutine that has a thread, on the frozen process."""
    objects = MappedObjects()
    objects.update(parse_proc_maps(Path(f"/proc/{f.process.pid}/maps").read_text()))

    def name_at(pc: int) -> str | None:
        func = f.binary.func_at(pc - f.bias)
        return func.name if func is not None else None

    return {g.goid: cgo_call(g, f.process.gprs[g.thread_id], f.process.read_memory, objects,
                             name_at)
            for g in f.goroutines.values() if g.thread_id in f.process.gprs}


def _debug_frame(elf_data: bytes) -> list:
    elf = ELFFile(io.BytesIO(elf_data))
    return [e for e in elf.get_dwarf_info().CFI_entries() if isinstance(e, FDE)]


def _cfi_row(fdes: list, pc: int):
    fde = next(e for e in fdes if e.header.initial_location <= pc
               < e.header.initial_location + e.header.address_range)
    row = [r for r in fde.get_decoded().table if r["pc"] <= pc][-1]
    return row["cfa"], row[16]


def _evaluate(expression: list[int], regs: dict[int, int], read_memory) -> int:
    """A DWARF expression of register-relative loads and arithmetic (what a CFA needs)."""
    stack: list[int] = []
    for op in DWARFExprParser(DWARFStructs(True, 32, 8)).parse_expr(expression):
        if op.op_name.startswith("DW_OP_breg"):
            stack.append(regs[int(op.op_name[len("DW_OP_breg"):])] + op.args[0])
        elif op.op_name == "DW_OP_deref":
            stack.append(struct.unpack("<Q", read_memory(stack.pop(), 8))[0])
        elif op.op_name == "DW_OP_plus_uconst":
            stack.append(stack.pop() + op.args[0])
        elif op.op_name == "DW_OP_minus":
            right, left = stack.pop(), stack.pop()
            stack.append(left - right)
        else:
            raise AssertionError(f"unexpected {op.op_name} in a CFA expression")
    return stack[-1]


def test_tls_and_allm_agree(frozen):
    f, rt = frozen, frozen.runtime
    allm = rt.threads_from_allm()
    assert len(allm) >= 2 and set(allm) <= {t.tid for t in f.threads} | {0}
    assert any(goid is not None for goid in allm.values())  # the spinner's or syscaller's M
    for t in f.threads:
        found = rt.thread_goroutine(t)
        if t.tid not in allm:
            continue
        want = allm[t.tid]
        got = None if found is None else rt._u64(found[0] + rt.offsets["g_goid"])
        assert got == want, f"thread {t.tid}"


def test_wait_reasons_equal_toolchain_source(frozen):
    """runtime.waitReasonStrings (found by symbol, or by operand scan when stripped) holds the
    strings of the toolchain's runtime2.go, indexed by the waitReason iota constants."""
    text = (goroot(frozen.minor) / "src" / "runtime" / "runtime2.go").read_text()
    consts = text[text.index("waitReasonZero "):]
    names = [line.split("//")[0].split()[0] for line in consts[:consts.index("\n)")].splitlines()
             if line.split("//")[0].strip()]
    body = text[text.index("var waitReasonStrings = [...]string{"):]
    strings = dict(re.findall(r'^\s*(\w+):\s*"((?:[^"\\]|\\.)*)",', body[:body.index("\n}")],
                              flags=re.M))
    assert len(strings) > 20
    assert frozen.runtime.wait_reasons() == [strings[n] for n in names if n in strings]


@pytest.mark.parametrize("minor,cgo,stripped", [("1.19", False, False), ("1.27", False, True),
                                                ("1.27", True, True)],
                         ids=["go1.19-dwarf", "go1.27-stripped", "go1.27-cgo-stripped"])
def test_running_goroutine_interrupted_by_a_signal(minor, cgo, stripped, tmp_path):
    """A thread stopped on the first instruction of Go's signal handler: its goroutine is
    where the signal interrupted it (the kernel's saved context), not in the handler."""
    path = build(minor, "waiters", cgo=cgo, stripped=stripped)
    twin = build(minor, "waiters", cgo=cgo, stripped=False)
    process = FrozenGoProcess(path, tmp_path / "dump.txt")
    try:
        binary = GoBinary(path)
        for _ in range(20):
            time.sleep(0.05)
            process.freeze()
            threads = process.thread_states()
            names = go_tool(minor, "addr2line", str(twin),
                            stdin="".join(f"{t.pc:#x}\n" for t in threads)).splitlines()[::2]
            spinning = [t for t, name in zip(threads, names) if name == "main.spin"]
            if spinning:
                break
            process.thaw()
        else:
            pytest.fail("never caught main.spin on a thread")
        before, inside = process.enter_signal_handler(spinning[0].tid, signal.SIGURG)
        handler = go_tool(minor, "addr2line", str(twin), stdin=f"{inside.pc:#x}\n").split()[0]
        assert handler in ("runtime.sigtramp", "runtime.cgoSigtramp")
        threads = [inside if t.tid == inside.tid else t for t in threads]
        runtime = GoRuntime(binary, process.read_memory)
        spinner = next(g for g in runtime.goroutines(threads) if g.start_function == "main.spin")
        assert (spinner.location, spinner.thread_id) == ("signal", inside.tid)
        assert (spinner.pc, spinner.sp) == (before.pc, before.sp)
        assert tb.visible_frames(runtime.backtrace(spinner),
                                 runtime.wrapper_func_id)[0].function == "main.spin"
    finally:
        process.close()
