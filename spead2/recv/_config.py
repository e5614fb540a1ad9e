"""Receive-stream configuration: ``StreamConfig`` and ``RingStreamConfig``.

Both are keyword-only and every option is a read/write property, validated
on every assignment. Unsigned options reject negative or non-integer values
with ``TypeError`` (as the reference's binding does); out-of-range values
that are integers get a ``ValueError`` naming the option.
"""

from __future__ import annotations

import operator
from typing import Any, ClassVar, Self, overload

from ..protocols.arguments import uint64
from ..protocols.constants import BUG_COMPAT_PYSPEAD_0_5_2, MEMCPY_NONTEMPORAL, MEMCPY_STD
from ..protocols.stats import StreamStatConfig, core_stat_configs

__all__ = ["FlagOption", "RingStreamConfig", "StreamConfig", "UintOption"]


def flag_arg(name: str, value: object) -> bool:
    """Truth value the way the reference's binding takes it: None is False; str, lists etc. are not flags."""
    if value is None:
        return False
    if isinstance(value, bool) or hasattr(type(value), "__bool__"):
        return bool(value)
    raise TypeError(f"{name} must be a bool, not {type(value).__name__} ({value!r})")


class _CheckedOption[T]:
    """A read/write option of a configuration class, kept in the slot ``_<name>``,
    whose every assignment goes through :meth:`check`."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._name = self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._slot = "_" + name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object, owner: type | None = None) -> Self | T:
        if instance is None:
            return self
        return getattr(instance, self._slot)  # type: ignore[no-any-return]

    def __set__(self, instance: object, value: T) -> None:
        setattr(instance, self._slot, self.check(self._name, value))

    def check(self, name: str, value: object) -> T:
        """``value`` as the option's type, or the exception the reference's binding raises."""
        raise NotImplementedError


class UintOption(_CheckedOption[int]):
    """An unsigned 64-bit option (:func:`~spead2.protocols.arguments.uint64`); with ``zero_error``, 0 raises
    ``ValueError(zero_error)`` too."""

    def __init__(self, doc: str, *, zero_error: str | None = None) -> None:
        super().__init__(doc)
        self._zero_error = zero_error

    def check(self, name: str, value: object) -> int:
        result = uint64(value, name)
        if result == 0 and self._zero_error is not None:
            raise ValueError(self._zero_error)
        return result


class FlagOption(_CheckedOption[bool]):
    """A flag (:func:`flag_arg`)."""

    def check(self, name: str, value: object) -> bool:
        return flag_arg(name, value)


def _default_allocator() -> Any:
    from .._memory import MemoryAllocator

    return MemoryAllocator()


def _allocator(value: object) -> Any:
    from .._memory import MemoryAllocator

    if value is not None and not isinstance(value, MemoryAllocator):
        raise TypeError(
            f"memory_allocator must be a spead2.MemoryAllocator or None, not {type(value).__name__}"
        )
    return value


class StreamConfig:
    """Configuration of a receive stream (heap assembly, statistics, start-up).

    A stream takes a copy at construction: changing this object afterwards
    has no effect on the stream.
    """

    #: Default number of partial heaps tracked per substream.
    DEFAULT_MAX_HEAPS: ClassVar[int] = 4

    __slots__ = (
        "_max_heaps",
        "_substreams",
        "_bug_compat",
        "_memcpy",
        "_memory_allocator",
        "_stop_on_stop_item",
        "_allow_unsized_heaps",
        "_allow_out_of_order",
        "_stream_id",
        "_explicit_start",
        "_custom_stats",
    )

    _UNSET: ClassVar[object] = object()

    def __init__(
        self,
        *,
        max_heaps: int = DEFAULT_MAX_HEAPS,
        substreams: int = 1,
        bug_compat: int = 0,
        memcpy: int = MEMCPY_STD,
        memory_allocator: Any = _UNSET,
        stop_on_stop_item: bool = True,
        allow_unsized_heaps: bool = True,
        allow_out_of_order: bool = False,
        stream_id: int = 0,
        explicit_start: bool = False,
    ) -> None:
        self.max_heaps = max_heaps
        self.substreams = substreams
        self.bug_compat = bug_compat
        self.memcpy = memcpy
        if memory_allocator is StreamConfig._UNSET:
            self._memory_allocator = _default_allocator()
        else:
            self.memory_allocator = memory_allocator
        self.stop_on_stop_item = stop_on_stop_item
        self.allow_unsized_heaps = allow_unsized_heaps
        self.allow_out_of_order = allow_out_of_order
        self.stream_id = stream_id
        self.explicit_start = explicit_start
        self._custom_stats: list[StreamStatConfig] = []

    # -- options ---------------------------------------------------------------------

    max_heaps = UintOption(
        "Partial heaps tracked at once per substream; the oldest is evicted to make room.",
        zero_error="max_heaps cannot be 0 (got max_heaps=0)",
    )

    substreams = UintOption(
        "Heap cnt modulo this selects the substream whose partial heaps a packet joins.",
        zero_error="substreams cannot be 0 (got substreams=0)",
    )

    @property
    def bug_compat(self) -> int:
        """``BUG_COMPAT_*`` flags for interpreting received descriptors."""
        return self._bug_compat

    @bug_compat.setter
    def bug_compat(self, value: int) -> None:
        value = uint64(value, "bug_compat")
        if value & ~BUG_COMPAT_PYSPEAD_0_5_2:
            raise ValueError(
                f"unknown compatibility bits in bug_compat (got bug_compat={value:#x})"
            )
        self._bug_compat = value

    @property
    def memcpy(self) -> int:
        """``MEMCPY_STD`` or ``MEMCPY_NONTEMPORAL`` (accepted; both copy the same way here)."""
        return self._memcpy

    @memcpy.setter
    def memcpy(self, value: int) -> None:
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"memcpy must be an integer, not {type(value).__name__}") from None
        if value not in (MEMCPY_STD, MEMCPY_NONTEMPORAL):
            raise ValueError(f"Unknown memcpy function (got memcpy={value})")
        self._memcpy = value

    @property
    def memory_allocator(self) -> Any:
        """Allocator for heap payloads (a ``spead2.MemoryAllocator``) or None."""
        return self._memory_allocator

    @memory_allocator.setter
    def memory_allocator(self, value: Any) -> None:
        self._memory_allocator = _allocator(value)

    stop_on_stop_item = FlagOption("Whether a stream-control stop item ends the stream.")

    allow_unsized_heaps = FlagOption("Whether packets without HEAP_LENGTH are accepted.")

    allow_out_of_order = FlagOption("Whether the packets of a heap may arrive in any order.")

    stream_id = UintOption("Identifier copied into chunks produced by chunk streams.")

    explicit_start = FlagOption(
        "Whether readers wait for ``Stream.start()`` before delivering anything.",
    )

    # -- statistics ------------------------------------------------------------------

    @property
    def stats(self) -> list[StreamStatConfig]:
        """Core statistics then custom ones; a statistic's position is its index."""
        return core_stat_configs() + list(self._custom_stats)

    def add_stat(
        self, name: str, mode: StreamStatConfig.Mode = StreamStatConfig.Mode.COUNTER
    ) -> int:
        """Register a custom statistic and return its index."""
        stat = StreamStatConfig(name, mode)  # validates the argument types
        if any(existing.name == name for existing in self.stats):
            raise ValueError(f"A statistic called {name} already exists")
        self._custom_stats.append(stat)
        return self.next_stat_index() - 1

    def get_stat_index(self, name: str) -> int:
        """Index of the statistic called ``name``."""
        for index, stat in enumerate(self.stats):
            if stat.name == name:
                return index
        raise IndexError(f"{name} is not a known statistic name")

    def next_stat_index(self) -> int:
        """Index that the next :meth:`add_stat` will return."""
        return len(core_stat_configs()) + len(self._custom_stats)

    # -- copying ---------------------------------------------------------------------

    def copy(self) -> StreamConfig:
        """An independent copy (sharing the memory allocator, as the reference does)."""
        other = StreamConfig.__new__(StreamConfig)
        for slot in StreamConfig.__slots__:
            setattr(other, slot, getattr(self, slot))
        other._custom_stats = list(self._custom_stats)
        return other

    __copy__ = copy

    def __repr__(self) -> str:
        return (
            f"StreamConfig(max_heaps={self.max_heaps}, substreams={self.substreams}, "
            f"bug_compat={self._bug_compat}, memcpy={self._memcpy}, "
            f"memory_allocator={self._memory_allocator!r}, "
            f"stop_on_stop_item={self.stop_on_stop_item}, "
            f"allow_unsized_heaps={self.allow_unsized_heaps}, "
            f"allow_out_of_order={self.allow_out_of_order}, stream_id={self.stream_id}, "
            f"explicit_start={self.explicit_start})"
        )


