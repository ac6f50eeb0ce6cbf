"""A goroutine inside a cgo call: its C frames, joined to its Go frames.

runtime.cgocall enters the system call state (g.syscallpc/sp name its Go frames) and calls
runtime.asmcgocall, which switches the thread to its g0 stack and calls the C function (from
Go 1.22 through runtime.asmcgocall_landingpad, which jumps to it: the C function returns into
asmcgocall either way). Before the call it stores two words on the g0 stack: the goroutine's
g, and the depth of the goroutine's stack pointer below g.stack.hi (the stack may move during
a callback, so not the pointer itself). Above the stack pointer the C function returns with,
the words sit at 40/48 in Go 1.19-1.21 and at 0/8 from 1.22 on; they are found here by value
(the g the thread is running), not by release.

The C frames are unwound from the thread's registers with the objects' CFI (cframes.py) up to
the first pc in Go's text. The join holds when that pc is in asmcgocall, the g word there is this goroutine, and the depth leads to a return address in Go's text on the
goroutine's stack: then the C frames belong to this goroutine's call, and its Go frames follow.
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass
from typing import Callable, Sequence

from gdbstub.symbols import dwarf_writer as dw
from gdbstub.symbols.cframes import RA, RBP, RSP, CFrame, MappedObjects, unwind_c_frames
from gdbstub.symbols.goruntime_types import G_SYSCALL, Goroutine

_SLOT_WINDOW = 64   # bytes above the stack pointer searched for the saved g


@dataclass(frozen=True, slots=True)
class CgoCall:
    frames: list[CFrame]        # the C frames, innermost first
    joined: bool                # the walk reached asmcgocall with this goroutine's words
    go_pc: int | None = None    # where the goroutine's stack resumes: runtime.cgocall's pc
    go_sp: int | None = None    # and its stack pointer (just above that return address)
    asm_pc: int | None = None   # where the C code returns to in asmcgocall
    asm_sp: int | None = None   # and the system stack pointer there (the saved words)


def cgo_call(g: Goroutine, regs: dict[int, int], read_memory: Callable[[int, int], bytes],
             objects: MappedObjects, func_name_at: Callable[[int], str | None]) -> CgoCall | None:
    """The cgo call of goroutine g, whose M's thread has the registers `regs` (DWARF
    numbering), or None when g is not in a cgo call or its thread is not in C code. (The race
    detector's calls into C keep the goroutine running: they are not cgo calls.)"""
    if g.status != G_SYSCALL or func_name_at(regs.get(RA, 0)) is not None:
        return None     # not in a call out of Go, or the thread runs Go code
    frames, at_go = unwind_c_frames(regs, read_memory, objects,
                                    lambda pc: func_name_at(pc) is not None)
    if at_go is None or func_name_at(at_go[RA]) != "runtime.asmcgocall":
        return CgoCall(frames, False)
    resumed = _goroutine_stack_resume(g, at_go[RSP], at_go.get(RBP), read_memory)
    if resumed is None or func_name_at(resumed[0]) is None:
        return CgoCall(frames, False)
    return CgoCall(frames, True, *resumed, at_go[RA], at_go[RSP])


def _goroutine_stack_resume(g: Goroutine, sp: int, bp: int | None,
                            read_memory: Callable[[int, int], bytes]) -> tuple[int, int] | None:
    """(return address into asmcgocall's caller, goroutine sp above it) from the words
    asmcgocall saved on the g0 stack at or above sp. Where the assembler gave asmcgocall a
    frame pointer (Go 1.21 on), the saved depth leads to the pushed BP, and BP (kept by the
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


# asmcgocall on the system stack, as Go 1.19-1.27 assemble it: save g at d1(SP), load
# g.stack.hi (offset 8: g.stack is g's first field), subtract the entry SP (DX), save the depth
# at d2(SP), maybe copy the argument (BX) into DI and CX, then call the C function (CALL AX)
# or the landing pad that jumps to it (CALL rel32). Either way the C function returns to the
# instruction after that call, with SP where the two words are.
_SWITCHED_CALL = re.compile(
    rb"\x48\x89\x7c\x24(?P<g>[\x00-\x7f])"          # MOVQ DI, g(SP)
    rb"\x48\x8b\x7f\x08\x48\x29\xd7"                # MOVQ 8(DI), DI; SUBQ DX, DI
    rb"(?:\x48\x89\x3c\x24|\x48\x89\x7c\x24(?P<depth>[\x00-\x7f]))"  # MOVQ DI, depth(SP)
    rb"(?:\x48\x89[\xdf\xd9])*"                       # MOVQ BX, DI / MOVQ BX, CX
    rb"(?P<call>\xff\xd0|\xe8....)", re.S)             # CALL AX / CALL landing pad
_FRAME_POINTER_PROLOGUE = b"\x55\x48\x89\xe5"          # PUSHQ BP; MOVQ SP, BP
_RBP_DWARF = 6


def asmcgocall_frame_rows(code: bytes, entry: int, sp_starts: Sequence[int],
                          sp_values: Sequence[int]) -> list[tuple[int, bytes]]:
    """Call-frame rows for runtime.asmcgocall (its code at `entry`) that take an unwinder from
    the C function it called back to the goroutine's stack, as _goroutine_stack_resume does:
    from the call through the instruction it returns to, the CFA is
    g.stack.hi - depth + 8 (+ 8 for a pushed BP, saved just below the return address).
    Empty when the code is not the expected sequence."""
    found = _SWITCHED_CALL.search(code)
    if found is None:
        return []
    g_slot, depth_slot = found.group("g")[0], (found.group("depth") or b"\0")[0]
    frame_pointer = code.startswith(_FRAME_POINTER_PROLOGUE)
    expression = (bytes((dw.DW_OP_BREG0 + RSP,)) + dw.sleb(g_slot) + bytes((dw.DW_OP_DEREF,))
                  + bytes((dw.DW_OP_PLUS_UCONST,)) + dw.uleb(8) + bytes((dw.DW_OP_DEREF,))
                  + bytes((dw.DW_OP_BREG0 + RSP,)) + dw.sleb(depth_slot)
                  + bytes((dw.DW_OP_DEREF, dw.DW_OP_MINUS, dw.DW_OP_PLUS_UCONST))
                  + dw.uleb(16 if frame_pointer else 8))
    saved = [(_RBP_DWARF, -16)] if frame_pointer else []
    call_pc = entry + found.start("call")
    returned_to = entry + found.end("call")
    # After the instruction returned to, the pcsp rows hold again (as Go's own tables say).
    after = returned_to + 1
    i = max(0, bisect.bisect_right(sp_starts, after) - 1)
    value = sp_values[i] if sp_values else 0
    return [(call_pc, dw.FrameTable.cfa_expression(expression, saved)),
            (after, dw.FrameTable.cfa_at_sp(value, [_RBP_DWARF] if frame_pointer else []))]

