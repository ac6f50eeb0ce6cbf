"""Packet handlers, one module per packet family. Importing this package registers them all."""

from . import breakpoints, general, hostio, memory, monitor, registers, resume, xfer  # noqa: F401
