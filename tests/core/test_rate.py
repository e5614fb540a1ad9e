"""Tests for the sans-IO send rate limiter (pure arithmetic: times are passed in)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2.protocols.rate import RateLimiter


def run(limiter: RateLimiter, sizes: list[int], rate: float, now: float = 0.0) -> list[float]:
    """Send ``sizes`` as fast as allowed (sending takes no time); return the send times."""
    times = []
    for size in sizes:
        t = limiter.packet_time(size, now, rate)
        now = max(now, t)
        times.append(now)
    return times


def heap_packet_sizes(payload: int = 100000, packet_size: int = 1472) -> list[int]:
    """Packet sizes of a one-item heap of ``payload`` bytes (first packet has 5 pointers)."""
    sizes = [packet_size]
    remaining = payload - (packet_size - 48)
    while remaining > 0:
        chunk = min(packet_size - 40, remaining)
        sizes.append(40 + chunk)
        remaining -= chunk
    return sizes


def test_first_burst_goes_at_once() -> None:
    limiter = RateLimiter(1000, 1.05)
    assert run(limiter, [100] * 10, 1000.0, now=5.0) == [5.0] * 10


def test_bursts_are_paced_at_rate() -> None:
    limiter = RateLimiter(1000, 1.05)
    times = run(limiter, [100] * 30, 1000.0)
    # Bursts close when they reach burst_size; each next burst waits for the
    # previous one's bytes at 1000 B/s.
    assert times[:10] == [0.0] * 10
    assert times[10:20] == [pytest.approx(1.0)] * 10
    assert times[20:30] == [pytest.approx(2.0)] * 10


def test_burst_closes_at_first_packet_reaching_burst_size() -> None:
    limiter = RateLimiter(250, 1.5)
    times = run(limiter, [100, 100, 100, 100], 100.0)
    # 300 bytes reach 250: the fourth packet starts a new burst after 3 s.
    assert times == [0.0, 0.0, 0.0, pytest.approx(3.0)]


def test_zero_burst_size_paces_every_packet() -> None:
    limiter = RateLimiter(0, 1.05)
    assert run(limiter, [10, 20, 30], 10.0) == [0.0, pytest.approx(1.0), pytest.approx(3.0)]


def test_catch_up_is_capped_at_burst_rate() -> None:
    limiter = RateLimiter(1000, 2.0)
    assert run(limiter, [1000], 1000.0) == [0.0]
    # The caller comes back late (at t=10, 9 s behind): the next bursts may
    # only go at twice the rate until the schedule is met again.
    times = run(limiter, [1000] * 30, 1000.0, now=10.0)
    assert times[0] == 10.0
    assert times[1] == pytest.approx(10.5)
    assert times[2] == pytest.approx(11.0)
    # After catching up (1 + 30 bursts of 1 s = 31 s of schedule vs 10 + n/2),
    # the pace returns to 1 s per burst.
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps[:15] == [pytest.approx(0.5)] * 15
    assert gaps[-5:] == [pytest.approx(1.0)] * 5
    # Never ahead of the ideal schedule: burst k starts no earlier than k s.
    for k, t in enumerate(times, start=1):
        assert t >= k - 1e-9


def test_idle_drops_credit_but_keeps_debt() -> None:
    limiter = RateLimiter(1000, 2.0)
    run(limiter, [1000], 1000.0)
    limiter.idle()
    # Idle until t=10: no catching up for the idle time.
    times = run(limiter, [1000] * 3, 1000.0, now=10.0)
    assert times == [10.0, pytest.approx(11.0), pytest.approx(12.0)]
    # Idle again, but early: the pending wait (debt) still applies.
    limiter.idle()
    assert run(limiter, [1000], 1000.0, now=12.5) == [pytest.approx(13.0)]


def test_unlimited_packets_go_at_once_and_do_not_count() -> None:
    limiter = RateLimiter(100, 1.05)
    assert run(limiter, [1000] * 5, 0.0, now=3.0) == [3.0] * 5
    # They do not delay the rate-limited packets that follow.
    assert run(limiter, [100, 100], 100.0, now=3.0) == [3.0, pytest.approx(4.0)]


def test_per_packet_rates() -> None:
    limiter = RateLimiter(100, 1.05)
    # 100 bytes at 100 B/s, then 100 bytes at 50 B/s.
    times = [limiter.packet_time(100, 0.0, 100.0), limiter.packet_time(100, 0.0, 50.0),
             limiter.packet_time(100, 0.0, 100.0)]
    assert times == [0.0, pytest.approx(1.0), pytest.approx(3.0)]


@pytest.mark.parametrize(
    ("rate", "burst_size", "first", "second"),
    [
        # Measured with the reference spead2 4.5.1 (BytesStream, two 100000-byte
        # heaps): (rate, burst_size) -> seconds taken by each send_heap call.
        (1e6, 65536, 0.0665, 0.1322),
        (1e6, 10000, 0.0931, 0.1028),
        (1e6, 200000, 0.0001, 0.2016),
        (2e6, 65536, 0.0334, 0.0660),
    ],
)
def test_matches_reference_timings(rate: float, burst_size: int, first: float, second: float) -> None:
    limiter = RateLimiter(burst_size, 1.05)
    sizes = heap_packet_sizes()
    assert sum(sizes) == 102808
    limiter.idle()
    t1 = run(limiter, sizes, rate)[-1]
    limiter.idle()
    t2 = run(limiter, sizes, rate, now=t1)[-1]
    assert t1 == pytest.approx(first, abs=0.001)
    assert t2 - t1 == pytest.approx(second, abs=0.001)


@pytest.mark.parametrize(
    ("burst_size", "ratio", "match"),
    [
        (-1, 1.05, "burst_size"),
        (10, 0.5, "burst rate ratio must be at least 1.0 and finite"),
        (10, math.inf, "burst rate ratio"),
        (10, math.nan, "burst rate ratio"),
    ],
)
def test_invalid_parameters(burst_size: int, ratio: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RateLimiter(burst_size, ratio)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=60),
    rate=st.floats(1.0, 1e9),
    burst_size=st.integers(0, 100000),
    ratio=st.floats(1.0, 4.0),
    delays=st.lists(st.floats(0.0, 0.01), min_size=60, max_size=60),
)
def test_properties(
    sizes: list[int], rate: float, burst_size: int, ratio: float, delays: list[float]
) -> None:
    """Whatever the caller's lateness: send times never decrease, never beat the
    ideal schedule by more than one burst, and back-to-back runs stay within a burst."""
    limiter = RateLimiter(burst_size, ratio)
    now = 0.0
    sent = 0
    last = -math.inf
    max_size = max(sizes)
    for size, delay in zip(sizes, delays, strict=False):
        now += delay
        t = limiter.packet_time(size, now, rate)
        assert t >= last
        send_at = max(now, t)
        # Bytes before this packet, minus one burst (and a packet of slack),
        # must have had time to go at the target rate.
        assert send_at >= (sent - burst_size - max_size) / rate - 1e-9 * (1 + send_at)
        sent += size
        last = t
        now = send_at


def test_lag_at_idle_is_caught_up_but_idle_time_is_not():
    """A sender that overslept before going idle catches up; idle time itself is forgiven."""
    limiter = RateLimiter(burst_size=0, burst_rate_ratio=2.0)
    rate = 1000.0  # bytes/s: a 100-byte packet takes 0.1 s
    assert limiter.packet_time(100, 0.0, rate) == 0.0
    # Ideal schedule: done at 0.1 s. The caller overslept to 0.3 s, then went idle.
    limiter.idle(0.3)
    # Resuming at once, the next packet may go at once and the one after it
    # only half a packet-time later: catching up at twice the rate.
    assert limiter.packet_time(100, 0.3, rate) == 0.3
    assert limiter.packet_time(100, 0.3, rate) == pytest.approx(0.35)


def test_idle_without_time_drops_lag():
    limiter = RateLimiter(burst_size=0, burst_rate_ratio=2.0)
    limiter.packet_time(100, 0.0, 1000.0)
    limiter.idle()
    assert limiter.packet_time(100, 5.0, 1000.0) == 5.0
    assert limiter.packet_time(100, 5.0, 1000.0) == pytest.approx(5.1)
