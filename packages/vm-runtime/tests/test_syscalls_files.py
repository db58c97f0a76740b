"""The file, descriptor, poll and socket syscalls, called through the dispatcher the way a
riscv64 guest calls them (a7 = number, a0..a5 = arguments, a0 = result), against the host:
struct layouts unpacked here with ``struct`` from the kernel's documented layouts and compared
with ``os.stat``; error paths (EBADF, ENOENT, EFAULT on a bad pointer).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from syscall_guest import BUF, BUF_SIZE, M64, Guest, make_guest

UNMAPPED = 0x7000000  # nothing is mapped here
AT_FDCWD = -100


@pytest.fixture
def guest() -> Iterator[Guest]:
    g = make_guest()
    yield g
    g.close()


def errno_of(result: int) -> str:
    assert result < 0, f"expected a failure, got {result}"
    return errno.errorcode[-result]


# -- struct stat -------------------------------------------------------------------------------------
# include/uapi/asm-generic/stat.h (riscv64, aarch64): 128 bytes
GENERIC_STAT = struct.Struct("<Q Q I I I I Q Q q i i q q Q q Q q Q I I".replace(" ", ""))
STAT_FIELDS = ["dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "pad1", "size", "blksize", "pad2", "blocks", "atime", "atime_ns", "mtime", "mtime_ns", "ctime", "ctime_ns", "unused4", "unused5"]


def test_struct_stat_is_128_bytes_as_in_asm_generic() -> None:
    assert GENERIC_STAT.size == 128


def test_fstat_layout_matches_the_host(guest: Guest, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    os.chmod(path, 0o640)
    os.utime(path, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert guest.call("fstat", fd, BUF) == 0
        got = dict(zip(STAT_FIELDS, GENERIC_STAT.unpack(guest.get(0, 128)), strict=True))
    finally:
        os.close(fd)
    st = os.stat(path)
    assert got["mode"] == st.st_mode and stat.S_ISREG(got["mode"])
    assert got["size"] == 5000
    assert (got["ino"], got["dev"], got["nlink"]) == (st.st_ino, st.st_dev, st.st_nlink)
    assert (got["uid"], got["gid"], got["blocks"]) == (st.st_uid, st.st_gid, st.st_blocks)
    assert (got["atime"], got["atime_ns"]) == (1_500_000_000, 123_456_789)
    assert (got["mtime"], got["mtime_ns"]) == (1_600_000_000, 987_654_321)


def test_newfstatat_follows_symlinks_unless_told(guest: Guest, tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"abc")
    (tmp_path / "link").symlink_to("target")
    name = guest.cstr(0x1000, tmp_path / "link")
    assert guest.call("newfstatat", AT_FDCWD, name, BUF, 0) == 0
    assert stat.S_ISREG(GENERIC_STAT.unpack(guest.get(0, 128))[2])
    assert guest.call("newfstatat", AT_FDCWD, name, BUF, 0x100) == 0  # AT_SYMLINK_NOFOLLOW
    assert stat.S_ISLNK(GENERIC_STAT.unpack(guest.get(0, 128))[2])


def test_newfstatat_empty_path(guest: Guest, tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        empty = guest.cstr(0x1000, b"")
        assert errno_of(guest.call("newfstatat", fd, empty, BUF, 0)) == "ENOENT"
        assert guest.call("newfstatat", fd, empty, BUF, 0x1000) == 0  # AT_EMPTY_PATH
        assert stat.S_ISDIR(GENERIC_STAT.unpack(guest.get(0, 128))[2])
        assert errno_of(guest.call("newfstatat", fd, empty, BUF, 0x8)) == "EINVAL"
    finally:
        os.close(fd)


# -- struct statx --------------------------------------------------------------------------------------
# include/uapi/linux/stat.h: the same 256 bytes on every architecture
STATX_HEAD = struct.Struct("<IIQIIIH2xQQQQ")  # mask .. attributes_mask: 64 bytes
TIMESTAMP = struct.Struct("<qI4x")  # statx_timestamp: 16 bytes
STATX_BASIC_STATS, STATX_BTIME = 0x7FF, 0x800


def test_statx_layout_matches_the_host(guest: Guest, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"y" * 777)
    os.utime(path, ns=(1_234_567_890_000_000_001, 1_345_678_901_999_999_999))
    name = guest.cstr(0x1000, path)
    assert guest.call("statx", AT_FDCWD, name, 0, STATX_BASIC_STATS | STATX_BTIME, BUF) == 0
    raw = guest.get(0, 256)
    mask, blksize, _attrs, nlink, uid, gid, mode, ino, size, blocks, _amask = (
        STATX_HEAD.unpack_from(raw, 0))
    atime = TIMESTAMP.unpack_from(raw, 64)
    mtime = TIMESTAMP.unpack_from(raw, 112)
    dev_major, dev_minor = struct.unpack_from("<II", raw, 136)
    st = os.stat(path)
    assert mask & STATX_BASIC_STATS == STATX_BASIC_STATS
    assert (mode, ino, size, nlink, uid, gid) == (st.st_mode, st.st_ino, 777, 1, st.st_uid,
                                                  st.st_gid)
    assert blocks == st.st_blocks and blksize == st.st_blksize
    assert atime == (1_234_567_890, 1)
    assert mtime == (1_345_678_901, 999_999_999)
    assert os.makedev(dev_major, dev_minor) == st.st_dev


def test_statx_bad_buffer_is_efault(guest: Guest, tmp_path: Path) -> None:
    name = guest.cstr(0x1000, tmp_path)
    assert errno_of(guest.call("statx", AT_FDCWD, name, 0, STATX_BASIC_STATS, UNMAPPED)) == \
        "EFAULT"


# -- getdents64 ----------------------------------------------------------------------------------------
DIRENT_HEAD = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type, then d_name
DT_DIR, DT_REG, DT_LNK = 4, 8, 10


def _dirents(raw: bytes) -> list[tuple[int, int, int, str]]:
    out = []
    pos = 0
    while pos < len(raw):
        ino, off, reclen, dtype = DIRENT_HEAD.unpack_from(raw, pos)
        assert reclen % 8 == 0 and reclen >= DIRENT_HEAD.size + 1
        name = raw[pos + DIRENT_HEAD.size:pos + reclen].split(b"\0", 1)[0].decode()
        out.append((ino, off, dtype, name))
        pos += reclen
    return out


def test_getdents64_gives_the_hosts_entries(guest: Guest, tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"file{i:02d}").write_text(str(i))
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to("sub")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    entries = []
    try:
        while True:
            n = guest.call("getdents64", fd, BUF, 512)  # small: several calls
            assert n >= 0
            if n == 0:
                break
            entries += _dirents(guest.get(0, n))
            # d_off of the last entry is where the next call goes on from
            assert os.lseek(fd, 0, os.SEEK_CUR) == entries[-1][1]
    finally:
        os.close(fd)
    names = {e[3] for e in entries}
    assert names == {".", "..", "sub", "link", *(f"file{i:02d}" for i in range(30))}
    kinds = {e[3]: e[2] for e in entries}
    assert kinds["file07"] == DT_REG and kinds["sub"] == DT_DIR and kinds["link"] == DT_LNK
    inodes = {e[3]: e[0] for e in entries}
    assert inodes["file07"] == os.stat(tmp_path / "file07").st_ino


def test_getdents64_errors(guest: Guest, tmp_path: Path) -> None:
    assert errno_of(guest.call("getdents64", 1000, BUF, 4096)) == "EBADF"
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert errno_of(guest.call("getdents64", fd, BUF, 8)) == "EINVAL"  # too small
        assert errno_of(guest.call("getdents64", fd, UNMAPPED, 4096)) == "EFAULT"
    finally:
        os.close(fd)
    f = os.open(tmp_path / "plain", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert errno_of(guest.call("getdents64", f, BUF, 4096)) == "ENOTDIR"
    finally:
        os.close(f)


# -- reading, writing, errors -------------------------------------------------------------------------
def test_read_write_and_their_errors(guest: Guest, tmp_path: Path) -> None:
    path = guest.cstr(0x1000, tmp_path / "data")
    fd = guest.call("openat", AT_FDCWD, path, 0o102, 0o600)  # O_RDWR|O_CREAT
    assert fd >= 0
    assert guest.call("write", fd, guest.put(0, b"hello world"), 11) == 11
    assert guest.call("lseek", fd, 6, 0) == 6
    assert guest.call("read", fd, BUF + 0x100, 100) == 5
    assert guest.get(0x100, 5) == b"world"
    assert guest.call("pread64", fd, BUF + 0x200, 5, 0) == 5
    assert guest.get(0x200, 5) == b"hello"
    assert errno_of(guest.call("read", fd, UNMAPPED, 10)) == "EFAULT"
    assert errno_of(guest.call("write", fd, UNMAPPED, 10)) == "EFAULT"
    assert errno_of(guest.call("fstat", fd, UNMAPPED)) == "EFAULT"
    assert guest.call("close", fd) == 0
    assert errno_of(guest.call("close", fd)) == "EBADF"
    assert errno_of(guest.call("read", fd, BUF, 10)) == "EBADF"
    assert errno_of(guest.call("read", fd, UNMAPPED, 10)) == "EBADF"  # the fd is checked first
    assert errno_of(guest.call("write", -1 & M64, BUF, 1)) == "EBADF"
    assert errno_of(guest.call("fstat", 12345, BUF)) == "EBADF"


def test_read_stops_at_the_first_unwritable_page(guest: Guest, tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(bytes(range(256)) * 64)
    fd = os.open(tmp_path / "big", os.O_RDONLY)
    try:
        near_end = BUF + BUF_SIZE - 100
        assert guest.call("read", fd, near_end, 1000) == 100  # a short read, as Linux does
    finally:
        os.close(fd)


def test_openat_errors(guest: Guest, tmp_path: Path) -> None:
    missing = guest.cstr(0x1000, tmp_path / "missing")
    assert errno_of(guest.call("openat", AT_FDCWD, missing, 0, 0)) == "ENOENT"
    assert errno_of(guest.call("openat", AT_FDCWD, UNMAPPED, 0, 0)) == "EFAULT"
    assert errno_of(guest.call("openat", 999, guest.cstr(0x1100, "rel"), 0, 0)) == "EBADF"
    (tmp_path / "file").write_text("x")
    file = guest.cstr(0x1200, tmp_path / "file")
    assert errno_of(guest.call("openat", AT_FDCWD, file, 0o200000, 0)) == "ENOTDIR"  # O_DIRECTORY
    long = guest.cstr(0x2000, "/" + "n" * 5000)
    assert errno_of(guest.call("openat", AT_FDCWD, long, 0, 0)) == "ENAMETOOLONG"


def test_new_descriptors_are_not_close_on_exec_unless_asked(guest: Guest,
                                                            tmp_path: Path) -> None:
    path = guest.cstr(0x1000, tmp_path / "f")
    plain = guest.call("openat", AT_FDCWD, path, 0o101, 0o600)  # O_WRONLY|O_CREAT
    cloexec = guest.call("openat", AT_FDCWD, path, 0o2000001, 0)  # |O_CLOEXEC
    dup = guest.call("dup", cloexec)
    try:
        assert os.get_inheritable(plain) and not os.get_inheritable(cloexec)
        assert os.get_inheritable(dup)
        assert guest.call("fcntl", plain, 1, 0) == 0  # F_GETFD
        assert guest.call("fcntl", cloexec, 1, 0) == 1  # FD_CLOEXEC
    finally:
        for fd in (plain, cloexec, dup):
            os.close(fd)


def test_readv_writev(guest: Guest, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "v", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        a, b = guest.put(0x100, b"abc"), guest.put(0x200, b"defgh")
        iov = guest.put(0, struct.pack("<QQQQQQ", a, 3, 0, 0, b, 5))
        assert guest.call("writev", fd, iov, 3) == 8
        os.lseek(fd, 0, os.SEEK_SET)
        iov = guest.put(0, struct.pack("<QQQQ", BUF + 0x300, 2, BUF + 0x400, 10))
        assert guest.call("readv", fd, iov, 2) == 8
        assert guest.get(0x300, 2) == b"ab" and guest.get(0x400, 6) == b"cdefgh"
        assert errno_of(guest.call("readv", fd, iov, 5000)) == "EINVAL"
        assert errno_of(guest.call("readv", fd, UNMAPPED, 1)) == "EFAULT"
    finally:
        os.close(fd)


# -- pipes, fcntl, dup --------------------------------------------------------------------------------
def test_pipe2_fcntl_and_flags(guest: Guest) -> None:
    assert guest.call("pipe2", BUF, 0o4000) == 0  # O_NONBLOCK
    r, w = struct.unpack("<ii", guest.get(0, 8))
    try:
        assert guest.call("fcntl", r, 3, 0) & 0o4000  # F_GETFL
        assert errno_of(guest.call("read", r, BUF + 0x100, 10)) == "EAGAIN"
        assert guest.call("fcntl", r, 4, 0) == 0  # F_SETFL: blocking again
        assert not guest.call("fcntl", r, 3, 0) & 0o4000
        assert guest.call("write", w, guest.put(0x200, b"xyz"), 3) == 3
        assert guest.call("read", r, BUF + 0x100, 10) == 3
        d = guest.call("fcntl", r, 1030, 100)  # F_DUPFD_CLOEXEC
        assert d >= 100 and guest.call("fcntl", d, 1, 0) == 1
        assert guest.call("dup3", r, d, 0) == d and guest.call("fcntl", d, 1, 0) == 0
        assert errno_of(guest.call("dup3", r, r, 0)) == "EINVAL"
        assert guest.call("fcntl", r, 1032, 0) > 0  # F_GETPIPE_SZ
        os.close(d)
    finally:
        os.close(r)
        os.close(w)
    assert errno_of(guest.call("pipe2", UNMAPPED, 0)) == "EFAULT"
    assert errno_of(guest.call("fcntl", r, 1, 0)) == "EBADF"


def test_fcntl_record_locks(guest: Guest, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flock = struct.pack("<hh4xqqi4x", 1, 0, 0, 10, 0)  # F_WRLCK, SEEK_SET, 0, 10
        assert guest.call("fcntl", fd, 6, guest.put(0, flock)) == 0  # F_SETLK
        query = struct.pack("<hh4xqqi4x", 0, 0, 0, 0, 0)
        assert guest.call("fcntl", fd, 5, guest.put(0x40, query)) == 0  # F_GETLK
        l_type = struct.unpack("<h", guest.get(0x40, 2))[0]
        assert l_type == 2  # F_UNLCK: our own lock does not conflict
    finally:
        os.close(fd)


def test_ioctl_on_a_non_terminal(guest: Guest, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "t", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert errno_of(guest.call("ioctl", fd, 0x5401, BUF)) == "ENOTTY"  # TCGETS
        assert errno_of(guest.call("ioctl", fd, 0x12345678, BUF)) == "ENOTTY"
        assert guest.call("ioctl", fd, 0x5451, 0) == 0  # FIOCLEX
        assert not os.get_inheritable(fd)
    finally:
        os.close(fd)
    assert errno_of(guest.call("ioctl", 4321, 0x5401, BUF)) == "EBADF"
    r, w = os.pipe()
    try:
        os.write(w, b"12345")
        assert guest.call("ioctl", r, 0x541B, BUF) == 0  # FIONREAD
        assert struct.unpack("<i", guest.get(0, 4))[0] == 5
    finally:
        os.close(r)
        os.close(w)


# -- names and directories ------------------------------------------------------------------------------
def test_names(guest: Guest, tmp_path: Path) -> None:
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert guest.call("mkdirat", d, guest.cstr(0, "dir"), 0o750) == 0
        assert errno_of(guest.call("mkdirat", d, guest.cstr(0, "dir"), 0o750)) == "EEXIST"
        assert guest.call("symlinkat", guest.cstr(0, "dir"), d, guest.cstr(0x100, "sym")) == 0
        n = guest.call("readlinkat", d, guest.cstr(0, "sym"), BUF + 0x200, 100)
        assert guest.get(0x200, n) == b"dir"
        assert guest.call("renameat2", d, guest.cstr(0, "sym"), d, guest.cstr(0x100, "sym2"),
                          0) == 0
        (tmp_path / "other").write_text("x")
        assert errno_of(guest.call("renameat2", d, guest.cstr(0, "sym2"), d,
                                   guest.cstr(0x100, "other"), 1)) == "EEXIST"  # NOREPLACE
        assert errno_of(guest.call("unlinkat", d, guest.cstr(0, "dir"), 0)) == "EISDIR"
        assert guest.call("unlinkat", d, guest.cstr(0, "dir"), 0x200) == 0  # AT_REMOVEDIR
        assert guest.call("linkat", d, guest.cstr(0, "other"), d, guest.cstr(0x100, "hard"),
                          0) == 0
        assert os.stat(tmp_path / "other").st_nlink == 2
        assert guest.call("faccessat", d, guest.cstr(0, "hard"), 4) == 0  # R_OK
        assert errno_of(guest.call("faccessat", d, guest.cstr(0, "nope"), 0)) == "ENOENT"
        assert guest.call("fchmodat", d, guest.cstr(0, "hard"), 0o604) == 0
        assert stat.S_IMODE(os.stat(tmp_path / "other").st_mode) == 0o604
        times = struct.pack("<qqqq", 100, 0x3FFFFFFE, 200, 5)  # atime UTIME_OMIT
        before = os.stat(tmp_path / "hard").st_atime_ns
        assert guest.call("utimensat", d, guest.cstr(0, "hard"), guest.put(0x300, times),
                          0) == 0
        st = os.stat(tmp_path / "hard")
        assert st.st_mtime_ns == 200_000_000_005 and st.st_atime_ns == before
    finally:
        os.close(d)


def test_readlink_of_proc_self_exe_names_the_guest(guest: Guest) -> None:
    n = guest.call("readlinkat", AT_FDCWD, guest.cstr(0, "/proc/self/exe"), BUF + 0x100, 4096)
    assert guest.get(0x100, n) == b"/opt/guest/program"
    n = guest.call("readlinkat", AT_FDCWD, guest.cstr(0, "/proc/self/exe"), BUF + 0x100, 4)
    assert n == 4 and guest.get(0x100, 4) == b"/opt"


def test_getcwd_chdir_umask(guest: Guest, tmp_path: Path) -> None:
    old = os.getcwd()
    old_mask = os.umask(0o022)
    try:
        assert guest.call("chdir", guest.cstr(0, tmp_path)) == 0
        n = guest.call("getcwd", BUF + 0x100, 4096)
        assert guest.get(0x100, n) == os.fsencode(os.path.realpath(tmp_path)) + b"\0"
        assert errno_of(guest.call("getcwd", BUF + 0x100, 2)) == "ERANGE"
        assert errno_of(guest.call("chdir", guest.cstr(0, tmp_path / "nope"))) == "ENOENT"
        assert guest.call("umask", 0o077) == 0o022
        assert guest.call("umask", 0o022) == 0o077
    finally:
        os.chdir(old)
        os.umask(old_mask)


def test_statfs_layout(guest: Guest, tmp_path: Path) -> None:
    assert guest.call("statfs", guest.cstr(0, tmp_path), BUF + 0x100) == 0
    f_type, bsize, blocks = struct.unpack("<qqQ", guest.get(0x100, 24))
    namelen, frsize = struct.unpack_from("<qq", guest.get(0x100, 120), 64)  # after f_fsid
    vfs = os.statvfs(tmp_path)
    assert (blocks, namelen, frsize) == (vfs.f_blocks, vfs.f_namemax, vfs.f_frsize)
    assert bsize > 0 and f_type != 0


# -- poll, select, epoll -------------------------------------------------------------------------------
def test_ppoll(guest: Guest) -> None:
    r, w = os.pipe()
    try:
        fds = guest.put(0, struct.pack("<ihhihh", r, 1, 0, w, 4, 0))  # POLLIN, POLLOUT
        zero = guest.put(0x100, struct.pack("<qq", 0, 0))
        assert guest.call("ppoll", fds, 2, zero, 0, 8) == 1
        assert struct.unpack("<ihhihh", guest.get(0, 16))[5] == 4
        os.write(w, b"x")
        assert guest.call("ppoll", fds, 2, zero, 0, 8) == 2
        assert struct.unpack("<ihhihh", guest.get(0, 16))[2] == 1
        bad = guest.put(0x200, struct.pack("<ihh", 999, 1, 0))
        assert guest.call("ppoll", bad, 1, zero, 0, 8) == 1
        assert struct.unpack("<ihh", guest.get(0x200, 8))[2] == 0x20  # POLLNVAL
        assert errno_of(guest.call("ppoll", UNMAPPED, 1, zero, 0, 8)) == "EFAULT"
    finally:
        os.close(r)
        os.close(w)


def test_ppoll_times_out(guest: Guest) -> None:
    r, w = os.pipe()
    try:
        fds = guest.put(0, struct.pack("<ihh", r, 1, 0))
        ts = guest.put(0x100, struct.pack("<qq", 0, 30_000_000))
        assert guest.call("ppoll", fds, 1, ts, 0, 8) == 0
        assert struct.unpack("<qq", guest.get(0x100, 16)) == (0, 0)  # time left
    finally:
        os.close(r)
        os.close(w)


def test_pselect6(guest: Guest) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        nfds = max(r, w) + 1
        rset = guest.put(0, (1 << r).to_bytes(128, "little"))
        wset = guest.put(0x100, (1 << r).to_bytes(128, "little"))  # r is not writable
        zero = guest.put(0x200, struct.pack("<qq", 0, 0))
        assert guest.call("pselect6", nfds, rset, wset, 0, zero, 0) == 1
        assert int.from_bytes(guest.get(0, 8), "little") == 1 << r
        assert int.from_bytes(guest.get(0x100, 8), "little") == 0
    finally:
        os.close(r)
        os.close(w)


def test_epoll_keeps_the_guests_data_word(guest: Guest) -> None:
    r, w = os.pipe()
    ep = guest.call("epoll_create1", 0o2000000)
    try:
        assert ep >= 0
        event = guest.put(0, struct.pack("<I4xQ", 1, 0x1122334455667788))  # EPOLLIN, 16 bytes
        assert guest.call("epoll_ctl", ep, 1, r, event) == 0  # EPOLL_CTL_ADD
        assert guest.call("epoll_pwait", ep, BUF + 0x100, 8, 0, 0, 8) == 0
        os.write(w, b"x")
        assert guest.call("epoll_pwait", ep, BUF + 0x100, 8, 1000, 0, 8) == 1
        assert struct.unpack("<I4xQ", guest.get(0x100, 16)) == (1, 0x1122334455667788)
        assert errno_of(guest.call("epoll_pwait", ep, BUF + 0x100, 0, 0, 0, 8)) == "EINVAL"
        assert errno_of(guest.call("epoll_ctl", ep, 1, r, event)) == "EEXIST"
    finally:
        os.close(ep)
        os.close(r)
        os.close(w)


def test_eventfd_and_memfd(guest: Guest) -> None:
    efd = guest.call("eventfd2", 3, 0)
    try:
        assert guest.call("read", efd, BUF, 8) == 8
        assert struct.unpack("<Q", guest.get(0, 8))[0] == 3
    finally:
        os.close(efd)
    mfd = guest.call("memfd_create", guest.cstr(0, "scratch"), 1)  # MFD_CLOEXEC
    try:
        assert guest.call("ftruncate", mfd, 8192) == 0
        assert os.fstat(mfd).st_size == 8192 and not os.get_inheritable(mfd)
    finally:
        os.close(mfd)


# -- sockets -----------------------------------------------------------------------------------------
def test_socketpair_sendmsg_recvmsg(guest: Guest) -> None:
    assert guest.call("socketpair", socket.AF_UNIX, socket.SOCK_STREAM, 0, BUF) == 0
    a, b = struct.unpack("<ii", guest.get(0, 8))
    try:
        iov = guest.put(0x100, struct.pack("<QQQQ", guest.put(0x200, b"hello "), 6,
                                           guest.put(0x300, b"world"), 5))
        msg = guest.put(0x400, struct.pack("<QI4xQQQQi4x", 0, 0, iov, 2, 0, 0, 0))
        assert guest.call("sendmsg", a, msg, 0) == 11
        iov = guest.put(0x500, struct.pack("<QQQQ", BUF + 0x600, 4, BUF + 0x700, 100))
        msg = guest.put(0x800, struct.pack("<QI4xQQQQi4x", 0, 0, iov, 2, 0, 0, 0))
        assert guest.call("recvmsg", b, msg, 0) == 11
        assert guest.get(0x600, 4) == b"hell" and guest.get(0x700, 7) == b"o world"
        assert guest.call("sendto", b, guest.put(0x900, b"back"), 4, 0, 0, 0) == 4
        assert guest.call("recvfrom", a, BUF + 0xA00, 10, 0, 0, 0) == 4
        assert guest.get(0xA00, 4) == b"back"
        assert guest.call("shutdown", a, socket.SHUT_WR) == 0
        assert guest.call("recvfrom", b, BUF + 0xA00, 10, 0, 0, 0) == 0
    finally:
        os.close(a)
        os.close(b)


def test_inet_listen_connect_accept(guest: Guest) -> None:
    s = guest.call("socket", socket.AF_INET, socket.SOCK_STREAM, 0)
    c = guest.call("socket", socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
    conn = -1
    try:
        loopback = struct.pack(">HH4s8x", socket.AF_INET, 0, socket.inet_aton("127.0.0.1"))
        loopback = struct.pack("<H", socket.AF_INET) + loopback[2:]  # sa_family is host order
        assert guest.call("bind", s, guest.put(0, loopback), 16) == 0
        assert guest.call("listen", s, 4) == 0
        guest.put(0x100, struct.pack("<i", 16))
        assert guest.call("getsockname", s, BUF + 0x40, BUF + 0x100) == 0
        port = struct.unpack(">H", guest.get(0x42, 2))[0]
        assert port != 0
        assert guest.call("connect", c, BUF + 0x40, 16) == 0
        guest.put(0x100, struct.pack("<i", 16))
        conn = guest.call("accept4", s, BUF + 0x200, BUF + 0x100, 0)
        assert conn >= 0
        assert struct.unpack("<H", guest.get(0x200, 2))[0] == socket.AF_INET
        guest.put(0x300, struct.pack("<i", 4))
        assert guest.call("getsockopt", s, socket.SOL_SOCKET, socket.SO_TYPE, BUF + 0x310,
                          BUF + 0x300) == 0
        assert struct.unpack("<i", guest.get(0x310, 4))[0] == socket.SOCK_STREAM
    finally:
        for fd in (s, c, conn):
            if fd >= 0:
                os.close(fd)


def test_zero_byte_read_of_an_empty_pipe_does_not_block(guest: Guest) -> None:
    r, w = os.pipe()
    try:
        assert guest.call("read", r, BUF, 0) == 0
        assert guest.call("write", w, BUF, 0) == 0
    finally:
        os.close(r)
        os.close(w)


def test_old_getdents_has_d_type_last(guest: Guest, tmp_path: Path) -> None:
    """x86_64's getdents (struct linux_dirent), checked through the same dispatcher."""
    from vm_runtime.linux.syscalls import REGISTRY

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        n = REGISTRY["getdents"].fn(guest.p, guest.t, fd, BUF, 4096)
        raw = guest.get(0, n)
    finally:
        os.close(fd)
    found = {}
    pos = 0
    while pos < n:
        ino, _off, reclen = struct.unpack_from("<QqH", raw, pos)
        name = raw[pos + 18:pos + reclen].split(b"\0", 1)[0].decode()
        found[name] = (ino, raw[pos + reclen - 1])
        pos += reclen
    assert found["a-file"] == (os.stat(tmp_path / "a-file").st_ino, DT_REG)
    assert found["a-dir"][1] == DT_DIR and set(found) == {".", "..", "a-file", "a-dir"}
