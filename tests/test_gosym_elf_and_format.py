"""ElfFile (build id, static reads, load bias of a running PIE) and the Go-style traceback
helpers whose behaviour Go's own sources pin down."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gotoolchains import goroot
from gdbstub.symbols import gotraceback as tb
from gdbstub.symbols.elf_file import ElfFile, parse_proc_maps

C_SOURCE = r"""
#include <unistd.h>
const char greeting[] = "hello, symbols";
char zeros[4096];
__thread long tls_word = 42;
int main(void) { tls_word++; pause(); return greeting[0] + zeros[1]; }
"""


@pytest.fixture(scope="module")
def c_program(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("celf")
    (d / "p.c").write_text(C_SOURCE)
    subprocess.run(["gcc", "-O0", "-pie", "-fPIE", "-Wl,--build-id=sha1", "-o", str(d / "p"),
                    str(d / "p.c")], check=True)
    return d / "p"


def test_gnu_build_id_matches_readelf(c_program):
    notes = subprocess.run(["readelf", "-n", str(c_program)], capture_output=True, text=True,
                           check=True).stdout
    expected = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    assert ElfFile(c_program).build_id() == expected


def test_static_reads_and_symbols(c_program):
    elf = ElfFile(c_program)
    greeting = elf.symbol("greeting")
    assert greeting is not None and greeting.size == len("hello, symbols") + 1
    assert elf.read_static(greeting.value, greeting.size) == b"hello, symbols\0"
    zeros = elf.symbol("zeros")
    assert elf.section(".bss").nobits
    assert elf.read_static(zeros.value, 4096) == bytes(4096)
    assert elf.section_data(".bss") is None
    tls = elf.tls_segment()
    headers = subprocess.run(["readelf", "-lW", str(c_program)], capture_output=True,
                             text=True, check=True).stdout
    row = next(line.split() for line in headers.splitlines() if line.strip().startswith("TLS"))
    assert (tls.offset, tls.vaddr, tls.filesz, tls.memsz) == tuple(int(x, 16) for x in
                                                                   (row[1], row[2], row[4], row[5]))
    with pytest.raises(ValueError):
        elf.read_static(0xFFFF_0000_0000, 8)


def test_load_bias_of_a_running_pie(c_program):
    elf = ElfFile(c_program)
    assert elf.is_pie
    proc = subprocess.Popen([str(c_program)])
    try:
        # Wait until exec has replaced the forked image with the program.
        for _ in range(200):
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            if str(c_program) in maps:
                break
            time.sleep(0.01)
        auxv = Path(f"/proc/{proc.pid}/auxv").read_bytes()
        at_entry = next(v for k, v in struct.iter_unpack("<QQ", auxv) if k == 9)
        bias = elf.load_bias_from_maps(parse_proc_maps(maps))
        assert bias is not None and bias != 0 and bias % 4096 == 0
        assert bias == elf.load_bias_from_entry(at_entry)
        # main + bias lies in an executable mapping of this very file.
        main = elf.symbol("main").value + bias
        assert any(m.start <= main < m.end and "x" in m.perms and m.path == str(c_program)
                   for m in parse_proc_maps(maps))
    finally:
        proc.kill()
        proc.wait()


def test_parse_proc_maps_keeps_paths_with_spaces():
    text = ("55d0c0000000-55d0c0001000 r-xp 00001000 08:01 1234   /tmp/a dir/prog\n"
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]\n"
            "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n")
    maps = parse_proc_maps(text)
    assert [(m.start, m.end, m.perms, m.offset, m.path) for m in maps] == [
        (0x55D0C0000000, 0x55D0C0001000, "r-xp", 0x1000, "/tmp/a dir/prog"),
        (0x7FFD00000000, 0x7FFD00021000, "rw-p", 0, "[stack]"),
        (0x7F0000000000, 0x7F0000001000, "rw-p", 0, "")]


def _go_test_table(pattern: str) -> list[tuple[str, str]]:
    source = (goroot("1.27") / "src" / "runtime" / "traceback_test.go").read_text()
    body = source[source.index(pattern):]
    body = body[:body.index("\n\t}\n")]
    return re.findall(r'\{"([^"]*)", "([^"]*)"\}', body)


def test_func_name_for_print_follows_go_test_cases():
    cases = _go_test_table("func TestTraceBackPieces")
    assert len(cases) > 10
    for name, expect in cases:
        assert tb.func_name_for_print(name) == expect.replace("|", ""), name
    assert tb.func_name_for_print("runtime.gopanic") == "panic"


def test_is_exported_runtime():
    # runtime.isExportedRuntime's documented cases (traceback.go comments and behaviour).
    assert tb.is_exported_runtime("runtime.Gosched")
    assert tb.is_exported_runtime("runtime.(*Func).Entry")
    assert not tb.is_exported_runtime("runtime.gopark")
    assert not tb.is_exported_runtime("runtime.(*mheap).Alloc")
    assert not tb.is_exported_runtime("sync.Mutex.Lock")


def test_symbols_package_stays_below_the_server():
    """symbols/ imports nothing of trio, ptrace, the protocol or the process controller."""
    code = ("import sys, gdbstub.symbols.goruntime, gdbstub.symbols.gotraceback;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('trio', 'ptrace', 'packets')"
            " or m.startswith(('gdbstub.process', 'gdbstub.server', 'gdbstub.session'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
