"""Host I/O in gdb's File-I/O conventions, on real files in a temporary directory, and inside
another process's root directory."""

from __future__ import annotations

import errno
import os
import stat
import struct
import subprocess
import sys

import pytest

from gdbstub import hostio
from gdbstub.hostio import HostFiles, pack_stat

# gdb's File-I/O constants as the protocol documentation lists them.
O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_TRUNC, O_EXCL = 0, 1, 2, 8, 0x200, 0x400, 0x800
GDB_ERRNO = {"EPERM": 1, "ENOENT": 2, "EINTR": 4, "EIO": 5, "EBADF": 9, "EACCES": 13, "EFAULT": 14,
             "EBUSY": 16, "EEXIST": 17, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22,
             "ENFILE": 23, "EMFILE": 24, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30,
             "ENOSYS": 88, "ENAMETOOLONG": 91}  # fmt: skip
EUNKNOWN = 9999


@pytest.fixture
def files():
    f = HostFiles(max_read=100)
    yield f
    f.close_all()


def ok(reply) -> tuple[int, bytes | None]:
    result, err, attachment = reply
    assert err is None and result >= 0, reply
    return result, attachment


def failed(reply) -> int:
    result, err, attachment = reply
    assert result == -1 and attachment is None, reply
    return err


# ---------------------------------------------------------------------------------------------
# conversions


