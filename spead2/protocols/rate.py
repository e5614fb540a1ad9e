"""Send-side rate limiting (``rate``, ``burst_size``, ``burst_rate_ratio``) as pure arithmetic.

The limiter never reads a clock: the caller passes the current time with each
packet and gets back the time at which that packet may go. Times are plain
floats in seconds on whatever monotonic scale the caller uses.

The model:

* Rates are bytes per second over whole packets (header, pointers, payload).
* Packets are grouped into *bursts*. A burst is closed by the first packet
  that brings it to at least ``burst_size`` bytes; the packets of one burst go
  back-to-back, and only the first packet of a burst can be made to wait.
* The *ideal schedule* is the time at which every byte sent so far would have
  left at exactly the target rate. A new burst may not start before it, so
  on average the stream never exceeds the rate.
* When the sender has fallen behind the ideal schedule (a slow transport, an
  oversleeping timer) it catches up, but no faster than ``rate *
  burst_rate_ratio``: a new burst also waits until the previous burst would
  have finished at that burst rate, measured from when it started.
* Time spent with nothing to send is not "behind": after :meth:`idle`, the
  ideal schedule is moved up to the present minus whatever lag the sender
  already had when it went idle. So an idle stream cannot later burst at the
  catch-up rate for as long as it was idle, but a sender that overslept just
  before going idle (e.g. at the end of one blocking ``send_heap``) still
  catches up on that at the next packet.
* Every packet may carry its own rate (a per-heap override). A rate of 0 is
  unlimited: such packets go at once and do not count against the schedule;
  they count as idle time for the packets that follow.
"""

from __future__ import annotations

import math

__all__ = ["RateLimiter"]


class RateLimiter:
    """Decides when each packet of a send stream may be transmitted.

    ``burst_size`` bytes may go back-to-back; when behind the ideal schedule
    the limiter catches up at ``rate * burst_rate_ratio``. The stream's rate
    is not stored here: it is passed with every packet (so per-heap rates
    are just a different argument).
    """

    __slots__ = (
        "_burst_size",
        "_burst_rate_ratio",
        "_rate_time",
        "_fresh",
        "_burst_bytes",
        "_burst_start",
        "_burst_duration",
        "_next_burst",
        "_idle_lag",
    )

    def __init__(self, burst_size: int, burst_rate_ratio: float) -> None:
        if burst_size < 0:
            raise ValueError(f"burst_size must be non-negative (got {burst_size!r})")
        if not (burst_rate_ratio >= 1.0 and math.isfinite(burst_rate_ratio)):
            raise ValueError(
                "burst rate ratio must be at least 1.0 and finite "
                f"(got {burst_rate_ratio!r})"
            )
        self._burst_size = burst_size
        self._burst_rate_ratio = burst_rate_ratio
        # Time at which all rate-limited bytes so far complete at their rates.
        self._rate_time = -math.inf
        # When set, the next rate-limited packet first drops accumulated credit.
        self._fresh = True
        self._burst_bytes = 0
        self._burst_start = -math.inf
        # Length of the current burst at the catch-up (burst) rate.
        self._burst_duration = 0.0
        # Earliest start of the next burst; only rises when a burst closes.
        self._next_burst = -math.inf
        # How far behind the ideal schedule the sender was when it went idle.
        self._idle_lag = 0.0

    def idle(self, now: float | None = None) -> None:
        """Note that the sender has nothing to send (its queue drained) as of ``now``.

        The next packet will not be allowed to catch up for time spent idle;
        a lag the sender already had at ``now`` is kept (without ``now``, it
        is dropped too).
        """
        self._fresh = True
        lag = 0.0 if now is None else now - self._rate_time
        self._idle_lag = lag if lag > 0.0 else 0.0

    def packet_time(self, size: int, now: float, rate: float) -> float:
        """Account for a packet of ``size`` bytes and return when it may be sent.

        ``now`` is the current time; ``rate`` the rate (bytes/s) that applies
        to this packet, 0 meaning unlimited. The result may be earlier than
        ``now`` (send at once). The caller must send the packet no earlier than
        the returned time and call this for packets in the order sent.
        """
        if rate <= 0.0:
            self._fresh = True
            self._idle_lag = 0.0
            return now
        if self._fresh:
            self._fresh = False
            floor = now - self._idle_lag
            self._idle_lag = 0.0
            if self._rate_time < floor:
                self._rate_time = floor
        if self._burst_bytes >= self._burst_size:
            # The previous burst is complete: this packet starts a new one,
            # which must wait for the ideal schedule and for the catch-up cap.
            end = self._burst_start + self._burst_duration
            self._next_burst = self._rate_time if self._rate_time > end else end
            self._burst_bytes = 0
            self._burst_duration = 0.0
        if self._burst_bytes == 0:
            self._burst_start = self._next_burst if self._next_burst > now else now
        self._burst_bytes += size
        self._rate_time += size / rate
        self._burst_duration += size / (rate * self._burst_rate_ratio)
        return self._burst_start
