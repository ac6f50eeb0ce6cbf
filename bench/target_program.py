"""The benchmark's debuggee (target.c): building it, its symbols, and the memory it should hold."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SOURCE = BENCH_DIR / "target.c"
BUILD_DIR = BENCH_DIR / "build"
BINARY = BUILD_DIR / "target"

# Must match target.c.
BLOCK_SIZE = 4093
SEED = 0x2545F491
SYMBOLS = ("bench_buffer", "bench_size", "bench_ready", "bench_tick", "bench_ticks")


@dataclass(frozen=True)
class TargetProgram:
    path: Path
    symbols: dict[str, int]  # name -> absolute address (the binary is not position independent)

    def argv(self, mib: int, iterations: int) -> list[str]:
        return [str(self.path), str(mib), str(iterations)]


def build() -> TargetProgram:
    """Compile target.c if the binary is missing or older than the source; read its symbols."""
    BUILD_DIR.mkdir(exist_ok=True)
    if not BINARY.exists() or BINARY.stat().st_mtime < SOURCE.stat().st_mtime:
        # -no-pie: symbol addresses are the run-time addresses, no load base to look up.
        subprocess.run(["gcc", "-O1", "-g", "-no-pie", "-o", str(BINARY), str(SOURCE)], check=True)
    return TargetProgram(BINARY, _symbols(BINARY))


def _symbols(binary: Path) -> dict[str, int]:
    out = subprocess.run(["nm", str(binary)], capture_output=True, check=True, text=True).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in SYMBOLS:
            found[parts[2]] = int(parts[0], 16)
    missing = set(SYMBOLS) - found.keys()
    if missing:
        raise RuntimeError(f"{binary} lacks symbols {sorted(missing)}")
    return found


def block() -> bytes:
    """The repeating block target.c writes into its buffer (the same xorshift32 sequence)."""
    x = SEED
    out = bytearray(BLOCK_SIZE)
    for i in range(BLOCK_SIZE):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


def expected_contents(offset: int, length: int) -> bytes:
    """What ``length`` bytes of the buffer starting at ``offset`` must read as."""
    pattern = block()
    start = offset % BLOCK_SIZE
    repeats = (start + length) // BLOCK_SIZE + 1
    return (pattern * repeats)[start : start + length]
