"""The pcap frame codec: UDP datagrams in and out of captured link-layer frames (bytes only).

Reading (``add_udp_pcap_file_reader``): :func:`udp_payload_bounds` finds the
UDP payload of an Ethernet / Linux SLL / SLL2 frame, through VLAN tags and
IPv6 extension headers, or says why there is none; :func:`preamble_size` says
how much of a capture file libpcap reads before its first frame.

Writing (``spead2_capture``): the capture tool receives datagrams through
ordinary sockets, so it sees payloads and addresses, not frames;
:class:`FrameBuilder` wraps each payload in the Ethernet, IPv4/IPv6 and UDP
headers it would have had on the wire, so that tcpdump, Wireshark and the
reader above read the file like a real capture (:func:`file_header`: link
type Ethernet, microsecond timestamps, little-endian).

No I/O here: the file and libpcap are the transport's and the tool's business.
"""

from __future__ import annotations

import ipaddress
import struct

import numpy as np

__all__ = [
    "FRAGMENT", "LINKTYPE_ETHERNET", "LINKTYPE_LINUX_SLL", "LINKTYPE_LINUX_SLL2", "LINK_HEADERS",
    "MALFORMED", "NOT_UDP", "REASONS", "SNAPLEN", "FrameBuilder", "file_header", "preamble_size",
    "udp_payload_bounds",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

# Why a frame was skipped (the negative results of udp_payload_bounds).
NOT_UDP = -1
FRAGMENT = -2
MALFORMED = -3
REASONS = {NOT_UDP: "not UDP", FRAGMENT: "IP fragments", MALFORMED: "malformed"}

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_BYTES = {4: _ETHERTYPE_IPV4.to_bytes(2), 6: _ETHERTYPE_IPV6.to_bytes(2)}
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
_IPPROTO_UDP = 17
# IPv6 extension headers that may sit between the fixed header and UDP.
_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_FRAGMENT, _IPV6_AH, _IPV6_DEST_OPTS = 0, 43, 44, 51, 60
_IPV6_EXTENSIONS = frozenset(
    (_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_FRAGMENT, _IPV6_AH, _IPV6_DEST_OPTS)
)

_u16 = struct.Struct("!H").unpack_from
# version/IHL, total length, flags/fragment offset, protocol
_ipv4 = struct.Struct("!BxHxxHxB").unpack_from
# version/traffic class, payload length, next header
_ipv6 = struct.Struct("!BxxxHB").unpack_from

#: Where the ethertype field is and where the network header starts, per link type.
LINK_HEADERS = {
    LINKTYPE_ETHERNET: (12, 14),
    LINKTYPE_LINUX_SLL: (14, 16),
    LINKTYPE_LINUX_SLL2: (0, 20),
}

def udp_payload_bounds(frame: bytes, ethertype_at: int, network_at: int) -> tuple[int, int] | int:
    """Where the UDP payload of ``frame`` is: ``(start, end)``, or why there is none.

    ``ethertype_at`` / ``network_at`` locate the link header's ethertype field
    and the end of the link header (see :data:`LINK_HEADERS`). 802.1Q/802.1ad
    tags are skipped. Returns :data:`NOT_UDP`, :data:`FRAGMENT` or
    :data:`MALFORMED` for frames that yield no payload. Never raises.
    """
    try:
        ethertype = _u16(frame, ethertype_at)[0]
        offset = network_at
        while ethertype in _VLAN_TPIDS:
            ethertype = _u16(frame, offset + 2)[0]
            offset += 4
        if ethertype == _ETHERTYPE_IPV4:
            version_ihl, total_length, fragment, protocol = _ipv4(frame, offset)
            header_length = (version_ihl & 0xF) * 4
            end = offset + total_length  # trims Ethernet padding
            if (
                version_ihl >> 4 != 4 or header_length < 20
                or total_length < header_length or end > len(frame)
            ):
                return MALFORMED
            if protocol != _IPPROTO_UDP:
                return NOT_UDP
            if fragment & 0x3FFF:  # more fragments, or not the first fragment
                return FRAGMENT
            offset += header_length
        elif ethertype == _ETHERTYPE_IPV6:
            version, payload_length, next_header = _ipv6(frame, offset)
            offset += 40
            end = offset + payload_length
            # payload_length 0 means a jumbogram, which a UDP capture will not hold
            if version >> 4 != 6 or payload_length == 0 or end > len(frame):
                return MALFORMED
            while next_header in _IPV6_EXTENSIONS:
                if next_header == _IPV6_FRAGMENT:
                    if _u16(frame, offset + 2)[0] & 0xFFF9:  # offset or M flag set
                        return FRAGMENT
                    size = 8
                elif next_header == _IPV6_AH:
                    size = (frame[offset + 1] + 2) * 4
                else:
                    size = (frame[offset + 1] + 1) * 8
                next_header = frame[offset]
                offset += size
                if offset > end:
                    return MALFORMED
            if next_header != _IPPROTO_UDP:
                return NOT_UDP
        else:
            return NOT_UDP
        udp_length = _u16(frame, offset + 4)[0]
        if udp_length < 8 or offset + udp_length > end:
            return MALFORMED
        return offset + 8, offset + udp_length
    except (struct.error, IndexError):
        return MALFORMED



# -- reading: capture file preamble ----------------------------------------------------

#: Magic numbers of classic pcap files (µs and ns timestamps, either byte order).
_PCAP_MAGICS = frozenset(
    struct.pack(order + "I", magic) for order in "<>" for magic in (0xA1B2C3D4, 0xA1B23C4D)
)
_PCAPNG_SECTION_HEADER = b"\x0a\x0d\x0d\x0a"
_PCAPNG_INTERFACE_DESCRIPTION = 1


def preamble_size(data: bytes | bytearray) -> int | None:
    """How many leading bytes of a capture libpcap reads to open it (None: not all here yet).

    A classic pcap file's 24-byte header; for pcapng, the blocks up to and
    including the first interface description. For anything else, what is
    there (libpcap reports it as not a capture file).
    """
    if len(data) < 4:
        return None
    if bytes(data[:4]) in _PCAP_MAGICS:
        return 24 if len(data) >= 24 else None
    if bytes(data[:4]) != _PCAPNG_SECTION_HEADER:
        return len(data)
    if len(data) < 12:
        return None
    order = "<" if bytes(data[8:12]) == struct.pack("<I", 0x1A2B3C4D) else ">"
    offset = 0
    while len(data) >= offset + 8:
        block_type, length = struct.unpack_from(order + "II", data, offset)
        if length < 12 or length % 4:
            return len(data)  # malformed: libpcap says so
        if len(data) < offset + length:
            return None
        offset += length
        if block_type == _PCAPNG_INTERFACE_DESCRIPTION:
            return offset
    return None



# -- writing ------------------------------------------------------------------------

#: Larger than any frame we write (Ethernet + IPv6 + UDP headers + 65535 bytes).
SNAPLEN = 262144

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_SOURCE_MAC = bytes.fromhex("020000000002")  # locally administered
_UNICAST_MAC = bytes.fromhex("020000000001")
_TTL = 64
_DONT_FRAGMENT = 0x4000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def file_header() -> bytes:
    """The 24-byte pcap global header."""
    return _FILE_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)


