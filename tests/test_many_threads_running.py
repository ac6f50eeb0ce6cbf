"""While a program of 1,000 threads runs, a 0x03 and a disconnect are answered at once.

The figures are bench/running_latency.py's (target: 50 ms, beside gdbserver); the bound here
is generous, for a loaded machine: what it catches is a 0x03 left unanswered for minutes or a
program left stopped, or still traced, after its client vanished.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from running_latency import disconnect_latency, interrupt_latency, pause_latencies

pytestmark = pytest.mark.timeout(120)

NTHREADS = 1000
BOUND = 3.0  # seconds


@pytest.fixture
def threads_bench(programs) -> Path:
    return programs.threads.parent / "threads_bench"


@pytest.mark.parametrize("together", [True, False], ids=["in-the-resume-s-write", "just-after-it"])
def test_an_interrupt_stops_a_running_program_of_1000_threads(threads_bench, tmp_path, together):
    elapsed, reply = interrupt_latency(threads_bench, NTHREADS, tmp_path / "server.log", together)
    print(f"\n0x03 {'with' if together else 'after'} vCont;c, {NTHREADS} threads: {elapsed * 1000:.1f} ms")
    assert reply.startswith(b"T02"), reply
    assert elapsed < BOUND


@pytest.mark.parametrize("attached", [False, True], ids=["launched", "attached"])
def test_a_vanished_client_releases_a_running_program_of_1000_threads(threads_bench, tmp_path, attached):
    elapsed, state, tracer = disconnect_latency(threads_bench, NTHREADS, tmp_path / "server.log", attached)
    print(f"\nclose while running, {'attached' if attached else 'launched'}, {NTHREADS} threads: "
          f"{elapsed * 1000:.1f} ms")
    if attached:
        assert (state in ("R", "S"), tracer) == (True, 0), (state, tracer)  # running, untraced
    else:
        assert state in (None, "Z", "X"), state  # killed
    assert elapsed < BOUND


def test_pauses_at_random_moments_stop_a_program_of_busy_blocked_and_short_lived_threads(programs, tmp_path):
    # threads_pause.c: spinning threads, threads in nanosleep and read, and threads created and
    # joined all the time. Every 0x03 is answered with a stop naming a thread that exists.
    # The latency figures are bench/pause_latency.py's (1,000 pauses, beside gdbserver).
    program = programs.threads.parent / "threads_pause"
    samples = pause_latencies(program, 100, tmp_path / "server.log", seed=7)
    worst = max(elapsed for elapsed, _, _ in samples)
    print(f"\n100 pauses at random moments: worst {worst * 1000:.1f} ms")
    for elapsed, reply, exists in samples:
        assert reply.startswith(b"T02") and exists, reply
        assert elapsed < BOUND
