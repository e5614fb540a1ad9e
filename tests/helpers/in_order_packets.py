"""SPEAD packets of heaps sent in order, and hostile streams of them (payloads received in place).

Shared by the simulated (``tests/core/test_placement.py``) and the loopback
(``tests/transports/test_udp_reader.py``) tests of receiving payloads in place.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from hypothesis import strategies as st

IMM = 1 << 63
STOP_ID = 6
ITEM = 0x1000


def imm(item_id: int, value: int, hab: int) -> int:
    """An immediate item pointer."""
    return IMM | (item_id << hab) | value


def packet(
    cnt: int, heap_length: int | None, offset: int, payload: bytes, extra: Sequence[int] = (), hab: int = 48
) -> bytes:
    """A packet: HEAP_CNT, HEAP_LENGTH (unless None), PAYLOAD_OFFSET, PAYLOAD_LENGTH, then ``extra``."""
    pointers = [imm(1, cnt, hab)]
    if heap_length is not None:
        pointers.append(imm(2, heap_length, hab))
    pointers += [imm(3, offset, hab), imm(4, len(payload), hab), *extra]
    header = struct.pack(">HBBxxH", 0x5304, (64 - hab) // 8, hab // 8, len(pointers))
    return header + struct.pack(f">{len(pointers)}Q", *pointers) + bytes(payload)


def heap_bytes(cnt: int, size: int) -> bytes:
    """A heap's payload, different for every ``cnt``."""
    return bytes((cnt * 7 + i) % 251 for i in range(size))


def heap_packets(cnt: int, size: int, plen: int, hab: int = 48) -> list[bytes]:
    """A heap of one item (ID 0x1000 at address 0, in the first packet) in ``plen``-byte payloads."""
    payload = heap_bytes(cnt, size)
    return [
        packet(cnt, size, off, payload[off : off + plen], [ITEM << hab] if off == 0 else [], hab)
        for off in range(0, size, plen)
    ]


@st.composite
def hostile_streams(
    draw: st.DrawFn, plens: Sequence[int], habs: Sequence[int] = (40, 48), max_packets: int = 30,
    stops: bool = True,
) -> tuple[list[bytes], int]:
    """``(packets, plen)``: heaps in order, interleaved in runs, then perturbed.

    Perturbations: lost, duplicated and swapped packets; foreign heaps; short,
    oversized (``3 * plen`` bytes more at most) and junk datagrams; a packet
    at a predicted place with another payload length or HEAP_LENGTH; stop
    heaps (if ``stops``). Never an empty datagram.
    """
    plen = draw(st.sampled_from(list(plens)))
    hab = draw(st.sampled_from(list(habs)))
    heaps = [
        heap_packets(cnt, draw(st.integers(1, max_packets)) * plen + draw(st.sampled_from([0, 0, 7])), plen, hab)
        for cnt in range(1, draw(st.integers(1, 4)) + 1)
    ]
    originals = [p for heap in heaps for p in heap]
    packets: list[bytes] = []
    cursors = [0] * len(heaps)
    while any(c < len(h) for c, h in zip(cursors, heaps, strict=True)):
        i = draw(st.integers(0, len(heaps) - 1))
        take = draw(st.integers(1, 20))
        packets += heaps[i][cursors[i] : cursors[i] + take]
        cursors[i] += take
    kinds = ["drop", "dup", "swap", "foreign", "short", "oversize", "replan", "junk", "length"]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds + ["stop"] if stops else kinds))
        at = draw(st.integers(0, len(packets) - 1))
        original = draw(st.sampled_from(originals))
        cnt, length, offset = (
            struct.unpack_from(">Q", original, 8 * k)[0] & ((1 << hab) - 1) for k in (1, 2, 3)
        )
        if kind == "drop" and len(packets) > 1:
            del packets[at]
        elif kind == "dup":
            packets.insert(draw(st.integers(at, len(packets))), packets[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(packets) - 1))
            packets[at], packets[other] = packets[other], packets[at]
        elif kind == "foreign":  # a heap of its own, bytes unlike anyone's
            packets.insert(at, packet(50 + at, 3 * plen, plen, b"\xee" * plen, (), hab))
        elif kind == "short":
            packets.insert(at, original[: draw(st.integers(1, len(original) - 1))])
        elif kind == "oversize":
            packets.insert(at, original + b"\xff" * draw(st.integers(1, 3 * plen)))
        elif kind == "replan":  # the predicted heap and offset, another payload length
            packets.insert(at, packet(cnt, length, offset, b"\xdd" * (plen // 2), (), hab))
        elif kind == "junk":
            packets.insert(at, draw(st.binary(min_size=1, max_size=2 * plen)))
        elif kind == "stop":
            packets.insert(at, packet(99, 0, 0, b"", (imm(STOP_ID, 2, hab),), hab))
        elif kind == "length":  # a packet of a heap with another HEAP_LENGTH
            packets.insert(at, packet(cnt, 10_000, offset, b"\xcc" * plen, (), hab))
    return packets, plen
