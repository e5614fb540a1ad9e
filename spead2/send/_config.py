"""Send stream configuration: :class:`StreamConfig`, :class:`RateMethod`, :class:`GroupMode`."""

from __future__ import annotations

import enum
import math
from typing import SupportsFloat

from ..protocols.arguments import uint64

__all__ = ["GroupMode", "RateMethod", "StreamConfig"]


class RateMethod(enum.Enum):
    """How rate limiting is done. Only software limiting exists here: all three behave as ``SW``."""

    SW = 0
    HW = 1
    AUTO = 2


class GroupMode(enum.Enum):
    """How the packets of a group of heaps (``send_heaps``) are interleaved."""

    #: One packet from each heap in turn, skipping heaps that have run out.
    ROUND_ROBIN = 0
    #: Each heap completely, one after the other.
    SERIAL = 1


def _float(name: str, value: SupportsFloat) -> float:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number (got {value!r})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number (got {value!r})") from None


class StreamConfig:
    """Configuration shared by all send streams; a stream keeps its own copy.

    All arguments are keyword-only, and are also read/write properties with
    the same validation as the constructor.
    """

    #: Default largest packet sent (bytes): a UDP datagram that fits a 1500-byte Ethernet frame.
    DEFAULT_MAX_PACKET_SIZE = 1472
    #: Default burst size (bytes) of the rate limiter.
    DEFAULT_BURST_SIZE = 65536
    #: Default number of heaps that may be in flight at once.
    DEFAULT_MAX_HEAPS = 4
    #: Default ratio of the burst rate to ``rate``.
    DEFAULT_BURST_RATE_RATIO = 1.05
    #: Default rate-limiting method.
    DEFAULT_RATE_METHOD = RateMethod.AUTO

    __slots__ = (
        "_max_packet_size",
        "_rate",
        "_burst_size",
        "_max_heaps",
        "_burst_rate_ratio",
        "_rate_method",
    )

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        rate: float = 0.0,
        burst_size: int = DEFAULT_BURST_SIZE,
        max_heaps: int = DEFAULT_MAX_HEAPS,
        burst_rate_ratio: float = DEFAULT_BURST_RATE_RATIO,
        rate_method: RateMethod = DEFAULT_RATE_METHOD,
    ) -> None:
        self.max_packet_size = max_packet_size
        self.rate = rate
        self.burst_size = burst_size
        self.max_heaps = max_heaps
        self.burst_rate_ratio = burst_rate_ratio
        self.rate_method = rate_method

    @property
    def max_packet_size(self) -> int:
        """Largest packet to send, in bytes (rounded down to a multiple of 8 when packetizing).

        Not validated here: a size below 56 fails when a heap is sent.
        """
        return self._max_packet_size

    @max_packet_size.setter
    def max_packet_size(self, value: int) -> None:
        self._max_packet_size = uint64(value, "max_packet_size")

    @property
    def rate(self) -> float:
        """Target rate in bytes per second over whole packets; 0 means unlimited."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        rate = _float("rate", value)
        if not (0.0 <= rate < math.inf):
            raise ValueError(f"rate must be non-negative and finite (got {rate!r})")
        self._rate = rate

    @property
    def burst_size(self) -> int:
        """Bytes that may be sent back-to-back without waiting for the rate limiter."""
        return self._burst_size

    @burst_size.setter
    def burst_size(self, value: int) -> None:
        self._burst_size = uint64(value, "burst_size")

    @property
    def max_heaps(self) -> int:
        """Maximum number of heaps queued or in flight on the stream."""
        return self._max_heaps

    @max_heaps.setter
    def max_heaps(self, value: int) -> None:
        max_heaps = uint64(value, "max_heaps")
        if max_heaps == 0:
            raise ValueError(f"max_heaps must be positive (got {max_heaps!r})")
        self._max_heaps = max_heaps

    @property
    def burst_rate_ratio(self) -> float:
        """How much faster than ``rate`` the stream may go to catch up when it is behind."""
        return self._burst_rate_ratio

    @burst_rate_ratio.setter
    def burst_rate_ratio(self, value: float) -> None:
        ratio = _float("burst_rate_ratio", value)
        if not (ratio >= 1.0 and math.isfinite(ratio)):
            raise ValueError(
                f"burst rate ratio must be at least 1.0 and finite (got {ratio!r})"
            )
        self._burst_rate_ratio = ratio

    @property
    def rate_method(self) -> RateMethod:
        """Rate-limiting method (accepted for compatibility; limiting is always done in software)."""
        return self._rate_method

    @rate_method.setter
    def rate_method(self, value: RateMethod) -> None:
        if not isinstance(value, RateMethod):
            raise TypeError(f"rate_method must be a RateMethod (got {value!r})")
        self._rate_method = value

    @property
    def burst_rate(self) -> float:
        """The catch-up rate, ``rate * burst_rate_ratio`` (read-only)."""
        return self._rate * self._burst_rate_ratio

    def __copy__(self) -> StreamConfig:
        """An independent copy (what a stream keeps, so later edits don't affect it)."""
        return StreamConfig(
            max_packet_size=self._max_packet_size,
            rate=self._rate,
            burst_size=self._burst_size,
            max_heaps=self._max_heaps,
            burst_rate_ratio=self._burst_rate_ratio,
            rate_method=self._rate_method,
        )

    def __repr__(self) -> str:
        return (
            f"StreamConfig(max_packet_size={self._max_packet_size!r}, rate={self._rate!r}, "
            f"burst_size={self._burst_size!r}, max_heaps={self._max_heaps!r}, "
            f"burst_rate_ratio={self._burst_rate_ratio!r}, rate_method={self._rate_method})"
        )