class RingStreamConfig:
    """Configuration of the ring between a stream's network side and its consumer."""

    #: Default capacity of the ring, in heaps.
    DEFAULT_HEAPS: ClassVar[int] = 4

    __slots__ = ("_heaps", "_contiguous_only", "_incomplete_keep_payload_ranges")

    def __init__(
        self,
        *,
        heaps: int = DEFAULT_HEAPS,
        contiguous_only: bool = True,
        incomplete_keep_payload_ranges: bool = False,
    ) -> None:
        self.heaps = heaps
        self.contiguous_only = contiguous_only
        self.incomplete_keep_payload_ranges = incomplete_keep_payload_ranges

    heaps = UintOption(
        "Capacity of the ring, in heaps.",
        zero_error="heaps must be at least 1 (got heaps=0)",
    )

    contiguous_only = FlagOption(
        "If False, incomplete heaps are delivered as ``IncompleteHeap`` instead of dropped.",
    )

    incomplete_keep_payload_ranges = FlagOption(
        "Whether delivered incomplete heaps list the byte ranges that arrived.",
    )

    def copy(self) -> RingStreamConfig:
        """An independent copy."""
        other = RingStreamConfig.__new__(RingStreamConfig)
        for slot in RingStreamConfig.__slots__:
            setattr(other, slot, getattr(self, slot))
        return other

    __copy__ = copy

    def __repr__(self) -> str:
        return (
            f"RingStreamConfig(heaps={self.heaps}, contiguous_only={self.contiguous_only}, "
            f"incomplete_keep_payload_ranges={self.incomplete_keep_payload_ranges})"
        )
