"""gdb's File-I/O conventions for host I/O (vFile packets), and the files a session opens.

gdb speaks its own constants over the wire (gdb's gdbsupport/fileio.h): open flags, mode bits,
errno values and a packed big-endian `struct stat`. The pure helpers here convert between
those and the host's; `HostFiles` performs the operations on real files and answers each with
(result, gdb errno or None, attachment or None), which is exactly what an `F` reply carries.

`setfs(pid)` makes later paths resolve inside that process's view of the filesystem, through
/proc/PID/root. When that view is ours (same root, same mount namespace) paths are used as they
are; otherwise symbolic links are followed by hand so that an absolute link target stays inside
the process's root instead of escaping to ours.
"""

from __future__ import annotations

import errno as _errno
import os
import stat
import struct
from collections import deque

# Open flags (gdb File-I/O).
GDB_O_RDONLY = 0x0
GDB_O_WRONLY = 0x1
GDB_O_RDWR = 0x2
GDB_O_APPEND = 0x8
GDB_O_CREAT = 0x200
GDB_O_TRUNC = 0x400
GDB_O_EXCL = 0x800
_GDB_O_SUPPORTED = GDB_O_WRONLY | GDB_O_RDWR | GDB_O_APPEND | GDB_O_CREAT | GDB_O_TRUNC | GDB_O_EXCL
_OPEN_FLAG_MAP = [
    (GDB_O_WRONLY, os.O_WRONLY),
    (GDB_O_RDWR, os.O_RDWR),
    (GDB_O_APPEND, os.O_APPEND),
    (GDB_O_CREAT, os.O_CREAT),
    (GDB_O_TRUNC, os.O_TRUNC),
    (GDB_O_EXCL, os.O_EXCL),
]

# Mode bits (gdb File-I/O). The permission bits have the usual octal values.
GDB_S_IFREG = 0o100000
GDB_S_IFDIR = 0o40000
GDB_S_IFCHR = 0o20000
_GDB_S_PERMS = 0o777
# What an open's mode argument may carry (gdb accepts no S_IFCHR there).
_GDB_S_OPEN_SUPPORTED = GDB_S_IFREG | GDB_S_IFDIR | _GDB_S_PERMS

# errno values (gdb File-I/O); anything else is EUNKNOWN.
GDB_EUNKNOWN = 9999
_ERRNO_TO_GDB = {
    _errno.EPERM: 1,
    _errno.ENOENT: 2,
    _errno.EINTR: 4,
    _errno.EIO: 5,
    _errno.EBADF: 9,
    _errno.EACCES: 13,
    _errno.EFAULT: 14,
    _errno.EBUSY: 16,
    _errno.EEXIST: 17,
    _errno.ENODEV: 19,
    _errno.ENOTDIR: 20,
    _errno.EISDIR: 21,
    _errno.EINVAL: 22,
    _errno.ENFILE: 23,
    _errno.EMFILE: 24,
    _errno.EFBIG: 27,
    _errno.ENOSPC: 28,
    _errno.ESPIPE: 29,
    _errno.EROFS: 30,
    _errno.ENOSYS: 88,
    _errno.ENAMETOOLONG: 91,
}
GDB_EINVAL = _ERRNO_TO_GDB[_errno.EINVAL]
GDB_EBADF = _ERRNO_TO_GDB[_errno.EBADF]

# dev ino mode nlink uid gid rdev (u32) | size blksize blocks (u64) | atime mtime ctime (u32)
GDB_STAT_FORMAT = ">7I3Q3I"
GDB_STAT_SIZE = struct.calcsize(GDB_STAT_FORMAT)  # 64

_MAX_SYMLINKS = 40  # as the kernel's path walk

Reply = tuple[int, int | None, bytes | None]


def errno_to_gdb(host_errno: int) -> int:
    """gdb's errno value for a host errno (EUNKNOWN 9999 when gdb has none)."""
    return _ERRNO_TO_GDB.get(host_errno, GDB_EUNKNOWN)


