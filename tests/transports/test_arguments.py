"""Argument checks and overload resolution with the reference's exception types (spead2/protocols/arguments.py)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.arguments import (
    REQUIRED,
    ArgumentRangeError,
    MulticastHopsError,
    Overload,
    OverloadRules,
    fitting_int,
    is_int,
    resolve_overload,
    uint64,
)


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


@pytest.mark.parametrize("value", [0, 2**64 - 1, np.uint64(2**64 - 1), True])
def test_uint64_accepts_every_unsigned_64_bit_integer(value: object) -> None:
    result = uint64(value, "x")
    assert type(result) is int and result == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [-1, 2**64])
def test_uint64_out_of_range_names_the_value(value: int) -> None:
    with pytest.raises(ArgumentRangeError, match=rf"x must be a non-negative integer below 2\*\*64 \(got x={value}\)"):
        uint64(value, "x")


@pytest.mark.parametrize("value", ["1", 1.0, None])
def test_uint64_rejects_non_integers_with_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="x must be a non-negative integer, not") as info:
        uint64(value, "x")
    assert not isinstance(info.value, ValueError)


def test_is_int_is_what_converts_to_a_cpp_integer() -> None:
    assert [is_int(v) for v in (3, True, np.int8(3))] == [True, True, True]
    assert [is_int(v) for v in (3.0, "3", b"3", None)] == [False, False, False, False]


_RULES = OverloadRules(
    kinds={"int": ("int", is_int), "str": ("str", lambda v: isinstance(v, str))},
    bounds={"port": (0, 65535), "ttl": (0, 255)},
    range_errors={"ttl": (MulticastHopsError, "hops: ")},
)
_FORMS = [
    Overload([("port", "int", REQUIRED), ("host", "str", "")]),
    Overload([("host", "str", REQUIRED), ("port", "int", REQUIRED), ("ttl", "int", 1)]),
]


def test_the_first_form_whose_types_fit_wins() -> None:
    assert resolve_overload("f", _FORMS, (7,), {}, _RULES) == (0, {"port": 7, "host": ""})
    assert resolve_overload("f", _FORMS, ("h", 7), {}, _RULES) == (1, {"host": "h", "port": 7, "ttl": 1})
    assert resolve_overload("f", _FORMS, (), {"host": "h", "port": 7}, _RULES)[0] == 0
    # An argument given both by position and by name fits no form.
    with pytest.raises(TypeError, match="incompatible function arguments"):
        resolve_overload("f", _FORMS, (7,), {"port": 7}, _RULES)


def test_values_are_range_checked_only_once_a_form_is_chosen() -> None:
    with pytest.raises(ArgumentRangeError, match=r"^f: port must be in the range \[0, 65535\], not 70000$"):
        resolve_overload("f", _FORMS, (70000,), {}, _RULES)
    with pytest.raises(MulticastHopsError, match=r"^f: hops: ttl must be in the range \[0, 255\], not 256$"):
        resolve_overload("f", _FORMS, ("h", 1, 256), {}, _RULES)


def test_no_fitting_form_lists_the_forms_as_pybind11_does() -> None:
    with pytest.raises(TypeError) as info:
        resolve_overload("f", _FORMS, (1.5,), {"x": 1}, _RULES)
    assert str(info.value) == (
        "f(): incompatible function arguments. The following argument types are supported:\n"
        "    1. (port: int, host: str = '') -> None\n"
        "    2. (host: str, port: int, ttl: int = 1) -> None\n\n"
        "Invoked with: 1.5; kwargs: x=1"
    )
    constructor = OverloadRules(
        _RULES.kinds, _RULES.bounds, constructor=True, leading=("pool: Pool",), default_names={"str": "S()"}
    )
    with pytest.raises(TypeError) as info:
        resolve_overload("C", _FORMS[:1], (), {}, constructor)
    assert "C(): incompatible constructor arguments" in str(info.value)
    assert "    1. C(pool: Pool, port: int, host: str = S())\n" in str(info.value)


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
