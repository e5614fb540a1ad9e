"""Receive-stream statistics: how each one combines, and the snapshot users read.

A stream keeps its statistics as a plain ``list[int]`` that the assembler
updates in place (core statistics at fixed indices 0–8, then the custom
statistics registered on the ``StreamConfig``, then the extras of
:data:`EXTRA_STATS`); :class:`StreamStats` is the read-side snapshot,
mapping-like by name and sequence-like by index, as the reference's.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from .arguments import uint64

__all__ = [
    "StreamStatConfig",
    "StreamStats",
    "CORE_STATS",
    "EXTRA_STATS",
    "HEAPS",
    "INCOMPLETE_HEAPS_EVICTED",
    "INCOMPLETE_HEAPS_FLUSHED",
    "PACKETS",
    "BATCHES",
    "MAX_BATCH",
    "SINGLE_PACKET_HEAPS",
    "SEARCH_DIST",
    "WORKER_BLOCKED",
    "INVALID_PACKETS",
    "SKIPPED_FRAMES",
    "core_stat_configs",
]

HEAPS: Final = 0
INCOMPLETE_HEAPS_EVICTED: Final = 1
INCOMPLETE_HEAPS_FLUSHED: Final = 2
PACKETS: Final = 3
BATCHES: Final = 4
MAX_BATCH: Final = 5
SINGLE_PACKET_HEAPS: Final = 6
SEARCH_DIST: Final = 7
WORKER_BLOCKED: Final = 8

#: Name of the extra statistic counting packets dropped as malformed (not in ``packets``).
INVALID_PACKETS: Final = "invalid_packets"
SKIPPED_FRAMES: Final = "skipped_frames"

_UINT64_LIMIT = 1 << 64


class StreamStatConfig:
    """Name and combining rule of one statistic."""

    class Mode(enum.Enum):
        """How two values of a statistic combine."""

        COUNTER = 0
        MAXIMUM = 1

    __slots__ = ("_name", "_mode")

    def __init__(self, name: str, mode: StreamStatConfig.Mode = Mode.COUNTER) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not isinstance(mode, StreamStatConfig.Mode):
            raise TypeError(f"mode must be a StreamStatConfig.Mode, not {type(mode).__name__}")
        self._name = name
        self._mode = mode

    @property
    def name(self) -> str:
        """The statistic's name."""
        return self._name

    @property
    def mode(self) -> StreamStatConfig.Mode:
        """How values combine: ``COUNTER`` adds, ``MAXIMUM`` takes the larger."""
        return self._mode

    def combine(self, a: int, b: int) -> int:
        """Combine two values of this statistic according to its mode."""
        a = uint64(a, "a")
        b = uint64(b, "b")
        if self._mode is StreamStatConfig.Mode.MAXIMUM:
            return max(a, b)
        return (a + b) % _UINT64_LIMIT  # unsigned 64-bit counters wrap, as in the reference

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamStatConfig):
            return NotImplemented
        return self._name == other._name and self._mode is other._mode

    __hash__ = None  # type: ignore[assignment]  # unhashable, like the reference

    def __repr__(self) -> str:
        return f"StreamStatConfig({self._name!r}, {self._mode})"


_COUNTER = StreamStatConfig.Mode.COUNTER
_MAXIMUM = StreamStatConfig.Mode.MAXIMUM

#: The core statistics, in index order.
CORE_STATS: Final[tuple[tuple[str, StreamStatConfig.Mode], ...]] = (
    ("heaps", _COUNTER),
    ("incomplete_heaps_evicted", _COUNTER),
    ("incomplete_heaps_flushed", _COUNTER),
    ("packets", _COUNTER),
    ("batches", _COUNTER),
    ("max_batch", _MAXIMUM),
    ("single_packet_heaps", _COUNTER),
    ("search_dist", _COUNTER),
    ("worker_blocked", _COUNTER),
)

#: Statistics every ring stream has after the custom ones (docs/differences.md).
EXTRA_STATS: Final[tuple[tuple[str, StreamStatConfig.Mode], ...]] = (
    (INVALID_PACKETS, _COUNTER),
    # Captured frames that carry no SPEAD packet (not UDP, IP fragments): not
    # errors, but not silently ignored either.
    (SKIPPED_FRAMES, _COUNTER),
)


def core_stat_configs() -> list[StreamStatConfig]:
    """Fresh :class:`StreamStatConfig` objects for the core statistics."""
    return [StreamStatConfig(name, mode) for name, mode in CORE_STATS]


def _stat_property(index: int, name: str) -> property:
    def getter(self: StreamStats) -> int:
        return self._values[index]

    def setter(self: StreamStats, value: int) -> None:
        self._values[index] = uint64(value, name)

    return property(getter, setter, doc=f"The ``{name}`` statistic.")


