"""Sockets: AF_UNIX, AF_INET, AF_INET6 (any family the host has), passed through to the host
kernel. sockaddr, msghdr, cmsghdr, socket options and SOCK_*/MSG_* flags have one layout and
one set of values on riscv64, aarch64 and x86_64, so buffers are copied as they are;
descriptors passed with SCM_RIGHTS are host descriptors, like every guest descriptor.

Calls that wait (accept, recv, send on a full buffer) wait in slices so that a guest signal
interrupts them (and restarts them after an SA_RESTART handler, as Linux does).
"""

from __future__ import annotations

import select
import struct

from . import Errno, syscall
from . import host as _host
from .fd import _sigpipe
from .util import (
    EFAULT,
    EINVAL,
    PROT_READ,
    PROT_WRITE,
    accessible,
    iovecs,
    s32,
    u32,
    wait_fd,
)

MSG_DONTWAIT, MSG_NOSIGNAL = 0x40, 0x4000
EPIPE = 32
SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
MSGHDR = struct.Struct("<QI4xQQQQi4x")  # struct msghdr of 64-bit Linux: 56 bytes
MMSGHDR_SIZE = 64  # struct mmsghdr: a msghdr and unsigned int msg_len, padded
MAX_IO = 1 << 24


def _sockaddr_in(p, addr: int, length: int):
    length = u32(length)
    if not addr:
        return None, 0
    if length > SOCKADDR_MAX:
        raise Errno(EINVAL)
    return _host.buffer(length, p.mem.read(addr, length)), length


def _addr_out_start(p, addr: int, lenp: int):
    """Room for a sockaddr the kernel gives back: (host buffer, its size, host length cell)."""
    if not addr or not lenp:
        return None, 0, None
    size = s32(struct.unpack("<i", p.mem.read(lenp, 4))[0])
    if size < 0:
        raise Errno(EINVAL)
    room = min(size, SOCKADDR_MAX)
    return _host.buffer(SOCKADDR_MAX), size, _host.buffer(4, struct.pack("<i", room))


def _addr_out_end(p, addr: int, lenp: int, buf, size: int, cell) -> None:
    if buf is None:
        return
    actual = struct.unpack("<i", _host.raw(cell, 4))[0]
    p.mem.write(addr, _host.raw(buf, min(size, actual, SOCKADDR_MAX)))
    p.mem.write(lenp, struct.pack("<i", actual))


@syscall("socket", "int", "hex", "int")
def sys_socket(p, t, domain: int, type_: int, protocol: int) -> int:
    return _host.syscall("socket", u32(domain), u32(type_), u32(protocol))


@syscall("socketpair", "int", "hex", "int", "ptr")
def sys_socketpair(p, t, domain: int, type_: int, protocol: int, sv: int) -> int:
    if not p.mem.check(sv, 8, PROT_WRITE):
        raise Errno(EFAULT)
    buf = _host.buffer(8)
    _host.syscall("socketpair", u32(domain), u32(type_), u32(protocol), buf)
    p.mem.write(sv, _host.raw(buf, 8))
    return 0


@syscall("bind", "fd", "ptr", "int")
def sys_bind(p, t, fd: int, addr: int, length: int) -> int:
    buf, n = _sockaddr_in(p, addr, length)
    return _host.syscall("bind", s32(fd), buf, n)


@syscall("connect", "fd", "ptr", "int")
def sys_connect(p, t, fd: int, addr: int, length: int) -> int:
    buf, n = _sockaddr_in(p, addr, length)
    return _host.syscall("connect", s32(fd), buf, n)


@syscall("listen", "fd", "int")
def sys_listen(p, t, fd: int, backlog: int) -> int:
    return _host.syscall("listen", s32(fd), s32(backlog))


@syscall("accept4", "fd", "ptr", "ptr", "hex")
def sys_accept4(p, t, fd: int, addr: int, lenp: int, flags: int) -> int:
    fd = s32(fd)
    buf, size, cell = _addr_out_start(p, addr, lenp)
    wait_fd(p, t, fd, select.POLLIN)
    result = _host.syscall("accept4", fd, buf, cell, u32(flags))
    _addr_out_end(p, addr, lenp, buf, size, cell)
    return result


@syscall("accept", "fd", "ptr", "ptr")
def sys_accept(p, t, fd: int, addr: int, lenp: int) -> int:
    return sys_accept4(p, t, fd, addr, lenp, 0)


@syscall("shutdown", "fd", "int")
def sys_shutdown(p, t, fd: int, how: int) -> int:
    return _host.syscall("shutdown", s32(fd), u32(how))


