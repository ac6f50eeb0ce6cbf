"""RIP-relative memory operands of x86-64 code, for finding runtime globals in stripped binaries.

A stripped Go binary has no symbol for runtime.allgs, runtime.allglen, runtime.allm or
runtime.waitReasonStrings, but the functions that use them (runtime.allgadd,
runtime.mcommoninit, runtime.waitReason.String) are still in .gopclntab, and their code
addresses those globals as `[rip + disp32]`. This does not decode instructions: it takes every
byte that could be a ModRM with mod=00, rm=101 and computes the target as if the
displacement ended the instruction. That over-approximates (some hits are not ModRM bytes,
instructions with an immediate land a few bytes off), so callers filter the targets by data
section and then check what the memory holds.

API:
    rip_relative_targets(code, code_addr, ranges) -> list[int]   (sorted, unique)
"""

from __future__ import annotations

import struct
from typing import Iterable


def rip_relative_targets(code: bytes, code_addr: int,
                         ranges: Iterable[tuple[int, int]]) -> list[int]:
    spans = list(ranges)
    found: set[int] = set()
    for i in range(1, len(code) - 4):
        if code[i] & 0xC7 != 0x05:
            continue
        (disp,) = struct.unpack_from("<i", code, i + 1)
        target = code_addr + i + 5 + disp
        if any(lo <= target < hi for lo, hi in spans):
            found.add(target)
    return sorted(found)
