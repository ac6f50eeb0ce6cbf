"""The Go runtime's view of a stopped process: goroutines, their threads, their stacks.

Everything is read through a `read_memory(addr, size) -> bytes` callable (a live process, a
core file, a byte buffer) plus the executable on disk (GoBinary); nothing here knows about
ptrace or the remote protocol. Thread registers, when wanted, are passed in as ThreadState.

Where things are (see also notes on the Go runtime):
  * allgs ([]*g) and allglen: `runtime.allgs` / `runtime.allglen` symbols; in a stripped
    binary, the RIP-relative data operands of runtime.allgadd, of which allgs is the one
    holding (ptr, len, cap) with 0 < len <= cap and allglen another holding the same len.
    An empty list means the runtime has not started yet: RuntimeNotReady, never a guess.
  * wait reasons: runtime.waitReasonStrings (symbol, or the operands of
    runtime.waitReason.String / runtime.goroutineheader: a [N]string whose [0] is "").
  * allm (runtime.allm, or the operands of runtime.mcommoninit: an m whose g0.m points back).
  * struct offsets: the generated table (go_offsets_table.py) row of the binary's Go minor
    version, else the binary's own DWARF (go_dwarf_offsets.py), else NoOffsets.
  * the current g of a thread: the TLS word at fs_base + tls_offset (-8 for Go's own
    linker; cgo: -round_up(PT_TLS memsz, align) + runtime.tlsg). A g with goid 0 is a g0 or
    gsignal: the thread is on the system stack and its user goroutine is g.m.curg.
  * where a goroutine is: parked, g.sched; in a system call or C call, g.syscallpc/sp; running,
    its thread's registers when they are on its stack, else the context the kernel saved for
    the signal whose handler the thread runs (rt_sigframe above runtime.sigtramp), else
    g.sched; with m.vdsoSP set, m.vdsoPC/SP (as runtime.traceback1 does).

Each g struct is read in one read; a goroutine's stack is read in one window for unwinding.
Threads and Ms are read in gothreads.py, stacks unwound in gostack.py (both mixins).

API:
    GoRuntime(binary, read_memory, *, load_bias=0, offsets=None)   (bias: runtime - link address)
        .goroutines(threads=(), include_dead=False) -> list[Goroutine]  (RuntimeNotReady)
        .goroutine(goid, threads=()) -> Goroutine | None
        .current_g(fs_base) -> int | None       .thread_goroutine(thread) -> (g, on_g0) | None
        .backtrace(g, max_frames=1000) -> list[Frame]     (all logical frames, no elision)
        .unwind(pc, sp, trap=False, syscall=False) -> list[Frame]   (from any pc/sp)
        .creator(g) -> Frame | None             (the go statement, physical function)
        .threads_from_allm() -> dict[tid, goid | None]
        .wait_reasons() -> list[str]            .wrapper_func_id, .offsets
    ThreadState(tid, pc, sp, bp, fs_base)
    Goroutine, Frame (dataclasses), GoRuntimeError, RuntimeNotReady, NoOffsets
    G_IDLE ... G_DEADEXTRA, G_SCAN status constants
"""

from __future__ import annotations

import functools
import struct
from array import array
from typing import Iterable

from gdbstub.symbols.gobinary import GoBinary
from gdbstub.symbols.go_dwarf_offsets import read_offsets
from gdbstub.symbols.goruntime_types import (  # noqa: F401  (the reader's vocabulary, re-exported)
    G_COPYSTACK, G_DEAD, G_DEADEXTRA, G_IDLE, G_LEAKED, G_PREEMPTED, G_RUNNABLE, G_RUNNING,
    G_SCAN, G_SYSCALL, G_WAITING, Frame, GoRuntimeError, Goroutine, NoOffsets, ReadMemory,
    RuntimeNotReady, ThreadState,
)
from gdbstub.symbols.gostack import StackUnwinding
from gdbstub.symbols.gothreads import ThreadsAndMs
from gdbstub.symbols.x86_operands import rip_relative_targets

