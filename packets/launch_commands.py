"""Commands lldb adds to the protocol (lldbgdbremote.md), and the launch-settings packets that
gdb's extended-remote and lldb both use (working directory, environment, stdio, ASLR).

Registered into the same table as the core commands: importing `packets` registers them.
"""

from __future__ import annotations


from .command_base import Command, ThreadId, register, register_exact
from .hexcodec import MalformedCommand, hex_decode, parse_hex
from .records import record

__all__ = [
    "HostInfoQuery", "ProcessInfoQuery", "RegisterInfoQuery", "ThreadSuffixSupported",
    "ListThreadsInStopReply", "ThreadsInfoQuery", "ThreadExtendedInfoQuery",
    "MemoryRegionInfoQuery", "WatchpointSupportInfoQuery", "EnableErrorStrings",
    "WorkingDirQuery", "ShlibInfoAddrQuery", "FileLoadAddressQuery", "Attach",
    "AttachOrWaitSupportedQuery", "SetDisableASLR", "DisableRandomization", "SetStdio",
    "SetWorkingDir", "SetEnvironment", "ResetEnvironment", "UnsetEnvironment", "LaunchArguments",
    "LaunchSuccessQuery", "Echo", "ThreadStopInfoQuery", "Run", "StartupWithShell",
]


@record
class HostInfoQuery(Command):
    """``qHostInfo``: the host's triple, pointer size, OS version..."""


@record
class ProcessInfoQuery(Command):
    """``qProcessInfo``: pid, parent, ids and triple of the debugged process."""


@record
class RegisterInfoQuery(Command):
    """``qRegisterInfo<hex n>``: describe register n (lldb, when it has no target.xml)."""

    regnum: int


@record
class ThreadSuffixSupported(Command):
    """``QThreadSuffixSupported``: g/G/p/P/Z may carry ``;thread:TID;`` from now on."""


@record
class ListThreadsInStopReply(Command):
    """``QListThreadsInStopReply``: add ``threads:`` and ``thread-pcs:`` to stop replies."""


@record
class ThreadsInfoQuery(Command):
    """``jThreadsInfo``: every thread's stop information as JSON."""


@record
class ThreadExtendedInfoQuery(Command):
    """``jThreadExtendedInfo:<json>``."""

    request: bytes


@record
class MemoryRegionInfoQuery(Command):
    """``qMemoryRegionInfo:<addr>``: the mapping (or gap) that holds addr."""

    addr: int


@record
class WatchpointSupportInfoQuery(Command):
    """``qWatchpointSupportInfo[:]``: how many watchpoints the target has."""


@record
class EnableErrorStrings(Command):
    """``QEnableErrorStrings``: error replies may carry a hex message (``Exx;<hex>``)."""


@record
class WorkingDirQuery(Command):
    """``qGetWorkingDir``."""


@record
class ShlibInfoAddrQuery(Command):
    """``qShlibInfoAddr``."""


@record
class FileLoadAddressQuery(Command):
    """``qFileLoadAddress:<hex path>``: where a file is loaded in the process."""

    path: bytes


@record
class Attach(Command):
    """``vAttach;<pid>``."""

    pid: int


@record
class AttachOrWaitSupportedQuery(Command):
    """``qVAttachOrWaitSupported``."""


@record
class SetDisableASLR(Command):
    """lldb's ``QSetDisableASLR:0|1``."""

    disable: bool


@record
class DisableRandomization(Command):
    """gdb's ``QDisableRandomization:0|1``."""

    disable: bool


@record
class SetStdio(Command):
    """``QSetSTDIN:<hex>``, ``QSetSTDOUT:``, ``QSetSTDERR:``: where the launched program's fd goes."""

    fd: int
    path: bytes


@record
class SetWorkingDir(Command):
    """``QSetWorkingDir:<hex path>`` (empty: the server's own)."""

    path: bytes


@record
class SetEnvironment(Command):
    """``QEnvironment:NAME=VALUE`` and ``QEnvironmentHexEncoded:<hex>``."""

    entry: bytes


@record
class ResetEnvironment(Command):
    """``QEnvironmentReset``."""


@record
class UnsetEnvironment(Command):
    """``QEnvironmentUnset:<hex name>``."""

    name: bytes


@record
class StartupWithShell(Command):
    """``QStartupWithShell:0|1``."""

    enable: bool


@record
class LaunchArguments(Command):
    """lldb's ``A<len>,<index>,<hex arg>,...``: the program and its arguments to launch."""

    args: tuple[bytes, ...]


@record
class LaunchSuccessQuery(Command):
    """``qLaunchSuccess``: did the last ``A`` launch work?"""


@record
class Run(Command):
    """gdb's ``vRun;<hex prog>;<hex arg>...``."""

    args: tuple[bytes, ...]


@record
class Restart(Command):
    """``R<hex>`` (extended mode): kill the program and start it again; no reply."""


@record
class Echo(Command):
    """``qEcho:<anything>``: answered with the same text."""

    text: bytes


@record
class ThreadStopInfoQuery(Command):
    """``qThreadStopInfo<hex tid>``: one thread's stop reply."""

    tid: int


def _flag01(rest: bytes, what: str) -> bool:
    if rest in (b"0", b"1"):
        return rest == b"1"
    raise MalformedCommand(f"{what}: expected 0 or 1")


