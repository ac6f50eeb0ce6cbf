"""The x86-64 register table from which target.xml, the g/G layout and p/P numbers are derived."""

from gdbstub.arch.registers import Register, RegisterSets, RegisterTable
from gdbstub.arch.x86_64 import (
    XStateFeatures,
    cpu_has_avx,
    cpu_has_avx512,
    cpu_has_pkeys,
    kernel_xfeatures,
    x86_64_table,
    xstate_features,
)

__all__ = [
    "Register", "RegisterSets", "RegisterTable", "XStateFeatures", "cpu_has_avx", "cpu_has_avx512",
    "cpu_has_pkeys", "kernel_xfeatures", "x86_64_table", "xstate_features",
]  # fmt: skip
