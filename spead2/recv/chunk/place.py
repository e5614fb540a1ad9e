"""Place callbacks of chunk streams: C functions from a capsule, or Python callables.

:func:`check_place` validates ``ChunkStreamConfig.place``; :func:`make_place`
turns it into the per-heap callable the
:class:`~spead2.protocols.chunking.ChunkPlacer` calls; :class:`ChunkPlaceData`
is what a Python callable receives.
"""

from __future__ import annotations

import ctypes
import operator
import struct
import types
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from ..._log import log_limited
from ...protocols.chunking import Placement
from ._place_driver import driver

__all__ = ["BatchPlace", "ChunkPlaceData", "check_place", "make_place"]

_ERROR = 40

_SIG_PLAIN: Final = b"void (void *, size_t)"
_SIG_USER: Final = b"void (void *, size_t, void *)"

_pyapi = ctypes.pythonapi
_pyapi.PyCapsule_GetName.restype = ctypes.c_char_p
_pyapi.PyCapsule_GetName.argtypes = [ctypes.py_object]
_pyapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_pyapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pyapi.PyCapsule_GetContext.restype = ctypes.c_void_p
_pyapi.PyCapsule_GetContext.argtypes = [ctypes.py_object]

# PYFUNCTYPE: the GIL stays held during the call. A place function is a few
# instructions; releasing and retaking the GIL around each (CFUNCTYPE) cost
# more than the call itself and let the consumer's thread in once per heap.
_PLAIN_PROTO = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)
_USER_PROTO = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

#: The C struct ``chunk_place_data`` a C callback receives: 10 eight-byte fields, 80 bytes.
_PLACE_DATA_SIZE: Final = 80
_PLACE_IN = struct.Struct("=QQQqQQQQQQ")
#: ``chunk_id, heap_index, heap_offset`` at byte 24, ``extra_offset, extra_size`` at byte 64.
_PLACE_OUT = struct.Struct("=qQQ16xQQ")
#: Packets longer than this are passed to C callbacks in place rather than copied.
_EXPORT_ABOVE: Final = 16384