class StreamStats:
    """A snapshot of a stream's statistics.

    Indexable by statistic name (like a mapping: ``keys``, ``values``,
    ``items``, ``get``, ``in``) and by non-negative index (like a sequence);
    the core statistics are also attributes. ``a + b`` combines two snapshots
    with the same configuration statistic by statistic.

    Streams build these; constructing one directly (unlike the reference,
    which forbids it) is allowed: ``StreamStats(config, values)``.
    """

    __slots__ = ("_config", "_values", "_names")

    def __init__(
        self, config: Sequence[StreamStatConfig], values: Iterable[int] | None = None
    ) -> None:
        self._config = list(config)
        if values is None:
            self._values = [0] * len(self._config)
        else:
            self._values = [uint64(v, "statistic value") for v in values]
            if len(self._values) != len(self._config):
                raise ValueError(
                    f"values has {len(self._values)} entries but config has {len(self._config)}"
                )
        self._names: dict[str, int] | None = None

    def _index_of(self, name: str) -> int:
        names = self._names
        if names is None:
            # The first statistic of a name wins should two share it.
            names = self._names = {}
            for i, stat in enumerate(self._config):
                names.setdefault(stat.name, i)
        return names[name]

    def _key(self, key: str | int) -> int:
        if isinstance(key, str):
            try:
                return self._index_of(key)
            except KeyError:
                raise KeyError(key) from None
        try:
            index = operator.index(key)
        except TypeError:
            raise TypeError(
                f"statistics are indexed by name or non-negative int, not {type(key).__name__}"
            ) from None
        if index < 0:
            raise TypeError(f"negative statistic indices are not supported (got {index})")
        if index >= len(self._values):
            raise IndexError(f"statistic index {index} out of range (have {len(self._values)})")
        return index

    def __getitem__(self, key: str | int) -> int:
        return self._values[self._key(key)]

    def __setitem__(self, key: str | int, value: int) -> None:
        value = uint64(value, "statistic value")
        self._values[self._key(key)] = value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            raise TypeError(f"statistic names are str, not {type(name).__name__}")
        try:
            self._index_of(name)
        except KeyError:
            return False
        return True

    def get(self, name: str, default: object = None) -> object:
        """The value of statistic ``name``, or ``default`` if there is none."""
        if not isinstance(name, str):
            raise TypeError(f"statistic names are str, not {type(name).__name__}")
        try:
            return self._values[self._index_of(name)]
        except KeyError:
            return default

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[str]:
        return (stat.name for stat in self._config)

    def keys(self) -> Iterator[str]:
        """Iterator over the statistic names, in index order."""
        return iter(self)

    def values(self) -> Iterator[int]:
        """Iterator over the values, in index order."""
        return iter(list(self._values))

    def items(self) -> Iterator[tuple[str, int]]:
        """Iterator over ``(name, value)`` pairs, in index order."""
        return iter([(stat.name, value) for stat, value in zip(self._config, self._values, strict=True)])

    @property
    def config(self) -> list[StreamStatConfig]:
        """The statistics' configurations, in index order."""
        return list(self._config)

    def _combined(self, other: StreamStats) -> list[int]:
        if self._config != other._config:
            raise ValueError("config must match to add stats together")
        return [
            stat.combine(a, b)
            for stat, a, b in zip(self._config, self._values, other._values, strict=True)
        ]

    def __add__(self, other: object) -> StreamStats:
        if not isinstance(other, StreamStats):
            return NotImplemented
        return StreamStats(self._config, self._combined(other))

    def __iadd__(self, other: object) -> StreamStats:
        if not isinstance(other, StreamStats):
            return NotImplemented
        self._values = self._combined(other)
        return self

    def __repr__(self) -> str:
        body = ", ".join(f"{stat.name!r}: {value}" for stat, value in zip(self._config, self._values, strict=True))
        return f"<StreamStats {{{body}}}>"

    heaps = _stat_property(HEAPS, "heaps")
    incomplete_heaps_evicted = _stat_property(INCOMPLETE_HEAPS_EVICTED, "incomplete_heaps_evicted")
    incomplete_heaps_flushed = _stat_property(INCOMPLETE_HEAPS_FLUSHED, "incomplete_heaps_flushed")
    packets = _stat_property(PACKETS, "packets")
    batches = _stat_property(BATCHES, "batches")
    max_batch = _stat_property(MAX_BATCH, "max_batch")
    single_packet_heaps = _stat_property(SINGLE_PACKET_HEAPS, "single_packet_heaps")
    search_dist = _stat_property(SEARCH_DIST, "search_dist")
    worker_blocked = _stat_property(WORKER_BLOCKED, "worker_blocked")
