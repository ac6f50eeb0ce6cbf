"""Go-style goroutine tracebacks: which frames Go shows, and the text it prints.

Mirrors runtime/traceback.go (Go 1.19-1.27) for a traceback printed without GOTRACEBACK
overrides:
  * showfuncinfo: a frame is shown when its name contains "." and it is not a non-exported
    runtime.* function; runtime.gopanic is shown unless it is the first frame;
    runtime.runFinalizers / runCleanups are always shown; a compiler wrapper (FuncIDWrapper)
    is hidden unless the function it called was gopanic, sigpanic or panicwrap.
  * if that hides every frame, all frames are shown (Go >= 1.21 rule);
  * "created by F in goroutine N" with F the physical function of g.gopc, hidden for
    goroutine 1 and for creators the rules above would hide;
  * the header: `goroutine N [wait reason | status(, locked to thread)]:`;
  * frames: `F(...)` then `\\tfile:line +0xOFF` (Go prints argument values where `...` is;
    they are not recoverable from pclntab alone), generic shapes printed as `[...]`,
    runtime.gopanic printed as `panic`.
  * is_system_goroutine: Go omits goroutines whose start function is in runtime (except
    runtime.main, handleAsyncEvent, corostart) from its all-goroutines dump.
  * user_frame: the first frame a user cares about (Delve's rule): not runtime-internal,
    not internal/*, runtime/internal/*, iter.*.

API:
    visible_frames(frames, wrapper_func_id) -> list[Frame]
    shows_creator(g, creator, wrapper_func_id) -> bool
    is_system_goroutine(g) -> bool           user_frame(frames) -> Frame | None
    status_text(g) -> str                    goroutine_header(g) -> str
    func_name_for_print(name) -> str         format_frame(frame) -> str
    format_created_by(creator, parent_goid) -> str
    format_goroutine(runtime, g, *, elide=True) -> str  (header, frames, created by)
"""

from __future__ import annotations

import functools
from typing import Iterable, Protocol, Sequence

from gdbstub.symbols.goruntime import (G_LEAKED, G_RUNNING, G_WAITING, Frame, Goroutine,
                                       GoRuntime)

STATUS_NAMES = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting", 5: "",
                6: "dead", 7: "", 8: "copystack", 9: "preempted", 10: "leaked",
                11: "waiting for cgo callback"}
_WRAPPER_CALLEES_SHOWN = frozenset({"runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap"})
_ALWAYS_SHOWN = frozenset({"runtime.runFinalizers", "runtime.runCleanups"})
_USER_GOROUTINE_STARTS = frozenset({"runtime.main", "runtime.handleAsyncEvent",
                                    "runtime.corostart"})


class _Named(Protocol):
    function: str
    func_id: int


def is_exported_runtime(name: str) -> bool:
    """runtime.isExportedRuntime: an exported function (or method of an exported type)."""
    if not name.startswith("runtime."):
        return False
    name = name[len("runtime."):]
    rcvr = ""
    i = name.rfind(".")
    if i >= 0:
        rcvr, name = name[:i], name[i + 1:]
        if len(rcvr) >= 3 and rcvr.startswith("(*") and rcvr.endswith(")"):
            rcvr = rcvr[2:-1]
    return bool(name) and "A" <= name[0] <= "Z" and (not rcvr or "A" <= rcvr[0] <= "Z")


def show_frame(function: str, func_id: int, first: bool, callee: str | None,
               wrapper_func_id: int) -> bool:
    """runtime.showfuncinfo at GOTRACEBACK=single/all."""
    if func_id == wrapper_func_id and callee not in _WRAPPER_CALLEES_SHOWN:
        return False
    if function in _ALWAYS_SHOWN:
        return True
    if function == "runtime.gopanic" and not first:
        return True
    return "." in function and (not function.startswith("runtime.")
                                or is_exported_runtime(function))


def visible_frames(frames: Sequence[Frame], wrapper_func_id: int) -> list[Frame]:
    shown: list[Frame] = []
    callee: str | None = None
    for fr in frames:
        if show_frame(fr.function, fr.func_id, not shown, callee, wrapper_func_id):
            shown.append(fr)
        callee = fr.function
    return shown if shown else list(frames)


