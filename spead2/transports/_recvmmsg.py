"""Several datagrams per system call: Linux ``recvmmsg(2)`` through ctypes.

One ``socket.recv_into`` costs about 1.2 µs here (the kernel's copy
included), paid for every datagram; ``recvmmsg`` fills up to a batch of
fixed-size slots of one buffer in one call. Where the C library has no
``recvmmsg`` (not Linux) or ctypes is unavailable, :func:`make_batch_receiver`
returns None and the UDP reader uses :class:`SingleReceiver` (one
``recv_into`` per call, same interface) instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys
from collections.abc import Callable

__all__ = ["BatchReceiver", "SingleReceiver", "make_batch_receiver", "SLOTS_BUDGET"]

#: Most bytes of slots one reader allocates (fewer slots for large ``max_size``).
SLOTS_BUDGET = 1 << 20


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _load() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_RECVMMSG = _load()


class BatchReceiver:
    """Receives up to ``slots`` datagrams of at most ``slot_size`` bytes per call.

    :meth:`receive` returns how many arrived and leaves datagram ``i`` in
    ``view[i * slot_size :]``, its length in ``words[first + i * stride]``,
    valid until the next call. A datagram longer than ``slot_size`` is cut to
    ``slot_size`` bytes (so a slot one byte larger than the largest datagram
    wanted tells oversized ones apart). Raises ``OSError`` as ``recv`` would.
    """

    def __init__(self, fd: int, slot_size: int, slots: int, flags: int) -> None:
        assert _RECVMMSG is not None
        self.slot_size = slot_size
        self.slots = slots
        self._fd = fd
        self._flags = flags
        self._buffer = bytearray(slot_size * slots)
        self.view = memoryview(self._buffer)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._buffer))
        self._iovecs = (_Iovec * slots)()
        self._messages = (_Mmsghdr * slots)()
        for i in range(slots):
            self._iovecs[i].iov_base = base + i * slot_size
            self._iovecs[i].iov_len = slot_size
            header = self._messages[i].msg_hdr
            header.msg_iov = ctypes.pointer(self._iovecs[i])
            header.msg_iovlen = 1
        # msg_len of datagram i is words[first + i * stride]: plain ints, no
        # ctypes structure built per datagram.
        self.stride = ctypes.sizeof(_Mmsghdr) // 4
        self.words = (ctypes.c_uint32 * (self.stride * slots)).from_buffer(self._messages)
        self.first = _Mmsghdr.msg_len.offset // 4
        self._address = ctypes.addressof(self._messages)

    def receive(self) -> int:
        """Receive what is waiting, up to ``slots`` datagrams (``BlockingIOError`` if none)."""
        n = _RECVMMSG(self._fd, self._address, self.slots, self._flags, None)  # type: ignore[misc]
        if n < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return n


class SingleReceiver:
    """:class:`BatchReceiver`'s interface over one ``recv_into`` (one slot) per call."""

    slots = 1
    first = 0
    stride = 1

    def __init__(self, sock: socket.socket, slot_size: int, flags: int) -> None:
        self.slot_size = slot_size
        self._buffer = bytearray(slot_size)
        self.view = memoryview(self._buffer)
        self.words = [0]
        self._recv_into = sock.recv_into
        self._flags = flags

    def receive(self) -> int:
        """Receive one datagram (``BlockingIOError`` if none is waiting)."""
        self.words[0] = self._recv_into(self._buffer, 0, self._flags)
        return 1


def make_batch_receiver(fd: int, slot_size: int, max_slots: int, flags: int) -> BatchReceiver | None:
    """A :class:`BatchReceiver` for ``fd``, or None where ``recvmmsg`` is unavailable."""
    if _RECVMMSG is None:
        return None
    slots = max(1, min(max_slots, SLOTS_BUDGET // slot_size))
    return BatchReceiver(fd, slot_size, slots, flags)
