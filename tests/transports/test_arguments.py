"""Integer argument checks with the reference's exception types (spead2/protocols/arguments.py)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.arguments import ArgumentRangeError, MulticastHopsError, fitting_int


def test_fitting_int_accepts_ints_in_range() -> None:
    assert fitting_int(5, "x", 0, 10) == 5
    assert fitting_int(np.uint16(7), "x", 0, 10) == 7
    assert type(fitting_int(np.int64(3), "x", 0, 10)) is int


@pytest.mark.parametrize("value", ["5", b"5", 5.0, None, [5]])
def test_fitting_int_rejects_other_types_with_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="x must be an integer") as info:
        fitting_int(value, "x", 0, 10)
    assert not isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [-1, 11, 2**64])
def test_out_of_range_is_both_type_and_value_error(value: int) -> None:
    with pytest.raises(ArgumentRangeError, match=rf"x must be in the range \[0, 10\], not {value}") as info:
        fitting_int(value, "x", 0, 10)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_reader_port_that_does_not_fit_16_bits() -> None:
    stream = spead2.recv.Stream(spead2.ThreadPool())
    for port in (100000, -1):
        with pytest.raises(TypeError, match="port must be in the range"):
            stream.add_udp_reader(port)
        with pytest.raises(ValueError, match="port must be in the range"):
            stream.add_tcp_reader(port)
    with pytest.raises(TypeError, match="max_size"):
        stream.add_udp_reader(0, -1)
    with pytest.raises(TypeError, match="interface_index"):
        stream.add_udp_reader("ff14::1", 0, interface_index=2**32)
    stream.stop()


def test_send_stream_ranges() -> None:
    pool = spead2.ThreadPool()
    with pytest.raises(TypeError, match="port must be in the range"):
        spead2.send.UdpStream(pool, [("127.0.0.1", 100000)])
    with pytest.raises(TypeError, match="buffer_size"):
        spead2.send.UdpStream(pool, [("127.0.0.1", 8888)], buffer_size=-1)
    # The reference gives IndexError for the multicast TTL, a range check of its own.
    with pytest.raises(IndexError, match="multicast hops value out of range") as info:
        spead2.send.UdpStream(pool, [("239.1.1.1", 8888)], ttl=256)
    assert isinstance(info.value, MulticastHopsError) and isinstance(info.value, ValueError)


def test_flavour_conversions() -> None:
    with pytest.raises(TypeError):
        spead2.Flavour("4", 64, 48, 0)
    with pytest.raises(TypeError):
        spead2.Flavour(4, 64, 48, -1)  # bug_compat is unsigned
    with pytest.raises(ValueError, match="heap_address_bits out of range"):
        spead2.Flavour(4, 64, -8, 0)  # a C int: converts, then fails the check


def test_thread_pool_conversions_and_unusable_affinity(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TypeError):
        spead2.ThreadPool(2**40)
    with pytest.raises(ValueError, match="at least one thread"):
        spead2.ThreadPool(0)
    with caplog.at_level("WARNING", logger="spead2"):
        pool = spead2.ThreadPool(1, [-1])  # as the reference: not fatal
    assert "could not pin" in caplog.text
    stream = spead2.recv.Stream(pool)  # the thread runs its loop all the same
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stream.add_udp_reader(sock)
    sock.close()
    stream.stop()
    pool.stop()