def shows_creator(g: Goroutine, creator: _Named | None, wrapper_func_id: int) -> bool:
    return creator is not None and g.goid != 1 and show_frame(
        creator.function, creator.func_id, False, None, wrapper_func_id)


def is_system_goroutine(g: Goroutine) -> bool:
    name = g.start_function
    if name in _USER_GOROUTINE_STARTS:
        return False
    # The finalizer/cleanup goroutines count as user ones only while running user code,
    # which a stopped process cannot tell cheaply: treat them as system ones.
    return name.startswith("runtime.")


@functools.lru_cache(maxsize=4096)
def is_user_function(name: str) -> bool:
    """Code the user wrote or called on purpose, as opposed to the runtime's own internals
    (asked for every frame of every goroutine listed: remembered by name)."""
    if "." not in name:
        return False
    if name.startswith("runtime.") and not is_exported_runtime(name):
        return False
    return not name.startswith(("internal/", "runtime/internal/", "iter."))


def user_frame(frames: Iterable[Frame]) -> Frame | None:
    for fr in frames:
        if is_user_function(fr.function):
            return fr
    return None


def status_text(g: Goroutine) -> str:
    if g.status in (G_WAITING, G_LEAKED) and g.wait_reason:
        return g.wait_reason
    return STATUS_NAMES.get(g.status, "???")


def goroutine_header(g: Goroutine) -> str:
    text = status_text(g)
    if g.status == G_LEAKED:
        text += " (leaked)"
    if g.scan:
        text += " (scan)"
    if g.locked_to_thread:
        text += ", locked to thread"
    return f"goroutine {g.goid} [{text}]:"


def func_name_for_print(name: str) -> str:
    """runtime.funcNamePiecesForPrint joined: generic shapes become [...]."""
    if name == "runtime.gopanic":
        return "panic"
    i = name.find("[")
    if i < 0:
        return name
    j = name.rfind("]")
    if j <= i:
        return name
    interior = name[i + 1:j]
    if "[" not in interior:
        return name[:i] + "[...]" + name[j + 1:]
    depth, rbr, lbr = 1, -1, -1
    for k, c in enumerate(interior):
        if c == "[":
            depth += 1
            if depth != 1:
                continue
            lbr = k
            break
        if c == "]":
            depth -= 1
            if depth < 0:
                break
            if depth != 0:
                continue
            rbr = k
    if depth == 1:
        if rbr >= 0 and lbr > rbr:
            return name[:i] + "[...]" + interior[rbr + 1:lbr] + "[...]" + name[j + 1:]
        if rbr == -1 and lbr == -1:
            return name[:i] + "[...]" + name[j + 1:]
    return name


def format_frame(frame: Frame) -> str:
    head = f"{func_name_for_print(frame.function)}(...)"
    loc = f"\t{frame.file}:{frame.line}"
    if frame.offset is not None:
        loc += f" +{frame.offset:#x}"
    return f"{head}\n{loc}"


def format_created_by(creator: Frame, parent_goid: int | None) -> str:
    text = f"created by {func_name_for_print(creator.function)}"
    if parent_goid:
        text += f" in goroutine {parent_goid}"
    loc = f"\t{creator.file}:{creator.line}"
    if creator.offset is not None:
        loc += f" +{creator.offset:#x}"
    return f"{text}\n{loc}"


def format_goroutine(runtime: GoRuntime, g: Goroutine, *, elide: bool = True) -> str:
    lines = [goroutine_header(g)]
    frames = runtime.backtrace(g)
    if g.pc is None and g.status == G_RUNNING:
        lines.append("\tgoroutine running on other thread; stack unavailable")
    if elide:
        frames = visible_frames(frames, runtime.wrapper_func_id)
    lines += [format_frame(fr) for fr in frames]
    creator = runtime.creator(g)
    if creator is not None and (not elide or shows_creator(g, creator, runtime.wrapper_func_id)):
        lines.append(format_created_by(creator, g.parent_goid))
    return "\n".join(lines)
