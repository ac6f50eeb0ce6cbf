"""`SERVER --attach COMM PID`: debug a process that is already running, then detach and
leave it running untraced."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from harness import Programs, process_state, run_gdb_batch, start_server


def tracer_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^TracerPid:\s+(\d+)", status, re.M).group(1))


def test_attach_inspect_detach(server_kind: str, programs: Programs) -> None:
    spinner = subprocess.Popen([str(programs.spin)], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.2)  # let it reach its loop
        with start_server(server_kind, programs.spin, attach_pid=spinner.pid) as server:
            assert server.inferior_pid == spinner.pid
            assert re.search(rf"Attached; pid = {spinner.pid}", server.stderr), server.stderr
            run = run_gdb_batch(server, programs.spin,
                                ["bt", "print ticks > 0", "print ticks = 0", "detach"])
            out = run.raw
            assert not run.timed_out, out
            # Stopped somewhere in the spin loop, with the loop's counter readable.
            assert re.search(r"^#0 .*\b(tick|main) \(\) at spin\.c:\d+$", out, re.M), out
            assert "$1 = 1" in out and "$2 = 0" in out, out
            assert re.search(rf"\[Inferior 1 \(process {spinner.pid}\) detached\]", out), out
            server.wait_exit(5.0)
        # Detached: still alive, no tracer, not stopped.
        time.sleep(0.1)
        assert spinner.poll() is None
        assert tracer_of(spinner.pid) == 0
        assert process_state(spinner.pid) in ("R", "S")
    finally:
        spinner.kill()
        spinner.wait(5)
