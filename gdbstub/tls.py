"""Thread-local variables' addresses (qGetTLSAddr), worked out as libthread_db does.

glibc describes its own structures for libthread_db in the `_thread_db_*` symbols libc exports
(three 32-bit words each: the field's size in bits, the count, the offset). From them: the
module's TLS id (link_map's l_tls_modid), the thread's dynamic thread vector (the dtv pointer
in its thread control block, which is the thread pointer, fs base, on x86-64), and that
module's block in it. gdb asks for this when it cannot load libthread_db itself.
"""

from __future__ import annotations

import os
import struct
from functools import lru_cache
from typing import NamedTuple

from .process import Inferior, TargetError
from .symbols.elf_file import ElfFile, parse_proc_maps

UNALLOCATED = (1 << 64) - 1  # glibc's TLS_DTV_UNALLOCATED: the block is made at first use


class TlsLayout(NamedTuple):
    modid_offset: int        # l_tls_modid in struct link_map
    dtv_offset: int          # the dtv pointer in the thread control block
    slot_size: int           # one dtv entry
    block_offset: int        # the block's address in a dtv entry


_FIELDS = ("_thread_db_link_map_l_tls_modid", "_thread_db_pthread_dtvp", "_thread_db_dtv_dtv",
           "_thread_db_dtv_t_pointer_val")


@lru_cache(maxsize=8)
def _layout_in(path: str, dynamic: bool) -> TlsLayout | None:
    """The layout glibc at `path` describes (its .dynsym, or a static program's .symtab)."""
    try:
        elf = ElfFile(path)
    except (OSError, ValueError):
        return None
    words = []
    for name in _FIELDS:
        symbol = elf.dynamic_symbol(name) if dynamic else elf.symbol(name)
        if symbol is None:
            return None
        words.append(struct.unpack("<3I", elf.read_static(symbol.value, 12)))
    (_, _, modid), (_, _, dtvp), (dtv_bits, _, _), (_, _, pointer) = words
    return TlsLayout(modid, dtvp, dtv_bits // 8, pointer)


def _layout(inferior: Inferior) -> TlsLayout:
    with open(f"/proc/{inferior.pid}/maps") as f:
        mappings = parse_proc_maps(f.read())
    for mapping in mappings:
        name = os.path.basename(mapping.path)
        if name.startswith("libc.so") or (name.startswith("libc-") and name.endswith(".so")):
            layout = _layout_in(mapping.path, True)
            if layout is not None:
                return layout
    layout = _layout_in(inferior.executable, False)  # a static program carries glibc itself
    if layout is None:
        raise TargetError("no glibc description of thread-local storage in this process")
    return layout


def thread_db_reachable(search_path: str) -> bool:
    """Whether a libthread_db could be found along gdbserver's search path ($pdir, the
    directory of the libc in use, and $sdir, the system's, are always taken to have one)."""
    for directory in search_path.split(":"):
        if directory in ("$pdir", "$sdir") or os.path.exists(os.path.join(directory, "libthread_db.so.1")):
            return True
    return False


def tls_address(inferior: Inferior, tid: int, offset: int, link_map: int) -> int:
    """Where the variable at `offset` in the TLS block of the module at `link_map` lives in
    thread `tid`."""
    layout = _layout(inferior)
    pointer = inferior.thread(tid).thread_pointer()
    if not pointer:
        raise TargetError("the thread has no thread control block yet")

    def word(addr: int) -> int:
        data = inferior.read_memory(addr, 8)
        if len(data) != 8:
            raise TargetError(f"cannot read memory at 0x{addr:x}")
        return int.from_bytes(data, "little")

    # A static program has no link map (gdb sends 0): its own block is module 1.
    module = word(link_map + layout.modid_offset) if link_map else 1
    dtv = word(pointer + layout.dtv_offset)
    block = word(dtv + module * layout.slot_size + layout.block_offset)
    if block in (0, UNALLOCATED):
        raise TargetError("the thread's TLS block for this module is not allocated yet")
    return block + offset
