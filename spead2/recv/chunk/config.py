"""Chunk-stream configuration: :class:`Chunk` and :class:`ChunkStreamConfig`.

:class:`Chunk` holds the user's buffers; :class:`ChunkStreamConfig` says how
a chunk stream places heaps (its place callback is validated by
:mod:`.place`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, ClassVar

from ...protocols.arguments import uint64
from .._config import UintOption
from .place import check_place

__all__ = ["Chunk", "ChunkStreamConfig"]


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

    stream_id = UintOption("``StreamConfig.stream_id`` of the stream that filled the chunk.")

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
        return f"<{type(self).__name__} chunk_id={self._chunk_id} stream_id={self.stream_id}>"


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

    #: Default number of chunks under construction at once.
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
        self._items = [uint64(item, "items entry") for item in entries]

    max_chunks = UintOption(
        "Most chunks under construction at once (the window size).",
        zero_error="max_chunks cannot be 0",
    )

    @property
    def place(self) -> Any:
        """The place callback (see the class docstring), or ``None``."""
        return self._place

    @place.setter
    def place(self, value: Any) -> None:
        self._place = check_place(value)

    max_heap_extra = UintOption(
        "Size of the scratch buffer in which the callback may write per-heap extra bytes.",
    )

    @property
    def packet_presence_payload_size(self) -> int:
        """Payload bytes per packet when presence is tracked per packet (0: per heap)."""
        return self._packet_presence

    def enable_packet_presence(self, payload_size: int) -> ChunkStreamConfig:
        """Track presence per packet of ``payload_size`` payload bytes; returns ``self``."""
        payload_size = uint64(payload_size, "payload_size")
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
        other.max_chunks = self.max_chunks
        other._place = self._place
        other.max_heap_extra = self.max_heap_extra
        other._packet_presence = self._packet_presence
        return other

    __copy__ = copy

    def __repr__(self) -> str:
        return (
            f"ChunkStreamConfig(items={self._items}, max_chunks={self.max_chunks}, "
            f"place={self._place!r}, max_heap_extra={self.max_heap_extra}, "
            f"packet_presence_payload_size={self._packet_presence})"
        )
