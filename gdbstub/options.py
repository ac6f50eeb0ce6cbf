"""The command line, parsed the way gdbserver's is, so tools that start gdbserver can start us.

`gdbstub [OPTIONS] COMM PROG [ARGS...]`, `gdbstub [OPTIONS] --attach COMM PID` (also
`COMM --attach PID`) or `gdbstub --multi [OPTIONS] COMM [PROG [ARGS...]]`. Options stop at
COMM: everything after PROG belongs to the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__
from .logs import parse_debug_format

USAGE = """\
Usage:\tgdbstub [OPTIONS] COMM PROG [ARGS ...]
\tgdbstub [OPTIONS] --attach COMM PID
\tgdbstub [OPTIONS] --multi COMM [PROG [ARGS ...]]

COMM may be:
  [HOST]:PORT     listen for a TCP connection (HOST defaults to 127.0.0.1; PORT 0 picks a free port)
  - or stdio      speak the protocol on standard input and output (target remote | gdbstub - PROG)
  PATH            listen on a unix-domain socket at PATH

Options:
  --attach          attach to the running process PID instead of starting PROG
  --multi           stay up with no process: the client runs, attaches to, kills and
                    re-runs programs (gdb's target extended-remote); PROG is optional
  --once            exit after the first connection closes
  --debug           log what the server does to stderr
  --remote-debug    log every packet in both directions to stderr
  --debug-file=F    write the logs to F instead of stderr
  --debug-format=all|none|timestamp  start each log line with the time (all, timestamp)
  --disable-randomization     run PROG with address-space randomization off (default)
  --no-disable-randomization  keep address-space randomization on
  --startup-with-shell        start PROG as `$SHELL -c "exec PROG ARGS"`, every word quoted,
                              like gdbserver (default; the client can change it per run)
  --no-startup-with-shell     exec PROG directly
  --wrapper WRAPPER --        start every program through WRAPPER (e.g. env VAR=1 --), which
                              must exec it; the program's first stop is after that exec
  --go-goroutines             in a Go program, show every goroutine as a thread (as
                              `monitor go threads on` does)
  --go-symbol-file PATH       write PROG's symbol file, built from its Go tables, to PATH
                              at start-up (as `monitor go symbol-file PATH` does)
  --version         print the version and exit
  --help            print this help and exit

The server listens on 127.0.0.1 unless HOST names another address.
"""


class UsageError(Exception):
    """A bad command line; the message is one line for the user."""


@dataclass
class Options:
    comm: str = ""
    program: str | None = None
    args: list[str] = field(default_factory=list)
    attach_pid: int | None = None
    once: bool = False
    multi: bool = False
    debug: bool = False
    remote_debug: bool = False
    debug_file: str | None = None
    debug_timestamps: bool = False
    disable_randomization: bool = True
    startup_with_shell: bool = True
    wrapper: list[str] = field(default_factory=list)
    show_help: bool = False
    show_version: bool = False
    selftest: bool = False
    go_goroutines: bool = False
    go_symbol_file: str | None = None


_FLAGS = {
    "--once": ("once", True),
    "--multi": ("multi", True),
    "--debug": ("debug", True),
    "--remote-debug": ("remote_debug", True),
    "--disable-randomization": ("disable_randomization", True),
    "--no-disable-randomization": ("disable_randomization", False),
    "--startup-with-shell": ("startup_with_shell", True),
    "--no-startup-with-shell": ("startup_with_shell", False),
    "--help": ("show_help", True),
    "--version": ("show_version", True),
    "--selftest": ("selftest", True),
    "--go-goroutines": ("go_goroutines", True),
}


def parse(argv: list[str]) -> Options:
    opts = Options()
    attach = False
    i = 0
    positionals: list[str] = []
    while i < len(argv):
        arg = argv[i]
        if positionals and not (arg == "--attach" and len(positionals) == 1):
            positionals.append(arg)
            i += 1
            continue
        if arg == "--attach":
            attach = True
        elif arg in _FLAGS:
            name, value = _FLAGS[arg]
            if name:
                setattr(opts, name, value)
        elif arg.startswith("--debug-file="):
            opts.debug_file = arg.split("=", 1)[1]
            opts.debug = True
        elif arg.startswith("--debug-format="):
            try:
                opts.debug_timestamps, _ = parse_debug_format(arg.split("=", 1)[1])
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        elif arg == "--go-symbol-file" or arg.startswith("--go-symbol-file="):
            if arg == "--go-symbol-file":
                i += 1
                if i == len(argv):
                    raise UsageError("--go-symbol-file needs a PATH")
                value = argv[i]
            else:
                value = arg.split("=", 1)[1]
            if not value or value.startswith("--"):
                raise UsageError("--go-symbol-file needs a PATH")
            opts.go_symbol_file = value
        elif arg.startswith("--disable-packet="):
            pass
        elif arg == "--wrapper":
            try:
                end = argv.index("--", i + 1)
            except ValueError:
                raise UsageError("--wrapper needs a terminating '--'") from None
            opts.wrapper = argv[i + 1:end]
            if not opts.wrapper:
                raise UsageError("--wrapper needs a command before '--'")
            i = end
        elif arg.startswith("--") and arg != "--":
            raise UsageError(f"unknown option {arg!r} (see --help)")
        elif arg == "--":
            pass
        else:
            positionals.append(arg)
        i += 1
    if opts.show_help or opts.show_version or opts.selftest:
        return opts
    if not positionals:
        if opts.multi:
            raise UsageError("missing COMM (for example 127.0.0.1:2345) (see --help)")
        raise UsageError("missing COMM (for example 127.0.0.1:2345) and PROG (see --help)")
    opts.comm = positionals[0]
    rest = positionals[1:]
    if attach:
        if len(rest) != 1:
            raise UsageError("--attach needs exactly one PID after COMM")
        try:
            opts.attach_pid = int(rest[0])
        except ValueError:
            raise UsageError(f"--attach: {rest[0]!r} is not a process id") from None
        if opts.attach_pid <= 0:
            raise UsageError(f"--attach: {rest[0]!r} is not a process id")
    elif rest:
        opts.program = rest[0]
        opts.args = rest[1:]
    elif not opts.multi:
        raise UsageError("missing PROG: give a program to run, --attach PID, or --multi (see --help)")
    if opts.go_symbol_file is not None and opts.program is None and opts.attach_pid is None:
        raise UsageError("--go-symbol-file needs PROG or --attach PID (its symbols are written "
                         "at start-up)")
    return opts


def version_text() -> str:
    return f"gdbstub {__version__}\nA GDB remote-protocol stub server for Linux x86-64 processes.\n"
