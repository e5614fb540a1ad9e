"""Heap references for ``send_heaps``: a heap with its cnt, substream and rate, and lists of them.

Also the argument checks they share with the send streams, which mirror the
reference's integer parameter types (a value out of range is a ``TypeError``).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import SupportsFloat, SupportsIndex

from ..protocols.arguments import uint64
from ._heap import Heap

__all__ = ["HeapReference", "HeapReferenceList"]

_INT64_MIN = -(1 << 63)
_INT64_LIMIT = 1 << 63


def _check_cnt(cnt: SupportsIndex) -> int:
    # Mirrors the reference's int64 parameter: anything else is a TypeError.
    value = operator.index(cnt)
    if not _INT64_MIN <= value < _INT64_LIMIT:
        raise TypeError(f"cnt must be a 64-bit signed integer (got {value!r})")
    return value


def _check_rate(rate: SupportsFloat) -> float:
    if isinstance(rate, (str, bytes)):
        raise TypeError(f"rate must be a number (got {rate!r})")
    return float(rate)


def _check_heap(heap: object) -> Heap:
    if not isinstance(heap, Heap):
        raise TypeError(f"heap must be a spead2.send.Heap (got {type(heap).__name__})")
    return heap


class HeapReference:
    """A heap plus how to send it within ``send_heaps``: cnt, substream and rate.

    ``cnt < 0`` means the stream's next automatic cnt; ``rate < 0`` means the
    stream's rate and ``rate == 0`` unlimited.
    """

    __slots__ = ("_heap", "_cnt", "_substream_index", "_rate")

    def __init__(
        self,
        heap: Heap,
        *,
        cnt: int = -1,
        substream_index: int = 0,
        rate: float = -1.0,
    ) -> None:
        self._heap = _check_heap(heap)
        self._cnt = _check_cnt(cnt)
        self._substream_index = uint64(substream_index, "substream_index")
        self._rate = _check_rate(rate)

    @property
    def heap(self) -> Heap:
        """The heap (read-only)."""
        return self._heap

    @property
    def cnt(self) -> int:
        """Heap cnt to use, or negative for the stream's next automatic cnt."""
        return self._cnt

    @cnt.setter
    def cnt(self, value: int) -> None:
        self._cnt = _check_cnt(value)

    @property
    def substream_index(self) -> int:
        """Which destination of the stream the heap goes to."""
        return self._substream_index

    @substream_index.setter
    def substream_index(self, value: int) -> None:
        self._substream_index = uint64(value, "substream_index")

    @property
    def rate(self) -> float:
        """Rate for this heap in bytes/s: negative = the stream's rate, 0 = unlimited."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = _check_rate(value)

    def __repr__(self) -> str:
        return (
            f"HeapReference({self._heap!r}, cnt={self._cnt}, "
            f"substream_index={self._substream_index}, rate={self._rate})"
        )


#: A heap reference frozen at the time it was queued: (heap, cnt, substream_index, rate).
_Ref = tuple[Heap, int, int, float]


class HeapReferenceList:
    """An opaque, pre-converted list of :class:`HeapReference` for repeated ``send_heaps``.

    The references' values are captured when the list is built. Supports
    ``len()`` and slicing (which gives another ``HeapReferenceList``), not
    integer indexing or iteration.
    """

    __slots__ = ("_refs",)

    def __init__(self, heaps: Sequence[HeapReference]) -> None:
        self._refs: tuple[_Ref, ...] = tuple(_freeze(ref) for ref in heaps)

    @classmethod
    def _from_refs(cls, refs: tuple[_Ref, ...]) -> HeapReferenceList:
        result = cls.__new__(cls)
        result._refs = refs
        return result

    def __len__(self) -> int:
        return len(self._refs)

    def __getitem__(self, index: slice) -> HeapReferenceList:
        if not isinstance(index, slice):
            raise TypeError(
                f"HeapReferenceList can only be sliced, not indexed (got {type(index).__name__})"
            )
        return HeapReferenceList._from_refs(self._refs[index])

    def __repr__(self) -> str:
        return f"<HeapReferenceList of {len(self._refs)} heaps>"


def _freeze(ref: object) -> _Ref:
    if not isinstance(ref, HeapReference):
        raise TypeError(f"expected a HeapReference (got {type(ref).__name__})")
    return (ref._heap, ref._cnt, ref._substream_index, ref._rate)


def _convert_heaps(heaps: HeapReferenceList | Sequence[HeapReference]) -> Sequence[_Ref]:
    if isinstance(heaps, HeapReferenceList):
        return heaps._refs
    if isinstance(heaps, (str, bytes)) or not isinstance(heaps, Sequence):
        raise TypeError(
            f"heaps must be a list of HeapReference or a HeapReferenceList "
            f"(got {type(heaps).__name__})"
        )
    return [_freeze(ref) for ref in heaps]
