"""Send scheduling: automatic heap cnts, and the packets of a heap group in transmission order.

Sans-IO: nothing here reads a clock, sleeps or sends. A send stream checks a
``send_heaps`` call's arguments, then :func:`schedule_group` assigns the
automatic cnts and makes a :class:`GroupScheduler`, which the stream's driver
asks for one packet at a time, passing the current time and getting back the
time at which the packet may go (:class:`~.rate.RateLimiter`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .packetizer import HeapPacketizer, Packet, PacketSource
from .rate import RateLimiter

__all__ = ["CntSequence", "GroupScheduler", "HeapRequest", "schedule_group"]

_UINT64_MASK = (1 << 64) - 1

#: One heap of a group as the stream hands it over: ``(heap, cnt, substream_index,
#: rate)``. ``cnt < 0`` takes the next automatic cnt; ``rate < 0`` (or NaN) is the
#: stream's rate, ``0`` unlimited.
HeapRequest = tuple[PacketSource, int, int, float]


class CntSequence:
    """A send stream's automatic cnts: ``next``, ``next + step``, ... wrapping modulo 2**64.

    Each cnt handed to a heap is further reduced modulo ``2**heap_address_bits``
    of that heap's flavour. The values are not checked here (the stream's
    ``set_cnt_sequence`` does that).
    """

    __slots__ = ("next", "step")

    def __init__(self, next: int = 1, step: int = 1) -> None:
        self.next = next
        self.step = step

    def assign(self, requests: Sequence[HeapRequest]) -> tuple[list[int], int]:
        """The cnt of every heap of a group, and what :attr:`next` becomes once it is sent.

        Explicit cnts (``>= 0``) are kept and do not advance the sequence.
        Nothing changes here: the caller stores the second value once the
        group is accepted, so a group that fails leaves the sequence alone.
        """
        next_cnt = self.next
        step = self.step
        cnts = []
        for heap, cnt, _, _ in requests:
            if cnt < 0:
                cnt = next_cnt & ((1 << heap.flavour.heap_address_bits) - 1)
                next_cnt = (next_cnt + step) & _UINT64_MASK
            cnts.append(cnt)
        return cnts, next_cnt


class GroupScheduler:
    """The packets of a group of heaps in transmission order, each with the time it may go.

    Round robin takes one packet from each heap in turn, skipping heaps that
    have run out; otherwise (serial) each heap is sent completely in turn.
    Rates are per heap, already resolved (> 0 limited, 0 unlimited). Nothing
    here reads a clock: the caller passes the current time.
    """

    __slots__ = ("_packetizers", "_substreams", "_rates", "_active", "_pos", "_step",
                 "_limiter", "limited", "bytes_sent")

    def __init__(
        self,
        packetizers: list[HeapPacketizer],
        substreams: list[int],
        rates: list[float],
        round_robin: bool,
        limiter: RateLimiter,
    ) -> None:
        self._packetizers = packetizers
        self._substreams = substreams
        self._rates = rates
        self._active = list(range(len(packetizers)))
        self._pos = 0
        # Serial stays on the current heap until it runs out.
        self._step = 1 if round_robin else 0
        self._limiter = limiter
        #: Whether any heap is rate limited (if not, ``now`` is not needed).
        self.limited = any(rate > 0.0 for rate in rates)
        #: Bytes of all packets returned so far.
        self.bytes_sent = 0

    def next_packet(self, now: float) -> tuple[int, Packet, float] | None:
        """``(substream_index, packet, send_time)`` for the next packet, or ``None`` when done.

        ``send_time`` may be earlier than ``now`` (send immediately). The
        packet must not be sent before ``send_time``.
        """
        active = self._active
        while active:
            pos = self._pos
            if pos >= len(active):
                pos = 0
            heap_index = active[pos]
            packet = self._packetizers[heap_index].next_packet()
            if packet is None:
                del active[pos]
                self._pos = pos
                continue
            self._pos = pos + self._step
            size = sum(map(len, packet))
            self.bytes_sent += size
            rate = self._rates[heap_index]
            send_time = self._limiter.packet_time(size, now, rate) if rate > 0.0 else now
            return self._substreams[heap_index], packet, send_time
        return None


def schedule_group(
    requests: Sequence[HeapRequest],
    cnts: CntSequence,
    round_robin: bool,
    max_packet_size: int,
    stream_rate: float,
    limiter: RateLimiter,
) -> GroupScheduler:
    """Assign the group's automatic cnts, packetize its heaps and schedule them.

    All or nothing: if a heap cannot be packetized (``ValueError``, e.g. the
    packet size is too small for it) ``cnts`` is left as it was.
    """
    assigned, next_cnt = cnts.assign(requests)
    packetizers = [
        HeapPacketizer(heap, cnt, max_packet_size)
        for (heap, _, _, _), cnt in zip(requests, assigned, strict=True)
    ]
    substreams = [substream_index for _, _, substream_index, _ in requests]
    # Negative (or NaN) per-heap rates defer to the stream's rate.
    rates = [rate if rate >= 0.0 else stream_rate for _, _, _, rate in requests]
    cnts.next = next_cnt
    return GroupScheduler(packetizers, substreams, rates, round_robin, limiter)
