"""Chunk streams (API.md §2.9, §2.10): heaps received straight into pre-allocated chunks.

* :class:`Chunk`, :class:`ChunkStreamConfig` — the user's chunk objects and
  the placement configuration (including the place callback, accepted as the
  reference accepts it, or as a plain Python callable).
* :class:`ChunkRingbuffer` — the blocking, thread-safe ring of chunks
  (``recv.asyncio.ChunkRingbuffer`` adds coroutines on top).
* :class:`ChunkRingStream` — a receive stream whose heaps land in chunks from
  a free ring and whose full chunks go to a data ring.
* :class:`ChunkStreamRingGroup` and its :class:`ChunkStreamGroupMember`\\ s —
  several streams sharing each chunk, each writing its part.

The packet work is the sans-IO :class:`~spead2.protocols.chunking.ChunkPlacer`;
this module supplies it with chunks (a *source*) and runs it on the stream's
event loop. The placer never blocks: when no chunk is available it holds the
packet, the readers pause (``ring_full``) and :meth:`ChunkStreamCore.wait_for_space`
waits for the rings (or the group) before resuming it.
"""

from __future__ import annotations

import asyncio
import collections.abc
import ctypes
import enum
import operator
import os
import struct
import threading
import types
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Final, overload

import numpy as np

from .._errors import Empty, Full, Stopped
from .._log import log_limited, logger
from .._thread_pool import ThreadPool
from ..protocols.chunking import (
    NOT_READY,
    RELEASE_ALL,
    SOURCE_STOPPED,
    TOO_OLD,
    ChunkPlacer,
    Placement,
    chunk_stream_stat_configs,
)
from ..protocols.stats import StreamStatConfig
from ._config import StreamConfig
from ._receiver import ReceiverCore, _Stream

__all__ = [
    "Chunk",
    "ChunkPlaceData",
    "ChunkStreamConfig",
    "ChunkRingbuffer",
    "ChunkRingPair",
    "ChunkRingStream",
    "ChunkStreamGroupConfig",
    "ChunkStreamRingGroup",
    "ChunkStreamGroupMember",
]

_UINT64_LIMIT = 1 << 64
_ERROR = 40


def _uint(name: str, value: object) -> int:
    """``value`` as an unsigned 64-bit integer, or ``TypeError`` naming it (as the reference's binding)."""
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name} must be a non-negative integer, not {type(value).__name__} ({value!r})"
        ) from None
    if not 0 <= result < _UINT64_LIMIT:
        raise TypeError(f"{name} must be a non-negative integer below 2**64 (got {name}={result})")
    return result


# =====================================================================================
# Chunk
# =====================================================================================


def _check_buffer(value: object) -> None:
    """Accept ``None`` or a writable, C-contiguous buffer (the reference's rules and texts)."""
    if value is None:
        return
    view = memoryview(value)  # type: ignore[arg-type]  # TypeError for non-buffers
    if view.readonly:
        raise BufferError("Object is not writable.")
    if not view.c_contiguous:
        raise ValueError("ndarray is not C-contiguous")


