"""Where the protocol flows: a TCP or unix-socket listener, or standard input and output.

COMM follows gdbserver's forms: `[HOST]:PORT`, `[::1]:PORT`, `-`/`stdio`, or a socket path. With no
HOST we listen on 127.0.0.1 only (gdbserver listens on every interface; we do not).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass

import trio


class CommError(Exception):
    """COMM cannot be used; the message is one line for the user."""


@dataclass
class Comm:
    kind: str  # 'tcp', 'unix', 'stdio'
    host: str = ""
    port: int = 0
    path: str = ""
    text: str = ""


def parse_comm(text: str) -> Comm:
    if text in ("-", "stdio"):
        return Comm("stdio", text=text)
    if ":" not in text:
        if "/" in text or text.endswith(".sock"):
            return Comm("unix", path=text, text=text)
        raise CommError(f"{text}: cannot resolve name: expected [HOST]:PORT, '-' or a socket path")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text, 10)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise CommError(f"{text}: cannot resolve name: invalid port {port_text!r}") from None
    if not host:
        host = "127.0.0.1"
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise CommError(f"{text}: cannot resolve name: {reason}") from None
    return Comm("tcp", host=host, port=port, text=text)


async def open_listener(comm: Comm) -> tuple[trio.abc.Listener, int | None]:
    """Bind and listen; returns the listener and the TCP port (None for unix sockets)."""
    if comm.kind == "tcp":
        family = socket.AF_INET6 if ":" in comm.host else socket.AF_INET
        infos = socket.getaddrinfo(comm.host, comm.port, family=0, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            await sock.bind(addr)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise CommError("Can't bind address: Address already in use.") from None
            raise CommError(f"Can't bind address: {exc.strerror}.") from None
        sock.listen(1)
        return trio.SocketListener(sock), sock.getsockname()[1]
    if comm.kind == "unix":
        if os.path.exists(comm.path):
            raise CommError(f"Can't bind address: {comm.path} already exists.")
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(comm.path)
        except OSError as exc:
            sock.close()
            raise CommError(f"Can't bind address: {exc.strerror}.") from None
        sock.listen(1)
        return trio.SocketListener(sock), None
    raise CommError(f"{comm.text}: not a listening address")


def stdio_stream() -> trio.StapledStream:
    reader = trio.lowlevel.FdStream(os.dup(0))
    writer = trio.lowlevel.FdStream(os.dup(1))
    return trio.StapledStream(writer, reader)


def describe_peer(stream: trio.abc.Stream) -> tuple[str, str] | None:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return None
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    if isinstance(peer, tuple):
        return str(peer[0]), str(peer[1])
    return None
