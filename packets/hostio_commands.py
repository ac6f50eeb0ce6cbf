"""Host I/O commands (vFile:...): files on the server's machine, opened, read and written for
the client (gdb's `target:` sysroot, `remote get`)."""

from __future__ import annotations


from .command_base import Command, register, split_fields, unescape
from .hexcodec import hex_decode, parse_hex
from .records import record

__all__ = [
    "VFileClose",
    "VFileFstat",
    "VFileOpen",
    "VFilePread",
    "VFilePwrite",
    "VFileReadlink",
    "VFileSetfs",
    "VFileUnlink",
]


@record
class VFileSetfs(Command):
    """``vFile:setfs:<pid>``: later paths are in this process's mount namespace (0 = ours)."""

    pid: int


@record
class VFileOpen(Command):
    """``vFile:open:<hex path>,<flags>,<mode>`` (flags are GDB's, not the host's)."""

    path: bytes
    flags: int
    mode: int


@record
class VFilePread(Command):
    """``vFile:pread:<fd>,<count>,<offset>``."""

    fd: int
    count: int
    offset: int


@record
class VFilePwrite(Command):
    """``vFile:pwrite:<fd>,<offset>,<binary>``."""

    fd: int
    offset: int
    data: bytes


@record
class VFileClose(Command):
    """``vFile:close:<fd>``."""

    fd: int


@record
class VFileFstat(Command):
    """``vFile:fstat:<fd>``."""

    fd: int


@record
class VFileUnlink(Command):
    """``vFile:unlink:<hex path>``."""

    path: bytes


@record
class VFileReadlink(Command):
    """``vFile:readlink:<hex path>``."""

    path: bytes


@register(b"vFile:setfs:")
def _parse_vfile_setfs(rest: bytes) -> Command:
    return VFileSetfs(parse_hex(rest, "process id"))


@register(b"vFile:open:")
def _parse_vfile_open(rest: bytes) -> Command:
    path, flags, mode = split_fields(rest, 3, "vFile:open")
    return VFileOpen(hex_decode(path), parse_hex(flags, "flags"), parse_hex(mode, "mode"))


@register(b"vFile:pread:")
def _parse_vfile_pread(rest: bytes) -> Command:
    fd, count, offset = split_fields(rest, 3, "vFile:pread")
    return VFilePread(
        parse_hex(fd, "file descriptor"), parse_hex(count, "count"), parse_hex(offset, "offset")
    )


@register(b"vFile:pwrite:")
def _parse_vfile_pwrite(rest: bytes) -> Command:
    fd, offset, data = split_fields(rest, 3, "vFile:pwrite")
    return VFilePwrite(
        parse_hex(fd, "file descriptor"), parse_hex(offset, "offset"), unescape(data)
    )


@register(b"vFile:close:")
def _parse_vfile_close(rest: bytes) -> Command:
    return VFileClose(parse_hex(rest, "file descriptor"))


@register(b"vFile:fstat:")
def _parse_vfile_fstat(rest: bytes) -> Command:
    return VFileFstat(parse_hex(rest, "file descriptor"))


@register(b"vFile:unlink:")
def _parse_vfile_unlink(rest: bytes) -> Command:
    return VFileUnlink(hex_decode(rest))


@register(b"vFile:readlink:")
def _parse_vfile_readlink(rest: bytes) -> Command:
    return VFileReadlink(hex_decode(rest))
