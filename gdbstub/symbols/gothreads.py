"""The threads of a Go process: its Ms (runtime.allm), the g each thread runs (its TLS slot),
and, for a thread in a signal handler, the context the signal interrupted.

A mixin of `GoRuntime`: it uses the runtime's offsets, memory reader, binary, load bias,
TLS offset, the data operands of functions and the stack unwinder (gostack.py).
"""

from __future__ import annotations

import struct
from typing import Iterable

from gdbstub.symbols.goruntime_types import (G_SCAN, G_SYSCALL, Goroutine, RuntimeNotReady,
                                             ThreadState)
from gdbstub.symbols.gostack import StackWindow

# Go's signal handler entry points, and the restorer its handler returns into.
SIGNAL_TRAMPOLINES = frozenset({"runtime.sigtramp", "runtime.cgoSigtramp"})
SIGNAL_RETURNS = frozenset({"runtime.sigreturn__sigaction", "runtime.sigreturn"})
# struct ucontext (x86-64): uc_flags, uc_link, uc_stack (24 bytes), then mcontext gregs.
_UC_MCONTEXT = 40
_REG_RBP, _REG_RSP, _REG_RIP = 10, 15, 16


class ThreadsAndMs:
    """Threads and Ms for `GoRuntime` (which provides `offsets`, `read_memory`, `binary`,
    `bias`, `tls_offset`, `_u64`, `_safe_u64`, `_operand_candidates`, `_m_cache`, `_allm`,
    `_g_size`, `_decode` and `_physical_frames`)."""

    def _m_info(self, m: int) -> tuple[int, int, int, int]:
        """(procid, curg, g0, alllink) of an M."""
        info = self._m_cache.get(m)
        if info is None:
            o = self.offsets
            hi = max(o["m_procid"], o["m_curg"], o["m_g0"], o["m_alllink"]) + 8
            raw = self.read_memory(m, hi)
            info = tuple(struct.unpack_from("<Q", raw, o[k])[0]
                         for k in ("m_procid", "m_curg", "m_g0", "m_alllink"))  # type: ignore
            self._m_cache[m] = info  # type: ignore[assignment]
        return info  # type: ignore[return-value]

    def current_g(self, fs_base: int) -> int | None:
        if not fs_base:
            return None
        g = self._safe_u64(fs_base + self.tls_offset)
        return g or None

    def running_goid(self, thread: ThreadState) -> int | None:
        """The id of the goroutine a thread runs on that goroutine's own stack (user code, a
        system call), or None: g0 and gsignal, the system stacks, have id 0."""
        g = self.current_g(thread.fs_base)
        if g is None:
            return None
        return self._safe_u64(g + self.offsets["g_goid"]) or None

    def cgo_call_goid(self, thread: ThreadState) -> int | None:
        """The id of the goroutine whose cgo call a thread runs: the thread is on its g0 and
        its M's current goroutine is in the system call state that runtime.cgocall enters.
        None otherwise. The caller checks that the thread's pc is outside Go's code (else it
        is the runtime on the system stack, around a system call). Read afresh: an M's
        current goroutine changes between stops."""
        g = self.current_g(thread.fs_base)
        if g is None:
            return None
        o = self.offsets
        m = self._safe_u64(g + o["g_m"])
        if not m or self._safe_u64(g + o["g_goid"]) != 0:
            return None
        curg = self._safe_u64(m + o["m_curg"])
        if not curg:
            return None
        status = self._safe_u64(curg + o["g_atomicstatus"])
        if status is None or status & 0xFFFFFFFF & ~G_SCAN != G_SYSCALL:
            return None
        return self._safe_u64(curg + o["g_goid"]) or None

    def thread_goroutine(self, thread: ThreadState) -> tuple[int, bool] | None:
        """(user g address, thread is on the system stack) for a thread, or None."""
        g = self.current_g(thread.fs_base)
        if g is None:
            return None
        goid = self._safe_u64(g + self.offsets["g_goid"])
        if goid:
            return g, False
        m = self._safe_u64(g + self.offsets["g_m"])
        if not m:
            return None
        curg = self._m_info(m)[1]
        return (curg, True) if curg else None

    def _allm_address(self) -> int | None:
        """Runtime address of runtime.allm (found once the runtime has made an M)."""
        if self._allm is not None:
            return self._allm
        sym = self.binary.elf.symbol("runtime.allm")
        if sym is not None:
            self._allm = sym.value + self.bias
            return self._allm
        o = self.offsets
        for c in self._operand_candidates("runtime.mcommoninit"):
            m = self._safe_u64(c + self.bias)
            if not m:
                continue
            g0 = self._safe_u64(m + o["m_g0"])
            if g0 and self._safe_u64(g0 + o["g_m"]) == m:
                self._allm = c + self.bias
                return self._allm
        return None

    def threads_from_allm(self) -> dict[int, int | None]:
        """Kernel thread id -> goid of the goroutine its M runs (None when idle)."""
        head = self._allm_address()
        if head is None:
            raise RuntimeNotReady("cannot find runtime.allm")
        out: dict[int, int | None] = {}
        m = self._u64(head)
        seen: set[int] = set()
        while m and m not in seen and len(seen) < 100_000:
            seen.add(m)
            self._m_cache.pop(m, None)
            procid, curg, _g0, alllink = self._m_info(m)
            out[procid] = self._u64(curg + self.offsets["g_goid"]) if curg else None
            m = alllink
        return out

    def thread_goroutines(self, threads: Iterable[ThreadState]) -> list[Goroutine]:
        """The goroutines that have a thread (every M's current one, and the one each thread
        runs), read without the others: thread names need no more, and a program may have
        a million goroutines."""
        self._m_cache.clear()
        on_thread: dict[int, tuple[ThreadState, bool]] = {}
        for t in threads:
            found = self.thread_goroutine(t)
            if found is not None:
                on_thread.setdefault(found[0], (t, found[1]))
        addresses = set(on_thread)
        head = self._allm_address()
        m = self._u64(head) if head is not None else 0
        seen: set[int] = set()
        while m and m not in seen and len(seen) < 100_000:
            seen.add(m)
            _, curg, _, m = self._m_info(m)
            if curg:
                addresses.add(curg)
        out = []
        for addr in sorted(addresses):
            g = self._decode(addr, self.read_memory(addr, self._g_size), on_thread.get(addr), False)
            if g is not None and g.thread_id is not None:
                out.append(g)
        return out

    def _thread_context(self, t: ThreadState, lo: int, hi: int):
        """The goroutine's own (pc, sp, bp, trap, location) from its thread's registers: the
        registers themselves when they are on its stack, else the context interrupted by a
        signal whose handler the thread is running (found through the kernel's signal frame).
        None when neither is on the goroutine's stack."""
        pc, sp, bp, where = t.pc, t.sp, t.bp, "registers"
        for _ in range(4):  # signals may nest
            if lo <= sp < hi:
                return pc, sp, bp, True, where
            ctx = self._signal_context(pc, sp)
            if ctx is None:
                return None
            pc, sp, bp = ctx
            where = "signal"
        return None

    def _signal_context(self, pc: int, sp: int) -> tuple[int, int, int] | None:
        """(rip, rsp, rbp) saved by the kernel for a signal whose Go handler runs at pc/sp."""
        try:
            for f, fpc, fsp in self._physical_frames(pc, sp, True, False,
                                                     StackWindow(self.read_memory, sp, 0), 64):
                if f.name in SIGNAL_RETURNS:
                    uc = fsp                 # its pretcode was popped by the handler's RET
                elif f.name in SIGNAL_TRAMPOLINES:
                    delta = self.pclntab.sp_delta(f, fpc - self.bias)
                    if delta < 0:
                        return None
                    uc = fsp + delta + 8     # just above the return address (pretcode)
                else:
                    continue
                gregs = self.read_memory(uc + _UC_MCONTEXT, 8 * 17)
                regs = struct.unpack("<17Q", gregs)
                return regs[_REG_RIP], regs[_REG_RSP], regs[_REG_RBP]
        except OSError:
            return None
        return None
