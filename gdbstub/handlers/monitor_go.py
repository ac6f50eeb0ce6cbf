"""Go monitor commands: `goroutines`, `goroutine N bt`, `goroutine N select`, `info symbol ADDR`.

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
    Backtrace of goroutine N, read from the program (works on stripped binaries)
  goroutine N select
    Make register reads show goroutine N (its saved registers if it is parked) until the
    program next resumes; register writes are refused meanwhile. gdb keeps the registers
    it read at the stop: run `maintenance flush register-cache` after selecting
  info symbol ADDR
    The function and file:line at ADDR (hex, 0x optional)
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


def goroutine_select(session, text: str) -> str:
    go, g = _goroutine(session, text)
    if g.thread_id is not None and session.inferior.has_thread(g.thread_id) \
            and g.location in ("registers", "signal", "vdso", "syscall") and not g.on_system_stack:
        session.state.general_thread = g.thread_id
        session.selected_goroutine = None
        return f"goroutine {g.goid} runs on thread {g.thread_id}: selected that thread\n"
    if g.pc is None or g.sp is None:
        raise MonitorError(f"goroutine {g.goid} has no saved registers to show")
    session.selected_goroutine = (session.inferior.generation, g.goid, g.pc, g.sp, g.bp or 0)
    return (f"goroutine {g.goid} selected: registers show pc={g.pc:#x} sp={g.sp:#x} until the "
            f"program resumes (writes refused)\n")


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


def run(session, words: list[str]) -> str | None:
    """The output of a Go monitor command, or None if `words` is not one."""
    from ..goview import GoNotReady

    try:
        if words == ["goroutines"]:
            return goroutines(session)
        if len(words) == 3 and words[0] == "goroutine" and words[2] == "bt":
            return goroutine_backtrace(session, words[1])
        if len(words) == 3 and words[0] == "goroutine" and words[2] == "select":
            return goroutine_select(session, words[1])
        if len(words) == 3 and words[:2] == ["info", "symbol"]:
            return info_symbol(session, words[2])
    except GoNotReady as exc:
        raise MonitorError(str(exc)) from None
    return None
