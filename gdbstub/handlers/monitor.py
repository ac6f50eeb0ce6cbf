"""`monitor` commands (qRcmd), answered with O packets then OK. No command runs a shell."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from .. import logs
from . import monitor_go
from .registry import handles

_OUTPUT_CHUNK = 0x4000  # O packets stay well under the packet size once hex-encoded


async def _send_output(session, text: str) -> None:
    data = text.encode()
    for i in range(0, len(data), _OUTPUT_CHUNK):
        await session.send(replies.console_output(data[i:i + _OUTPUT_CHUNK]))

HELP_HEAD = """The following monitor commands are supported:
  set debug <0|1>
    Enable general debugging messages
  set remote-debug <0|1>
    Enable remote protocol debugging messages
  set debug-format option1[,option2,...]
    Add additional information to debugging messages
    Options: all, none, timestamp
  set libthread-db-search-path [PATH]
    Where libthread_db would be looked for: thread-local addresses are
    given only while one is found there (the default: $pdir:$sdir)
  exit
    Quit gdbstub (the program is killed, or detached if attached)
  help
    Show this list
"""


@handles(cmds.MonitorCommand)
async def monitor(session, cmd: cmds.MonitorCommand) -> bytes | None:
    text = cmd.command.decode(errors="replace").strip()
    words = text.split()
    if not words:
        # gdb's bare `monitor`: said as gdbserver says it, then an error.
        await session.send(replies.console_output(b"Unknown monitor command.\n"))
        return replies.error(0x01, "empty monitor command", session.state.error_strings)
    if words == ["help"]:
        await session.send(replies.console_output((HELP_HEAD + monitor_go.HELP).encode()))
        return replies.OK
    try:
        output = monitor_go.run(session, words)
    except monitor_go.MonitorError as exc:
        # Said to the user as output: an error reply would only make gdb add "Protocol error".
        await session.send(replies.console_output(f"{exc}\n".encode()))
        return replies.OK
    if output is not None:
        await _send_output(session, output)
        return replies.OK
    if words == ["exit"]:
        session.context.lifecycle.request_exit()
        session.stop_requested_exit = True
        return replies.OK
    if len(words) == 3 and words[0] == "set" and words[2] in ("0", "1"):
        on = words[2] == "1"
        if words[1] == "debug":
            logs.set_debug(on)
            await session.send(replies.console_output(
                b"Debug output enabled.\n" if on else b"Debug output disabled.\n"))
            return replies.OK
        if words[1] == "remote-debug":
            logs.set_remote_debug(on)
            await session.send(replies.console_output(
                b"Protocol debug output enabled.\n" if on else b"Protocol debug output disabled.\n"))
            return replies.OK
    if len(words) in (2, 3) and words[:2] == ["set", "libthread-db-search-path"]:
        path = words[2] if len(words) == 3 else "$pdir:$sdir"
        session.context.thread_db_search_path = path
        await session.send(replies.console_output(f"libthread-db-search-path set to `{path}'\n".encode()))
        return replies.OK
    if len(words) >= 2 and words[:2] == ["set", "debug-format"]:
        try:
            timestamps, said = logs.parse_debug_format(" ".join(words[2:]))
        except ValueError as exc:
            await session.send(replies.console_output(f"{exc}\n".encode()))
            return replies.error(0x01, str(exc), session.state.error_strings)
        logs.set_timestamps(timestamps)
        await _send_output(session, "".join(f"{line}\n" for line in said))
        return replies.OK
    await session.send(replies.console_output(f"Unknown monitor command: {text}\n".encode()))
    return replies.error(0x01, "unknown monitor command", session.state.error_strings)