class Chunk:
    """A chunk of heaps: payload ``data``, per-heap (or per-packet) ``present`` flags, ``extra``.

    Keyword-only constructor; every attribute is read/write. ``present``,
    ``data`` and ``extra`` take any writable, C-contiguous buffer (numpy
    array, ``bytearray``, ``memoryview``) or ``None``, and return the object
    that was set. Subclass freely: the very same object comes back out of
    the rings.
    """

    __slots__ = ("_chunk_id", "_stream_id", "_present", "_data", "_extra", "__weakref__")

    def __init__(
        self,
        *,
        chunk_id: int = -1,
        stream_id: int = 0,
        present: Any = None,
        data: Any = None,
        extra: Any = None,
    ) -> None:
        self.chunk_id = chunk_id
        self.stream_id = stream_id
        self.present = present
        self.data = data
        self.extra = extra

    @property
    def chunk_id(self) -> int:
        """The chunk's ID (set by the stream when it takes the chunk; -1 initially)."""
        return self._chunk_id

    @chunk_id.setter
    def chunk_id(self, value: int) -> None:
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"chunk_id must be an integer, not {type(value).__name__}") from None
        if not -(1 << 63) <= value < (1 << 63):
            raise TypeError(f"chunk_id must fit in a signed 64-bit integer (got {value})")
        self._chunk_id = value

    @property
    def stream_id(self) -> int:
        """``StreamConfig.stream_id`` of the stream that filled the chunk."""
        return self._stream_id

    @stream_id.setter
    def stream_id(self, value: int) -> None:
        self._stream_id = _uint("stream_id", value)

    @property
    def present(self) -> Any:
        """One flag byte per heap index (or per packet, with packet presence)."""
        return self._present

    @present.setter
    def present(self, value: Any) -> None:
        _check_buffer(value)
        self._present = value

    @property
    def data(self) -> Any:
        """The heap payload storage."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        _check_buffer(value)
        self._data = value

    @property
    def extra(self) -> Any:
        """Per-heap extra bytes written by the place callback (optional)."""
        return self._extra

    @extra.setter
    def extra(self, value: Any) -> None:
        _check_buffer(value)
        self._extra = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} chunk_id={self._chunk_id} stream_id={self._stream_id}>"


# =====================================================================================
# Place callbacks
# =====================================================================================

_SIG_PLAIN: Final = b"void (void *, size_t)"
_SIG_USER: Final = b"void (void *, size_t, void *)"

_pyapi = ctypes.pythonapi
_pyapi.PyCapsule_GetName.restype = ctypes.c_char_p
_pyapi.PyCapsule_GetName.argtypes = [ctypes.py_object]
_pyapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_pyapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pyapi.PyCapsule_GetContext.restype = ctypes.c_void_p
_pyapi.PyCapsule_GetContext.argtypes = [ctypes.py_object]

_PLAIN_PROTO = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)
_USER_PROTO = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

#: ``chunk_place_data`` (API.md §2.9): 10 eight-byte fields, 80 bytes.
_PLACE_DATA_SIZE: Final = 80
_PLACE_IN = struct.Struct("=QQQqQQQQQQ")
#: ``chunk_id, heap_index, heap_offset`` at byte 24, ``extra_offset, extra_size`` at byte 64.
_PLACE_OUT = struct.Struct("=qQQ16xQQ")
#: Packets longer than this are passed to C callbacks in place rather than copied.
_EXPORT_ABOVE: Final = 16384


def _check_place(value: object) -> Any:
    """Validate a ``ChunkStreamConfig.place`` value; returns what the config stores.

    ``None``; a plain Python callable; or, as the reference accepts, an
    iterable whose element 0 is a ``PyCapsule`` named ``"void (void *,
    size_t)"`` or ``"void (void *, size_t, void *)"`` (``scipy.LowLevelCallable``
    is such a tuple), stored as a tuple.
    """
    if value is None:
        return None
    if not isinstance(value, tuple) and callable(value):
        if hasattr(value, "address") and hasattr(value, "ctypes") and hasattr(value, "native_name"):
            raise TypeError(
                "place is a numba cfunc: wrap it as scipy.LowLevelCallable(cfunc.ctypes, "
                "signature='void (void *, size_t)') (or with user data, "
                "'void (void *, size_t, void *)')"
            )
        return value
    try:
        entries: tuple[Any, ...] = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"'{type(value).__name__}' object is not iterable: place must be a tuple whose "
            "element 0 is a PyCapsule (e.g. scipy.LowLevelCallable), a Python callable, or None"
        ) from None
    if not entries:
        raise IndexError("tuple index out of range: place has no element 0 (the callback's PyCapsule)")
    capsule = entries[0]
    if not isinstance(capsule, types.CapsuleType):
        raise TypeError(f"Object of type '{type(capsule).__name__}' is not an instance of 'capsule'")
    name = _pyapi.PyCapsule_GetName(capsule)
    if name is None:
        raise ValueError("Signature missing from capsule")
    if name not in (_SIG_PLAIN, _SIG_USER):
        raise ValueError(
            f'Invalid callback signature "{name.decode(errors="replace")}". Expected one of:\n'
            f"  {_SIG_PLAIN.decode()}\n  {_SIG_USER.decode()}"
        )
    return entries


class ChunkPlaceData:
    """What a Python place callback receives (the fields of the C ``chunk_place_data``).

    Inputs: ``packet`` (read-only ``memoryview`` of the heap's first received
    packet, header included — valid only during the call), ``packet_size``,
    ``items`` (``list[int]``: per ``ChunkStreamConfig.items`` entry, the
    item's immediate value in that packet, or -1), ``batch_stats`` (numpy
    ``uint64`` array indexed by statistic index: add to your ``add_stat``
    counters here), ``extra`` (writable ``memoryview`` of ``max_heap_extra``
    scratch bytes). Outputs, to assign: ``chunk_id`` (-1 on entry; leave it
    negative to reject the heap), ``heap_index``, ``heap_offset``,
    ``extra_offset``, ``extra_size`` (bytes of ``extra`` to copy into
    ``chunk.extra[extra_offset:]``; 0 = none).
    """

    __slots__ = (
        "packet", "packet_size", "items", "chunk_id", "heap_index", "heap_offset",
        "batch_stats", "extra", "extra_offset", "extra_size",
    )

    def __init__(self, batch_stats: np.ndarray, extra: memoryview) -> None:
        self.packet = memoryview(b"")
        self.packet_size = 0
        self.items: list[int] = []
        self.chunk_id = -1
        self.heap_index = 0
        self.heap_offset = 0
        self.batch_stats = batch_stats
        self.extra = extra
        self.extra_offset = 0
        self.extra_size = 0

    def __repr__(self) -> str:
        return (
            f"ChunkPlaceData(packet_size={self.packet_size}, items={self.items}, "
            f"chunk_id={self.chunk_id}, heap_index={self.heap_index}, "
            f"heap_offset={self.heap_offset}, extra_offset={self.extra_offset}, "
            f"extra_size={self.extra_size})"
        )


_REJECT: Final[Placement] = (-1, 0, 0, 0, 0)


class _CPlace:
    """A C place function (from a capsule), called through ctypes once per heap.

    The 80-byte ``chunk_place_data``, the items array, the batch statistics
    and the extra scratch buffer live in ctypes memory allocated once, so a
    call costs one ``pack_into``, the foreign call and one ``unpack_from``.
    """

    def __init__(self, entries: tuple[Any, ...], n_items: int, n_stats: int, max_extra: int) -> None:
        # A plain tuple: scipy.LowLevelCallable (a tuple subclass) refuses indexing.
        entries = tuple(entries)
        capsule = entries[0]
        name = _pyapi.PyCapsule_GetName(capsule)
        pointer = _pyapi.PyCapsule_GetPointer(capsule, name)
        if not pointer:
            raise ValueError("the place capsule holds a NULL function pointer")
        self._entries = entries  # keeps the capsule (and what it points into) alive
        if name == _SIG_USER:
            self._user: int | None = _pyapi.PyCapsule_GetContext(capsule) or 0
            self._func: Any = _USER_PROTO(pointer)
        else:
            self._user = None
            self._func = _PLAIN_PROTO(pointer)
        self._struct = (ctypes.c_char * _PLACE_DATA_SIZE)()
        self._struct_addr = ctypes.addressof(self._struct)
        self._items = (ctypes.c_int64 * max(n_items, 1))()
        self._items_addr = ctypes.addressof(self._items)
        self._items_pack = struct.Struct(f"={n_items}q")
        self._stats = (ctypes.c_uint64 * max(n_stats, 1))()
        self._stats_addr = ctypes.addressof(self._stats)
        self._stats_unpack = struct.Struct(f"={max(n_stats, 1)}Q")
        self._stats_zero = bytes(ctypes.sizeof(self._stats))
        self._extra_buf = (ctypes.c_uint8 * max(max_extra, 1))()
        self._extra_addr = ctypes.addressof(self._extra_buf)
        self.extra = memoryview(self._extra_buf).cast("B")
        self._scratch = (ctypes.c_char * 0)()
        self._scratch_view = memoryview(self._scratch).cast("B")
        self._scratch_addr = ctypes.addressof(self._scratch)

    def _packet_address(self, packet: memoryview) -> tuple[int, Any]:
        """An address where the packet's bytes are, and the object keeping it valid."""
        n = len(packet)
        # Copying a packet of a few KiB into scratch memory is cheaper than
        # exporting the caller's buffer through ctypes; large ones are exported
        # (which needs a writable buffer).
        if n > _EXPORT_ABOVE and not packet.readonly and packet.c_contiguous:
            try:
                holder: Any = (ctypes.c_char * n).from_buffer(packet)
                return ctypes.addressof(holder), holder
            except (TypeError, ValueError, BufferError):
                pass
        if len(self._scratch_view) < n:
            self._scratch = (ctypes.c_char * max(n, 2 * len(self._scratch_view), 4096))()
            self._scratch_view = memoryview(self._scratch).cast("B")
            self._scratch_addr = ctypes.addressof(self._scratch)
        self._scratch_view[:n] = packet
        return self._scratch_addr, None

    def __call__(self, packet: memoryview, items: list[int]) -> Placement:
        address, holder = self._packet_address(packet)
        if items:
            self._items_pack.pack_into(self._items, 0, *items)
        _PLACE_IN.pack_into(
            self._struct, 0, address, len(packet), self._items_addr, -1, 0, 0,
            self._stats_addr, self._extra_addr, 0, 0,
        )
        if self._user is None:
            self._func(self._struct_addr, _PLACE_DATA_SIZE)
        else:
            self._func(self._struct_addr, _PLACE_DATA_SIZE, self._user)
        del holder  # releases the export of the caller's buffer
        return _PLACE_OUT.unpack_from(self._struct, 24)  # type: ignore[return-value]

    def take_stats(self) -> list[int] | None:
        raw = bytes(self._stats)
        if raw == self._stats_zero:
            return None
        ctypes.memset(self._stats_addr, 0, len(raw))
        return list(self._stats_unpack.unpack(raw))


