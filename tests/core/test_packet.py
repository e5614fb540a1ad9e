"""Decoding received packets and framing a byte stream (spead2/protocols/packet.py)."""

from __future__ import annotations

import logging
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2 import _log
from spead2.protocols.packet import PacketError, _decode_full, decode_packet, packet_size
from tests.helpers.packets import addr, imm, packet, raw_packet

pytestmark = pytest.mark.usefixtures("fresh_log_limits")


# -- valid packets --------------------------------------------------------------


def test_usual_packet_decodes():
    data = packet(7, 100, 10, b"abcde", extra=[addr(0x1000, 0), imm(0x1001, 42)])
    cnt, length, offset, plen, hab, start, rest = decode_packet(data)
    assert (cnt, length, offset, plen, hab) == (7, 100, 10, 5, 40)
    assert start == 8 + 8 * 6
    assert data[start:] == b"abcde"
    assert rest == (addr(0x1000, 0), imm(0x1001, 42))


def test_memoryview_and_bytearray_accepted():
    data = packet(1, 5, 0, b"hello")
    assert decode_packet(memoryview(data)) == decode_packet(bytearray(data)) == decode_packet(data)


@pytest.mark.parametrize("hab", [8, 16, 24, 32, 40, 48, 56])
def test_every_flavour(hab):
    data = packet(3, 4, 0, b"wxyz", extra=[imm(0x6, 2, hab)], hab=hab)
    cnt, length, offset, plen, got_hab, start, rest = decode_packet(data)
    assert (cnt, length, offset, plen, got_hab) == (3, 4, 0, 4, hab)
    assert rest == (imm(0x6, 2, hab),)


def test_fields_in_any_order_and_last_wins():
    # As in the reference, a repeated field's last occurrence is the one used.
    pointers = [
        imm(4, 99), imm(3, 5), addr(0x1000, 0), imm(1, 7), imm(2, 99), imm(1, 8),
        imm(2, 10), imm(4, 3), imm(3, 0),
    ]
    data = raw_packet(pointers, b"abc")
    cnt, length, offset, plen, _, _, rest = decode_packet(data)
    assert (cnt, length, offset, plen) == (8, 10, 0, 3)
    assert rest == (addr(0x1000, 0),)


def test_field_repeated_after_the_usual_four_uses_the_last():
    data = raw_packet([imm(1, 1), imm(2, 3), imm(3, 0), imm(4, 3), imm(1, 9)], b"abc")
    assert decode_packet(data)[0] == 9


def test_unsized_packet():
    data = raw_packet([imm(1, 2), imm(3, 0), imm(4, 2)], b"hi")
    assert decode_packet(data)[1] == -1


def test_addressed_field_pointers_do_not_count():
    # An addressed HEAP_LENGTH is not a heap length: the heap is unsized and
    # the pointer is an ordinary (hidden) heap pointer.
    data = raw_packet([imm(1, 2), addr(2, 50), imm(3, 0), imm(4, 2)], b"hi")
    _, length, _, _, _, _, rest = decode_packet(data)
    assert length == -1
    assert rest == (addr(2, 50),)


def test_zero_length_payload_and_reserved_bytes_accepted():
    data = bytearray(packet(0, 0, 0, b""))
    data[4:6] = b"\xff\xff"  # reserved bytes are ignored
    assert decode_packet(data) == (0, 0, 0, 0, 40, 40, ())


# -- rejections -----------------------------------------------------------------


REJECTIONS = [
    (b"\x53\x04\x03", "packet rejected because too small (3 bytes)"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], magic=0x54),
     "packet rejected because magic or version did not match"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], version=3),
     "packet rejected because magic or version did not match"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], widths=(3, 4)),
     "packet rejected because flavour is not SPEAD-64-*"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], widths=(8, 0)),
     "packet rejected because flavour is invalid"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], widths=(0, 8)),
     "packet rejected because flavour is invalid"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)], n_items=65535),
     "packet rejected because the items overflow the packet"),
    (raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0)])[:-4],
     "packet rejected because the items overflow the packet"),
    (raw_packet([imm(1, 1), imm(2, 3), imm(4, 3)], b"abc"),
     "packet rejected because it does not have required items"),
    (raw_packet([imm(1, 1), imm(2, 3), addr(3, 0), imm(4, 3)], b"abc"),
     "packet rejected because it does not have required items"),
    (raw_packet([imm(1, 1), imm(2, 10), imm(3, 0), imm(4, 10)], b"abc"),
     "packet rejected because payload length overflows packet size (50 > 43)"),
    (raw_packet([imm(1, 1), imm(2, 5), imm(3, 3), imm(4, 3)], b"abc"),
     "packet rejected because payload would overflow given heap length"),
    (raw_packet([imm(1, 1), imm(2, 3), imm(3, 0), imm(4, 3)], b"abcd"),
     "discarding packet due to size mismatch (44 != 43)"),
]


@pytest.mark.parametrize(("data", "message"), REJECTIONS)
def test_rejections_are_logged_at_info(caplog, data, message):
    with caplog.at_level(logging.INFO, logger="spead2"):
        assert decode_packet(data, _log.log_limited) is None
    assert [r.getMessage() for r in caplog.records] == [message]
    assert caplog.records[0].levelno == logging.INFO


