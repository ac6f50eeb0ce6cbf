"""Shared fixtures for the unit and CLI tests: the C programs the tests debug.

The programs are built by `make setup`; the `programs` fixture builds them again on
demand (a no-op when they are up to date), so that a bare `pytest` works too.
"""

from __future__ import annotations

import pytest
from testprograms import Programs, build_programs


@pytest.fixture(scope="session")
def programs() -> Programs:
    """The test programs, built if needed."""
    return Programs.in_dir(build_programs())
