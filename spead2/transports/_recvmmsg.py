"""Several datagrams per system call: Linux ``recvmmsg(2)`` through ctypes.

One ``socket.recv_into`` costs about 1.2 µs here (the kernel's copy
included), paid for every datagram; ``recvmmsg`` fills up to a batch of
fixed-size slots of one buffer in one call. Where the C library has no
``recvmmsg`` (not Linux) or ctypes is unavailable, :func:`make_batch_receiver`
returns None and the UDP reader uses :class:`SingleReceiver` (one
``recv_into`` per call, same interface) instead.

A receiver made with a ``header_size`` scatters each datagram over three
iovecs: its first ``header_size`` bytes into the slot, the next bytes
wherever :meth:`BatchReceiver.aim` said (by default nowhere: zero bytes),
the rest into the slot after them. Unaimed, a slot is filled exactly as with
one iovec; aimed, a payload can go straight to its place in a heap (see
:mod:`spead2.protocols.placement`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["BatchReceiver", "SingleReceiver", "make_batch_receiver", "address_of", "SLOTS_BUDGET"]

#: Most bytes of slots one reader allocates (fewer slots for large ``max_size``).
#: Per call, the Python work of a batch (a few tens of µs) is shared by its
#: datagrams, so a receiver that is behind catches up faster with more slots.
SLOTS_BUDGET = 1 << 21


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
    ``view[i * slot_size :]`` (``starts[i]``), its length in
    ``words[first + i * stride]`` and ``sizes[i]`` (an array view of the
    same words), valid until the next call. A datagram longer than ``slot_size`` is cut to
    ``slot_size`` bytes (so a slot one byte larger than the largest datagram
    wanted tells oversized ones apart). Raises ``OSError`` as ``recv`` would.
    """

    def __init__(self, fd: int, slot_size: int, slots: int, flags: int, header_size: int = 0) -> None:
        assert _RECVMMSG is not None
        if not 0 <= header_size < slot_size:
            raise ValueError(f"header_size {header_size} must be less than slot_size {slot_size}")
        self.slot_size = slot_size
        self.slots = slots
        self._fd = fd
        self._flags = flags
        self._buffer = bytearray(slot_size * slots)
        self.view = memoryview(self._buffer)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._buffer))
        self._messages = (_Mmsghdr * slots)()
        #: Aimable: ``(slots, 3, 2)`` iov_base/iov_len words of each slot's iovecs.
        self._iov: npt.NDArray[np.uint64] | None = None
        self.header_size = header_size
        #: Slots aimed by the last :meth:`aim` (0 when none).
        self.aimed = 0
        if header_size:
            assert ctypes.sizeof(_Iovec) == 16
            self._iov = np.zeros((slots, 3, 2), dtype=np.uint64)
            self._iovecs = (_Iovec * (3 * slots)).from_buffer(self._iov)
            self._payload_bases = base + np.arange(slots, dtype=np.uint64) * np.uint64(slot_size) + np.uint64(header_size)
            self._room = slot_size - header_size
            self._iov[:, 0, 0] = self._payload_bases - np.uint64(header_size)
            self._iov[:, 0, 1] = header_size
            #: The second and third iovecs of every slot, unaimed: nothing, then the whole slot.
            self._unaimed = np.empty((slots, 2, 2), dtype=np.uint64)
            self._unaimed[:, :, 0] = self._payload_bases[:, None]
            self._unaimed[:, 0, 1] = 0
            self._unaimed[:, 1, 1] = self._room
            self._unaim(slots)
            per_slot = 3
        else:
            self._iovecs = (_Iovec * slots)()
            for i in range(slots):
                self._iovecs[i].iov_base = base + i * slot_size
                self._iovecs[i].iov_len = slot_size
            per_slot = 1
        for i in range(slots):
            header = self._messages[i].msg_hdr
            header.msg_iov = ctypes.pointer(self._iovecs[per_slot * i])
            header.msg_iovlen = per_slot
        # msg_len of datagram i is words[first + i * stride]: plain ints, no
        # ctypes structure built per datagram.
        self.stride = ctypes.sizeof(_Mmsghdr) // 4
        self.words = (ctypes.c_uint32 * (self.stride * slots)).from_buffer(self._messages)
        self.first = _Mmsghdr.msg_len.offset // 4
        self.sizes: npt.NDArray[np.uint32] = np.frombuffer(self.words, dtype=np.uint32)[self.first :: self.stride]
        #: Where each slot starts in ``view``.
        self.starts: npt.NDArray[np.intp] = np.arange(slots, dtype=np.intp) * slot_size
        self._address = ctypes.addressof(self._messages)

    def receive(self) -> int:
        """Receive what is waiting, up to ``slots`` datagrams (``BlockingIOError`` if none)."""
        n = _RECVMMSG(self._fd, self._address, self.slots, self._flags, None)  # type: ignore[misc]
        if n < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return n

    def aim(self, address: int, offsets: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> int:
        """Receive bytes ``header_size`` onwards of the next datagrams elsewhere.

        For the next :meth:`receive` only: datagram ``i`` (of the first
        ``len(offsets)``, at most ``slots``) puts up to ``lengths[i]`` bytes
        after its header at address ``address + offsets[i]`` (memory the
        caller keeps alive and unmoved until :meth:`restore`), then the rest
        in its slot right after where they would have been. Returns how many
        slots were aimed: 0 if this receiver was made without a header size
        or a length leaves no room to tell an oversized datagram.
        """
        iov = self._iov
        k = min(len(offsets), self.slots)
        if iov is None or k == 0 or int(lengths[:k].max()) >= self._room or int(lengths[:k].min()) < 0:
            return 0
        lengths = lengths[:k]
        iov[:k, 1, 0] = address + offsets[:k]
        iov[:k, 1, 1] = lengths
        iov[:k, 2, 0] = self._payload_bases[:k] + lengths.astype(np.uint64)
        iov[:k, 2, 1] = self._room - lengths
        self.aimed = k
        return k

    def restore(
        self, first: int, received: int, buffer: memoryview | bytearray,
        offsets: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
    ) -> None:
        """Undo :meth:`aim` after :meth:`receive` returned ``received``.

        Aimed datagrams ``first`` onwards get back, into their slot right after
        the header, the bytes that went to ``buffer[offsets[i]:]`` (``buffer``
        being the memory at ``address``), so their slot holds the whole
        datagram as if never aimed; datagrams before ``first`` are left as
        they are. Every slot is unaimed.
        """
        aimed = self.aimed
        if not aimed:
            return
        header_size = self.header_size
        slot = self.slot_size
        words = self.words
        stride = self.stride
        index = self.first + first * stride
        view = self.view
        for i in range(first, min(aimed, received)):
            got = min(words[index] - header_size, int(lengths[i]))
            index += stride
            if got > 0:
                start = i * slot + header_size
                source = int(offsets[i])
                view[start : start + got] = buffer[source : source + got]
        self._unaim(aimed)

    def _unaim(self, count: int) -> None:
        iov = self._iov
        assert iov is not None
        iov[:count, 1:] = self._unaimed[:count]
        self.aimed = 0


class SingleReceiver:
    """:class:`BatchReceiver`'s interface over one ``recv_into`` (one slot) per call."""

    slots = 1
    first = 0
    stride = 1
    aimed = 0

    def __init__(self, sock: socket.socket, slot_size: int, flags: int) -> None:
        self.slot_size = slot_size
        self._buffer = bytearray(slot_size)
        self.view = memoryview(self._buffer)
        self.sizes: npt.NDArray[np.uint32] = np.zeros(1, dtype=np.uint32)
        self.words = self.sizes
        self.starts: npt.NDArray[np.intp] = np.zeros(1, dtype=np.intp)
        self._recv_into = sock.recv_into
        self._flags = flags

    def receive(self) -> int:
        """Receive one datagram (``BlockingIOError`` if none is waiting)."""
        self.sizes[0] = self._recv_into(self._buffer, 0, self._flags)
        return 1


def make_batch_receiver(
    fd: int, slot_size: int, max_slots: int, flags: int, header_size: int = 0
) -> BatchReceiver | None:
    """A :class:`BatchReceiver` for ``fd``, or None where ``recvmmsg`` is unavailable.

    ``header_size`` (if less than ``slot_size``, else ignored) makes it aimable.
    """
    if _RECVMMSG is None:
        return None
    slots = max(1, min(max_slots, SLOTS_BUDGET // slot_size))
    return BatchReceiver(fd, slot_size, slots, flags, header_size if header_size < slot_size else 0)


def address_of(buffer: bytearray) -> int:
    """The address of ``buffer``'s bytes (valid while it is neither resized nor freed)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