def open_flags_to_os(gdb_flags: int) -> int | None:
    """Host open(2) flags for gdb's, or None if gdb's carry a bit gdb does not define."""
    if gdb_flags & ~_GDB_O_SUPPORTED:
        return None
    flags = os.O_RDONLY
    for gdb_bit, os_bit in _OPEN_FLAG_MAP:
        if gdb_flags & gdb_bit:
            flags |= os_bit
    return flags


def mode_to_os(gdb_mode: int) -> int | None:
    """Host mode bits for an open's gdb mode argument, or None if it carries unknown bits."""
    if gdb_mode & ~_GDB_S_OPEN_SUPPORTED:
        return None
    mode = gdb_mode & _GDB_S_PERMS
    if gdb_mode & GDB_S_IFREG:
        mode |= stat.S_IFREG
    if gdb_mode & GDB_S_IFDIR:
        mode |= stat.S_IFDIR
    return mode


def mode_to_gdb(st_mode: int) -> int:
    """gdb's mode bits for a host st_mode: the file type if regular, directory or character
    device (others have no gdb bit) and the nine permission bits."""
    mode = st_mode & _GDB_S_PERMS
    if stat.S_ISREG(st_mode):
        mode |= GDB_S_IFREG
    elif stat.S_ISDIR(st_mode):
        mode |= GDB_S_IFDIR
    elif stat.S_ISCHR(st_mode):
        mode |= GDB_S_IFCHR
    return mode


def pack_stat(st: os.stat_result) -> bytes:
    """gdb's 64-byte big-endian `struct stat`. 32-bit fields keep the low 32 bits, as gdb does."""
    u32 = 0xFFFFFFFF
    return struct.pack(
        GDB_STAT_FORMAT,
        st.st_dev & u32,
        st.st_ino & u32,
        mode_to_gdb(st.st_mode),
        st.st_nlink & u32,
        st.st_uid & u32,
        st.st_gid & u32,
        st.st_rdev & u32,
        st.st_size,
        st.st_blksize,
        st.st_blocks,
        int(st.st_atime) & u32,
        int(st.st_mtime) & u32,
        int(st.st_ctime) & u32,
    )


def _error(exc: OSError) -> Reply:
    return (-1, errno_to_gdb(exc.errno or 0), None)


def _same_view(pid: int) -> bool:
    """True when process `pid` sees the filesystem as we do (same root, same mount namespace)."""
    try:
        ours, theirs = os.stat("/"), os.stat(f"/proc/{pid}/root")
        same_root = (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)
        return same_root and os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return False