@pytest.mark.parametrize(
    ("gdb", "host"),
    [
        (O_RDONLY, os.O_RDONLY),
        (O_WRONLY, os.O_WRONLY),
        (O_RDWR, os.O_RDWR),
        (O_WRONLY | O_APPEND, os.O_WRONLY | os.O_APPEND),
        (O_RDWR | O_CREAT | O_TRUNC, os.O_RDWR | os.O_CREAT | os.O_TRUNC),
        (O_WRONLY | O_CREAT | O_EXCL, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
    ],
)
def test_open_flags(gdb: int, host: int) -> None:
    assert hostio.open_flags_to_os(gdb) == host


@pytest.mark.parametrize("gdb", [0x4, 0x10, 0x100, 0x1000, 0x80000])
def test_unknown_open_flags_are_refused(gdb: int) -> None:
    assert hostio.open_flags_to_os(gdb) is None


def test_errno_values() -> None:
    for name, number in GDB_ERRNO.items():
        assert hostio.errno_to_gdb(getattr(errno, name)) == number, name
    for name in ("ELOOP", "ESRCH", "EAGAIN", "ENOTEMPTY", "EXDEV"):
        assert hostio.errno_to_gdb(getattr(errno, name)) == EUNKNOWN, name


def test_mode_bits() -> None:
    assert hostio.mode_to_os(0o700) == 0o700
    assert hostio.mode_to_os(0o100644) == stat.S_IFREG | 0o644
    assert hostio.mode_to_os(0o4755) is None  # setuid has no gdb bit
    assert hostio.mode_to_gdb(stat.S_IFREG | 0o4755) == 0o100755
    assert hostio.mode_to_gdb(stat.S_IFDIR | 0o750) == 0o40750
    assert hostio.mode_to_gdb(stat.S_IFCHR | 0o666) == 0o20666
    assert hostio.mode_to_gdb(stat.S_IFLNK | 0o777) == 0o777  # no gdb type bit for links


def unpack(packed: bytes) -> dict[str, int]:
    names = "dev ino mode nlink uid gid rdev size blksize blocks atime mtime ctime".split()
    assert len(packed) == 64
    return dict(zip(names, struct.unpack(">IIIIIIIQQQIII", packed)))


@pytest.mark.parametrize("path", ["file", "dir", "/dev/null"])
def test_pack_stat_fields(tmp_path, path) -> None:
    (tmp_path / "file").write_bytes(b"x" * 5000)
    (tmp_path / "dir").mkdir()
    st = os.stat(tmp_path / path)
    got = unpack(pack_stat(st))
    assert got["dev"] == st.st_dev & 0xFFFFFFFF
    assert got["ino"] == st.st_ino & 0xFFFFFFFF
    assert got["mode"] & 0o777 == st.st_mode & 0o777
    assert got["mode"] & ~0o777 == {"file": 0o100000, "dir": 0o40000, "/dev/null": 0o20000}[path]
    assert (got["nlink"], got["uid"], got["gid"]) == (st.st_nlink, st.st_uid, st.st_gid)
    assert got["rdev"] == st.st_rdev & 0xFFFFFFFF
    assert (got["size"], got["blksize"], got["blocks"]) == (st.st_size, st.st_blksize, st.st_blocks)
    assert (got["atime"], got["mtime"], got["ctime"]) == (int(st.st_atime), int(st.st_mtime), int(st.st_ctime))


# ---------------------------------------------------------------------------------------------
# operations on real files


def test_create_write_read_stat_close(files, tmp_path) -> None:
    path = str(tmp_path / "new")
    fd, _ = ok(files.open(path, O_RDWR | O_CREAT | O_EXCL, 0o640))
    assert ok(files.pwrite(fd, b"hello, world", 0)) == (12, None)
    assert ok(files.pwrite(fd, b"W", 7)) == (1, None)
    assert ok(files.pread(fd, 5, 7)) == (5, b"World")
    assert ok(files.pread(fd, 5, 100)) == (0, b"")  # past the end: nothing
    size, packed = ok(files.fstat(fd))
    assert size == 64 and packed == pack_stat(os.stat(path))
    assert unpack(packed)["mode"] == 0o100640 & ~os.umask(os.umask(0))
    assert ok(files.close(fd)) == (0, None)
    assert open(path, "rb").read() == b"hello, World"


def test_pread_is_capped(files, tmp_path) -> None:
    (tmp_path / "big").write_bytes(bytes(range(256)) * 4)
    fd, _ = ok(files.open(str(tmp_path / "big"), O_RDONLY, 0))
    count, data = ok(files.pread(fd, 0x47FF, 10))
    assert count == len(data) == files.max_read == 100
    assert data == (bytes(range(256)) * 4)[10:110]


def test_open_errors(files, tmp_path) -> None:
    (tmp_path / "exists").write_text("")
    (tmp_path / "dir").mkdir()
    # What gdb sends first in every session, expecting ENOENT.
    assert failed(files.open("just probing", O_RDONLY, 0o700)) == GDB_ERRNO["ENOENT"]
    assert failed(files.open(str(tmp_path / "exists"), O_WRONLY | O_CREAT | O_EXCL, 0o600)) == GDB_ERRNO["EEXIST"]
    assert failed(files.open(str(tmp_path / "dir"), O_WRONLY, 0)) == GDB_ERRNO["EISDIR"]
    assert failed(files.open(str(tmp_path / "exists" / "x"), O_RDONLY, 0)) == GDB_ERRNO["ENOTDIR"]
    assert failed(files.open(str(tmp_path / "exists"), 0x4, 0)) == GDB_ERRNO["EINVAL"]  # undefined flag
    assert failed(files.open(str(tmp_path / "exists"), O_RDONLY, 0o4000)) == GDB_ERRNO["EINVAL"]
    assert files.open_fds == frozenset()


def test_only_our_own_descriptors_are_used(files, tmp_path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)  # a descriptor the session did not open
    try:
        assert failed(files.pread(fd, 1, 0)) == GDB_ERRNO["EBADF"]
        assert failed(files.fstat(fd)) == GDB_ERRNO["EBADF"]
        assert failed(files.close(fd)) == GDB_ERRNO["EBADF"]
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    (tmp_path / "f").write_text("x")
    mine, _ = ok(files.open(str(tmp_path / "f"), O_RDONLY, 0))
    ok(files.close(mine))
    assert failed(files.close(mine)) == GDB_ERRNO["EBADF"]
    assert failed(files.pwrite(mine, b"x", 0)) == GDB_ERRNO["EBADF"]


def test_pwrite_on_read_only_descriptor(files, tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    fd, _ = ok(files.open(str(tmp_path / "f"), O_RDONLY, 0))
    assert failed(files.pwrite(fd, b"y", 0)) == GDB_ERRNO["EBADF"]


def test_unlink_and_readlink(files, tmp_path) -> None:
    (tmp_path / "target").write_text("x")
    os.symlink("target", tmp_path / "link")
    assert ok(files.readlink(str(tmp_path / "link"))) == (6, b"target")
    assert failed(files.readlink(str(tmp_path / "target"))) == GDB_ERRNO["EINVAL"]
    assert ok(files.unlink(str(tmp_path / "link"))) == (0, None)
    assert (tmp_path / "target").exists() and not (tmp_path / "link").exists()
    assert failed(files.unlink(str(tmp_path / "link"))) == GDB_ERRNO["ENOENT"]
    assert failed(files.unlink(str(tmp_path))) == GDB_ERRNO["EISDIR"]


def test_bytes_paths(files, tmp_path) -> None:
    name = tmp_path / "caf\xe9"
    name.write_bytes(b"ok")
    fd, _ = ok(files.open(os.fsencode(name), O_RDONLY, 0))
    assert ok(files.pread(fd, 10, 0)) == (2, b"ok")


def test_close_all(tmp_path) -> None:
    files = HostFiles(max_read=10)
    (tmp_path / "f").write_text("x")
    fds = [ok(files.open(str(tmp_path / "f"), O_RDONLY, 0))[0] for _ in range(3)]
    files.setfs(os.getpid())
    files.close_all()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    assert files.open_fds == frozenset() and files.fs_pid == 0


# ---------------------------------------------------------------------------------------------
# filesystem views


def test_setfs_to_a_process_sharing_our_view(files, tmp_path) -> None:
    (tmp_path / "f").write_text("same")
    assert ok(files.setfs(os.getpid())) == (0, None)
    fd, _ = ok(files.open(str(tmp_path / "f"), O_RDONLY, 0))
    assert ok(files.pread(fd, 10, 0)) == (4, b"same")
    assert failed(files.setfs(-1)) == GDB_ERRNO["EINVAL"]


def make_root(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "data").write_text("inside")
    os.symlink("/real", root / "lib")  # absolute: must resolve inside the root
    os.symlink("../../../real/data", root / "real" / "up")  # '..' may not leave the root
    os.symlink("loop", root / "loop")
    return root


def test_resolve_in_root_keeps_links_inside(tmp_path) -> None:
    root = make_root(tmp_path)
    r = str(root)
    assert hostio.resolve_in_root(r, "/lib/data") == f"{r}/real/data"
    assert hostio.resolve_in_root(r, "/real/up") == f"{r}/real/data"
    assert hostio.resolve_in_root(r, "/../../lib/./data") == f"{r}/real/data"
    assert hostio.resolve_in_root(r, "data", cwd="/lib") == f"{r}/real/data"
    assert hostio.resolve_in_root(r, "/lib", follow_last=False) == f"{r}/lib"
    assert hostio.resolve_in_root(r, "/") == r
    with pytest.raises(OSError) as exc:
        hostio.resolve_in_root(r, "/loop/x")
    assert exc.value.errno == errno.ELOOP


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_setfs_to_a_chrooted_process(files, tmp_path) -> None:
    root = make_root(tmp_path)
    # A process whose root directory is `root`: from its point of view /lib/data exists.
    child = subprocess.Popen(
        [sys.executable, "-c", "import os,sys,time; os.chroot(sys.argv[1]); os.chdir('/real'); "
         "print('ready', flush=True); time.sleep(60)", str(root)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "ready"
        assert not os.path.exists("/lib/data")
        ok(files.setfs(child.pid))
        fd, _ = ok(files.open("/lib/data", O_RDONLY, 0))
        assert ok(files.pread(fd, 100, 0)) == (6, b"inside")
        fd, _ = ok(files.open("data", O_RDONLY, 0))  # relative to its working directory
        assert ok(files.pread(fd, 100, 0)) == (6, b"inside")
        assert ok(files.readlink("/lib")) == (5, b"/real")
        fd, _ = ok(files.open("/real/new", O_WRONLY | O_CREAT, 0o600))
        assert (root / "real" / "new").exists()
        assert ok(files.unlink("/real/new")) == (0, None)
        assert not (root / "real" / "new").exists()
        assert failed(files.open("/loop", O_RDONLY, 0)) == EUNKNOWN  # ELOOP has no gdb number
        # Back to our own view: the process's files are not at those paths here.
        ok(files.setfs(0))
        assert failed(files.open("/lib/data", O_RDONLY, 0)) in (GDB_ERRNO["ENOENT"], GDB_ERRNO["ENOTDIR"])
    finally:
        child.kill()
        child.wait()
