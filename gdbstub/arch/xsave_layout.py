"""Where this CPU puts each XSAVE component in the standard (non-compacted) area.

The standard format's offsets are the CPU's choice, reported by CPUID leaf 0xD (sub-leaf i:
EAX = size, EBX = offset of component i). Intel CPUs keep room for the MPX components (3, 4) even
when they lack MPX, so their AVX-512 and PKRU components sit at 1088/1152/1664/2688; AMD CPUs
leave no such gap and place them lower. Python cannot execute CPUID directly, so `cpuid` runs a
few bytes of machine code from an executable anonymous mapping; where that is not allowed
(a W^X policy), `cpu_layout` falls back to Intel's offsets, the ones gdb 13 assumes everywhere.
"""

from __future__ import annotations

import ctypes
import functools
import mmap

from gdbstub.arch import fxsave

# void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]), System V calling convention.
_CPUID_CODE = bytes.fromhex(
    "53"  # push rbx (callee-saved; CPUID writes ebx)
    "4989d0"  # mov r8, rdx
    "89f8"  # mov eax, edi
    "89f1"  # mov ecx, esi
    "0fa2"  # cpuid
    "418900"  # mov [r8], eax
    "41895804"  # mov [r8+4], ebx
    "41894808"  # mov [r8+8], ecx
    "4189500c"  # mov [r8+12], edx
    "5b"  # pop rbx
    "c3"  # ret
)
_CpuidFn = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))


@functools.cache
def _cpuid_function() -> _CpuidFn | None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    size = mmap.PAGESIZE
    addr = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)  # fmt: skip
    if addr in (None, ctypes.c_void_p(-1).value):
        return None
    ctypes.memmove(addr, _CPUID_CODE, len(_CPUID_CODE))
    # Written while writable, then made executable and read-only: never both at once.
    if libc.mprotect(addr, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        return None
    return _CpuidFn(addr)  # the mapping lives as long as the process: it is never unmapped


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int] | None:
    """(EAX, EBX, ECX, EDX) of CPUID(leaf, subleaf); None when code cannot be run this way."""
    fn = _cpuid_function()
    if fn is None:
        return None
    out = (ctypes.c_uint32 * 4)()
    fn(leaf, subleaf, out)
    return out[0], out[1], out[2], out[3]


def cpu_layout() -> dict[int, tuple[int, int]]:
    """This CPU's (offset, size) for each extended component gdb knows (AVX, AVX-512, PKRU),
    keyed by XSTATE_BV bit.

    A component the CPU does not support keeps Intel's numbers; no register uses them then.
    """
    return dict(_cpu_layout())


@functools.cache
def _cpu_layout() -> tuple[tuple[int, tuple[int, int]], ...]:
    layout = dict(fxsave.INTEL_COMPONENTS)
    top = cpuid(0)
    if top is None or top[0] < 0xD:
        return tuple(layout.items())
    for bit in layout:
        size, offset, _, _ = cpuid(0xD, bit.bit_length() - 1)  # type: ignore[misc]
        if size:
            layout[bit] = (offset, size)
    return tuple(layout.items())
