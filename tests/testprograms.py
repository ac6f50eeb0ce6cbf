"""The C programs the tests debug (tests/programs/*.c): their paths, and building them.

Shared by the unit tests (tests/conftest.py) and the integration harness, which puts this
folder on its import path.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"


@dataclass(frozen=True)
class Programs:
    """Paths of the built test programs (see tests/programs/*.c)."""

    simple: Path         # PIE, dynamically linked
    simple_static: Path  # the same source, -static
    spin: Path
    crash: Path
    signals: Path
    threads: Path
    sleeper: Path        # sleeps in outer() -> inner() -> sleep()

    @classmethod
    def in_dir(cls, build: Path) -> Programs:
        return cls(**{f.name: build / f.name for f in fields(cls)})

    def source(self, name: str) -> Path:
        """The C source of a program, e.g. source('simple.c')."""
        return PROGRAMS_DIR / name


def build_programs(directory: Path = PROGRAMS_DIR) -> Path:
    """Build the test programs (a no-op when they are up to date); returns the build dir."""
    result = subprocess.run(["make", "-s", "-C", str(directory)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {directory} failed:\n{result.stdout}{result.stderr}")
    return directory / "build"
