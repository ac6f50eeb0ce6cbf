"""Reading and writing a traced process's memory through one /proc/PID/mem descriptor.

pread/pwrite on /proc/PID/mem is the fastest path measured (about 1.4 GB/s for large reads) and,
unlike process_vm_writev, it can write an int3 into read-only text.
"""

from __future__ import annotations

import os

PAGE = 4096
_MAX_OFFSET = (1 << 63) - 1


class ProcessMemory:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)

    def reopen(self) -> None:
        """After exec the address space is new: the old descriptor reads the old one."""
        self.close()
        self._fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, addr: int, length: int) -> bytes:
        """Read up to `length` bytes; returns the readable prefix (possibly empty)."""
        if length <= 0:
            return b""
        if addr < 0 or addr > _MAX_OFFSET:
            return b""
        length = min(length, _MAX_OFFSET - addr + 1)
        try:
            data = os.pread(self._fd, length, addr)
        except OSError:
            data = b""
        if len(data) == length:
            return data
        # A partial read: go page by page to return exactly the readable prefix.
        out = bytearray(data)
        pos = addr + len(out)
        end = addr + length
        while pos < end:
            chunk = min(end - pos, PAGE - (pos % PAGE))
            try:
                piece = os.pread(self._fd, chunk, pos)
            except OSError:
                break
            if not piece:
                break
            out += piece
            pos += len(piece)
            if len(piece) < chunk:
                break
        return bytes(out)

    def write(self, addr: int, data: bytes) -> int:
        """Write `data`; returns the number of bytes written."""
        if not data:
            return 0
        if addr < 0 or addr + len(data) - 1 > _MAX_OFFSET:
            return 0
        written = 0
        while written < len(data):
            try:
                n = os.pwrite(self._fd, data[written:], addr + written)
            except OSError:
                break
            if n <= 0:
                break
            written += n
        return written
