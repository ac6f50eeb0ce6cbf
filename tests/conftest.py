"""Shared fixtures for the unit and CLI tests: the C programs the tests debug.

The programs are built by `make setup`; the `programs` fixture builds them again on
demand (a no-op when they are up to date), so that a bare `pytest` works too.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "tests" / "programs"


@dataclass(frozen=True)
class Programs:
    """Paths of the built test programs (see tests/programs/*.c)."""

    simple: Path         # PIE, dynamically linked
    simple_static: Path  # the same source, -static
    spin: Path
    crash: Path
    signals: Path
    threads: Path

    @classmethod
    def in_dir(cls, build: Path) -> Programs:
        return cls(**{f.name: build / f.name for f in fields(cls)})

    def source(self, name: str) -> Path:
        """The C source of a program, e.g. source('simple.c')."""
        return PROGRAMS_DIR / name


def build_programs() -> Path:
    """Run tests/programs/Makefile; returns the build directory."""
    result = subprocess.run(["make", "-s", "-C", str(PROGRAMS_DIR)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the test programs failed:\n{result.stdout}{result.stderr}")
    return PROGRAMS_DIR / "build"


@pytest.fixture(scope="session")
def programs() -> Programs:
    """The test programs, built if needed."""
    return Programs.in_dir(build_programs())
