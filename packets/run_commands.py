"""Run-control commands: the stop reason, resuming (c C s S vCont), thread selection and lists,
signal settings, thread events, non-stop, kill and detach."""

from __future__ import annotations


from .command_base import (
    Command, ThreadId, flag, optional_hex, register, register_exact, signal_list, split_fields,
)
from .hexcodec import MalformedCommand, parse_hex, shorten
from .records import record

__all__ = [
    "Continue",
    "ContinueWithSignal",
    "CurrentThreadQuery",
    "Detach",
    "Kill",
    "NonStop",
    "StoppedAck",
    "CtrlC",
    "PassSignals",
    "ProgramSignals",
    "SetThread",
    "Step",
    "StepWithSignal",
    "StopReasonQuery",
    "ThreadAlive",
    "ThreadEvents",
    "ThreadExtraInfo",
    "ThreadInfoFirst",
    "ThreadInfoNext",
    "VCont",
    "VContAction",
    "VContQuery",
]


@record
class StopReasonQuery(Command):
    """``?``: why did the target stop?"""


@record
class Continue(Command):
    """``c[addr]``."""

    addr: int | None


@record
class ContinueWithSignal(Command):
    """``C<sig>[;addr]``."""

    signal: int
    addr: int | None


@record
class Step(Command):
    """``s[addr]``."""

    addr: int | None


@record
class StepWithSignal(Command):
    """``S<sig>[;addr]``."""

    signal: int
    addr: int | None


@record
class VContQuery(Command):
    """``vCont?``: which vCont actions are supported."""


@record
class VContAction:
    """One ``vCont`` action: ``kind`` is ``c``, ``C``, ``s``, ``S``, ``t`` or ``r``.

    ``signal`` is set for ``C``/``S``, ``start``/``end`` for the ``r`` range step; ``thread`` is
    ``None`` when the action applies to every thread not named by an earlier action.
    """

    kind: str
    signal: int | None
    start: int | None
    end: int | None
    thread: ThreadId | None


@record
class VCont(Command):
    """``vCont;action[:thread];...``: resume threads, leftmost matching action wins."""

    actions: tuple[VContAction, ...]


@record
class SetThread(Command):
    """``H<op><thread>``: select the thread for later ``g``/``m``... (``g``) or resumes (``c``)."""

    op: str
    thread: ThreadId


@record
class ThreadAlive(Command):
    """``T<thread>``: is this thread alive?"""

    thread: ThreadId


@record
class CurrentThreadQuery(Command):
    """``qC``."""


@record
class ThreadInfoFirst(Command):
    """``qfThreadInfo``."""


@record
class ThreadInfoNext(Command):
    """``qsThreadInfo``."""


@record
class PassSignals(Command):
    """``QPassSignals:<sig>;...``: GDB signal numbers to deliver without stopping."""

    signals: tuple[int, ...]


@record
class ProgramSignals(Command):
    """``QProgramSignals:<sig>;...``: GDB signal numbers the program may receive."""

    signals: tuple[int, ...]


@record
class Kill(Command):
    """``k`` or ``vKill;<pid>``."""

    pid: int | None


@record
class TlsAddressQuery(Command):
    """``qGetTLSAddr:<thread>,<offset>,<lm>``: where a thread-local variable of the module
    whose link map is at ``lm`` lives in that thread."""

    thread: ThreadId
    offset: int
    link_map: int


@record
class CatchSyscalls(Command):
    """``QCatchSyscalls:0`` (none), ``:1`` (every one) or ``:1;<hex nr>...``."""

    numbers: frozenset[int] | None


@record
class Detach(Command):
    """``D`` or ``D;<pid>``."""

    pid: int | None


@record
class ThreadExtraInfo(Command):
    """``qThreadExtraInfo,<thread>``."""

    thread: ThreadId


@record
class NonStop(Command):
    """``QNonStop:0|1``."""

    enable: bool


@record
class StoppedAck(Command):
    """``vStopped``: non-stop mode's acknowledgement of a ``%Stop`` notification, asking for
    the next stop waiting to be reported."""


@record
class CtrlC(Command):
    """``vCtrlC``: interrupt the program as a Ctrl-C would (non-stop mode's 0x03)."""


@record
class ThreadEvents(Command):
    """``QThreadEvents:0|1``: report thread creation and exit."""

    enable: bool


register_exact(b"?", StopReasonQuery)


register_exact(b"vCont?", VContQuery)
register_exact(b"vStopped", StoppedAck)
register_exact(b"vCtrlC", CtrlC)


