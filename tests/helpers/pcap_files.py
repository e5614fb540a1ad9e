"""Build pcap and pcapng capture files by hand, for testing the pcap reader.

Frames are built layer by layer (UDP in IPv4/IPv6, in Ethernet / Linux cooked
capture v1 or v2), with correct IPv4 header and UDP checksums so that tools
such as tcpdump accept them. A record handed to :func:`write_pcap` or
:func:`write_pcapng` is either the frame's bytes, or ``(frame, wire_length)``
to record a frame captured shorter than it was on the wire.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Sequence

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6_FRAGMENT = 44
IPPROTO_IPV6_HOPOPTS = 0

Record = bytes | tuple[bytes, int]


def internet_checksum(data: bytes) -> int:
    """The one's-complement checksum of IPv4 headers and UDP/TCP (RFC 1071); 0 over data that includes a valid one."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_datagram(payload: bytes, sport: int, dport: int, pseudo_header: bytes) -> bytes:
    """A UDP header and ``payload``, checksummed over ``pseudo_header``."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = internet_checksum(pseudo_header + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def ipv4_packet(
    protocol: int,
    body: bytes,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    *,
    ident: int = 0,
    more_fragments: bool = False,
    fragment_offset: int = 0,
) -> bytes:
    """An IPv4 packet (20-byte header, DF unless fragmented) carrying ``body``."""
    flags = 0x2000 if more_fragments else (0x4000 if fragment_offset == 0 else 0)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags | (fragment_offset // 8), 64,
        protocol, 0, ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    )
    csum = internet_checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + body


def ipv4_udp(
    payload: bytes, src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 10000,
    dport: int = 7148, **kwargs: int | bool,
) -> bytes:
    """An IPv4 packet holding one UDP datagram (``kwargs`` as for :func:`ipv4_packet`)."""
    pseudo = (
        ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, IPPROTO_UDP, 8 + len(payload))
    )
    datagram = udp_datagram(payload, sport, dport, pseudo)
    return ipv4_packet(IPPROTO_UDP, datagram, src, dst, **kwargs)  # type: ignore[arg-type]


def ipv6_udp(
    payload: bytes, src: str = "fd00::1", dst: str = "fd00::2", sport: int = 10000,
    dport: int = 7148, *, hop_by_hop: bool = False, fragment: tuple[int, bool] | None = None,
) -> bytes:
    """An IPv6 packet holding one UDP datagram.

    ``hop_by_hop`` adds an (empty) hop-by-hop options header; ``fragment``
    = ``(offset, more)`` adds a fragment header.
    """
    src_b = ipaddress.IPv6Address(src).packed
    dst_b = ipaddress.IPv6Address(dst).packed
    pseudo = src_b + dst_b + struct.pack("!IxxxB", 8 + len(payload), IPPROTO_UDP)
    body = udp_datagram(payload, sport, dport, pseudo)
    next_header = IPPROTO_UDP
    if fragment is not None:
        offset, more = fragment
        body = struct.pack("!BBHI", next_header, 0, offset | int(more), 0x1234) + body
        next_header = IPPROTO_IPV6_FRAGMENT
    if hop_by_hop:
        # 2 bytes of header + a PadN option filling the 8-byte unit
        body = struct.pack("!BBBB4x", next_header, 0, 1, 4) + body
        next_header = IPPROTO_IPV6_HOPOPTS
    header = struct.pack("!IHBB16s16s", 6 << 28, len(body), next_header, 64, src_b, dst_b)
    return header + body


def ethernet(packet: bytes, ethertype: int = ETHERTYPE_IPV4, vlans: Sequence[int] = (),
             pad: bool = True) -> bytes:
    """An Ethernet II frame (no FCS), with 802.1Q tags ``vlans`` (outermost first).

    With ``pad``, short frames are padded to the 60-byte minimum, as on the wire.
    """
    header = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    for i, vid in enumerate(vlans):
        tpid = ETHERTYPE_QINQ if i == 0 and len(vlans) > 1 else ETHERTYPE_VLAN
        header += struct.pack("!HH", tpid, vid)
    frame = header + struct.pack("!H", ethertype) + packet
    if pad and len(frame) < 60:
        frame += bytes(60 - len(frame))
    return frame


def linux_sll(packet: bytes, ethertype: int = ETHERTYPE_IPV4) -> bytes:
    """A Linux cooked capture (v1, DLT 113) frame: packet from us, Ethernet address."""
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", ethertype) + packet


def linux_sll2(packet: bytes, ethertype: int = ETHERTYPE_IPV4) -> bytes:
    """A Linux cooked capture v2 (DLT 276) frame."""
    return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + packet


def arp_frame() -> bytes:
    """An Ethernet ARP request (not IP at all)."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETHERTYPE_IPV4, 6, 4, 1, b"\x02\0\0\0\0\x01",
                       bytes([10, 0, 0, 1]), bytes(6), bytes([10, 0, 0, 2]))
    return ethernet(body, ETHERTYPE_ARP)


def tcp_frame(payload: bytes = b"hello") -> bytes:
    """An Ethernet IPv4 TCP segment (ports 10000 → 7148), which is not UDP."""
    segment = struct.pack("!HHIIBBHHH", 10000, 7148, 1, 0, 0x50, 0x18, 8192, 0, 0) + payload
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack("!BBH", 0, IPPROTO_TCP, len(segment))
    csum = internet_checksum(pseudo + segment)
    segment = segment[:16] + struct.pack("!H", csum) + segment[18:]
    return ethernet(ipv4_packet(IPPROTO_TCP, segment))


def udp_frame(payload: bytes, *, ipv6: bool = False, vlans: Sequence[int] = (),
              sport: int = 10000, dport: int = 7148) -> bytes:
    """An Ethernet frame holding ``payload`` in one UDP datagram."""
    if ipv6:
        return ethernet(ipv6_udp(payload, sport=sport, dport=dport), ETHERTYPE_IPV6, vlans)
    return ethernet(ipv4_udp(payload, sport=sport, dport=dport), ETHERTYPE_IPV4, vlans)


def _record(record: Record) -> tuple[bytes, int]:
    if isinstance(record, tuple):
        return record
    return record, len(record)


def write_pcap(
    path: str | os.PathLike[str], records: Iterable[Record], *, linktype: int = LINKTYPE_ETHERNET,
    nanosecond: bool = False, big_endian: bool = False, snaplen: int = 262144,
) -> None:
    """Write a classic pcap file (µs or ns timestamps, either byte order)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for i, record in enumerate(records):
            data, wire_length = _record(record)
            fraction = 123456789 if nanosecond else 123456
            f.write(struct.pack(order + "IIII", 1700000000 + i, fraction, len(data), wire_length))
            f.write(data)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def write_pcapng(
    path: str | os.PathLike[str], records: Iterable[Record], *, linktype: int = LINKTYPE_ETHERNET,
    big_endian: bool = False, snaplen: int = 262144,
) -> None:
    """Write a pcapng file: one section, one interface, enhanced packet blocks."""
    order = ">" if big_endian else "<"
    with open(path, "wb") as f:
        f.write(_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(_block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen)))
        for i, record in enumerate(records):
            data, wire_length = _record(record)
            ts = (1700000000 + i) * 1000000
            header = struct.pack(order + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), wire_length)
            f.write(_block(order, 6, header + data))