class _PyPlace:
    """A Python place callable, given a :class:`ChunkPlaceData` (reused from heap to heap)."""

    def __init__(self, func: Callable[[ChunkPlaceData], object], n_stats: int, max_extra: int) -> None:
        self._func = func
        self._stats = np.zeros(max(n_stats, 1), np.uint64)
        self.extra = memoryview(bytearray(max_extra))
        self._data = ChunkPlaceData(self._stats, self.extra)

    def __call__(self, packet: memoryview, items: list[int]) -> Placement:
        data = self._data
        data.packet = packet.toreadonly()
        data.packet_size = len(packet)
        data.items = items
        data.chunk_id = -1
        data.heap_index = 0
        data.heap_offset = 0
        data.extra_offset = 0
        data.extra_size = 0
        try:
            self._func(data)
            result = (
                operator.index(data.chunk_id),
                operator.index(data.heap_index),
                operator.index(data.heap_offset),
                operator.index(data.extra_offset),
                operator.index(data.extra_size),
            )
        except Exception as exc:  # the receive path must not raise: the heap is rejected
            log_limited(
                _ERROR, "chunk-place-error",
                "place callback raised %s: %s (heap rejected)", type(exc).__name__, exc,
            )
            return _REJECT
        finally:
            try:
                data.packet.release()
            except BufferError:  # the callback kept a view of the packet: let it go with it
                pass
        if min(result[1:]) < 0:
            log_limited(
                _ERROR, "chunk-place-negative",
                "place callback returned a negative heap_index, heap_offset, extra_offset or "
                "extra_size (%r): heap rejected", data,
            )
            return _REJECT
        return result

    def take_stats(self) -> list[int] | None:
        stats = self._stats
        if not stats.any():
            return None
        values: list[int] = stats.tolist()
        stats[:] = 0
        return values


def _make_place(place: Any, n_items: int, n_stats: int, max_extra: int) -> _CPlace | _PyPlace:
    if isinstance(place, tuple):
        return _CPlace(place, n_items, n_stats, max_extra)
    return _PyPlace(place, n_stats, max_extra)


# =====================================================================================
# ChunkStreamConfig
# =====================================================================================


class ChunkStreamConfig:
    """How a chunk stream places heaps: ``items``, ``max_chunks``, ``place``, ``max_heap_extra``.

    Keyword-only; every option is a read/write property. ``place`` is either
    what the reference accepts (a tuple whose element 0 is a ``PyCapsule``
    wrapping a C function ``void (void *, size_t)`` or ``void (void *,
    size_t, void *)`` — ``scipy.LowLevelCallable`` of a numba ``cfunc``) or,
    beyond the reference, a Python callable taking one :class:`ChunkPlaceData`.
    """

    DEFAULT_MAX_CHUNKS: ClassVar[int] = 2

    __slots__ = ("_items", "_max_chunks", "_place", "_max_heap_extra", "_packet_presence")

    def __init__(
        self,
        *,
        items: Sequence[int] = (),
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        place: Any = None,
        max_heap_extra: int = 0,
    ) -> None:
        self.items = items  # type: ignore[assignment]
        self.max_chunks = max_chunks
        self.place = place
        self.max_heap_extra = max_heap_extra
        self._packet_presence = 0

    @property
    def items(self) -> list[int]:
        """Item IDs whose immediate values the place callback gets (a copy; assign a whole list)."""
        return list(self._items)

    @items.setter
    def items(self, value: Sequence[int]) -> None:
        try:
            entries = list(value)
        except TypeError:
            raise TypeError(f"items must be a sequence of item IDs, not {type(value).__name__}") from None
        self._items = [_uint("items entry", item) for item in entries]

    @property
    def max_chunks(self) -> int:
        """Most chunks under construction at once (the window size)."""
        return self._max_chunks

    @max_chunks.setter
    def max_chunks(self, value: int) -> None:
        value = _uint("max_chunks", value)
        if value == 0:
            raise ValueError("max_chunks cannot be 0")
        self._max_chunks = value

    @property
    def place(self) -> Any:
        """The place callback (see the class docstring), or ``None``."""
        return self._place

    @place.setter
    def place(self, value: Any) -> None:
        self._place = _check_place(value)

    @property
    def max_heap_extra(self) -> int:
        """Size of the scratch buffer in which the callback may write per-heap extra bytes."""
        return self._max_heap_extra

    @max_heap_extra.setter
    def max_heap_extra(self, value: int) -> None:
        self._max_heap_extra = _uint("max_heap_extra", value)

    @property
    def packet_presence_payload_size(self) -> int:
        """Payload bytes per packet when presence is tracked per packet (0: per heap)."""
        return self._packet_presence

    def enable_packet_presence(self, payload_size: int) -> ChunkStreamConfig:
        """Track presence per packet of ``payload_size`` payload bytes; returns ``self``."""
        payload_size = _uint("payload_size", payload_size)
        if payload_size == 0:
            raise ValueError("payload_size must not be zero")
        self._packet_presence = payload_size
        return self

    def disable_packet_presence(self) -> ChunkStreamConfig:
        """Track presence per heap (the default); returns ``self``."""
        self._packet_presence = 0
        return self

    def copy(self) -> ChunkStreamConfig:
        """An independent copy (sharing the place callback)."""
        other = ChunkStreamConfig.__new__(ChunkStreamConfig)
        other._items = list(self._items)
        other._max_chunks = self._max_chunks
        other._place = self._place
        other._max_heap_extra = self._max_heap_extra
        other._packet_presence = self._packet_presence
        return other

    __copy__ = copy

    def __repr__(self) -> str:
        return (
            f"ChunkStreamConfig(items={self._items}, max_chunks={self._max_chunks}, "
            f"place={self._place!r}, max_heap_extra={self._max_heap_extra}, "
            f"packet_presence_payload_size={self._packet_presence})"
        )


