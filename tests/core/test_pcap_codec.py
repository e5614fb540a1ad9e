"""Tests for the pcap frame codec (spead2.protocols.pcap): frames built, frames parsed, and the two against each other."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2.protocols.pcap import (
    FRAGMENT,
    LINK_HEADERS,
    LINKTYPE_ETHERNET,
    MALFORMED,
    NOT_UDP,
    FrameBuilder,
    file_header,
    preamble_size,
    udp_payload_bounds,
)
from tests.helpers import pcap_files as pf

# -- parsing frames --------------------------------------------------------------------------


def test_payload_bounds_reasons():
    payload = b"0123456789"
    frame = pf.udp_frame(payload)
    start, end = udp_payload_bounds(frame, 12, 14)
    assert frame[start:end] == payload
    assert udp_payload_bounds(pf.arp_frame(), 12, 14) == NOT_UDP
    assert udp_payload_bounds(pf.tcp_frame(), 12, 14) == NOT_UDP
    assert udp_payload_bounds(pf.ethernet(pf.ipv4_udp(payload, more_fragments=True)), 12, 14) == FRAGMENT
    assert udp_payload_bounds(pf.ethernet(b"\x60" + bytes(39), pf.ETHERTYPE_IPV6), 12, 14) == MALFORMED
    assert udp_payload_bounds(frame[:20], 12, 14) == MALFORMED
    assert udp_payload_bounds(b"", 12, 14) == MALFORMED
    # Bytes after the UDP datagram inside the IP packet are not payload.
    datagram = pf.ipv4_udp(payload)[20:]
    frame = pf.ethernet(pf.ipv4_packet(pf.IPPROTO_UDP, datagram + b"trailer"))
    start, end = udp_payload_bounds(frame, 12, 14)
    assert frame[start:end] == payload


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=200),
    ipv6=st.booleans(),
    vlans=st.lists(st.integers(0, 4095), max_size=2),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_payload_bounds_round_trip(payload, ipv6, vlans, sport, dport):
    frame = pf.udp_frame(payload, ipv6=ipv6, vlans=vlans, sport=sport, dport=dport)
    bounds = udp_payload_bounds(frame, 12, 14)
    assert isinstance(bounds, tuple)
    assert frame[bounds[0] : bounds[1]] == payload


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=120), linktype=st.sampled_from(sorted(LINK_HEADERS)))
def test_payload_bounds_never_raises(frame, linktype):
    bounds = udp_payload_bounds(frame, *LINK_HEADERS[linktype])
    if isinstance(bounds, tuple):
        start, end = bounds
        assert 0 < start <= end <= len(frame)
    else:
        assert bounds in (NOT_UDP, FRAGMENT, MALFORMED)


# -- building frames ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 57, 1472, 9000])
def test_ipv4_frame(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    header = FrameBuilder().headers(("10.1.2.3", 4000), ("239.1.2.3", 7148), payload,
                                                 1_700_000_000_123_456_789)
    record, frame = header[:16], header[16:]
    seconds, micros, incl, orig = struct.unpack("<IIII", record)
    assert (seconds, micros) == (1_700_000_000, 123_456)
    assert incl == orig == 14 + 20 + 8 + size
    assert frame[:6] == bytes.fromhex("01005e010203")  # multicast MAC of 239.1.2.3
    assert frame[12:14] == b"\x08\x00"
    ip = frame[14:34]
    assert pf.internet_checksum(ip) == 0  # valid header checksum
    assert ip[12:16] == socket.inet_aton("10.1.2.3") and ip[16:20] == socket.inet_aton("239.1.2.3")
    assert struct.unpack("!HHHH", frame[34:42]) == (4000, 7148, 8 + size, 0)


@pytest.mark.parametrize("size", [0, 1, 1471])
def test_ipv6_frame_has_valid_udp_checksum(size: int) -> None:
    payload = os.urandom(size)
    header = FrameBuilder().headers(("::1", 4000), ("ff02::1", 7148), payload, 0)
    frame = header[16:]
    assert frame[:2] == b"\x33\x33" and frame[12:14] == b"\x86\xdd"
    ip = frame[14:54]
    udp = frame[54:62]
    src, dst = ip[8:24], ip[24:40]
    assert ipaddress.IPv6Address(dst) == ipaddress.IPv6Address("ff02::1")
    pseudo = src + dst + struct.pack("!IxxxB", 8 + size, 17)
    assert pf.internet_checksum(pseudo + udp + payload) == 0


def test_file_header() -> None:
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", file_header())
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen >= 14 + 40 + 8 + 65535


# -- the two directions together ------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=1500),
    addresses=st.sampled_from([
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.1", "239.1.2.3"),
        ("::1", "ff02::1"),
        ("fe80::1%1", "ff12::7"),
        ("::ffff:10.0.0.1", "10.0.0.2"),  # IPv4-mapped source of a dual-stack socket
    ]),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
)
def test_built_frames_parse_back_to_their_payload(payload, addresses, sport, dport):
    src, dst = addresses
    record = FrameBuilder().headers((src, sport), (dst, dport), payload, 0) + payload
    _, _, captured, original = struct.unpack_from("<IIII", record)
    frame = record[16:]
    assert captured == original == len(frame)
    bounds = udp_payload_bounds(frame, *LINK_HEADERS[LINKTYPE_ETHERNET])
    assert isinstance(bounds, tuple)
    start, end = bounds
    assert frame[start:end] == payload
    assert struct.unpack_from("!HH", frame, start - 8) == (sport, dport)


def test_a_built_file_header_is_the_whole_preamble():
    header = file_header()
    assert preamble_size(header[:10]) is None
    assert preamble_size(header) == 24
    assert preamble_size(header + bytes(100)) == 24
