"""Building classic pcap files of UDP datagrams (no I/O here: bytes in, bytes out).

The capture tool receives datagrams through ordinary sockets, so it sees
payloads and addresses, not frames; this module wraps each payload in the
Ethernet, IPv4/IPv6 and UDP headers it would have had on the wire, so that
tcpdump, Wireshark and ``add_udp_pcap_file_reader`` read the file like a
real capture. Link type Ethernet, microsecond timestamps, little-endian.
"""

from __future__ import annotations

import ipaddress
import struct

import numpy as np

__all__ = ["LINKTYPE_ETHERNET", "SNAPLEN", "FrameBuilder", "file_header"]

LINKTYPE_ETHERNET = 1
#: Larger than any frame we write (Ethernet + IPv6 + UDP headers + 65535 bytes).
SNAPLEN = 262144

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_ETHERTYPE_IPV4 = b"\x08\x00"
_ETHERTYPE_IPV6 = b"\x86\xdd"
_SOURCE_MAC = bytes.fromhex("020000000002")  # locally administered
_UNICAST_MAC = bytes.fromhex("020000000001")
_TTL = 64
_UDP_PROTO = 17
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
            ethertype = _ETHERTYPE_IPV4 if version == 4 else _ETHERTYPE_IPV6
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
                0x4500 + total + _DONT_FRAGMENT + (_TTL << 8 | _UDP_PROTO) + address_sum
            )
            ip = _IPV4.pack(
                0x45, 0, total, 0, _DONT_FRAGMENT, _TTL, _UDP_PROTO, checksum, src_packed, dst_packed
            )
            # A zero UDP checksum means "none" in IPv4.
            udp = _UDP.pack(src[1], dst[1], udp_length, 0)
        else:
            ip = _IPV6.pack(0x60000000, udp_length, _UDP_PROTO, _TTL, src_packed, dst_packed)
            # IPv6 requires the UDP checksum (pseudo-header + header + payload).
            partial = address_sum + udp_length + _UDP_PROTO + src[1] + dst[1] + udp_length
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
