"""Fixtures for the integration tests, which run real gdb against real servers.

`candidate` names the server under test: gdbstub unless GDBSTUB_DIFF_CANDIDATE says
otherwise. GDBSTUB_DIFF_CANDIDATE=gdbserver runs every test against gdbserver alone,
which checks the harness and the scenarios themselves (they must pass and be stable).
"""

from __future__ import annotations

import os

import pytest

from harness import SERVER_KINDS, Programs, build_programs

REFERENCE = "gdbserver"


@pytest.fixture(scope="session")
def programs() -> Programs:
    """The test programs from tests/programs, built if needed."""
    return Programs.in_dir(build_programs())


@pytest.fixture(scope="session")
def candidate() -> str:
    """The server whose behaviour is compared with gdbserver's."""
    kind = os.environ.get("GDBSTUB_DIFF_CANDIDATE", "gdbstub")
    if kind not in SERVER_KINDS:
        raise pytest.UsageError(f"GDBSTUB_DIFF_CANDIDATE must be one of {SERVER_KINDS}")
    return kind


@pytest.fixture(scope="session")
def reference() -> str:
    """The server whose behaviour is the yardstick."""
    return REFERENCE


@pytest.fixture(params=["reference", "candidate"])
def server_kind(request, reference: str, candidate: str) -> str:
    """Each test that takes it runs twice: against the reference, then the candidate."""
    return reference if request.param == "reference" else candidate