# =====================================================================================
# ChunkRingbuffer
# =====================================================================================

_STOPPED_MSG = "ring buffer has been stopped"
_EMPTY_MSG = "ring buffer is empty"
_FULL_MSG = "ring buffer is full"


class _LevelFd:
    """A pipe whose read end is readable exactly while a condition holds."""

    def __init__(self, readable: bool) -> None:
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._readable = False
        self.set(readable)

    def set(self, readable: bool) -> None:
        if readable == self._readable:
            return
        if readable:
            try:
                os.write(self._write_fd, b"\0")
            except BlockingIOError:  # already readable, which is all that matters
                pass
        else:
            try:
                while os.read(self.read_fd, 4096):
                    pass
            except BlockingIOError:
                pass
        self._readable = readable

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self._write_fd)


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake(waiters: list[_Waiter]) -> None:
    """Resolve futures that may belong to other threads' loops."""
    current = _running_loop()
    for loop, future in waiters:
        if loop is current:
            _resolve(future)
        else:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass


class ChunkRingbuffer:
    """A bounded, thread-safe ring of :class:`Chunk` objects.

    ``get``/``put`` block; ``get_nowait``/``put_nowait`` raise ``spead2.Empty``
    / ``spead2.Full``; after :meth:`stop` puts raise ``spead2.Stopped`` and
    gets drain what is left, then raise ``spead2.Stopped``. Iterating yields
    chunks until the ring is stopped and drained. ``data_fd`` / ``space_fd``
    are readable while chunks / free space are available (or once stopped).
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = _uint("maxsize", maxsize)
        self._items: deque[Chunk] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._stopped = False
        self._producers = 0
        self._data_waiters: list[_Waiter] = []
        self._space_waiters: list[_Waiter] = []
        self._data_fd: _LevelFd | None = None
        self._space_fd: _LevelFd | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        """Capacity of the ring."""
        return self._maxsize

    def qsize(self) -> int:
        """Chunks currently in the ring."""
        return len(self._items)

    def empty(self) -> bool:
        """Whether the ring holds no chunk."""
        return not self._items

    def full(self) -> bool:
        """Whether the ring holds ``maxsize`` chunks."""
        return len(self._items) >= self._maxsize

    @property
    def data_fd(self) -> int:
        """A file descriptor readable while a chunk is available (or the ring is stopped). Do not read it."""
        with self._lock:
            if self._data_fd is None:
                self._data_fd = _LevelFd(bool(self._items) or self._stopped)
            return self._data_fd.read_fd

    @property
    def space_fd(self) -> int:
        """A file descriptor readable while there is free space (or the ring is stopped). Do not read it."""
        with self._lock:
            if self._space_fd is None:
                self._space_fd = _LevelFd(len(self._items) < self._maxsize or self._stopped)
            return self._space_fd.read_fd

    # -- consumers ----------------------------------------------------------------------

    def get(self) -> Chunk:
        """The next chunk, blocking until one arrives; ``Stopped`` once stopped and drained."""
        with self._lock:
            while not self._items and not self._stopped:
                self._not_empty.wait()
            return self._pop_locked()

    def get_nowait(self) -> Chunk:
        """The next chunk; ``Empty`` if there is none, ``Stopped`` once stopped and drained."""
        with self._lock:
            return self._pop_locked()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                yield self.get()
            except Stopped:
                return

    # -- producers ----------------------------------------------------------------------

    def put(self, chunk: Chunk) -> None:
        """Add a chunk, blocking while the ring is full; ``Stopped`` if the ring is stopped."""
        self._check_chunk(chunk)
        with self._lock:
            while len(self._items) >= self._maxsize and not self._stopped:
                self._not_full.wait()
            self._push_locked(chunk)

    def put_nowait(self, chunk: Chunk) -> None:
        """Add a chunk; ``Full`` if there is no room, ``Stopped`` if the ring is stopped."""
        self._check_chunk(chunk)
        with self._lock:
            if not self._stopped and len(self._items) >= self._maxsize:
                raise Full(_FULL_MSG)
            self._push_locked(chunk)

    def stop(self) -> bool:
        """Stop the ring: puts fail, gets drain what is left. True only for the call that stopped it."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
            waiters = self._data_waiters + self._space_waiters
            self._data_waiters = []
            self._space_waiters = []
            self._update_fds_locked()
        _wake(waiters)
        return True

    def add_producer(self) -> None:
        """Register a producer; the ring stops when the last one calls :meth:`remove_producer`."""
        with self._lock:
            self._producers += 1

    def remove_producer(self) -> bool:
        """Unregister a producer; True iff this call stopped the ring (it was the last producer)."""
        with self._lock:
            if self._producers == 0:
                return False
            self._producers -= 1
            if self._producers:
                return False
        return self.stop()

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check_chunk(chunk: object) -> None:
        if not isinstance(chunk, Chunk):
            raise TypeError(f"expected a spead2.recv.Chunk, not {type(chunk).__name__}")
        if chunk.data is None:
            raise ValueError("data buffer is not set")
        if chunk.present is None:
            raise ValueError("present buffer is not set")

    def _push_locked(self, chunk: Chunk) -> None:
        if self._stopped:
            raise Stopped(_STOPPED_MSG)
        self._items.append(chunk)
        self._not_empty.notify()
        waiters = self._data_waiters
        if waiters:
            self._data_waiters = []
            _wake(waiters)
        self._update_fds_locked()

    def _pop_locked(self) -> Chunk:
        if self._items:
            chunk = self._items.popleft()
            self._not_full.notify()
            waiters = self._space_waiters
            if waiters:
                self._space_waiters = []
                _wake(waiters)
            self._update_fds_locked()
            return chunk
        if self._stopped:
            raise Stopped(_STOPPED_MSG)
        raise Empty(_EMPTY_MSG)

    def _update_fds_locked(self) -> None:
        if self._data_fd is not None:
            self._data_fd.set(bool(self._items) or self._stopped)
        if self._space_fd is not None:
            self._space_fd.set(len(self._items) < self._maxsize or self._stopped)

    def _wait_data(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future (of ``loop``, the caller's) resolved once a chunk may be available or the ring stopped."""
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._items or self._stopped:
                future.set_result(None)
            else:
                self._data_waiters = [w for w in self._data_waiters if not w[1].done()]
                self._data_waiters.append((loop, future))
        return future

    def _wait_space(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future (of ``loop``, the caller's) resolved once there may be room or the ring stopped."""
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if len(self._items) < self._maxsize or self._stopped:
                future.set_result(None)
            else:
                self._space_waiters = [w for w in self._space_waiters if not w[1].done()]
                self._space_waiters.append((loop, future))
        return future

    def __del__(self) -> None:
        # getattr: __init__ may have failed before setting them.
        for fd in (getattr(self, "_data_fd", None), getattr(self, "_space_fd", None)):
            if fd is not None:
                try:
                    fd.close()
                except OSError:
                    pass


# =====================================================================================
# Chunk sources: where a placer's chunks come from and go to
# =====================================================================================


class _Source:
    """What :class:`ChunkStreamCore` needs beyond the placer's :class:`~spead2.protocols.chunking.ChunkSource`."""

    @property
    def backlogged(self) -> bool:
        """Whether released chunks are waiting for room in the data ring."""
        raise NotImplementedError

    def acquire(self, chunk_id: int) -> Any:
        raise NotImplementedError

    def release(self, tail: int) -> None:
        raise NotImplementedError

    def deliver(self) -> None:
        """Move waiting chunks into the data ring, as far as it has room."""
        raise NotImplementedError

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        """Futures of ``loop``; one resolves when retrying (``deliver``, ``resume``) may succeed."""
        raise NotImplementedError

    def close(self, by_user: bool) -> None:
        """The placer has stopped (and released every chunk)."""
        raise NotImplementedError

    def network_done(self) -> None:
        """A network-side end has delivered everything."""
        raise NotImplementedError


def _flush_to_ring(outgoing: deque[Chunk], ring: ChunkRingbuffer) -> None:
    """Put ``outgoing`` chunks (in order) into ``ring`` while it has room; drop them if it is stopped."""
    while outgoing:
        try:
            ring.put_nowait(outgoing[0])
        except Full:
            return
        except Stopped:
            log_limited(
                30, "chunk-data-stopped",
                "data chunk ringbuffer stopped: dropped %d chunk(s)", len(outgoing),
            )
            outgoing.clear()
            return
        except (ValueError, TypeError) as exc:  # the user unset a buffer of a chunk in flight
            log_limited(30, "chunk-data-bad", "dropped chunk %d: %s", outgoing[0].chunk_id, exc)
        outgoing.popleft()


def _drop_undeliverable(outgoing: deque[Chunk]) -> None:
    if outgoing:
        logger.warning(
            "stream stopped with the data ringbuffer full: dropped %d chunk(s) (IDs %d to %d)",
            len(outgoing), outgoing[0].chunk_id, outgoing[-1].chunk_id,
        )
        outgoing.clear()


class _RingSource(_Source):
    """Chunks of one :class:`ChunkRingStream`: taken from the free ring, given to the data ring."""

    def __init__(self, data: ChunkRingbuffer, free: ChunkRingbuffer, stream_id: int) -> None:
        self._data = data
        self._free = free
        self._stream_id = stream_id
        self._chunks: dict[int, Chunk] = {}
        self._outgoing: deque[Chunk] = deque()

    @property
    def backlogged(self) -> bool:
        return bool(self._outgoing)

    def acquire(self, chunk_id: int) -> Any:
        try:
            chunk = self._free.get_nowait()
        except Empty:
            return NOT_READY
        except Stopped:
            return SOURCE_STOPPED
        chunk.chunk_id = chunk_id
        chunk.stream_id = self._stream_id
        self._chunks[chunk_id] = chunk
        return chunk

    def release(self, tail: int) -> None:
        chunks = self._chunks
        while chunks:
            first = next(iter(chunks))
            if first >= tail:
                break
            self._outgoing.append(chunks.pop(first))
        self.deliver()

    def deliver(self) -> None:
        _flush_to_ring(self._outgoing, self._data)

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        futures = []
        if self._outgoing:
            futures.append(self._data._wait_space(loop))
        if blocked:
            futures.append(self._free._wait_data(loop))
        return futures

    def close(self, by_user: bool) -> None:
        self.deliver()
        if by_user:
            _drop_undeliverable(self._outgoing)
            self._data.stop()
            self._free.stop()

    def network_done(self) -> None:
        self._data.remove_producer()


# =====================================================================================
# The stream core
# =====================================================================================


class ChunkStreamCore(ReceiverCore):
    """A receive core whose packets go into chunks through a :class:`ChunkPlacer`."""

    assembler: ChunkPlacer

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: StreamConfig,
        chunk_config: ChunkStreamConfig,
        stat_configs: list[StreamStatConfig],
        source: _Source,
    ) -> None:
        super().__init__(loop, config, stat_configs)
        self.chunk_config = chunk_config
        self.source = source
        place = _make_place(
            chunk_config.place, len(chunk_config.items), len(stat_configs), chunk_config.max_heap_extra
        )
        self.placer = ChunkPlacer(config, chunk_config, place, source, self.stats)  # type: ignore[arg-type]
        self.assembler = self.placer
        self._unblocker: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._source_closed = False

    # -- StreamSink ----------------------------------------------------------------------

    def end_batch(self, n_packets: int) -> None:
        self.placer.end_batch(n_packets)

    def ring_full(self) -> bool:
        return self.placer.blocked or self.source.backlogged

    async def wait_for_space(self) -> None:
        """Wait until a chunk is available (and held packets placed) and the data ring took its chunks.

        Several readers may wait at once; one task does the work for all of them.
        """
        if not self.ring_full():
            return
        task = self._unblocker
        if task is None or task.done():
            task = self._unblocker = self.loop.create_task(self._unblock())
        await asyncio.shield(task)

    async def _wait_source(self) -> None:
        futures = self.source.waiters(self.loop, self.placer.blocked)
        if not futures:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in futures:
                future.cancel()

    async def _unblock(self) -> None:
        while not self.stopped:
            self.source.deliver()
            if self.placer.blocked and not self.placer.resume():
                self.stop(by_user=False)  # a held packet carried a stop item
                return
            if not self.ring_full():
                return
            await self._wait_source()

    # -- group support -------------------------------------------------------------------

    def flush_until(self, tail: int) -> None:
        """A lossy group moved on: give up chunks below ``tail`` (on the loop)."""
        if not self.placer.stopped:
            self.placer.flush_until(tail)

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, by_user: bool = True) -> None:
        if self.stopped:
            drainer = self._drainer
            if by_user and drainer is not None and not drainer.done():
                # The user stops a stream still delivering after the end of its
                # data: stop waiting for the consumer and end now.
                self._drainer = None
                if drainer is not asyncio.current_task():
                    drainer.cancel()
                self._end(by_user=True)
            return
        super().stop(by_user)

    def _end(self, by_user: bool) -> None:
        """Stop the placer (releasing every chunk) and tell the source, once."""
        self.placer.stop()
        if not self._source_closed:
            self._source_closed = True
            self.source.close(by_user)
        elif by_user:
            self.source.close(by_user=True)  # a user stop after a network end still stops the rings

    def finish(self, by_user: bool) -> None:
        unblocker = self._unblocker
        if unblocker is not None and not unblocker.done() and unblocker is not asyncio.current_task():
            unblocker.cancel()
        if by_user or self.loop.is_closed():
            # Live chunks are flushed to the data ring (as far as it has room), then
            # both rings stop. (With the loop closed nothing could wait anyway.)
            self._end(by_user=True)
            return
        if not self.placer.blocked:
            self._end(by_user=False)
            if not self.source.backlogged:
                self.source.network_done()
                return
        self._drainer = self.loop.create_task(self._drain_then_finish())

    async def _drain_then_finish(self) -> None:
        """End of the data: place the held packets and deliver every chunk, waiting as long as it takes."""
        placer = self.placer
        source = self.source
        while placer.blocked:
            source.deliver()
            placer.resume()  # False (a stop item) leaves the placer stopped, hence unblocked
            if placer.blocked:
                await self._wait_source()
        self._end(by_user=False)
        while True:
            source.deliver()
            if not source.backlogged:
                break
            await self._wait_source()
        self._drainer = None
        source.network_done()


# =====================================================================================
# ChunkRingPair and ChunkRingStream
# =====================================================================================


def _check_ring(name: str, value: object) -> ChunkRingbuffer:
    if not isinstance(value, ChunkRingbuffer):
        raise TypeError(f"{name} must be a spead2.recv.ChunkRingbuffer, not {type(value).__name__}")
    return value


def _zero_present(chunk: Chunk) -> None:
    present = chunk.present
    if present is not None:
        view = memoryview(present).cast("B")
        view[:] = bytes(len(view))


class ChunkRingPair:
    """A data ring (full chunks out) and a free ring (empty chunks in)."""

    def __init__(self, data_ringbuffer: ChunkRingbuffer, free_ringbuffer: ChunkRingbuffer) -> None:
        self._data_ring = _check_ring("data_ringbuffer", data_ringbuffer)
        self._free_ring = _check_ring("free_ringbuffer", free_ringbuffer)

    @property
    def data_ringbuffer(self) -> ChunkRingbuffer:
        """The ring the stream puts finished chunks into."""
        return self._data_ring

    @property
    def free_ringbuffer(self) -> ChunkRingbuffer:
        """The ring the stream takes empty chunks from."""
        return self._free_ring

    def add_free_chunk(self, chunk: Chunk) -> None:
        """Zero ``chunk.present`` and put the chunk in the free ring.

        ``spead2.Full`` if the free ring is full (size it for every chunk);
        if the free ring is stopped the chunk is silently dropped.
        """
        if not isinstance(chunk, Chunk):
            raise TypeError(f"expected a spead2.recv.Chunk, not {type(chunk).__name__}")
        _zero_present(chunk)
        try:
            self._free_ring.put_nowait(chunk)
        except Stopped:
            pass


class ChunkRingStream(ChunkRingPair, _Stream):
    """A receive stream that places heap payloads into chunks.

    Empty chunks come from ``free_ringbuffer`` (see :meth:`add_free_chunk`);
    finished chunks go, in ascending chunk ID order, to ``data_ringbuffer``.
    Has every reader method of ``recv.Stream``, ``start``, ``stop``,
    ``stats`` and ``config``; chunks are consumed from the data ring.

    :meth:`stop` flushes the chunks under construction to the data ring (as
    far as it has room) and stops both rings. An end coming from the data
    (end of input, stop item) flushes them too, waiting for room, and stops
    the data ring once its last producer is done; the free ring stays usable.
    """

    _core: ChunkStreamCore

    def __init__(
        self,
        thread_pool: ThreadPool,
        config: StreamConfig | None = None,
        chunk_stream_config: ChunkStreamConfig | None = None,
        data_ringbuffer: ChunkRingbuffer | None = None,
        free_ringbuffer: ChunkRingbuffer | None = None,
    ) -> None:
        config = StreamConfig() if config is None else config
        self._check_types(thread_pool, config)
        if not isinstance(chunk_stream_config, ChunkStreamConfig):
            raise TypeError(
                "chunk_stream_config must be a spead2.recv.ChunkStreamConfig, "
                f"not {type(chunk_stream_config).__name__}"
            )
        ChunkRingPair.__init__(self, data_ringbuffer, free_ringbuffer)  # type: ignore[arg-type]
        if chunk_stream_config.place is None:
            raise ValueError("chunk_config.place is not set")
        config = config.copy()
        config.allow_unsized_heaps = False  # placement needs each heap's length up front
        chunk_config = chunk_stream_config.copy()
        loop = self._select_loop(thread_pool)
        source = _RingSource(self._data_ring, self._free_ring, config.stream_id)
        core = ChunkStreamCore(loop, config, chunk_config, chunk_stream_stat_configs(config), source)
        self._data_ring.add_producer()
        self._init_core(thread_pool, core)

    def stop(self) -> None:
        """Stop receiving: flush the chunks under construction, then stop both rings."""
        self._core.stop_threadsafe()
        self._data_ring.stop()
        self._free_ring.stop()


# =====================================================================================
# Groups
# =====================================================================================


class ChunkStreamGroupConfig:
    """Configuration of a :class:`ChunkStreamRingGroup`: ``max_chunks`` and ``eviction_mode``."""

    class EvictionMode(enum.Enum):
        """What the group does when a member lags behind the window."""

        #: Advance promptly, forcing laggard members to give up their chunks.
        LOSSY = 0
        #: Advance only once every member has finished the oldest chunk.
        LOSSLESS = 1

    DEFAULT_MAX_CHUNKS: ClassVar[int] = ChunkStreamConfig.DEFAULT_MAX_CHUNKS

    __slots__ = ("_max_chunks", "_eviction_mode")

    def __init__(
        self, *, max_chunks: int = DEFAULT_MAX_CHUNKS, eviction_mode: EvictionMode = EvictionMode.LOSSY
    ) -> None:
        self.max_chunks = max_chunks
        self.eviction_mode = eviction_mode

    @property
    def max_chunks(self) -> int:
        """Most chunks the group holds at once."""
        return self._max_chunks

    @max_chunks.setter
    def max_chunks(self, value: int) -> None:
        value = _uint("max_chunks", value)
        if value == 0:
            raise ValueError("max_chunks cannot be 0")
        self._max_chunks = value

    @property
    def eviction_mode(self) -> ChunkStreamGroupConfig.EvictionMode:
        """``LOSSY`` (default) or ``LOSSLESS``."""
        return self._eviction_mode

    @eviction_mode.setter
    def eviction_mode(self, value: ChunkStreamGroupConfig.EvictionMode) -> None:
        if not isinstance(value, ChunkStreamGroupConfig.EvictionMode):
            raise TypeError(
                "eviction_mode must be a ChunkStreamGroupConfig.EvictionMode, "
                f"not {type(value).__name__} ({value!r})"
            )
        self._eviction_mode = value

    def copy(self) -> ChunkStreamGroupConfig:
        """An independent copy."""
        return ChunkStreamGroupConfig(max_chunks=self._max_chunks, eviction_mode=self._eviction_mode)

    def __repr__(self) -> str:
        return f"ChunkStreamGroupConfig(max_chunks={self._max_chunks}, eviction_mode={self._eviction_mode})"


class _Member:
    """The group's view of one member stream."""

    __slots__ = ("core", "stream_id", "tail", "requested", "closed")

    def __init__(self, stream_id: int) -> None:
        self.core: ChunkStreamCore | None = None
        self.stream_id = stream_id
        #: This member uses no chunk below ``tail`` (RELEASE_ALL once stopped).
        self.tail = 0
        #: Highest tail a lossy eviction has asked this member to move to.
        self.requested = 0
        self.closed = False


class _GroupState:
    """The chunks a group's members share; every method is thread-safe.

    A chunk is obtained from the free ring when the first member needs it
    and goes to the data ring once every member has moved past it, in
    ascending ID order. The group holds at most ``max_chunks`` chunks: a
    member needing a newer one waits until the oldest is released by every
    member (LOSSLESS), or first asks the laggards to give it up (LOSSY).
    """

    def __init__(self, config: ChunkStreamGroupConfig, data: ChunkRingbuffer, free: ChunkRingbuffer) -> None:
        self.lock = threading.Lock()
        self.max_chunks = config.max_chunks
        self.lossy = config.eviction_mode is ChunkStreamGroupConfig.EvictionMode.LOSSY
        self.data = data
        self.free = free
        self.members: list[_Member] = []
        self.chunks: dict[int, Chunk] = {}
        self.head = -1
        self.tail = 0
        self.outgoing: deque[Chunk] = deque()
        self.generation = 0
        self.change_waiters: list[_Waiter] = []
        self.started = False
        self.user_stopped = False
        self.finished = False
        self.producer_removed = False

    # -- members' placers (each on its own loop) ---------------------------------------

    def acquire(self, member: _Member, chunk_id: int) -> tuple[Any, str]:
        """The shared chunk for ``chunk_id``, or a placer sentinel and what to wait for."""
        evict: list[tuple[ChunkStreamCore, int]] = []
        with self.lock:
            self.started = True
            if self.finished:
                return SOURCE_STOPPED, ""
            if chunk_id < self.tail:
                return TOO_OLD, ""
            if chunk_id <= self.head:
                return self.chunks.get(chunk_id, TOO_OLD), ""
            new_tail = chunk_id - self.max_chunks + 1
            if new_tail > self.tail:
                laggards = [m for m in self.members if m.tail < new_tail]
                if laggards:
                    if self.lossy:
                        for lag in laggards:
                            if lag.requested < new_tail and lag.core is not None:
                                lag.requested = new_tail
                                evict.append((lag.core, new_tail))
                    result: tuple[Any, str] = (NOT_READY, "members")
                else:
                    self._flush_below_locked(new_tail)
                    result = self._take_locked(member, chunk_id)
            else:
                result = self._take_locked(member, chunk_id)
        for core, tail in evict:
            _call_on_loop(core, core.flush_until, tail)
        if result[0] is not NOT_READY:
            self.deliver()
        return result

    def _take_locked(self, member: _Member, chunk_id: int) -> tuple[Any, str]:
        for next_id in range(max(self.head + 1, self.tail), chunk_id + 1):
            try:
                chunk = self.free.get_nowait()
            except Empty:
                return NOT_READY, "free"
            except Stopped:
                return SOURCE_STOPPED, ""
            chunk.chunk_id = next_id
            chunk.stream_id = member.stream_id
            self.chunks[next_id] = chunk
            self.head = next_id
        return self.chunks.get(chunk_id, TOO_OLD), ""

    def release(self, member: _Member, tail: int) -> None:
        with self.lock:
            if tail <= member.tail:
                return
            member.tail = tail
            low = min(m.tail for m in self.members)
            if low < RELEASE_ALL:
                self._flush_below_locked(low)
            else:
                self._flush_below_locked(RELEASE_ALL)
            self.generation += 1
            waiters, self.change_waiters = self.change_waiters, []
        _wake(waiters)
        self.deliver()

    def _flush_below_locked(self, tail: int) -> None:
        chunks = self.chunks
        while chunks:
            first = next(iter(chunks))
            if first >= tail:
                break
            self.outgoing.append(chunks.pop(first))
        if tail > self.tail:
            self.tail = tail

    def deliver(self) -> None:
        with self.lock:
            _flush_to_ring(self.outgoing, self.data)

    @property
    def backlogged(self) -> bool:
        return bool(self.outgoing)

    def wait_change(self, loop: asyncio.AbstractEventLoop, generation: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        with self.lock:
            if self.generation != generation or self.finished:
                future.set_result(None)
            else:
                self.change_waiters = [w for w in self.change_waiters if not w[1].done()]
                self.change_waiters.append((loop, future))
        return future

    # -- stopping -------------------------------------------------------------------------

    def member_closed(self, member: _Member, by_user: bool) -> None:
        """A member's placer has stopped (its chunks are released)."""
        others: list[ChunkStreamCore] = []
        with self.lock:
            member.closed = True
            if by_user:
                self.user_stopped = True
                others = [m.core for m in self.members if not m.closed and m.core is not None]
            all_closed = all(m.closed for m in self.members)
        # Stopping any member by the user stops the whole group.
        for core in others:
            _call_on_loop(core, core.stop)
        if all_closed:
            self.finish()

    def finish(self) -> None:
        """Every member has stopped: flush all chunks; on a user stop, stop both rings."""
        with self.lock:
            self._flush_below_locked(RELEASE_ALL)
            self.finished = True
            waiters, self.change_waiters = self.change_waiters, []
            _flush_to_ring(self.outgoing, self.data)
            user = self.user_stopped
            if user:
                _drop_undeliverable(self.outgoing)
        _wake(waiters)
        if user:
            self.data.stop()
            self.free.stop()

    def network_done(self) -> None:
        with self.lock:
            done = (
                self.finished and not self.outgoing and not self.producer_removed
                and all(m.closed for m in self.members)
            )
            if done:
                self.producer_removed = True
        if done:
            self.data.remove_producer()


def _call_on_loop(core: ChunkStreamCore, func: Callable[..., Any], *args: Any) -> None:
    """Run ``func(*args)`` on ``core``'s loop soon, without waiting."""
    loop = core.loop
    if loop.is_closed():
        func(*args)
        return
    try:
        loop.call_soon_threadsafe(func, *args)
    except RuntimeError:  # closed meanwhile
        func(*args)


class _MemberSource(_Source):
    """One member's access to its group's chunks."""

    def __init__(self, state: _GroupState, member: _Member) -> None:
        self._state = state
        self._member = member
        self._reason = ""
        self._generation = 0

    @property
    def backlogged(self) -> bool:
        return self._state.backlogged

    def acquire(self, chunk_id: int) -> Any:
        state = self._state
        generation = state.generation
        chunk, reason = state.acquire(self._member, chunk_id)
        if chunk is NOT_READY:
            self._reason = reason
            self._generation = generation
        return chunk

    def release(self, tail: int) -> None:
        self._state.release(self._member, tail)

    def deliver(self) -> None:
        self._state.deliver()

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        state = self._state
        futures = []
        if state.backlogged:
            futures.append(state.data._wait_space(loop))
        if blocked:
            if self._reason == "free":
                futures.append(state.free._wait_data(loop))
            else:
                futures.append(state.wait_change(loop, self._generation))
        return futures

    def close(self, by_user: bool) -> None:
        self._state.member_closed(self._member, by_user)

    def network_done(self) -> None:
        self._state.network_done()


class ChunkStreamGroupMember(_Stream):
    """One stream of a :class:`ChunkStreamRingGroup` (made by :meth:`ChunkStreamRingGroup.emplace_back`).

    Has the reader methods, ``start``, ``stop``, ``stats`` and ``config``;
    stopping it stops the whole group.
    """

    _core: ChunkStreamCore
    _group: ChunkStreamRingGroup
    _member: _Member

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "spead2.recv.ChunkStreamGroupMember: No constructor defined! "
            "(use ChunkStreamRingGroup.emplace_back)"
        )

    @classmethod
    def _create(
        cls,
        group: ChunkStreamRingGroup,
        thread_pool: ThreadPool,
        config: StreamConfig,
        chunk_config: ChunkStreamConfig,
    ) -> ChunkStreamGroupMember:
        self = cls.__new__(cls)
        self._group = group
        config = config.copy()
        config.allow_unsized_heaps = False
        chunk_config = chunk_config.copy()
        member = _Member(config.stream_id)
        source = _MemberSource(group._state, member)
        loop = self._select_loop(thread_pool)
        core = ChunkStreamCore(loop, config, chunk_config, chunk_stream_stat_configs(config), source)
        member.core = core
        self._member = member
        self._init_core(thread_pool, core)
        return self

    def stop(self) -> None:
        """Stop this member, and with it the whole group."""
        self._group.stop()


class ChunkStreamRingGroup(ChunkRingPair, collections.abc.Sequence):  # type: ignore[type-arg]
    """Several chunk streams filling shared chunks, each its own part of every chunk.

    A sequence of its :class:`ChunkStreamGroupMember`\\ s (added with
    :meth:`emplace_back` before any data arrives). Chunks come from the free
    ring and go to the data ring, in ascending ID order, once every member
    has moved past them; ``config.eviction_mode`` decides what happens when a
    member lags (see :class:`ChunkStreamGroupConfig`). :meth:`stop`, or
    stopping any member, stops every member, flushes the chunks to the data
    ring (as far as it has room) and stops both rings. When the members
    all stop because their data ended, the chunks are flushed (waiting for
    room) and the data ring stops once its last producer is done.
    """

    def __init__(
        self,
        config: ChunkStreamGroupConfig,
        data_ringbuffer: ChunkRingbuffer,
        free_ringbuffer: ChunkRingbuffer,
    ) -> None:
        if not isinstance(config, ChunkStreamGroupConfig):
            raise TypeError(
                f"config must be a spead2.recv.ChunkStreamGroupConfig, not {type(config).__name__}"
            )
        super().__init__(data_ringbuffer, free_ringbuffer)
        self._config = config.copy()
        self._state = _GroupState(self._config, self._data_ring, self._free_ring)
        self._members: list[ChunkStreamGroupMember] = []
        self._data_ring.add_producer()

    @property
    def config(self) -> ChunkStreamGroupConfig:
        """A copy of the group's configuration."""
        return self._config.copy()

    def emplace_back(
        self, thread_pool: ThreadPool, config: StreamConfig, chunk_stream_config: ChunkStreamConfig
    ) -> ChunkStreamGroupMember:
        """Add a member stream (before any data arrives) and return it."""
        _Stream._check_types(thread_pool, config)
        if not isinstance(chunk_stream_config, ChunkStreamConfig):
            raise TypeError(
                "chunk_stream_config must be a spead2.recv.ChunkStreamConfig, "
                f"not {type(chunk_stream_config).__name__}"
            )
        if chunk_stream_config.max_chunks > self._config.max_chunks:
            raise ValueError(
                "stream max_chunks must not be larger than group max_chunks "
                f"(stream max_chunks={chunk_stream_config.max_chunks}, "
                f"group max_chunks={self._config.max_chunks})"
            )
        if chunk_stream_config.place is None:
            raise ValueError("chunk_config.place is not set")
        state = self._state
        with state.lock:
            if state.started or state.finished or state.user_stopped:
                raise RuntimeError("Cannot add a stream after group has started receiving data")
            member = ChunkStreamGroupMember._create(self, thread_pool, config, chunk_stream_config)
            state.members.append(member._member)
        self._members.append(member)
        return member

    def stop(self) -> None:
        """Stop every member, flush the chunks to the data ring and stop both rings."""
        for member in list(self._members):
            member._core.stop_threadsafe()
        state = self._state
        with state.lock:
            state.user_stopped = True
        state.finish()

    # -- Sequence --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._members)

    @overload
    def __getitem__(self, index: int) -> ChunkStreamGroupMember: ...
    @overload
    def __getitem__(self, index: slice) -> list[ChunkStreamGroupMember]: ...
    def __getitem__(self, index: int | slice) -> ChunkStreamGroupMember | list[ChunkStreamGroupMember]:
        if isinstance(index, slice):
            return self._members[index]
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"group members are indexed by int or slice, not {type(index).__name__}"
            ) from None
        return self._members[position]
