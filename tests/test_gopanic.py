"""gdbstub/symbols/govalues.py's printing of floats against the Go runtime's own print.

tests/goprograms/floats prints a list of floats with println (runtime.printfloat up to Go
1.25, strconv's shortest form from 1.26 on): each float64, its float32, and complex128 and
complex64 values made from it, with the bits of each on stdout. The reader must print the
same text for the same bits, choosing the rule from the program's own functions. The panic
values themselves (every kind, stripped and DWARF builds) are checked live against Go's crash
report in integration/test_go.py.
"""

from __future__ import annotations

import struct
import subprocess

import pytest

from gotoolchains import RELEASES, build
from gdbstub.symbols.gobinary import GoBinary
from gdbstub.symbols.gopanic import PanicReader
from gdbstub.symbols.govalues import _f32, format_float, format_float_shortest
from gdbstub.symbols.goruntime import GoRuntime


def _unreadable(addr: int, size: int) -> bytes:
    raise OSError("no process")


@pytest.mark.parametrize("minor", list(RELEASES))
def test_floats_print_as_the_runtime_prints_them(minor):
    path = build(minor, "floats", stripped=True)
    run = subprocess.run([str(path)], capture_output=True, text=True, check=True)
    reader = PanicReader(GoRuntime(GoBinary(path), _unreadable))
    bits = run.stdout.splitlines()
    printed = run.stderr.splitlines()
    assert len(bits) == len(printed) > 20
    for line, want in zip(bits, printed):
        b64, b32 = (int(x, 16) for x in line.split())
        v = struct.unpack("<d", struct.pack("<Q", b64))[0]
        f = struct.unpack("<f", struct.pack("<I", b32))[0]
        v2 = _f32(2 * v)  # complex64(complex(v, 2*v)): 2v converted to float32
        got = " ".join([reader.float_text(v, 64), reader.float_text(f, 32),
                        reader.complex_text(v, -v, 64), reader.complex_text(f, v2, 32)])
        assert got == want, (line, got, want)


def test_float_rules():
    assert format_float(1.5) == "+1.500000e+000"
    assert format_float(-0.0) == "-0.000000e+000"
    assert format_float(float("nan")) == "NaN"
    assert format_float_shortest(1.5) == "1.5"
    assert format_float_shortest(1e6) == "1e+06"
    assert format_float_shortest(123456.0) == "123456"
    assert format_float_shortest(struct.unpack("<f", struct.pack("<f", 0.1))[0], 32) == "0.1"
    assert format_float_shortest(-0.0) == "-0"