_MAX_GOROUTINES = 50_000_000


def _record_layout(fields: list[tuple[str, int, str]]) -> tuple[list[str], struct.Struct]:
    """The names and one Struct reading these (name, offset, format) fields of a record,
    in offset order with padding between them."""
    ordered = sorted(fields, key=lambda field: field[1])
    fmt, pos = "<", 0
    for _, off, code in ordered:
        if off < pos:
            raise ValueError(f"overlapping fields at offset {off}")
        fmt += f"{off - pos}x{code}" if off > pos else code
        pos = off + struct.calcsize("<" + code)
    return [name for name, _, _ in ordered], struct.Struct(fmt)


class GoRuntime(StackUnwinding, ThreadsAndMs):
    """The runtime state of one Go process: goroutines, Ms and their threads, stacks."""

    def __init__(self, binary: GoBinary, read_memory: ReadMemory, *, load_bias: int = 0,
                 offsets: dict[str, int] | None = None) -> None:
        self.binary = binary
        self.pclntab = binary.pclntab
        self.read_memory = read_memory
        self.bias = load_bias
        self.offsets = offsets or binary.offsets_row() or read_offsets(binary.elf)
        if not self.offsets:
            raise NoOffsets(f"no Go runtime struct offsets for {binary.version or 'this binary'}")
        o = self.offsets
        self._g_size = o["g_size"]
        self._g_fields = [(name, o[key], fmt) for name, key, fmt in (
            ("stack_lo", "g_stack_lo", "Q"), ("stack_hi", "g_stack_hi", "Q"),
            ("m", "g_m", "Q"), ("sched_sp", "g_sched_sp", "Q"),
            ("sched_pc", "g_sched_pc", "Q"), ("sched_bp", "g_sched_bp", "Q"),
            ("syscallsp", "g_syscallsp", "Q"), ("syscallpc", "g_syscallpc", "Q"),
            ("status", "g_atomicstatus", "I"), ("goid", "g_goid", "Q"),
            ("waitreason", "g_waitreason", "B"), ("lockedm", "g_lockedm", "Q"),
            ("gopc", "g_gopc", "Q"), ("startpc", "g_startpc", "Q"),
            ("parent_goid", "g_parent_goid", "Q")) if o.get(key, -1) >= 0]
        # One unpack per g: listing 10,000 goroutines decodes 10,000 of them at every stop.
        self._g_names, self._g_struct = _record_layout(self._g_fields)
        self._m_cache: dict[int, tuple[int, int, int, int]] = {}
        self._allm: int | None = None
        # The table is fixed for the binary's life: goroutines parked at the same places share
        # these lookups, which makes unwinding thousands of them cheap.
        self._func_cache: dict[int, object] = {}
        self._delta_cache: dict[int, int] = {}
        self._inline_cache: dict[int, list] = {}

    # --- memory helpers --------------------------------------------------------------

    def _u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read_memory(addr, 8))[0]

    def _safe_u64(self, addr: int) -> int | None:
        try:
            data = self.read_memory(addr, 8)
        except OSError:
            return None
        return struct.unpack("<Q", data)[0] if len(data) == 8 else None

    def _func_name(self, pc: int) -> str:
        f = self.pclntab.func_at(pc - self.bias)
        return "?" if f is None else f.name

    def _operand_candidates(self, *functions: str) -> list[int]:
        """Link addresses of data operands of functions (for stripped binaries)."""
        ranges = self.binary.data_ranges()
        out: set[int] = set()
        for name in functions:
            f = self.pclntab.func_by_name(name)
            if f is None:
                continue
            code = self.binary.elf.read_static(f.entry, f.end - f.entry)
            out.update(rip_relative_targets(code, f.entry, ranges))
        return sorted(out)

    # --- globals ---------------------------------------------------------------------

    def _allgs_location(self) -> tuple[int, int]:
        """Runtime addresses of (allgs slice header, allglen)."""
        elf = self.binary.elf
        allgs, allglen = elf.symbol("runtime.allgs"), elf.symbol("runtime.allglen")
        if allgs is not None and allglen is not None:
            return allgs.value + self.bias, allglen.value + self.bias
        found = self._allgs_by_operands()
        if found is None:
            raise RuntimeNotReady("Go runtime not initialised yet (no goroutine list in memory)")
        return found

    @functools.cached_property
    def _allgadd_operands(self) -> list[int]:
        return [c + self.bias for c in self._operand_candidates("runtime.allgadd")]

    def _allgs_by_operands(self) -> tuple[int, int] | None:
        cands = self._allgadd_operands
        values = {c: self._safe_u64(c) for c in cands}
        for a in cands:
            length, cap = self._safe_u64(a + 8), self._safe_u64(a + 16)
            if not length or cap is None or not 0 < length <= cap <= _MAX_GOROUTINES:
                continue
            for c, v in values.items():
                if v == length and c not in (a, a + 8, a + 16):
                    return a, c
        return None

    def allg_addresses(self) -> list[int]:
        allgs, allglen_addr = self._allgs_location()
        ptr, _slice_len, _cap = struct.unpack("<QQQ", self.read_memory(allgs, 24))
        length = self._u64(allglen_addr)
        if length == 0 or ptr == 0:
            raise RuntimeNotReady("Go runtime not initialised yet (no goroutines)")
        if length > _MAX_GOROUTINES:
            raise GoRuntimeError(f"implausible allglen {length}")
        table = array("Q")
        table.frombytes(self.read_memory(ptr, 8 * length))
        return table.tolist()

    @functools.cached_property
    def _wait_reasons(self) -> list[str]:
        count = self.offsets.get("wait_reason_count", -1)
        sym = self.binary.elf.symbol("runtime.waitReasonStrings")
        cands = [sym.value + self.bias] if sym is not None else [
            c + self.bias for c in self._operand_candidates("runtime.waitReason.String",
                                                            "runtime.goroutineheader")]
        for addr in cands:
            strings = self._string_array(addr, count if count > 0 else 128)
            if strings:
                return strings
        return []

    def _string_array(self, addr: int, max_count: int) -> list[str] | None:
        """A [N]string of printable ASCII whose [0] is "" (the wait reason table), or None."""
        try:
            raw = self.read_memory(addr, 16 * max_count)
        except OSError:
            return None
        if len(raw) < 32:
            return None
        out: list[str] = []
        for i in range(len(raw) // 16):
            ptr, length = struct.unpack_from("<QQ", raw, 16 * i)
            if i == 0:
                if length != 0:
                    return None
                out.append("")
                continue
            if not 0 < length < 80:
                break
            try:
                text = self.read_memory(ptr, length)
            except OSError:
                break
            if not text.isascii() or not text.decode().isprintable():
                break
            out.append(text.decode())
        return out if len(out) >= 2 and (max_count == 128 or len(out) == max_count) else None

    def wait_reasons(self) -> list[str]:
        return list(self._wait_reasons)

    @functools.cached_property
    def tls_offset(self) -> int:
        """Offset of the g pointer from fs_base."""
        tls = self.binary.elf.tls_segment()
        if tls is None:
            return -8
        align = max(tls.align, 1)
        rounded = (tls.memsz + align - 1) // align * align
        tlsg = self.binary.elf.symbol("runtime.tlsg")
        return -rounded + (tlsg.value if tlsg is not None else 0)

    @functools.cached_property
    def wrapper_func_id(self) -> int:
        return self.binary.wrapper_func_id

    # --- goroutines ------------------------------------------------------------------

    def goroutines(self, threads: Iterable[ThreadState] = (),
                   include_dead: bool = False) -> list[Goroutine]:
        self._m_cache.clear()  # Ms change between stops
        on_thread: dict[int, tuple[ThreadState, bool]] = {}
        for t in threads:
            found = self.thread_goroutine(t)
            if found is not None:
                on_thread.setdefault(found[0], (t, found[1]))
        out = []
        size = self._g_size
        for addr in self.allg_addresses():
            raw = self.read_memory(addr, size)
            g = self._decode(addr, raw, on_thread.get(addr), include_dead)
            if g is not None:
                out.append(g)
        return out

    def goroutine(self, goid: int, threads: Iterable[ThreadState] = ()) -> Goroutine | None:
        return next((g for g in self.goroutines(threads) if g.goid == goid), None)

    def _decode(self, addr: int, raw: bytes, thread: tuple[ThreadState, bool] | None,
                include_dead: bool) -> Goroutine | None:
        v = dict(zip(self._g_names, self._g_struct.unpack_from(raw)))
        status = v["status"] & ~G_SCAN
        if not include_dead and status in (G_DEAD, G_DEADEXTRA):
            return None
        reason = ""
        if status in (G_WAITING, G_LEAKED) and v["waitreason"]:
            reasons = self._wait_reasons
            reason = reasons[v["waitreason"]] if v["waitreason"] < len(reasons) else \
                "unknown wait reason"
        m = v["m"]
        tid = self._m_info(m)[0] if m else None
        if thread is not None:
            tid = thread[0].tid
        pc, sp, bp, trap, where, on_g0 = self._start_point(v, m, status, thread)
        return Goroutine(
            addr=addr, goid=v["goid"], status=status, scan=bool(v["status"] & G_SCAN),
            wait_reason=reason, start_pc=v["startpc"], start_function=self._func_name(v["startpc"]),
            go_pc=v["gopc"], parent_goid=v.get("parent_goid"), m=m, thread_id=tid,
            locked_to_thread=bool(v["lockedm"]), stack_lo=v["stack_lo"], stack_hi=v["stack_hi"],
            pc=pc, sp=sp, bp=bp, trap=trap, location=where, on_system_stack=on_g0)

    def _start_point(self, v: dict[str, int], m: int, status: int,
                     thread: tuple[ThreadState, bool] | None):
        """(pc, sp, bp, trap, location, on_g0) to unwind from, as runtime.traceback1 picks,
        plus the registers of the thread of a running goroutine."""
        context = None
        if status == G_RUNNING and thread is not None:
            context = self._thread_context(thread[0], v["stack_lo"], v["stack_hi"])
        if context is not None:
            pc, sp, bp, trap, where = context
        elif status == G_RUNNING and thread is None and not v["syscallsp"]:
            return None, None, None, False, "unavailable", False
        elif v["syscallsp"]:
            pc, sp, bp, trap, where = v["syscallpc"], v["syscallsp"], 0, False, "syscall"
        elif status == G_RUNNING and not v["sched_sp"]:
            # Running off its stack without having saved where it is (gogo cleared sched.sp
            # when it resumed the goroutine; sched.pc is stale). The race detector's racecall
            # runs ThreadSanitizer's C code on the g0 stack this way, keeping g.
            return None, None, None, False, "unavailable", bool(thread and thread[1])
        else:
            # Parked, or running on the system stack (systemstack/mcall saved g.sched).
            pc, sp, bp, trap, where = v["sched_pc"], v["sched_sp"], v["sched_bp"], False, "sched"
        if m:
            o = self.offsets
            vdso_sp = self._safe_u64(m + o["m_vdso_sp"]) if o.get("m_vdso_sp", -1) >= 0 else 0
            if vdso_sp:
                pc, sp, bp, trap, where = self._u64(m + o["m_vdso_pc"]), vdso_sp, 0, False, "vdso"
        return pc, sp, bp, trap, where, bool(thread and thread[1])
