"""Starting or attaching to a new process from the client (gdb's vRun and vAttach, lldb's A),
and the settings packets that shape the next launch."""

from __future__ import annotations

import logging

from packets import commands as cmds
from packets import launch_commands as lc
from packets import replies

from ..stop_replies import stop_reply
from ..process import LaunchError
from .registry import handles

log = logging.getLogger("gdbstub")


def _settings(session):
    return session.context.launch_settings


def _error(session, exc: Exception) -> bytes:
    return replies.error(0x01, str(exc), session.state.error_strings)


@handles(cmds.ExtendedMode)
def extended_mode(session, cmd) -> bytes:
    session.state.extended = True
    return replies.OK


@handles(lc.SetEnvironment, features=("QEnvironmentHexEncoded+",))
def set_environment(session, cmd: lc.SetEnvironment) -> bytes:
    _settings(session).set_variable(cmd.entry)
    return replies.OK


@handles(lc.UnsetEnvironment, features=("QEnvironmentUnset+",))
def unset_environment(session, cmd: lc.UnsetEnvironment) -> bytes:
    _settings(session).unset_variable(cmd.name)
    return replies.OK


@handles(lc.ResetEnvironment, features=("QEnvironmentReset+",))
def reset_environment(session, cmd) -> bytes:
    _settings(session).reset()
    return replies.OK


@handles(lc.SetWorkingDir, features=("QSetWorkingDir+",))
def set_working_dir(session, cmd: lc.SetWorkingDir) -> bytes:
    _settings(session).working_dir = cmd.path.decode(errors="surrogateescape") or None
    return replies.OK


@handles(lc.SetStdio)
def set_stdio(session, cmd: lc.SetStdio) -> bytes:
    _settings(session).stdio[cmd.fd] = cmd.path.decode(errors="surrogateescape")
    return replies.OK


@handles(lc.SetDisableASLR, lc.DisableRandomization, features=("QDisableRandomization+",))
def disable_randomization(session, cmd) -> bytes:
    _settings(session).disable_randomization = cmd.disable
    return replies.OK


@handles(lc.StartupWithShell, features=("QStartupWithShell+",))
def startup_with_shell(session, cmd) -> bytes:
    _settings(session).startup_with_shell = cmd.enable
    return replies.OK


def _start(session, argv: list[str] | None, pid: int | None):
    lifecycle = session.context.lifecycle
    # A multiprocess client in extended mode runs several programs at once (add-inferior).
    alongside = session.state.multiprocess and session.state.extended
    if pid is not None:
        inferior = lifecycle.attach_process(pid, alongside)
    else:
        inferior = lifecycle.start_program(argv, _settings(session), alongside=alongside,
                                           inherit_environment=session.profile.launch_inherits_environment,
                                           through_shell=session.profile.launch_through_shell)
    _new_process(session, inferior.pid)
    return inferior


def _new_process(session, pid: int | None) -> None:
    """The client now works on the new process; documents read of the old one are stale."""
    session.xfer_cache.clear()
    session.selected_pid = pid
    session.state.general_thread = 0
    session.state.continue_thread = -1


@handles(lc.Run)
def run(session, cmd: lc.Run) -> bytes:
    argv = [a.decode(errors="surrogateescape") for a in cmd.args]
    if not argv or not argv[0]:
        program = session.context.default_program
        if program is None:
            return replies.error(0x01, "no program to run", session.state.error_strings)
        argv = [program, *argv[1:]]
    try:
        inferior = _start(session, argv, None)
    except LaunchError as exc:
        return _error(session, exc)
    return stop_reply(session, inferior.last_event)


@handles(lc.Restart)
async def restart(session, cmd: lc.Restart) -> bytes | None:
    """gdb's `run` with `set remote run-packet off`. No reply, like gdbserver's: gdb asks `?`."""
    if not session.state.extended:
        return b""
    inferior = None
    try:
        inferior = await session.context.lifecycle.restart(_settings(session))
    except LaunchError as exc:
        log.warning("restart failed: %s", exc)
    _new_process(session, inferior.pid if inferior is not None else None)
    return None


@handles(lc.Attach)
def attach(session, cmd: lc.Attach) -> bytes:
    try:
        inferior = _start(session, None, cmd.pid)
    except LaunchError as exc:
        return _error(session, exc)
    if session.state.non_stop:
        inferior.announce_attach()  # the stop follows as a notification
        return replies.OK
    return stop_reply(session, inferior.last_event)


@handles(lc.LaunchArguments)
def launch_arguments(session, cmd: lc.LaunchArguments) -> bytes:
    argv = [a.decode(errors="surrogateescape") for a in cmd.args]
    try:
        _start(session, argv, None)
    except LaunchError as exc:
        session.last_launch_error = str(exc)
        return _error(session, exc)
    session.last_launch_error = None
    return replies.OK


@handles(lc.LaunchSuccessQuery)
def launch_success(session, cmd) -> bytes:
    error = session.last_launch_error
    if error:
        return b"E" + error.encode(errors="replace")
    return replies.OK
