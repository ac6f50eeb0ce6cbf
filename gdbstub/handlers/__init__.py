"""Packet handlers, one module per packet family. Importing this package registers them all."""

from . import (  # noqa: F401
    breakpoints, general, hostio, launching, lldb, memory, monitor, registers, resume, xfer,
)
