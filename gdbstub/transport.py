"""Where the protocol flows: a TCP or unix-socket listener, or standard input and output.

COMM follows gdbserver's forms: `[HOST]:PORT`, `[::1]:PORT`, `-`/`stdio`, or a socket path. With no
HOST we listen on 127.0.0.1 only (gdbserver listens on every interface; we do not).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import time
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


# How long a read may keep the CPU waiting for the client's next packet (spinning, then
# sleeping in poll) before it waits in the event loop.
QUICK_REPLY_SPIN_S = 0.0002
QUICK_REPLY_WAIT_MS = 2


class Connection:
    """One client's byte pipe (a socket, or stdin/stdout), used without blocking.

    Reads and writes are tried at once and only wait for readiness when the kernel says they
    would block: a request/reply exchange then costs two system calls and no scheduler pass,
    which is what makes small packets fast.
    """

    def __init__(self, read_fd: int, write_fd: int, sock: socket.socket | None = None) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._sock = sock
        for fd in {read_fd, write_fd}:
            os.set_blocking(fd, False)
        self._poller = select.poll()
        self._poller.register(read_fd, select.POLLIN)
        self.closed = False

    @classmethod
    def from_socket(cls, sock: socket.socket) -> Connection:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock.fileno(), sock.fileno(), sock)

    @classmethod
    def stdio(cls) -> Connection:
        return cls(os.dup(0), os.dup(1))

    def peer(self) -> tuple[str, str] | None:
        if self._sock is None:
            return None
        try:
            address = self._sock.getpeername()
        except OSError:
            return None
        return (str(address[0]), str(address[1])) if isinstance(address, tuple) else None

    def receive_nowait(self, size: int = 1 << 18) -> bytes | None:
        """Bytes if any are there, b'' at end of stream, None if reading would block."""
        try:
            if self._sock is not None:
                return self._sock.recv(size)
            return os.read(self._read_fd, size)
        except (BlockingIOError, InterruptedError):
            return None
        except (ConnectionResetError, BrokenPipeError):
            return b""

    async def receive(self, size: int = 1 << 18) -> bytes:
        """The next bytes from the client (b'' at its end).

        A client in a request/reply exchange answers within microseconds. Trying the read
        again for a moment catches that: on a 2-CPU VM a sleep and a wake-up cost about 45 µs
        each side, a round trip of a few packets more than the server's own work (a bare echo
        server answers 8,000 requests/s sleeping in poll, 31,000 spinning first). Then a short
        blocking poll, without a pass through the event loop (nothing else needs the loop
        while the program is stopped); a client that stays quiet is awaited the usual way.
        """
        data = self.receive_nowait(size)
        if data is not None:
            return data
        deadline = time.perf_counter() + QUICK_REPLY_SPIN_S
        while time.perf_counter() < deadline:
            os.sched_yield()  # the client may need this CPU to send what we wait for
            data = self.receive_nowait(size)
            if data is not None:
                return data
        if self._poller.poll(QUICK_REPLY_WAIT_MS):
            data = self.receive_nowait(size)
            if data is not None:
                return data
        while True:
            await trio.lowlevel.wait_readable(self._read_fd)
            data = self.receive_nowait(size)
            if data is not None:
                return data

    async def wait_readable(self) -> None:
        await trio.lowlevel.wait_readable(self._read_fd)

    async def send_all(self, data: bytes) -> None:
        try:  # the usual case: the whole reply fits in the socket buffer at once
            sent = self._sock.send(data) if self._sock is not None else os.write(self._write_fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ConnectionError(str(exc)) from None
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            try:
                if self._sock is not None:
                    sent = self._sock.send(view)
                else:
                    sent = os.write(self._write_fd, view)
            except (BlockingIOError, InterruptedError):
                await trio.lowlevel.wait_writable(self._write_fd)
                continue
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise ConnectionError(str(exc)) from None
            view = view[sent:]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._sock is not None:
            self._sock.close()
        else:
            for fd in {self._read_fd, self._write_fd}:
                os.close(fd)


class Listener:
    """A listening socket whose accepted connections are `Connection`s."""

    def __init__(self, sock: socket.socket, path: str | None = None) -> None:
        self._sock = sock
        self._path = path  # the socket file this listener created, removed when it closes
        sock.setblocking(False)

    async def accept(self) -> Connection:
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                await trio.lowlevel.wait_readable(self._sock)
                continue
            return Connection.from_socket(conn)

    def close(self) -> None:
        self._sock.close()
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass
            self._path = None


def _remove_stale_socket(path: str) -> None:
    """Make room for the socket: only a socket nobody listens on (left by a server that died)
    is removed; any other file, or a live server's socket, is left alone and refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise CommError(f"Can't bind address: {path} exists and is not a socket.")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError as exc:
        raise CommError(f"Can't bind address: {path}: {exc.strerror}.") from None
    finally:
        probe.close()
    raise CommError(f"Can't bind address: {path} is in use by another server.")


async def open_listener(comm: Comm) -> tuple[Listener, int | None]:
    """Bind and listen; returns the listener and the TCP port (None for unix sockets)."""
    if comm.kind == "tcp":
        # trio's resolver runs in a worker thread: a slow DNS answer does not stall the loop.
        infos = await trio.socket.getaddrinfo(comm.host, comm.port, family=0, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise CommError("Can't bind address: Address already in use.") from None
            raise CommError(f"Can't bind address: {exc.strerror}.") from None
        sock.listen(1)
        return Listener(sock), sock.getsockname()[1]
    if comm.kind == "unix":
        _remove_stale_socket(comm.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Only the owner may connect: whoever can connect controls the debugged program.
        # The umask makes the file 0600 from its creation, with no window where it is not.
        old_umask = os.umask(0o177)
        try:
            sock.bind(comm.path)
        except OSError as exc:
            sock.close()
            raise CommError(f"Can't bind address: {exc.strerror}.") from None
        finally:
            os.umask(old_umask)
        sock.listen(1)
        return Listener(sock, comm.path), None
    raise CommError(f"{comm.text}: not a listening address")
