"""The x86-64 register table from which target.xml, the g/G layout and p/P numbers are derived."""

from gdbstub.arch.registers import Register, RegisterSets, RegisterTable
from gdbstub.arch.x86_64 import cpu_has_avx, x86_64_table

__all__ = ["Register", "RegisterSets", "RegisterTable", "cpu_has_avx", "x86_64_table"]