def check_place(value: object) -> Any:
    """Validate a ``ChunkStreamConfig.place`` value; returns what the config stores.

    ``None``; a plain Python callable; or, as the reference accepts, an
    iterable whose element 0 is a ``PyCapsule`` named ``"void (void *,
    size_t)"`` or ``"void (void *, size_t, void *)"`` (``scipy.LowLevelCallable``
    is such a tuple), stored as a tuple.
    """
    if value is None or isinstance(value, BatchPlace):
        return value
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
        #: Input: the heap's first received packet, header included (read-only; valid
        #: only during the call).
        self.packet = memoryview(b"")
        #: Input: the size of ``packet`` in bytes.
        self.packet_size = 0
        #: Input: per ``ChunkStreamConfig.items`` entry, that item's immediate value in
        #: ``packet``, or -1.
        self.items: list[int] = []
        #: Output: the chunk the heap goes to (-1 on entry; leave it negative to reject
        #: the heap).
        self.chunk_id = -1
        #: Output: the heap's index in the chunk (its entry in ``chunk.present``).
        self.heap_index = 0
        #: Output: where the heap's payload goes in ``chunk.data`` (bytes).
        self.heap_offset = 0
        #: Input: numpy ``uint64`` array indexed by statistic index; add to your
        #: ``add_stat`` counters here.
        self.batch_stats = batch_stats
        #: Input: ``max_heap_extra`` writable scratch bytes.
        self.extra = extra
        #: Output: where in ``chunk.extra`` the bytes of ``extra`` are copied.
        self.extra_offset = 0
        #: Output: how many bytes of ``extra`` to copy (0: none).
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

    The 80-byte ``chunk_place_data`` followed by the items array, the batch
    statistics and the extra scratch buffer live in ctypes memory allocated
    once, and the call's arguments are ctypes objects made once, so a call
    costs one ``pack_into``, the foreign call and one ``unpack_from``.
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
        # chunk_place_data, then the items it points to: one pack_into fills both.
        self._struct = (ctypes.c_char * (_PLACE_DATA_SIZE + 8 * max(n_items, 1)))()
        self._struct_addr = ctypes.addressof(self._struct)
        self._items_addr = self._struct_addr + _PLACE_DATA_SIZE
        self._pack = struct.Struct(_PLACE_IN.format + f"{n_items}q")
        args: tuple[Any, ...] = (ctypes.c_void_p(self._struct_addr), ctypes.c_size_t(_PLACE_DATA_SIZE))
        user = 0
        if name == _SIG_USER:
            self._func: Any = _USER_PROTO(pointer)
            user = _pyapi.PyCapsule_GetContext(capsule) or 0
            args += (ctypes.c_void_p(user),)
        else:
            self._func = _PLAIN_PROTO(pointer)
        self._args = args
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
        #: ``place_run(items, packets, sizes, start, end, head, out)``: the callback for a
        #: run of heaps from compiled code (see :mod:`._place_driver`), when numba is loaded.
        self.place_run: Callable[..., int] | None = None
        run = driver()
        if run is not None:
            fixed = (
                np.uint64(pointer), np.uint64(user), name == _SIG_USER,
                np.frombuffer(self._struct, dtype=np.uint64, count=_PLACE_DATA_SIZE // 8),
                np.uint64(self._struct_addr),
                np.frombuffer(self._struct, dtype=np.int64, count=n_items, offset=_PLACE_DATA_SIZE),
                np.uint64(self._items_addr), np.uint64(self._stats_addr), np.uint64(self._extra_addr),
            )

            def place_run(
                items: np.ndarray, packets: np.ndarray, sizes: np.ndarray, start: int, end: int,
                head: int, out: np.ndarray,
            ) -> int:
                return int(run(*fixed, items, packets, sizes, start, end, head, out))

            self.place_run = place_run

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
        placement = self.call_at(address, len(packet), items)
        del holder  # releases the export of the caller's buffer
        return placement

    def call_at(self, address: int, size: int, items: list[int]) -> Placement:
        """Place the heap whose first packet is the ``size`` bytes at ``address`` (kept valid by the caller)."""
        self._pack.pack_into(
            self._struct, 0, address, size, self._items_addr, -1, 0, 0,
            self._stats_addr, self._extra_addr, 0, 0, *items,
        )
        self._func(*self._args)
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


class BatchPlace:
    """A vectorised place callback: one call places every new heap of a batch.

    ``function(items)`` receives an ``(n, len(ChunkStreamConfig.items))``
    ``int64`` array, one row per heap (the values a per-heap callback would
    get in ``items``: -1 where a packet lacks the item), and returns three
    sequences of ``n`` integers (arrays, typically): ``chunk_id``,
    ``heap_index`` and ``heap_offset``. A negative ``chunk_id`` rejects the
    heap, as from a per-heap callback; there is no ``extra`` and no
    statistics. The function must depend on the item values alone: it may be
    given rows of heaps that end up not being new (a packet dropped before
    its heap began) and is called again with single rows for heaps it was not
    given in a batch. If it raises or returns arrays of the wrong shape or
    negative indices, the heaps of that call are rejected (and logged).
    """

    __slots__ = ("_function",)

    def __init__(self, function: Callable[[np.ndarray], Any]) -> None:
        if not callable(function):
            raise TypeError(f"BatchPlace needs a callable, not {type(function).__name__}")
        self._function = function

    def __repr__(self) -> str:
        return f"BatchPlace({self._function!r})"


class _BatchPlace:
    """Adapts a :class:`BatchPlace`: ``prepare`` places a batch's heaps, ``__call__`` looks them up."""

    def __init__(self, place: BatchPlace, n_items: int) -> None:
        self._function = place._function
        self._n_items = n_items
        self._ready: dict[tuple[int, ...], Placement] = {}
        self.extra = memoryview(bytearray(0))

    def prepare(self, rows: list[list[int]]) -> None:
        """Place the heaps whose item values are ``rows`` (one call of the function)."""
        self._ready = {}
        if rows:
            self._ready = dict(zip(map(tuple, rows), self._place(rows), strict=True))

    def _place(self, rows: list[list[int]]) -> list[Placement]:
        return self.place_array(np.array(rows, dtype=np.int64).reshape(len(rows), self._n_items))

    def place_array(self, items: np.ndarray) -> list[Placement]:
        """Place the heaps whose item values are the rows of ``items`` (one call of the function)."""
        rows = self.place_rows(items)
        chunk_id = rows[:, 0].view(np.int64).tolist()
        return [(c, i, o, 0, 0) for c, i, o in zip(chunk_id, rows[:, 1].tolist(), rows[:, 2].tolist(), strict=True)]

    def place_rows(self, items: np.ndarray) -> np.ndarray:
        """:meth:`place_array` as an ``(n, 5)`` ``uint64`` array (``chunk_id``'s bits first)."""
        n = len(items)
        rows = np.zeros((n, 5), dtype=np.uint64)
        try:
            chunk_id, heap_index, heap_offset = (
                np.asarray(part, dtype=np.int64).reshape(n) for part in self._function(items)
            )
        except Exception as exc:  # the receive path must not raise: the heaps are rejected
            log_limited(
                _ERROR, "chunk-place-error",
                "place callback raised %s: %s (%d heaps rejected)", type(exc).__name__, exc, n,
            )
            rows[:, 0] = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
            return rows
        bad = (chunk_id >= 0) & ((heap_index < 0) | (heap_offset < 0))
        if bad.any():
            log_limited(
                _ERROR, "chunk-place-negative",
                "place callback returned a negative heap_index or heap_offset for %d heaps: "
                "they are rejected", int(bad.sum()),
            )
            chunk_id = np.where(bad, -1, chunk_id)
        rejected = chunk_id < 0
        rows[:, 0] = chunk_id.view(np.uint64)
        rows[:, 1] = np.where(rejected, 0, heap_index).view(np.uint64)
        rows[:, 2] = np.where(rejected, 0, heap_offset).view(np.uint64)
        return rows

    def __call__(self, packet: memoryview, items: list[int]) -> Placement:
        placement = self._ready.get(tuple(items))
        if placement is None:
            [placement] = self._place([items])
        return placement

    def take_stats(self) -> list[int] | None:
        return None


def make_place(place: Any, n_items: int, n_stats: int, max_extra: int) -> _CPlace | _PyPlace | _BatchPlace:
    if isinstance(place, BatchPlace):
        return _BatchPlace(place, n_items)
    if isinstance(place, tuple):
        return _CPlace(place, n_items, n_stats, max_extra)
    return _PyPlace(place, n_stats, max_extra)
