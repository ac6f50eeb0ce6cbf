"""A gdb/MI client for tests, driving gdb the way VS Code's cppdbg (MIEngine) does.

MIEngine starts `gdb --interpreter=mi`, turns on `mi-async`, sets pagination off, loads the
program with -file-exec-and-symbols, asks `show architecture`, inserts a breakpoint on
main and only then connects with `-target-select remote HOST:PORT`. Commands carry
numeric tokens so each result record can be matched to its command; async records
(*stopped, *running, =thread-created ...) are kept in arrival order for the tests.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from pygdbmi.gdbcontroller import GdbController

MiRecord = dict[str, Any]

DEFAULT_TIMEOUT = 30.0


class MiError(AssertionError):
    """gdb answered ^error, or no answer came in time."""


class MiSession:
    """One gdb process in MI mode."""

    def __init__(self, *, extra_args: tuple[str, ...] = (),
                 interpreter: str = "--interpreter=mi3") -> None:
        # `env` keeps gdb's messages in the C locale whatever the caller's environment.
        # A short settle time: a read returns soon after gdb goes quiet, instead of
        # pygdbmi's default 0.2 s per read, which adds up to seconds per test.
        self._gdb = GdbController(
            command=["env", "LC_ALL=C", "gdb", "--nx", "--quiet", interpreter, *extra_args],
            time_to_check_for_additional_output_sec=0.01)
        self._tokens = itertools.count(100)
        self.log: list[MiRecord] = []          # every record, in arrival order
        self._unread: list[MiRecord] = []      # async records not yet consumed by waits

    # -- reading -------------------------------------------------------------------------

    def _pump(self, timeout: float) -> list[MiRecord]:
        records = self._gdb.get_gdb_response(timeout_sec=timeout, raise_error_on_timeout=False)
        self.log += records
        self._unread += records
        return records

    def command(self, text: str, *, timeout: float = DEFAULT_TIMEOUT,
                expect: str | tuple[str, ...] = ("done", "running", "connected")) -> MiRecord:
        """Send one MI command and return its result record (^done, ^running, ...)."""
        token = next(self._tokens)
        self._gdb.write(f"{token}{text}", read_response=False)
        deadline = time.monotonic() + timeout
        while True:
            for record in self._unread:
                if record.get("type") == "result" and record.get("token") == token:
                    self._unread.remove(record)
                    wanted = (expect,) if isinstance(expect, str) else expect
                    if record["message"] not in wanted:
                        raise MiError(f"{text!r} answered ^{record['message']} "
                                      f"{record.get('payload')!r}; expected one of {wanted}")
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MiError(f"no result for {text!r} in {timeout}s; "
                              f"last records: {self.log[-10:]!r}")
            self._pump(min(remaining, 0.5))

    def console(self, text: str, **kwargs: Any) -> MiRecord:
        """A CLI command through -interpreter-exec, as MIEngine sends them."""
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return self.command(f'-interpreter-exec console "{escaped}"', **kwargs)

    def wait_for(self, message: str, *, timeout: float = DEFAULT_TIMEOUT,
                 kind: str = "notify") -> MiRecord:
        """The next unconsumed async record `message` (e.g. 'stopped'), waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for index, record in enumerate(self._unread):
                if record.get("type") == kind and record.get("message") == message:
                    # Records before it are consumed too, so waits move forward in time.
                    del self._unread[: index + 1]
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MiError(f"no *{message} in {timeout}s; last records: {self.log[-10:]!r}")
            self._pump(min(remaining, 0.5))

    def wait_stopped(self, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The payload of the next *stopped record."""
        return self.wait_for("stopped", timeout=timeout)["payload"]

    def thread_states(self) -> dict[str, str]:
        """-thread-info: each thread's id and its state ('stopped' or 'running')."""
        threads = self.command("-thread-info")["payload"]["threads"]
        return {t["id"]: t["state"] for t in threads}

    def wait_all_stopped(self, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Non-stop: the *stopped payloads that arrive until -thread-info shows no thread
        running (each thread reports its own stop)."""
        stops = []
        while "running" in self.thread_states().values():
            stops.append(self.wait_stopped(timeout=timeout))
        # Stops that came before the last -thread-info's answer.
        arrived = [r for r in self._unread
                   if r.get("type") == "notify" and r.get("message") == "stopped"]
        self._unread = [r for r in self._unread if r not in arrived]
        return stops + [r["payload"] for r in arrived]

    def console_output(self) -> str:
        """Everything gdb printed as console stream records so far."""
        return "".join(r["payload"] for r in self.log
                       if r.get("type") == "console" and isinstance(r.get("payload"), str))

    # -- the cppdbg start-up sequence -----------------------------------------------------

    def connect_like_cppdbg(self, program: Path, address: str, *, break_main: bool = True,
                            cwd: Path | str | None = None) -> dict[str, Any]:
        """Send what MIEngine sends for a launch with miDebuggerServerAddress set (`cwd`:
        launch.json's, which MIEngine passes to -environment-cd).

        Returns the payload of the *stopped record gdb emits once connected (the
        inferior waits at its first instruction; MIEngine ignores that stop).
        """
        self.command("-gdb-set mi-async on")
        self.console("set pagination off")
        if cwd is not None:
            self.command(f"-environment-cd {cwd}")
        self.command(f"-file-exec-and-symbols {program}")
        self.console("show architecture")
        if break_main:
            self.command("-break-insert main")
        self.command(f"-target-select remote {address}", expect="connected")
        return self.wait_stopped()

    def connect_like_cdt(self, program: Path, address: str, *, non_stop: bool,
                         cwd: Path | None = None) -> dict[str, Any]:
        """Send what Eclipse CDT (dsf-gdb, GDB 7.12 and later) sends for a remote launch, up
        to the connection: FinalLaunchSequence's settings, then DebugNewProcessSequence's
        executable and `-target-select remote`. Returns the connection's *stopped payload.
        """
        self.command("-gdb-version")
        if cwd is not None:
            self.command(f"-environment-cd {cwd}")
        for setting in ("breakpoint pending on", "python print-stack none", "print object off",
                        "print sevenbit-strings on", "charset ISO-8859-1",
                        # async for non-stop, and for all-stop with CDT's full GDB console
                        "mi-async on", "record full stop-at-limit off",
                        *(["non-stop on"] if non_stop else []), "auto-solib-add on"):
            self.command(f"-gdb-set {setting}")
        self.command(f"-file-exec-and-symbols --thread-group i1 {program}")
        self.command(f"-target-select remote {address}", expect="connected")
        return self.wait_stopped()

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Ask gdb to exit, then make sure it has."""
        process = self._gdb.gdb_process
        if process is not None and process.poll() is None:
            try:
                self._gdb.write("-gdb-exit", read_response=False)
                process.wait(5)
            except Exception:  # noqa: BLE001 - a dead pipe or a hang both end in kill
                pass
        self._gdb.exit()

    def __enter__(self) -> MiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frame_of(stopped: dict[str, Any]) -> dict[str, Any]:
    """The frame tuple of a *stopped payload (empty when it has none)."""
    return stopped.get("frame") or {}


# Async records left out of record_classes: thread events, which race with stops and are
# counted instead (thread_events), and =tsv-created, gdbserver's trace state variable
# (tracepoints), which gdbstub does not have.
_UNCLASSED = {"thread-created", "thread-exited", "tsv-created"}


def record_classes(records: list[MiRecord]) -> list[str]:
    """The async records among `records`, each reduced to its class and reason, without
    ids or addresses: '*running', '*stopped breakpoint-hit', '*stopped signal-received
    SIGINT', '=breakpoint-modified' ..."""
    classes = []
    for record in records:
        if record.get("type") != "notify" or record["message"] in _UNCLASSED:
            continue
        payload = record.get("payload") or {}
        if record["message"] == "stopped":
            reason = payload.get("reason", "")
            if reason == "signal-received":
                reason += " " + payload.get("signal-name", "")
            classes.append(f"*stopped {reason}".rstrip())
        elif record["message"] == "running":
            classes.append("*running")
        else:
            classes.append("=" + record["message"])
    return classes


def thread_events(records: list[MiRecord]) -> tuple[int, int]:
    """How many =thread-created and =thread-exited records are among `records`."""
    messages = [r.get("message") for r in records if r.get("type") == "notify"]
    return messages.count("thread-created"), messages.count("thread-exited")