def _name(call: str):
    def handler(p, t, fd: int, addr: int, lenp: int) -> int:
        buf, size, cell = _addr_out_start(p, addr, lenp)
        if buf is None:
            raise Errno(EFAULT)
        result = _host.syscall(call, s32(fd), buf, cell)
        _addr_out_end(p, addr, lenp, buf, size, cell)
        return result

    return handler


syscall("getsockname", "fd", "ptr", "ptr")(_name("getsockname"))
syscall("getpeername", "fd", "ptr", "ptr")(_name("getpeername"))


@syscall("setsockopt", "fd", "int", "int", "ptr", "int")
def sys_setsockopt(p, t, fd: int, level: int, name: int, value: int, length: int) -> int:
    length = s32(length)
    if length < 0:
        raise Errno(EINVAL)
    data = p.mem.read(value, min(length, 1 << 16)) if value else b""
    buf = _host.buffer(len(data), data) if value else None
    return _host.syscall("setsockopt", s32(fd), s32(level), s32(name), buf, length)


@syscall("getsockopt", "fd", "int", "int", "ptr", "ptr")
def sys_getsockopt(p, t, fd: int, level: int, name: int, value: int, lenp: int) -> int:
    size = s32(struct.unpack("<i", p.mem.read(lenp, 4))[0])
    if size < 0:
        raise Errno(EINVAL)
    room = min(size, 1 << 16)
    buf = _host.buffer(room)
    cell = _host.buffer(4, struct.pack("<i", room))
    result = _host.syscall("getsockopt", s32(fd), s32(level), s32(name), buf, cell)
    actual = struct.unpack("<i", _host.raw(cell, 4))[0]
    if value:
        p.mem.write(value, _host.raw(buf, min(actual, room)))
    p.mem.write(lenp, struct.pack("<i", actual))
    return result


# -- sending and receiving ----------------------------------------------------------------------------
def _send(p, t, fd: int, flags: int, call) -> int:
    if not flags & MSG_DONTWAIT:
        wait_fd(p, t, fd, select.POLLOUT)
    try:
        return call()
    except BrokenPipeError:
        if not flags & MSG_NOSIGNAL:
            _sigpipe(p, t)
        raise Errno(EPIPE) from None


def _recv_wait(p, t, fd: int, flags: int) -> None:
    if not flags & MSG_DONTWAIT:
        wait_fd(p, t, fd, select.POLLIN)


@syscall("sendto", "fd", "buf", "size", "hex", "ptr", "int")
def sys_sendto(p, t, fd: int, buf: int, length: int, flags: int, addr: int, addrlen: int) -> int:
    fd, flags = s32(fd), u32(flags)
    n = accessible(p, buf, min(length, MAX_IO), PROT_READ)
    if n == 0 and length:
        raise Errno(EFAULT)
    data = p.mem.read(buf, n)
    host_data = _host.buffer(n, data)
    sa, salen = _sockaddr_in(p, addr, addrlen)
    return _send(p, t, fd, flags,
                 lambda: _host.syscall("sendto", fd, host_data, n, flags, sa, salen))


@syscall("recvfrom", "fd", "obuf", "size", "hex", "ptr", "ptr")
def sys_recvfrom(p, t, fd: int, buf: int, length: int, flags: int, addr: int, lenp: int) -> int:
    fd, flags = s32(fd), u32(flags)
    n = accessible(p, buf, min(length, MAX_IO), PROT_WRITE)
    if n == 0 and length:
        raise Errno(EFAULT)
    host_buf = _host.buffer(n)
    sa, size, cell = _addr_out_start(p, addr, lenp)
    _recv_wait(p, t, fd, flags)
    got = _host.syscall("recvfrom", fd, host_buf, n, flags, sa, cell)
    p.mem.write(buf, _host.raw(host_buf, min(got, n)))
    _addr_out_end(p, addr, lenp, sa, size, cell)
    return got