def _destination_mac(dst: IPAddress) -> bytes:
    if dst.is_multicast:
        if dst.version == 4:
            # 01:00:5e + the low 23 bits of the group (RFC 1112).
            low = int(dst) & 0x7FFFFF
            return b"\x01\x00\x5e" + low.to_bytes(3, "big")
        return b"\x33\x33" + dst.packed[-4:]  # RFC 2464
    return _UNICAST_MAC


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes | bytearray | memoryview) -> int:
    """Sum of the big-endian 16-bit words of ``data`` (zero-padded to even length)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    return int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))


class FrameBuilder:
    """Makes the record header and frame headers for datagrams between two addresses.

    The constant parts (MAC addresses, addresses, the address part of the
    IPv4 checksum) are computed once per address pair and cached.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[bytes, int, bytes, bytes, int]] = {}

    def _prepare(self, src: str, dst: str) -> tuple[bytes, int, bytes, bytes, int]:
        key = (src, dst)
        cached = self._cache.get(key)
        if cached is None:
            src_ip = ipaddress.ip_address(src.split("%", 1)[0])
            dst_ip = ipaddress.ip_address(dst.split("%", 1)[0])
            if src_ip.version != dst_ip.version:
                # IPv4-mapped source on an IPv6 socket, or the reverse.
                if isinstance(src_ip, ipaddress.IPv6Address) and src_ip.ipv4_mapped:
                    src_ip = src_ip.ipv4_mapped
                elif isinstance(dst_ip, ipaddress.IPv6Address) and dst_ip.ipv4_mapped:
                    dst_ip = dst_ip.ipv4_mapped
            version = src_ip.version if src_ip.version == dst_ip.version else 6
            if version == 6:
                src_ip = _as_ipv6(src_ip)
                dst_ip = _as_ipv6(dst_ip)
            ethertype = _ETHERTYPE_BYTES[version]
            ethernet = _destination_mac(dst_ip) + _SOURCE_MAC + ethertype
            address_sum = _sum16(src_ip.packed + dst_ip.packed)
            cached = (ethernet, version, src_ip.packed, dst_ip.packed, address_sum)
            self._cache[key] = cached
        return cached

    def headers(
        self, src: tuple[str, int], dst: tuple[str, int], payload: bytes, timestamp_ns: int
    ) -> bytes:
        """Record header + Ethernet + IP + UDP headers for ``payload`` (which follows them)."""
        ethernet, version, src_packed, dst_packed, address_sum = self._prepare(src[0], dst[0])
        udp_length = 8 + len(payload)
        if version == 4:
            total = 20 + udp_length
            checksum = 0xFFFF - _fold(
                0x4500 + total + _DONT_FRAGMENT + (_TTL << 8 | _IPPROTO_UDP) + address_sum
            )
            ip = _IPV4.pack(
                0x45, 0, total, 0, _DONT_FRAGMENT, _TTL, _IPPROTO_UDP, checksum, src_packed, dst_packed
            )
            # A zero UDP checksum means "none" in IPv4.
            udp = _UDP.pack(src[1], dst[1], udp_length, 0)
        else:
            ip = _IPV6.pack(0x60000000, udp_length, _IPPROTO_UDP, _TTL, src_packed, dst_packed)
            # IPv6 requires the UDP checksum (pseudo-header + header + payload).
            partial = address_sum + udp_length + _IPPROTO_UDP + src[1] + dst[1] + udp_length
            checksum = 0xFFFF - _fold(partial + _sum16(payload))
            udp = _UDP.pack(src[1], dst[1], udp_length, checksum or 0xFFFF)
        frame_length = len(ethernet) + len(ip) + udp_length
        seconds, nanoseconds = divmod(timestamp_ns, 1_000_000_000)
        record = _RECORD.pack(seconds, nanoseconds // 1000, frame_length, frame_length)
        return record + ethernet + ip + udp


def _as_ipv6(address: IPAddress) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        return address
    return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed)
