"""The `gdbstub` command: parse the command line, report problems in one line, run the server."""

from __future__ import annotations

import logging
import os
import sys

from . import logs
from .options import USAGE, UsageError, parse, version_text


def _fail(message: str) -> int:
    sys.stderr.write(f"gdbstub: {message}\n")
    sys.stderr.flush()
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse(argv)
    except UsageError as exc:
        return _fail(str(exc))
    if opts.show_help:
        sys.stdout.write(USAGE)
        return 0
    if opts.show_version:
        sys.stdout.write(version_text())
        return 0
    if opts.selftest:
        sys.stdout.write("Selftests have been disabled for this build.\n")
        return 0
    # Imported only now: --help and --version answer in the time Python starts (tools probe
    # them), not after trio and the protocol tables have loaded (a quarter of a second).
    import trio

    from .process import LaunchError, resolve_program
    from .transport import CommError, parse_comm

    try:
        comm = parse_comm(opts.comm)
    except CommError as exc:
        sys.stderr.write(f"{exc}\nExiting\n")
        return 1
    if opts.program is not None:
        try:
            resolve_program(opts.program)
        except LaunchError as exc:
            return _fail(str(exc))
    logs.configure(opts.debug, opts.remote_debug, opts.debug_file, opts.debug_timestamps)

    from .server import Server

    server = Server(opts, comm)
    try:
        return trio.run(server.serve)
    except (LaunchError, CommError) as exc:
        return _fail(str(exc))
    except BaseExceptionGroup as group:
        # The server's nursery wraps a start-up failure in a group: show the user its one line.
        expected = group.subgroup(lambda e: isinstance(e, (LaunchError, CommError)))
        if expected is None:
            raise
        return _fail(str(_first_leaf(expected)))
    except KeyboardInterrupt:
        return 1


def run() -> None:
    """The installed `gdbstub` command: `main`, then an exit without the interpreter's
    teardown.

    Freeing every module's objects at exit takes about 20 ms here, after the session has
    ended and the program has been killed or detached: a client that starts a server for
    each session (GDB's testsuite, an IDE's relaunch, a test suite) would wait for it, where
    gdbserver is gone at once. Nothing of the server's runs at exit; the streams and the log
    file are flushed first. An exception still ends the process the usual way, with its
    traceback.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream: nothing more can be written to it anyway
    os._exit(code)


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group
