"""Tests for the sans-IO send scheduler: automatic cnts and the transmission order of a group."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from spead2.protocols.flavour import Flavour
from spead2.protocols.packetizer import HeapEntry, HeapPacketizer
from spead2.protocols.rate import RateLimiter
from spead2.protocols.scheduler import CntSequence, GroupScheduler, HeapRequest, schedule_group

FLAVOUR = Flavour(4, 64, 48, 0)
FLAVOUR_40 = Flavour(4, 64, 40, 0)
PACKET_SIZE = 120  # 8 header + 5 pointers of 8 on the first packet: room for 72 payload bytes


class Source:
    """A send heap reduced to what the packetizer reads: one addressed item of ``size`` bytes."""

    def __init__(self, size: int, flavour: Flavour = FLAVOUR, fill: int = 0) -> None:
        self.flavour = flavour
        self.repeat_pointers = False
        self.entries: Sequence[HeapEntry] = [(0x1000, False, memoryview(bytes([fill]) * size))]


def cnt_of(packet: list[bytes | memoryview]) -> int:
    """The heap cnt carried by a packet (the first item pointer, immediate)."""
    header = b"".join(packet)[:16]
    bits = 48 if header[2:4] == b"\x02\x06" else 40
    return int.from_bytes(header[8:16], "big") & ((1 << bits) - 1)


def drain(scheduler: GroupScheduler, now: float = 0.0) -> list[tuple[int, int, float]]:
    """``(substream, cnt, send_time)`` of every packet, sending each as soon as it may go."""
    out = []
    while (item := scheduler.next_packet(now)) is not None:
        substream, packet, send_time = item
        now = max(now, send_time)
        out.append((substream, cnt_of(packet), send_time))
    return out


def test_cnt_sequence_counts_from_one_by_default() -> None:
    cnts = CntSequence()
    requests: list[HeapRequest] = [(Source(1), -1, 0, 0.0)] * 3
    assigned, following = cnts.assign(requests)
    assert assigned == [1, 2, 3]
    assert following == 4
    assert cnts.next == 1, "assign() must not advance the sequence by itself"


def test_explicit_cnts_are_kept_and_do_not_advance_the_sequence() -> None:
    cnts = CntSequence(10, 5)
    requests: list[HeapRequest] = [(Source(1), -1, 0, 0.0), (Source(1), 7, 0, 0.0), (Source(1), -1, 0, 0.0)]
    assert cnts.assign(requests) == ([10, 7, 15], 20)


def test_cnts_wrap_modulo_2_64_and_reduce_to_the_heaps_address_bits() -> None:
    cnts = CntSequence((1 << 64) - 1, 2)
    requests: list[HeapRequest] = [(Source(1, FLAVOUR_40), -1, 0, 0.0), (Source(1), -1, 0, 0.0)]
    assigned, following = cnts.assign(requests)
    assert assigned == [(1 << 40) - 1, 1]
    assert following == 3


def test_schedule_group_stores_the_sequence_only_on_success() -> None:
    cnts = CntSequence(5, 1)
    limiter = RateLimiter(65536, 1.05)
    with pytest.raises(ValueError, match="packet size is too small"):
        schedule_group([(Source(8), -1, 0, 0.0)], cnts, False, 40, 0.0, limiter)
    assert cnts.next == 5
    scheduler = schedule_group([(Source(8), -1, 0, 0.0)] * 2, cnts, False, PACKET_SIZE, 0.0, limiter)
    assert cnts.next == 7
    assert [cnt for _, cnt, _ in drain(scheduler)] == [5, 6]


def test_serial_sends_each_heap_completely_in_turn() -> None:
    limiter = RateLimiter(65536, 1.05)
    requests: list[HeapRequest] = [(Source(200), 1, 0, 0.0), (Source(80), 2, 1, 0.0), (Source(10), 3, 0, 0.0)]
    scheduler = schedule_group(requests, CntSequence(), False, PACKET_SIZE, 0.0, limiter)
    assert [(s, c) for s, c, _ in drain(scheduler)] == [(0, 1), (0, 1), (0, 1), (1, 2), (1, 2), (0, 3)]


def test_round_robin_takes_one_packet_per_heap_skipping_finished_ones() -> None:
    limiter = RateLimiter(65536, 1.05)
    requests: list[HeapRequest] = [(Source(200), 1, 0, 0.0), (Source(10), 2, 1, 0.0), (Source(80), 3, 2, 0.0)]
    scheduler = schedule_group(requests, CntSequence(), True, PACKET_SIZE, 0.0, limiter)
    assert [(s, c) for s, c, _ in drain(scheduler)] == [(0, 1), (1, 2), (2, 3), (0, 1), (2, 3), (0, 1)]


def test_bytes_sent_is_the_total_of_the_packets_returned() -> None:
    limiter = RateLimiter(65536, 1.05)
    heaps = [Source(200), Source(80)]
    expected = sum(sum(map(len, p)) for h in heaps for p in HeapPacketizer(h, 1, PACKET_SIZE))
    scheduler = schedule_group([(h, 1, 0, 0.0) for h in heaps], CntSequence(), True, PACKET_SIZE, 0.0, limiter)
    assert not scheduler.limited
    drain(scheduler)
    assert scheduler.bytes_sent == expected


def test_rates_come_from_the_limiter_and_negative_rates_take_the_streams() -> None:
    # Bursts of one packet: every packet after the first waits size / rate.
    requests: list[HeapRequest] = [(Source(200), 1, 0, -1.0)]
    scheduler = schedule_group(requests, CntSequence(), False, PACKET_SIZE, 1000.0, RateLimiter(1, 1.0))
    assert scheduler.limited
    times = [t for _, _, t in drain(scheduler, now=10.0)]
    sizes = [sum(map(len, p)) for p in HeapPacketizer(Source(200), 1, PACKET_SIZE)]
    assert times[0] == 10.0
    for before, after, size in zip(times, times[1:], sizes, strict=False):
        assert after == pytest.approx(before + size / 1000.0)


def test_unlimited_heaps_go_at_the_time_passed_in() -> None:
    requests: list[HeapRequest] = [(Source(200), 1, 0, 0.0)]
    scheduler = schedule_group(requests, CntSequence(), False, PACKET_SIZE, 1000.0, RateLimiter(1, 1.0))
    assert not scheduler.limited
    assert {t for _, _, t in drain(scheduler, now=3.5)} == {3.5}
