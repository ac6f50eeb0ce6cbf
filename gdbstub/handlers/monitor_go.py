"""Go monitor commands: `goroutines`, `goroutine N bt`, `goroutine N select`, `info symbol ADDR`,
`go symbol-file PATH`, `go panic`.

Formats follow Go's own traceback, which Go users already read: a goroutine line starts
`goroutine N [state]` as in a panic dump; a backtrace has one frame per line, the function first
and `file:line` after it, with runtime-internal frames elided as Go elides them.
"""

from __future__ import annotations

# The Go readers are imported when a Go command runs: a C program's server never loads them.

HELP = """\
  goroutines
    List every goroutine: id, state, where its user code is, start function, thread
  goroutine N bt
    Backtrace of goroutine N, read from the program (works on stripped binaries); a
    goroutine inside a cgo call shows its C frames first, then its Go frames
  goroutine N select
    Say which thread shows goroutine N (with `go threads on`, every goroutine is a thread)
  go threads on|off
    Show every goroutine as a thread of the process (off: the kernel's threads, named
    after their goroutines). Parked goroutines have their saved pc, sp and bp, read-only
  info symbol ADDR
    The function and file:line at ADDR (hex, 0x optional)
  go panic
    At an unrecovered panic or a fatal error: the panic value or the error message and the
    goroutine, as Go prints them when it dies (`panic: ...` / `fatal error: ...`)
  go symbol-file PATH
    Write an ELF symbol file (functions, lines) built from .gopclntab to PATH, for a
    stripped program: gdb `symbol-file PATH`, lldb `target symbols add PATH`
"""


class MonitorError(Exception):
    """A monitor command that cannot be carried out; the message is shown to the user."""


def _go(session):
    go = session.go
    if go is None:
        raise MonitorError("not a Go program (no Go runtime found in the executable)")
    if go.inferior.non_stop and go.inferior.is_running():
        # Non-stop mode: the scheduler changes the goroutines under the reader.
        raise MonitorError("threads of the program are running (non-stop mode): the goroutines are "
                           "read from a stopped program; stop every thread first (interrupt -a)")
    return go


def goroutines(session) -> str:
    from ..symbols import gotraceback

    go = _go(session)
    lines = []
    for g in go.goroutines():
        thread = f"thread {g.thread_id}" if g.thread_id is not None else "no thread"
        lines.append(f"goroutine {g.goid} [{gotraceback.status_text(g)}]: {go.user_location(g)}"
                     f"  start={g.start_function}  {thread}")
    return "\n".join(lines) + "\n"


def _goroutine(session, text: str):
    go = _go(session)
    try:
        goid = int(text, 10)
    except ValueError:
        raise MonitorError(f"{text!r} is not a goroutine id") from None
    g = go.goroutine(goid)
    if g is None:
        raise MonitorError(f"no goroutine {goid}")
    return go, g


def goroutine_backtrace(session, text: str) -> str:
    from ..symbols import gotraceback

    go, g = _goroutine(session, text)
    lines = [gotraceback.goroutine_header(g)]
    lines += _cgo_lines(go, g)
    frames = go.backtrace(g)
    if not frames and g.pc is None:
        lines.append("(stack unavailable: the goroutine is running on a thread that is not stopped)")
    for frame in frames:
        offset = f" +{frame.offset:#x}" if frame.offset is not None else ""
        lines.append(f"{gotraceback.func_name_for_print(frame.function)}(...) {frame.file}:{frame.line}{offset}")
    creator = go.runtime.creator(g)
    if creator is not None and gotraceback.shows_creator(g, creator, go.runtime.wrapper_func_id):
        parent = f" in goroutine {g.parent_goid}" if g.parent_goid else ""
        lines.append(f"created by {gotraceback.func_name_for_print(creator.function)}{parent} "
                     f"{creator.file}:{creator.line}")
    return "\n".join(lines) + "\n"


def _cgo_lines(go, g) -> list[str]:
    """The C frames of a goroutine inside a cgo call, one per line before its Go frames:
    `symbol+0xoff [C] object pc=0x...`, then `file:line` where the object's DWARF has it."""
    from ..symbols.cframes import object_name

    call = go.cgo_call(g)
    if call is None:
        return []
    lines = []
    for f in call.frames:
        where = f"{f.function}+{f.offset:#x}" if f.function else "??"
        line = f" {f.line[0]}:{f.line[1]}" if f.line else ""
        lines.append(f"{where} [C] {object_name(f.object)} pc={f.pc:#x}{line}")
    if not call.joined:
        lines.append("(C frames end here: they could not be followed back to the "
                     "goroutine's stack)")
    return lines


