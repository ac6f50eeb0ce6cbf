"""vFile host I/O: gdb reads the program and its libraries through these (sysroot `target:`)."""

from __future__ import annotations

from packets import commands as cmds
from packets import replies

from ..hostio import HostFiles
from .registry import handles

MAX_PREAD = 0x10000


def _files(session) -> HostFiles:
    if session.hostio is None:
        session.hostio = HostFiles(max_read=MAX_PREAD)
    return session.hostio


def _reply(result) -> bytes:
    value, errno, attachment = result
    return replies.vfile_result(value, errno, attachment)


@handles(cmds.VFileSetfs)
def setfs(session, cmd: cmds.VFileSetfs) -> bytes:
    return _reply(_files(session).setfs(cmd.pid))


@handles(cmds.VFileOpen)
def open_(session, cmd: cmds.VFileOpen) -> bytes:
    return _reply(_files(session).open(cmd.path, cmd.flags, cmd.mode))


@handles(cmds.VFilePread)
def pread(session, cmd: cmds.VFilePread) -> bytes:
    return _reply(_files(session).pread(cmd.fd, cmd.count, cmd.offset))


@handles(cmds.VFilePwrite)
def pwrite(session, cmd: cmds.VFilePwrite) -> bytes:
    return _reply(_files(session).pwrite(cmd.fd, cmd.data, cmd.offset))


@handles(cmds.VFileClose)
def close(session, cmd: cmds.VFileClose) -> bytes:
    return _reply(_files(session).close(cmd.fd))


@handles(cmds.VFileFstat)
def fstat(session, cmd: cmds.VFileFstat) -> bytes:
    return _reply(_files(session).fstat(cmd.fd))


@handles(cmds.VFileUnlink)
def unlink(session, cmd: cmds.VFileUnlink) -> bytes:
    return _reply(_files(session).unlink(cmd.path))


@handles(cmds.VFileReadlink)
def readlink(session, cmd: cmds.VFileReadlink) -> bytes:
    return _reply(_files(session).readlink(cmd.path))
