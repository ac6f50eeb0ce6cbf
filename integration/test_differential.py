"""Differential tests: the same gdb session against gdbserver and against the candidate.

Each scenario of scenarios.py is run twice, once per server, and the normalised
transcripts (gdb's output, the inferior's stdout, its marker file) must be equal.
"""

from __future__ import annotations

import difflib

import pytest

from differential import run_scenario
from harness import Programs
from scenarios import SCENARIOS, Scenario


def _diff(expected: str, actual: str, reference: str, candidate: str) -> str:
    return "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile=reference, tofile=candidate))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_same_transcript_as_gdbserver(scenario: Scenario, programs: Programs,
                                      reference: str, candidate: str, tmp_path,
                                      request: pytest.FixtureRequest) -> None:
    build = programs.simple.parent
    # Both work directories have names of one length: the inferior's cwd reaches its
    # stack through PWD, and equal lengths keep the two stack layouts alike.
    expected = run_scenario(reference, scenario, tmp_path / "reference", build)
    # A scenario that gdb rejects under gdbserver proves nothing about the candidate.
    assert expected.startswith("--- gdb (exit 0) ---"), expected
    assert "<gdb timed out" not in expected, expected
    if scenario.marker is not None:
        assert "<not written>" not in expected, expected
    if scenario.known_gap and candidate != reference:
        request.applymarker(pytest.mark.xfail(strict=True, reason=scenario.known_gap))

    actual = run_scenario(candidate, scenario, tmp_path / "candidate", build)
    if actual != expected:
        pytest.fail(f"{candidate} differs from {reference} in {scenario.name}:\n"
                    + _diff(expected, actual, reference, candidate)
                    + f"\n--- full {candidate} transcript ---\n{actual}")
