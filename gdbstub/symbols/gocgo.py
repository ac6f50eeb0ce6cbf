"""A goroutine inside a cgo call: its C frames, joined to its Go frames.

runtime.cgocall enters the system call state (g.syscallpc/sp name its Go frames) and calls
runtime.asmcgocall, which switches the thread to its g0 stack and calls the C function (from
Go 1.22 through runtime.asmcgocall_landingpad). Before the call it stores two words on the g0
stack: the goroutine's g, and the depth of the goroutine's stack pointer below g.stack.hi
(the stack may move during a callback, so not the pointer itself). The words sit at 40/48
above the C function's CFA in Go 1.19-1.21 and at 0/8 above asmcgocall's own stack pointer
from 1.22 on; they are found here by value (the g the thread is running), not by release.

The C frames are unwound from the thread's registers with the objects' CFI (cframes.py) up to
the first pc in Go's text. The join holds when that pc is in asmcgocall or its landing pad, the
g word there is this goroutine, and the depth leads to a return address in Go's text on the
goroutine's stack: then the C frames belong to this goroutine's call, and its Go frames follow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from gdbstub.symbols.cframes import RA, RBP, RSP, CFrame, MappedObjects, unwind_c_frames
from gdbstub.symbols.goruntime_types import G_SYSCALL, Goroutine

CGO_CALL_FUNCTIONS = frozenset({"runtime.asmcgocall", "runtime.asmcgocall_landingpad"})
_SLOT_WINDOW = 64   # bytes above the stack pointer searched for the saved g


@dataclass(frozen=True, slots=True)
class CgoCall:
    frames: list[CFrame]        # the C frames, innermost first
    joined: bool                # the walk reached asmcgocall with this goroutine's words
    go_pc: int | None = None    # where the goroutine's stack resumes: runtime.cgocall's pc
    go_sp: int | None = None    # and its stack pointer (just above that return address)


def cgo_call(g: Goroutine, regs: dict[int, int], read_memory: Callable[[int, int], bytes],
             objects: MappedObjects, func_name_at: Callable[[int], str | None]) -> CgoCall | None:
    """The cgo call of goroutine g, whose M's thread has the registers `regs` (DWARF
    numbering), or None when g is not in a cgo call or its thread is not in C code. (The race
    detector's calls into C keep the goroutine running: they are not cgo calls.)"""
    if g.status != G_SYSCALL or func_name_at(regs.get(RA, 0)) is not None:
        return None     # not in a call out of Go, or the thread runs Go code
    frames, at_go = unwind_c_frames(regs, read_memory, objects,
                                    lambda pc: func_name_at(pc) is not None)
    if at_go is None or func_name_at(at_go[RA]) not in CGO_CALL_FUNCTIONS:
        return CgoCall(frames, False)
    resumed = _goroutine_stack_resume(g, at_go[RSP], at_go.get(RBP), read_memory)
    if resumed is None or func_name_at(resumed[0]) is None:
        return CgoCall(frames, False)
    return CgoCall(frames, True, *resumed)


def _goroutine_stack_resume(g: Goroutine, sp: int, bp: int | None,
                            read_memory: Callable[[int, int], bytes]) -> tuple[int, int] | None:
    """(return address into asmcgocall's caller, goroutine sp above it) from the words
    asmcgocall saved on the g0 stack at or above sp. Where the assembler gave asmcgocall a
    frame pointer (Go 1.23 on), the saved depth leads to the pushed BP, and BP (kept by the
    C code, which must preserve it) still points there: the return address is above it."""
    try:
        window = read_memory(sp, _SLOT_WINDOW)
    except OSError:
        return None
    words = struct.unpack_from(f"<{len(window) // 8}Q", window)
    for i in range(1, len(words)):
        if words[i] != g.addr:
            continue
        go_sp = g.stack_hi - words[i - 1]
        if not g.stack_lo <= go_sp < g.stack_hi:
            continue
        if bp == go_sp:
            go_sp += 8
        try:
            ret = struct.unpack("<Q", read_memory(go_sp, 8))[0]
        except (OSError, struct.error):
            return None
        return ret, go_sp + 8
    return None