class _Msg:
    """A guest struct msghdr and the host one made from it (one iovec for the whole data)."""

    def __init__(self, p, addr: int, sending: bool) -> None:
        self.p = p
        self.addr = addr
        (self.name, self.namelen, self.iov, self.iovlen, self.control, self.controllen,
         self.flags) = MSGHDR.unpack(p.mem.read(addr, MSGHDR.size))
        self.vecs = []
        total = 0
        need = PROT_READ if sending else PROT_WRITE
        for base, length in iovecs(p, self.iov, self.iovlen):
            length = min(length, MAX_IO - total)
            n = accessible(p, base, length, need)
            if n:
                self.vecs.append((base, n))
                total += n
            if n < length:
                if total == 0:
                    raise Errno(EFAULT)
                break
        self.total = total
        if sending:
            data = b"".join(p.mem.read(b, n) for b, n in self.vecs)
            self.data = _host.buffer(total, data)
        else:
            self.data = _host.buffer(total)
        if self.namelen > SOCKADDR_MAX and sending:
            raise Errno(EINVAL)
        self.name_buf = None
        if self.name:
            init = p.mem.read(self.name, min(self.namelen, SOCKADDR_MAX)) if sending else b""
            self.name_buf = _host.buffer(SOCKADDR_MAX, init)
        self.control_len = min(self.controllen, 1 << 16)
        self.control_buf = None
        if self.control and self.control_len:
            init = p.mem.read(self.control, self.control_len) if sending else b""
            self.control_buf = _host.buffer(self.control_len, init)
        self.iovec = _host.buffer(16, struct.pack("<QQ", _host.address(self.data), total))
        self.host = _host.buffer(MSGHDR.size, MSGHDR.pack(
            _host.address(self.name_buf) if self.name_buf is not None else 0,
            min(self.namelen, SOCKADDR_MAX) if self.name else 0,
            _host.address(self.iovec), 1,
            _host.address(self.control_buf) if self.control_buf is not None else 0,
            self.control_len if self.control_buf is not None else 0, 0))

    def received(self, got: int) -> None:
        """Copy what recvmsg wrote back into the guest's buffers and msghdr."""
        p = self.p
        raw = _host.raw(self.data, self.total)
        left = min(got, self.total)
        offset = 0
        for base, n in self.vecs:
            if left <= 0:
                break
            k = min(n, left)
            p.mem.write(base, raw[offset:offset + k])
            offset += k
            left -= k
        _, namelen, _, _, _, controllen, flags = MSGHDR.unpack(_host.raw(self.host, MSGHDR.size))
        if self.name_buf is not None:
            p.mem.write(self.name, _host.raw(self.name_buf, min(namelen, self.namelen,
                                                                 SOCKADDR_MAX)))
        if self.control_buf is not None:
            p.mem.write(self.control, _host.raw(self.control_buf, controllen))
        else:
            controllen = 0
        p.mem.write(self.addr, MSGHDR.pack(self.name, namelen if self.name else 0, self.iov,
                                           self.iovlen, self.control, controllen, flags))


@syscall("sendmsg", "fd", "ptr", "hex")
def sys_sendmsg(p, t, fd: int, msg: int, flags: int) -> int:
    fd, flags = s32(fd), u32(flags)
    m = _Msg(p, msg, sending=True)
    return _send(p, t, fd, flags, lambda: _host.syscall("sendmsg", fd, m.host, flags))


@syscall("recvmsg", "fd", "ptr", "hex")
def sys_recvmsg(p, t, fd: int, msg: int, flags: int) -> int:
    fd, flags = s32(fd), u32(flags)
    m = _Msg(p, msg, sending=False)
    _recv_wait(p, t, fd, flags)
    got = _host.syscall("recvmsg", fd, m.host, flags)
    m.received(got)
    return got


@syscall("sendmmsg", "fd", "ptr", "int", "hex")
def sys_sendmmsg(p, t, fd: int, vec: int, count: int, flags: int) -> int:
    sent = 0
    for i in range(min(u32(count), 1024)):
        addr = vec + i * MMSGHDR_SIZE
        try:
            n = sys_sendmsg(p, t, fd, addr, flags)
        except (OSError, Errno):
            if sent:
                break
            raise
        p.mem.write(addr + MSGHDR.size, struct.pack("<I", n))
        sent += 1
    return sent


@syscall("recvmmsg", "fd", "ptr", "int", "hex", "ptr")
def sys_recvmmsg(p, t, fd: int, vec: int, count: int, flags: int, timeout: int) -> int:
    got = 0
    for i in range(min(u32(count), 1024)):
        addr = vec + i * MMSGHDR_SIZE
        try:
            n = sys_recvmsg(p, t, fd, addr, flags)
        except (OSError, Errno):
            if got:
                break
            raise
        p.mem.write(addr + MSGHDR.size, struct.pack("<I", n))
        got += 1
        if u32(flags) & 0x10000:  # MSG_WAITFORONE
            flags |= MSG_DONTWAIT
    return got


__all__ = ["MSGHDR"]