def test_checks_come_in_reference_order(caplog):
    # Both the payload length and the heap length are wrong: the packet-size
    # check comes first.
    data = raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 10)], b"abc")
    with caplog.at_level(logging.INFO, logger="spead2"):
        assert decode_packet(data, _log.log_limited) is None
    assert "payload length overflows packet size" in caplog.text


def test_rejection_logs_are_rate_limited(caplog):
    with caplog.at_level(logging.INFO, logger="spead2"):
        for _ in range(1000):
            assert decode_packet(b"xx", _log.log_limited) is None
    assert len(caplog.records) <= 20


@pytest.mark.parametrize(("data", "message"), REJECTIONS)
def test_rejections_are_reported_with_their_reason(caplog, data, message):
    reports = []
    with caplog.at_level(logging.DEBUG, logger="spead2"):
        assert decode_packet(data, lambda *report: reports.append(report)) is None
        assert decode_packet(data) is None  # the default report drops them: the core never logs
    [(level, key, text, *args)] = reports
    assert level == logging.INFO
    assert key.startswith("pkt-")
    assert text % tuple(args) == message
    assert caplog.records == []


# -- fast path agrees with the full decoder ------------------------------------


field_ids = st.sampled_from([1, 2, 3, 4, 5, 6, 0x1000])


@st.composite
def packets(draw):
    hab = draw(st.sampled_from([8, 16, 24, 32, 40, 48, 56]))
    limit = min((1 << hab) - 1, 64)
    pointers = []
    if draw(st.booleans()):
        # The usual layout, which the fast path handles.
        plen = draw(st.integers(0, limit))
        length = draw(st.integers(0, limit))
        offset = draw(st.integers(0, limit))
        pointers = [imm(1, draw(st.integers(0, limit)), hab), imm(2, length, hab),
                    imm(3, offset, hab), imm(4, plen, hab)]
    for _ in range(draw(st.integers(0, 6))):
        item_id = draw(field_ids) % (1 << (63 - hab))  # what the flavour's id bits hold
        value = draw(st.integers(0, limit))
        pointers.append(imm(item_id, value, hab) if draw(st.booleans()) else addr(item_id, value, hab))
    payload = bytes(draw(st.integers(0, 80)))
    return raw_packet(pointers, payload, hab)


@settings(max_examples=200, deadline=None)
@given(packets())
def test_fast_path_matches_full_decoder(data):
    assert decode_packet(data) == _decode_full(data, len(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise(data):
    result = decode_packet(data)
    assert result is None or len(result) == 7
    try:
        size = packet_size(data, 0)
    except PacketError:
        pass
    else:
        assert size is None or size >= 8


@settings(max_examples=100, deadline=None)
@given(packets(), st.binary(max_size=16))
def test_decoded_packet_describes_its_bytes(data, junk):
    result = decode_packet(data)
    if result is None:
        return
    cnt, length, offset, plen, hab, start, rest = result
    assert start + plen == len(data)
    assert length < 0 or offset + plen <= length
    # Appending bytes makes a datagram longer than its header says.
    if junk:
        assert decode_packet(data + junk) is None


# -- framing a byte stream ------------------------------------------------------


def test_packet_size_of_complete_packet():
    data = packet(1, 5, 0, b"hello", extra=[addr(0x1000, 0)])
    assert packet_size(data, 0) == len(data)
    assert packet_size(b"junk" + data, 4) == len(data)


def test_packet_size_needs_header_then_pointers():
    data = packet(1, 5, 0, b"hello")
    assert packet_size(data[:7], 0) is None
    assert packet_size(data[:39], 0) is None
    # The payload itself is not needed.
    assert packet_size(data[:40], 0) == len(data)


def test_packet_size_last_payload_length_wins():
    data = raw_packet([imm(1, 1), imm(4, 100), imm(3, 0), imm(4, 2)], b"hi")
    assert packet_size(data, 0) == len(data)


@pytest.mark.parametrize(
    "data",
    [
        raw_packet([imm(1, 1)], magic=0),
        raw_packet([imm(1, 1)], version=5),
        raw_packet([imm(1, 1)], widths=(4, 5)),
        raw_packet([imm(1, 1)], widths=(8, 0)),
        raw_packet([imm(1, 1), imm(3, 0)]),
        raw_packet([imm(1, 1), addr(4, 3)]),
    ],
)
def test_packet_size_invalid_header(data):
    with pytest.raises(PacketError):
        packet_size(data, 0)


def test_packet_error_is_value_error():
    assert issubclass(PacketError, ValueError)


@pytest.mark.parametrize("hab", [8, 16, 24, 32, 40, 48, 56])
def test_packet_size_of_four_field_packet_in_every_flavour(hab):
    # The fast path for packets carrying only the four per-packet fields.
    data = packet(3, 250, 10, bytes(200), hab=hab)  # values fit 8-bit addresses
    assert struct.unpack_from(">H", data, 6) == (4,)
    assert packet_size(data, 0) == len(data)
    assert packet_size(b"\0" * 5 + data, 5) == len(data)