register_exact(b"qC", CurrentThreadQuery)


register_exact(b"qfThreadInfo", ThreadInfoFirst)


register_exact(b"qsThreadInfo", ThreadInfoNext)


@register(b"c")
def _parse_continue(rest: bytes) -> Command:
    return Continue(optional_hex(rest, "address"))


@register(b"s")
def _parse_step(rest: bytes) -> Command:
    return Step(optional_hex(rest, "address"))


def _signal_and_address(rest: bytes) -> tuple[int, int | None]:
    signal, _, addr = rest.partition(b";")
    return parse_hex(signal, "signal"), optional_hex(addr, "address")


@register(b"C")
def _parse_continue_with_signal(rest: bytes) -> Command:
    return ContinueWithSignal(*_signal_and_address(rest))


@register(b"S")
def _parse_step_with_signal(rest: bytes) -> Command:
    return StepWithSignal(*_signal_and_address(rest))


def _vcont_action(text: bytes) -> VContAction:
    action, colon, thread_text = text.partition(b":")
    thread = ThreadId.parse(thread_text) if colon else None
    kind, argument = action[:1], action[1:]
    if kind in (b"c", b"s", b"t"):
        if argument:
            raise MalformedCommand(f"vCont action {shorten(action)} takes no argument")
        return VContAction(kind.decode(), None, None, None, thread)
    if kind in (b"C", b"S"):
        return VContAction(kind.decode(), parse_hex(argument, "signal"), None, None, thread)
    if kind == b"r":
        start, end = split_fields(argument, 2, "vCont;r")
        return VContAction(
            "r", None, parse_hex(start, "range start"), parse_hex(end, "range end"), thread
        )
    raise MalformedCommand(f"unknown vCont action {shorten(action)}")


@register(b"vCont;")
def _parse_vcont(rest: bytes) -> Command:
    return VCont(tuple(_vcont_action(action) for action in rest.split(b";")))


@register(b"H")
def _parse_set_thread(rest: bytes) -> Command:
    op = rest[:1]
    if not op.isalpha():
        raise MalformedCommand(f"H needs an operation letter, got {shorten(op)}")
    return SetThread(op.decode(), ThreadId.parse(rest[1:]))


@register(b"T")
def _parse_thread_alive(rest: bytes) -> Command:
    return ThreadAlive(ThreadId.parse(rest))


@register(b"QPassSignals:")
def _parse_pass_signals(rest: bytes) -> Command:
    return PassSignals(signal_list(rest))


@register(b"QProgramSignals:")
def _parse_program_signals(rest: bytes) -> Command:
    return ProgramSignals(signal_list(rest))


@register(b"QCatchSyscalls:")
def _parse_catch_syscalls(rest: bytes) -> Command:
    if rest == b"0":
        return CatchSyscalls(None)
    if rest == b"1":
        return CatchSyscalls(frozenset())
    if rest.startswith(b"1;"):
        return CatchSyscalls(frozenset(parse_hex(n, "system call number") for n in rest[2:].split(b";")))
    raise MalformedCommand("QCatchSyscalls: expected 0, 1 or 1;NUMBER...")


@register(b"k")
def _parse_kill(rest: bytes) -> Command | None:
    return Kill(None) if not rest else None


@register(b"vKill;")
def _parse_vkill(rest: bytes) -> Command:
    return Kill(parse_hex(rest, "process id"))


@register(b"D")
def _parse_detach(rest: bytes) -> Command:
    if not rest:
        return Detach(None)
    if rest[:1] != b";":
        raise MalformedCommand(f"D: expected ';<pid>', got {shorten(rest)}")
    return Detach(parse_hex(rest[1:], "process id"))


@register(b"qGetTLSAddr:")
def _parse_tls_address(rest: bytes) -> Command:
    fields = rest.split(b",")
    if len(fields) != 3:
        raise MalformedCommand("qGetTLSAddr: expected THREAD,OFFSET,LM")
    return TlsAddressQuery(ThreadId.parse(fields[0]), parse_hex(fields[1], "offset"),
                           parse_hex(fields[2], "link map address"))


@register(b"qThreadExtraInfo,")
def _parse_thread_extra_info(rest: bytes) -> Command:
    return ThreadExtraInfo(ThreadId.parse(rest))


@register(b"QNonStop:")
def _parse_non_stop(rest: bytes) -> Command:
    return NonStop(flag(rest, "QNonStop"))


@register(b"QThreadEvents:")
def _parse_thread_events(rest: bytes) -> Command:
    return ThreadEvents(flag(rest, "QThreadEvents"))