register_exact(b"qHostInfo", HostInfoQuery)
register_exact(b"qProcessInfo", ProcessInfoQuery)
register_exact(b"QThreadSuffixSupported", ThreadSuffixSupported)
register_exact(b"QListThreadsInStopReply", ListThreadsInStopReply)
register_exact(b"jThreadsInfo", ThreadsInfoQuery)
register_exact(b"QEnableErrorStrings", EnableErrorStrings)
register_exact(b"qGetWorkingDir", WorkingDirQuery)
register_exact(b"qShlibInfoAddr", ShlibInfoAddrQuery)
register_exact(b"qVAttachOrWaitSupported", AttachOrWaitSupportedQuery)
register_exact(b"qLaunchSuccess", LaunchSuccessQuery)
register_exact(b"QEnvironmentReset", ResetEnvironment)


@register(b"qRegisterInfo")
def _parse_register_info(rest: bytes) -> Command:
    return RegisterInfoQuery(parse_hex(rest, "register number"))


@register(b"jThreadExtendedInfo")
def _parse_thread_extended_info(rest: bytes) -> Command:
    return ThreadExtendedInfoQuery(rest[1:] if rest[:1] == b":" else rest)


@register(b"qMemoryRegionInfo:")
def _parse_memory_region_info(rest: bytes) -> Command:
    return MemoryRegionInfoQuery(parse_hex(rest, "address"))


@register(b"qWatchpointSupportInfo")
def _parse_watchpoint_support(rest: bytes) -> Command | None:
    return WatchpointSupportInfoQuery() if rest in (b"", b":") else None


@register(b"qFileLoadAddress:")
def _parse_file_load_address(rest: bytes) -> Command:
    return FileLoadAddressQuery(hex_decode(rest))


@register(b"vAttach;")
def _parse_attach(rest: bytes) -> Command:
    return Attach(parse_hex(rest, "process id"))


@register(b"QSetDisableASLR:")
def _parse_set_disable_aslr(rest: bytes) -> Command:
    return SetDisableASLR(_flag01(rest, "QSetDisableASLR"))


@register(b"QDisableRandomization:")
def _parse_disable_randomization(rest: bytes) -> Command:
    return DisableRandomization(_flag01(rest, "QDisableRandomization"))


@register(b"QStartupWithShell:")
def _parse_startup_with_shell(rest: bytes) -> Command:
    return StartupWithShell(_flag01(rest, "QStartupWithShell"))


@register(b"QSetSTDIN:")
def _parse_stdin(rest: bytes) -> Command:
    return SetStdio(0, hex_decode(rest))


@register(b"QSetSTDOUT:")
def _parse_stdout(rest: bytes) -> Command:
    return SetStdio(1, hex_decode(rest))


@register(b"QSetSTDERR:")
def _parse_stderr(rest: bytes) -> Command:
    return SetStdio(2, hex_decode(rest))


@register(b"QSetWorkingDir:")
def _parse_set_working_dir(rest: bytes) -> Command:
    return SetWorkingDir(hex_decode(rest))


@register(b"QEnvironment:")
def _parse_environment(rest: bytes) -> Command:
    if b"=" not in rest:
        raise MalformedCommand("QEnvironment: expected NAME=VALUE")
    return SetEnvironment(rest)


@register(b"QEnvironmentHexEncoded:")
def _parse_environment_hex(rest: bytes) -> Command:
    entry = hex_decode(rest)
    if b"=" not in entry:
        raise MalformedCommand("QEnvironmentHexEncoded: expected NAME=VALUE")
    return SetEnvironment(entry)


@register(b"QEnvironmentUnset:")
def _parse_environment_unset(rest: bytes) -> Command:
    return UnsetEnvironment(hex_decode(rest))


@register(b"A")
def _parse_launch_arguments(rest: bytes) -> Command:
    fields = rest.split(b",")
    if len(fields) % 3 != 0 or not fields[0]:
        raise MalformedCommand("A: expected <len>,<index>,<hex arg> triples")
    args: dict[int, bytes] = {}
    for i in range(0, len(fields), 3):
        length = int(fields[i], 10) if fields[i].isdigit() else parse_hex(fields[i], "length")
        index = int(fields[i + 1], 10) if fields[i + 1].isdigit() else parse_hex(fields[i + 1], "index")
        value = hex_decode(fields[i + 2])
        if length != len(fields[i + 2]):
            raise MalformedCommand("A: an argument's length does not match its hex text")
        args[index] = value
    if sorted(args) != list(range(len(args))):
        raise MalformedCommand("A: argument indexes must run 0..n-1")
    return LaunchArguments(tuple(args[i] for i in range(len(args))))


@register(b"vRun;")
def _parse_run(rest: bytes) -> Command:
    return Run(tuple(hex_decode(part) for part in rest.split(b";")))


@register(b"R")
def _parse_restart(rest: bytes) -> Command:
    return Restart()  # the argument is ignored, as the manual says


@register(b"qEcho:")
def _parse_echo(rest: bytes) -> Command:
    return Echo(rest)


@register(b"qThreadStopInfo")
def _parse_thread_stop_info(rest: bytes) -> Command:
    return ThreadStopInfoQuery(ThreadId.parse(rest).tid)