def resolve_in_root(root: str, path: str, cwd: str = "/", follow_last: bool = True) -> str:
    """The host path of `path` as seen by a process whose root directory is `root`.

    Symbolic links are followed here, component by component, so that absolute targets and
    '..' stay inside `root` (the kernel would resolve an absolute target against our root).
    `cwd` (inside the root) anchors a relative `path`. OSError(ELOOP) past 40 links.
    """
    parts = deque((path if path.startswith("/") else f"{cwd}/{path}").split("/"))
    resolved: list[str] = []
    links = 0
    while parts:
        name = parts.popleft()
        if name in ("", "."):
            continue
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, name)
        if (parts or follow_last) and os.path.islink(candidate):
            links += 1
            if links > _MAX_SYMLINKS:
                raise OSError(_errno.ELOOP, os.strerror(_errno.ELOOP), path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts.extendleft(reversed(target.split("/")))
            continue
        resolved.append(name)
    return os.path.join(root, *resolved)


class HostFiles:
    """The files one session opened through vFile, and the filesystem view paths resolve in.

    Every operation answers (result, gdb errno or None, attachment or None): result is -1 with
    an errno on failure; pread, fstat and readlink carry their bytes as the attachment.
    """

    def __init__(self, max_read: int) -> None:
        self.max_read = max_read  # the most one pread returns (the reply must fit a packet)
        self.fs_pid = 0  # 0: our own filesystem
        self._root: str | None = None  # /proc/PID/root when that view differs from ours
        self._fds: set[int] = set()

    # Paths

    def _path(self, path: str, follow_last: bool = True) -> str:
        if self._root is None:
            return path
        cwd = "/" if path.startswith("/") else self._cwd_in_root()
        return resolve_in_root(self._root, path, cwd=cwd, follow_last=follow_last)

    def _cwd_in_root(self) -> str:
        # Both links read as paths in *our* view; the working directory inside the process's
        # root is what follows the root's own path.
        root = os.readlink(f"/proc/{self.fs_pid}/root").rstrip("/")
        cwd = os.readlink(f"/proc/{self.fs_pid}/cwd")
        if cwd == root or cwd.startswith(root + "/"):
            return cwd[len(root) :] or "/"
        return "/"  # a working directory outside its root: anchor relative paths at the root

    def setfs(self, pid: int) -> Reply:
        """Resolve later paths in process `pid`'s filesystem view (0: the server's own)."""
        if pid < 0:
            return (-1, GDB_EINVAL, None)
        self.fs_pid = pid
        # Decided once per setfs: gdb sends one before each batch of file operations.
        self._root = None if pid == 0 or _same_view(pid) else f"/proc/{pid}/root"
        return (0, None, None)

    # Operations

    def open(self, path: str | bytes, gdb_flags: int, gdb_mode: int) -> Reply:
        flags, mode = open_flags_to_os(gdb_flags), mode_to_os(gdb_mode)
        if flags is None or mode is None:
            return (-1, GDB_EINVAL, None)
        try:
            fd = os.open(self._path(os.fsdecode(path)), flags | os.O_CLOEXEC, mode)
        except OSError as exc:
            return _error(exc)
        self._fds.add(fd)
        return (fd, None, None)

    def pread(self, fd: int, count: int, offset: int) -> Reply:
        if fd not in self._fds:
            return (-1, GDB_EBADF, None)
        if count < 0 or offset < 0:
            return (-1, GDB_EINVAL, None)
        try:
            data = os.pread(fd, min(count, self.max_read), offset)
        except OSError as exc:
            return _error(exc)
        return (len(data), None, data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> Reply:
        if fd not in self._fds:
            return (-1, GDB_EBADF, None)
        if offset < 0:
            return (-1, GDB_EINVAL, None)
        try:
            return (os.pwrite(fd, data, offset), None, None)
        except OSError as exc:
            return _error(exc)

    def close(self, fd: int) -> Reply:
        if fd not in self._fds:
            return (-1, GDB_EBADF, None)
        self._fds.discard(fd)
        try:
            os.close(fd)
        except OSError as exc:
            return _error(exc)
        return (0, None, None)

    def fstat(self, fd: int) -> Reply:
        if fd not in self._fds:
            return (-1, GDB_EBADF, None)
        try:
            packed = pack_stat(os.fstat(fd))
        except OSError as exc:
            return _error(exc)
        return (len(packed), None, packed)

    def unlink(self, path: str | bytes) -> Reply:
        try:
            os.unlink(self._path(os.fsdecode(path), follow_last=False))
        except OSError as exc:
            return _error(exc)
        return (0, None, None)

    def readlink(self, path: str | bytes) -> Reply:
        try:
            target = os.fsencode(os.readlink(self._path(os.fsdecode(path), follow_last=False)))
        except OSError as exc:
            return _error(exc)
        return (len(target), None, target)

    def close_all(self) -> None:
        """Close every file still open (the session ended)."""
        for fd in sorted(self._fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        self.fs_pid, self._root = 0, None

    @property
    def open_fds(self) -> frozenset[int]:
        return frozenset(self._fds)
