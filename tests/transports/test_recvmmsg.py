"""Batched datagram receive (spead2/transports/_recvmmsg.py) on a loopback UDP socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import numpy as np
import pytest

from spead2.transports import _recvmmsg

pytestmark = pytest.mark.skipif(_recvmmsg._RECVMMSG is None, reason="recvmmsg is not available")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    yield receiver, sender
    receiver.close()
    sender.close()


def datagrams(batch: _recvmmsg.BatchReceiver, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        size = batch.words[batch.first + i * batch.stride]
        start = i * batch.slot_size
        # The array views of the same: what the UDP reader uses.
        assert (int(batch.sizes[i]), int(batch.starts[i])) == (size, start)
        out.append(bytes(batch.view[start : start + size]))
    return out


def test_one_call_receives_every_waiting_datagram_in_order(pair) -> None:
    receiver, sender = pair
    sent = [bytes([i]) * (1 + 37 * i) for i in range(20)]
    for data in sent:
        sender.send(data)
    batch = _recvmmsg.make_batch_receiver(receiver.fileno(), 1000, 64, socket.MSG_DONTWAIT)
    assert batch is not None and batch.slots == 64
    n = batch.receive()
    assert n == 20
    assert datagrams(batch, n) == sent


def test_at_most_one_slot_per_datagram_and_the_rest_stays_queued(pair) -> None:
    receiver, sender = pair
    for i in range(10):
        sender.send(bytes([i]) * 10)
    batch = _recvmmsg.BatchReceiver(receiver.fileno(), 100, 4, socket.MSG_DONTWAIT)
    assert batch.receive() == 4
    assert datagrams(batch, 4) == [bytes([i]) * 10 for i in range(4)]
    assert batch.receive() == 4
    assert batch.receive() == 2
    assert datagrams(batch, 2) == [bytes([8]) * 10, bytes([9]) * 10]


def test_oversized_datagram_fills_its_slot(pair) -> None:
    receiver, sender = pair
    sender.send(b"x" * 500)
    sender.send(b"y" * 5)
    batch = _recvmmsg.BatchReceiver(receiver.fileno(), 101, 8, socket.MSG_DONTWAIT)
    assert batch.receive() == 2
    # Cut to the slot: a slot one byte over max_size tells oversized datagrams apart.
    assert datagrams(batch, 2) == [b"x" * 101, b"y" * 5]


def test_nothing_waiting_raises_blocking_io_error(pair) -> None:
    receiver, _ = pair
    batch = _recvmmsg.BatchReceiver(receiver.fileno(), 100, 4, socket.MSG_DONTWAIT)
    with pytest.raises(BlockingIOError):
        batch.receive()


def test_closed_descriptor_raises_os_error() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    batch = _recvmmsg.BatchReceiver(sock.fileno(), 100, 4, socket.MSG_DONTWAIT)
    sock.close()
    with pytest.raises(OSError) as info:
        batch.receive()
    assert not isinstance(info.value, BlockingIOError)


def test_large_slots_are_fewer_so_the_buffer_stays_within_budget(pair) -> None:
    receiver, _ = pair
    batch = _recvmmsg.make_batch_receiver(receiver.fileno(), 65536, 64, socket.MSG_DONTWAIT)
    assert batch is not None
    assert batch.slots == _recvmmsg.SLOTS_BUDGET // 65536
    assert len(batch.view) <= _recvmmsg.SLOTS_BUDGET


def test_aimed_bytes_land_in_the_target_and_restore_makes_slots_whole(pair) -> None:
    receiver, sender = pair
    batch = _recvmmsg.BatchReceiver(receiver.fileno(), 101, 8, socket.MSG_DONTWAIT, header_size=10)
    target = bytearray(b"." * 200)
    offsets = np.array([0, 50, 100, 150], dtype=np.int64)
    lengths = np.array([20, 20, 20, 5], dtype=np.int64)
    assert batch.aim(_recvmmsg.address_of(target), offsets, lengths) == 4
    sent = [bytes([65 + i]) * size for i, size in enumerate([30, 45, 8, 101 + 50, 17])]
    for data in sent:
        sender.send(data)
    assert batch.receive() == 5
    # Header areas in the slots, the next bytes (up to each length) in the target.
    assert target[0:20] == b"A" * 20  # 30 bytes: 10 in the slot, 20 aimed
    assert target[50:70] == b"B" * 20  # 45 bytes: 10, 20 aimed, 15 after them in the slot
    assert target[100:120] == b"." * 20  # 8 bytes: all in the header area
    assert target[150:155] == b"D" * 5
    assert bytes(batch.view[0:10]) == b"A" * 10
    assert bytes(batch.view[101 + 30 : 101 + 45]) == b"B" * 15
    # Restoring from the second datagram on: those slots hold their whole datagram again.
    batch.restore(1, 5, target, offsets, lengths)
    got = datagrams(batch, 5)
    assert got[1:] == [sent[1], sent[2], sent[3][:101], sent[4]]
    assert got[0] == b"A" * 10 + bytes(batch.view[10:30])  # left as it was
    # Unaimed again: a fresh datagram fills its slot as usual and the target stays untouched.
    before = bytes(target)
    sender.send(b"Z" * 60)
    assert batch.receive() == 1
    assert datagrams(batch, 1) == [b"Z" * 60]
    assert bytes(target) == before


def test_aim_refuses_lengths_that_leave_no_room_to_spot_oversized_datagrams(pair) -> None:
    receiver, _ = pair
    batch = _recvmmsg.BatchReceiver(receiver.fileno(), 101, 4, socket.MSG_DONTWAIT, header_size=10)
    target = bytearray(200)
    address = _recvmmsg.address_of(target)
    assert batch.aim(address, np.array([0], dtype=np.int64), np.array([91], dtype=np.int64)) == 0
    assert batch.aim(address, np.array([0], dtype=np.int64), np.array([90], dtype=np.int64)) == 1
    plain = _recvmmsg.BatchReceiver(receiver.fileno(), 101, 4, socket.MSG_DONTWAIT)
    assert plain.aim(address, np.array([0], dtype=np.int64), np.array([5], dtype=np.int64)) == 0
    with pytest.raises(ValueError, match="header_size"):
        _recvmmsg.BatchReceiver(receiver.fileno(), 10, 4, socket.MSG_DONTWAIT, header_size=10)
