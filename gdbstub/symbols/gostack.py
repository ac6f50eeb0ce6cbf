"""Unwinding a Go stack with the binary's own tables (.gopclntab frame sizes and inline
trees), as the runtime's unwinder does on amd64: from a goroutine's saved pc/sp or any pc/sp.

A mixin of `GoRuntime`: it uses the runtime's pclntab, load bias, memory reader and lookup
caches.
"""

from __future__ import annotations

import struct

from gdbstub.symbols.goruntime_types import Frame, Goroutine, ReadMemory
from gdbstub.symbols.gopclntab import FUNC_FLAG_SPWRITE, FUNC_FLAG_TOPFRAME

# Functions the runtime injects into a goroutine's stack (a signal, async preemption, a
# debugger call): the frame under them stopped at a trapped instruction, not a call.
INJECTED_CALLS = frozenset({"runtime.sigpanic", "runtime.asyncPreempt", "runtime.debugCallV2"})
_STACK_WINDOW = 256 * 1024
_MISSING = object()


class StackUnwinding:
    """Stack unwinding for `GoRuntime` (which provides `pclntab`, `bias`, `read_memory`,
    `_func_cache`, `_delta_cache` and `_inline_cache`)."""

    def backtrace(self, g: Goroutine, max_frames: int = 1000) -> list[Frame]:
        """All logical frames from g's pc/sp outwards, innermost first (no elision)."""
        if g.pc is None or g.sp is None:
            return []
        stack = StackWindow(self.read_memory, g.sp, g.stack_hi)
        return self.unwind(g.pc, g.sp, trap=g.trap, syscall=g.location == "syscall",
                           stack=stack, max_frames=max_frames)

    def unwind(self, pc: int, sp: int, *, trap: bool = False, syscall: bool = False,
               stack: StackWindow | None = None, max_frames: int = 1000) -> list[Frame]:
        """Logical frames from pc/sp, unwinding with .gopclntab frame sizes."""
        stack = stack or StackWindow(self.read_memory, sp, 0)
        pcln, bias = self.pclntab, self.bias
        frames: list[Frame] = []
        inline_cache = self._inline_cache
        for f, fpc, fsp, ftrap in self._physical_frames(pc, sp, trap, syscall, stack,
                                                        max_frames, with_trap=True):
            link_pc = fpc - bias
            sym = link_pc if ftrap or link_pc == f.entry else link_pc - 1
            inlined = inline_cache.get(sym)
            if inlined is None:
                inlined = inline_cache[sym] = pcln.inline_frames(f, sym)
            for sf in inlined:
                frames.append(Frame(sf.function, sf.file, sf.line, fpc, sym + bias, fsp,
                                    f.entry + bias, sf.inlined, sf.func_id))
            if len(frames) >= max_frames:
                break
        return frames[:max_frames]

    def _physical_frames(self, pc: int, sp: int, trap: bool, syscall: bool,
                         stack: StackWindow, limit: int, with_trap: bool = False):
        """Yield (func, pc, sp[, trap]) per physical frame, as the runtime's unwinder on amd64
        walks them: frame size from pcsp, return address just below the caller's sp; stop at
        TOPFRAME or SPWRITE functions, an unknown pc or a zero return address. A frame under
        an injected call (sigpanic, asyncPreempt) is at a trapped instruction."""
        pcln, bias = self.pclntab, self.bias
        if pc == 0:  # a call through a nil func value: start in the caller
            pc = stack.word(sp)
            sp += 8
        innermost = True
        func_cache, delta_cache = self._func_cache, self._delta_cache
        for _ in range(limit):
            link = pc - bias
            f = func_cache.get(link, _MISSING)
            if f is _MISSING:
                f = func_cache[link] = pcln.func_at(link)
            if f is None:
                return
            yield (f, pc, sp, trap) if with_trap else (f, pc, sp)
            if f.pcsp == 0:
                return
            flag = f.flag
            if f.name == "runtime.cgocallback" or (innermost and syscall):
                flag &= ~FUNC_FLAG_SPWRITE
            if flag & (FUNC_FLAG_TOPFRAME | FUNC_FLAG_SPWRITE):
                return
            delta = delta_cache.get(link)
            if delta is None:
                delta = delta_cache[link] = pcln.sp_delta(f, link)
            if delta < 0:
                return
            fp = sp + delta + 8
            try:
                lr = stack.word(fp - 8)
            except OSError:
                return
            if lr == 0 or (lr == pc and fp == sp):
                return
            trap = f.name in INJECTED_CALLS
            pc, sp = lr, fp
            innermost = False

    def first_frame(self, g: Goroutine, wanted) -> tuple[str, str, int] | None:
        """(function, file, line) of the innermost logical frame whose function name satisfies
        `wanted`, unwinding no further than needed and building no Frame objects: listing
        thousands of goroutines by their user frame stays fast."""
        if g.pc is None or g.sp is None:
            return None
        stack = StackWindow(self.read_memory, g.sp, g.stack_hi)
        bias, inline_cache = self.bias, self._inline_cache
        for f, fpc, _, ftrap in self._physical_frames(g.pc, g.sp, g.trap, g.location == "syscall",
                                                      stack, 1000, with_trap=True):
            link_pc = fpc - bias
            sym = link_pc if ftrap or link_pc == f.entry else link_pc - 1
            inlined = inline_cache.get(sym)
            if inlined is None:
                inlined = inline_cache[sym] = self.pclntab.inline_frames(f, sym)
            for sf in inlined:
                if wanted(sf.function):
                    return sf.function, sf.file, sf.line
        return None

    def creator(self, g: Goroutine) -> Frame | None:
        """The go statement that created g: its physical function and file:line."""
        f = self.pclntab.func_at(g.go_pc - self.bias)
        if f is None:
            return None
        link = g.go_pc - self.bias
        sym = link - 1 if link > f.entry else link
        file, line = self.pclntab.func_line(f, sym)
        return Frame(f.name, file, line, g.go_pc, sym + self.bias, 0, f.entry + self.bias,
                     False, f.func_id)


class StackWindow:
    """One read of [sp, hi) (capped), serving 8-byte words; reads outside it go to memory."""

    def __init__(self, read_memory: ReadMemory, sp: int, hi: int) -> None:
        self._read = read_memory
        self._lo = sp
        self._data = b""
        if sp < hi <= sp + _STACK_WINDOW:
            try:
                self._data = read_memory(sp, hi - sp)
            except OSError:
                self._data = b""

    def word(self, addr: int) -> int:
        off = addr - self._lo
        if 0 <= off and off + 8 <= len(self._data):
            return struct.unpack_from("<Q", self._data, off)[0]
        data = self._read(addr, 8)
        if len(data) != 8:
            raise OSError(f"short read at {addr:#x}")
        return struct.unpack("<Q", data)[0]
