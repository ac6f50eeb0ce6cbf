"""gdbstub: a GDB remote-serial-protocol stub server for Linux x86-64 processes."""

__version__ = "0.1.0"