def goroutine_select(session, text: str) -> str:
    """Where to find a goroutine's registers. The server cannot change the client's selection
    behind its back (the client keeps the registers it read): the client selects a thread."""
    from ..goroutine_threads import GOROUTINE_TID_BASE

    go, g = _goroutine(session, text)
    if not session.context.go_goroutine_threads:
        raise MonitorError(f"goroutine {g.goid}: run `monitor go threads on` (or start with "
                           f"--go-goroutines); from the next stop on, select its thread "
                           f"(gdb: `thread find ^g{g.goid} `; lldb: `thread list`)")
    tid = GOROUTINE_TID_BASE + g.goid
    return (f"goroutine {g.goid} is thread {tid} (\"g{g.goid} ...\"): gdb `thread find ^g{g.goid} ` "
            f"then `thread N`; lldb `thread select` by its index in `thread list`\n")


def go_threads(session, setting: str) -> str:
    if setting not in ("on", "off"):
        raise MonitorError(f"go threads: expected on or off, not {setting!r}")
    on = setting == "on"
    if on and session.state.non_stop:
        raise MonitorError("goroutines cannot be threads in non-stop mode: the goroutines are read "
                           "from a stopped program")
    if on == session.context.go_goroutine_threads:
        session.go_threads_at_next_stop = None
        return f"go threads are already {setting}\n"
    # From the next stop on: the thread the client has selected now must stay in its list.
    session.go_threads_at_next_stop = on
    if on:
        return "from the next stop on, every goroutine is a thread\n"
    return "from the next stop on, the threads are the kernel's threads\n"


def info_symbol(session, text: str) -> str:
    try:
        addr = int(text, 16)
    except ValueError:
        raise MonitorError(f"{text!r} is not an address") from None
    go = _go(session)
    found = go.symbolize(addr)
    if found is None:
        raise MonitorError(f"no Go function at {addr:#x}")
    return found + "\n"


def symbol_file(session, path: str) -> str:
    """Write the symbol file (symbols/gosymfile.py) of the program to `path`. The client names
    the path, as it names files for vFile:open: this writes one file and runs nothing."""
    import os

    from ..symbols.gopclntab import PclntabError
    from ..symbols.gosymfile import write_symbol_file

    if not path:
        raise MonitorError("go symbol-file: give the path of the file to write")
    go = session.go
    if go is None:
        raise MonitorError("go symbol-file: not a Go program (no Go runtime found in the executable)")
    target = os.path.abspath(path)
    try:
        built = write_symbol_file(go.binary, target)
    except OSError as exc:
        raise MonitorError(f"go symbol-file: cannot write {target}: {exc.strerror or exc}") from None
    except PclntabError as exc:
        raise MonitorError(f"go symbol-file: cannot read the Go tables: {exc}") from None
    return (f"Go symbol file written to {target}: {built.functions} functions, "
            f"{built.line_rows} line rows\n")


def go_panic(session) -> str:
    """The panic or fatal error the program is dying of (gdbstub/symbols/gopanic.py); else a
    panic still running deferred calls on a stopped thread, said to be not fatal yet."""
    from ..goview import GoNotReady
    from ..symbols.gopanic import PanicError, PanicReader
    from ..symbols.goruntime import G_RUNNING, GoRuntimeError

    go = _go(session)
    hits = go.fatal_hits()
    try:
        if hits:
            return PanicReader(go.runtime).report(hits, go.goroutines())
        # Not dying (yet): a panic may still be running deferred calls on a stopped thread.
        try:
            on_threads = [g for g in go.goroutines() if g.thread_id is not None
                          and g.status == G_RUNNING]
        except GoNotReady:
            on_threads = []
        in_flight = PanicReader(go.runtime).in_flight(on_threads) if on_threads else ""
        if not in_flight:
            raise MonitorError("no panic or fatal error in progress")
        return in_flight
    except PanicError as exc:
        raise MonitorError(f"go panic: {exc}") from None
    except (GoRuntimeError, OSError, ValueError) as exc:
        raise MonitorError(f"go panic: cannot read the panic from the program: {exc}") from None


def run(session, words: list[str]) -> str | None:
    """The output of a Go monitor command, or None if `words` is not one."""
    from ..goview import GoNotReady

    try:
        if len(words) == 3 and words[:2] == ["go", "threads"]:
            return go_threads(session, words[2])
        if words == ["goroutines"]:
            return goroutines(session)
        if len(words) == 3 and words[0] == "goroutine" and words[2] == "bt":
            return goroutine_backtrace(session, words[1])
        if len(words) == 3 and words[0] == "goroutine" and words[2] == "select":
            return goroutine_select(session, words[1])
        if len(words) == 3 and words[:2] == ["info", "symbol"]:
            return info_symbol(session, words[2])
        if words[:2] == ["go", "symbol-file"]:
            return symbol_file(session, " ".join(words[2:]))
        if words == ["go", "panic"]:
            return go_panic(session)
    except GoNotReady as exc:
        raise MonitorError(str(exc)) from None
    return None
