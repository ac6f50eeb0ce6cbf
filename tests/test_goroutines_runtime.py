"""The Go runtime view beyond the dump comparison: scale, the not-yet-started runtime, reading
from a memory snapshot instead of a live process, and the generated struct offset table."""

from __future__ import annotations

import bisect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goprocess import FrozenGoProcess, start_stopped_at_exec
from gotoolchains import RELEASES, ROOT, build, go_binary, go_env
from gdbstub.symbols import gotraceback as tb
from gdbstub.symbols.elf_file import parse_proc_maps
from gdbstub.symbols.gobinary import GoBinary
from gdbstub.symbols.go_dwarf_offsets import read_offsets
from gdbstub.symbols.go_offsets_table import OFFSETS
from gdbstub.symbols.goruntime import GoRuntime, RuntimeNotReady

MANY = 10_000
SOURCE = Path(__file__).parent / "goprograms" / "waiters" / "main.go"


@pytest.mark.parametrize("minor,stripped", [("1.19", False), ("1.21", False), ("1.24", False),
                                            ("1.25", True), ("1.27", False), ("1.27", True)],
                         ids=["go1.19", "go1.21", "go1.24", "go1.25-stripped", "go1.27",
                              "go1.27-stripped"])
def test_ten_thousand_goroutines(minor, stripped, tmp_path):
    path = build(minor, "waiters", stripped=stripped)
    process = FrozenGoProcess(path, tmp_path / "dump.txt", {"GOAWARE_MANY": str(MANY)})
    try:
        process.freeze()
        runtime = GoRuntime(GoBinary(path), process.read_memory)
        start = time.perf_counter()
        listed = runtime.goroutines(process.thread_states())
        elapsed = time.perf_counter() - start
        go_line = next(n for n, line in enumerate(SOURCE.read_text().splitlines(), 1)
                       if line.strip() == "go parked(block)")
        parked = [g for g in listed if runtime.creator(g).line == go_line]
        start = time.perf_counter()
        tops = {tb.user_frame(runtime.backtrace(g)).function for g in parked}
        unwound = time.perf_counter() - start
        print(f"\ngo{minor}{' stripped' if stripped else ''}: {len(listed)} goroutines "
              f"listed in {elapsed * 1000:.0f} ms, {len(parked)} unwound in "
              f"{unwound * 1000:.0f} ms")
        assert len(parked) == MANY and tops == {"main.parked"}
        dumped = {d.split()[1] for d in process.dump().split("\n\n")}
        assert {str(g.goid) for g in listed if not tb.is_system_goroutine(g)} == dumped
    finally:
        process.close()


@pytest.mark.parametrize("minor,stripped", [("1.19", True), ("1.27", False), ("1.27", True)],
                         ids=["go1.19-stripped", "go1.27", "go1.27-stripped"])
def test_runtime_not_initialised_at_exec(minor, stripped):
    path = build(minor, "waiters", stripped=stripped)
    proc = start_stopped_at_exec(path)
    try:
        with open(f"/proc/{proc.pid}/mem", "rb", buffering=0) as mem:
            def read(addr: int, size: int) -> bytes:
                mem.seek(addr)
                return mem.read(size)
            runtime = GoRuntime(GoBinary(path), read)
            with pytest.raises(RuntimeNotReady):
                runtime.goroutines()
    finally:
        proc.kill()
        proc.wait()


class _Snapshot:
    """The writable memory of a process copied into bytes: a core-file-like reader."""

    def __init__(self, pid: int, read) -> None:
        maps = Path(f"/proc/{pid}/maps").read_text()
        self.regions: list[tuple[int, bytes]] = []
        for m in parse_proc_maps(maps):
            if "r" in m.perms and not m.path.startswith("[v"):
                try:
                    self.regions.append((m.start, read(m.start, m.end - m.start)))
                except OSError:
                    pass
        self.regions.sort()
        self.starts = [start for start, _ in self.regions]

    def read(self, addr: int, size: int) -> bytes:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0:
            start, data = self.regions[i]
            if addr + size <= start + len(data):
                return data[addr - start:addr - start + size]
        raise OSError(f"{addr:#x} not in the snapshot")


def test_listing_from_a_memory_snapshot(tmp_path):
    """Nothing needs a live process: the same answers from a copy of its memory."""
    path = build("1.27", "waiters", stripped=True)
    process = FrozenGoProcess(path, tmp_path / "dump.txt")
    try:
        process.freeze()
        binary = GoBinary(path)
        live = GoRuntime(binary, process.read_memory)
        expected = {g.goid: (tb.goroutine_header(g), [(f.function, f.line) for f in
                                                      live.backtrace(g)])
                    for g in live.goroutines()}
        snapshot = _Snapshot(process.pid, process.read_memory)
    finally:
        process.close()
    offline = GoRuntime(binary, snapshot.read)
    got = {g.goid: (tb.goroutine_header(g), [(f.function, f.line) for f in offline.backtrace(g)])
           for g in offline.goroutines()}
    assert got == expected and len(got) > 20


@pytest.mark.parametrize("minor", list(RELEASES))
def test_own_dwarf_offsets_equal_the_generated_table(minor):
    elf = GoBinary(build(minor, "waiters")).elf
    fields = read_offsets(elf)
    row = dict(OFFSETS[minor])
    row.pop("func_id_wrapper")
    assert fields == row


@pytest.mark.parametrize("minor", list(RELEASES))
def test_wrapper_func_id_derived_without_table_equals_source(minor):
    binary = GoBinary(build(minor, "waiters", stripped=True))
    binary.minor = None  # no table row: derive it from the <autogenerated> functions
    assert binary.offsets_row() is None
    assert binary.wrapper_func_id == OFFSETS[minor]["func_id_wrapper"]


@pytest.mark.parametrize("minor", list(RELEASES))
def test_generated_table_is_current(minor):
    """Re-running the generator over an installed toolchain reproduces its committed row."""
    env = dict(os.environ, GOCACHE=go_env(minor)["GOCACHE"])
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_go_offsets.py"),
                             "--check", str(go_binary(minor))], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr
