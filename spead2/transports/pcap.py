"""Replay the UDP payloads of a pcap / pcapng capture file as SPEAD packets.

The file is opened, its BPF filter compiled and its link type checked in the
caller's thread (:func:`open_pcap_file`), so those errors raise to the caller.
The reader then reads and parses batches of frames on a worker thread (libpcap
reads are blocking file I/O) and feeds the UDP payloads to the stream on its
loop, pausing while the ring is full: nothing is lost. The end of the file
(or a read error) stops the stream.

Frames that carry no UDP datagram, IP fragments (which cannot be reassembled
one frame at a time), malformed frames and frames captured shorter than they
were on the wire are skipped; each is counted in the stream's
``invalid_packets`` statistic, and the breakdown is logged at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import struct
import threading
from typing import Any

from .._log import log_limited, logger
from .base import BATCH_PACKETS, PAUSE, STOP, Reader, StreamSink

__all__ = [
    "PCAP_MISSING_MESSAGE", "PcapHandoff", "PcapReader", "import_cypcap", "open_pcap_file",
    "udp_payload_bounds",
]

#: What reading a capture file says where the optional ``cypcap`` package is missing.
PCAP_MISSING_MESSAGE = (
    "reading pcap files needs the optional cypcap package, which is not installed. "
    "Install it with: pip install 'aiospead2[pcap]' (it installs by itself on Linux x86-64, "
    "macOS and Windows x64; elsewhere this builds it from source, which needs a C compiler "
    "and libpcap's development files, e.g. apt install gcc libpcap-dev)"
)

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

#: Frames read (and parsed) per worker-thread job; bytes cap the batch too.
READ_FRAMES = 256
READ_BYTES = 1 << 20

# Why a frame was skipped (the negative results of udp_payload_bounds).
NOT_UDP = -1
FRAGMENT = -2
MALFORMED = -3
_REASONS = {NOT_UDP: "not UDP", FRAGMENT: "IP fragments", MALFORMED: "malformed"}

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
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
_LINK_HEADERS = {
    LINKTYPE_ETHERNET: (12, 14),
    LINKTYPE_LINUX_SLL: (14, 16),
    LINKTYPE_LINUX_SLL2: (0, 20),
}

_LINKTYPE_ERROR = "pcap linktype is neither ethernet nor linux sll"
_PARSE_ERROR = "can't parse filter expression: syntax error"
_SYNTAX_ERROR = "syntax error in filter expression"


def udp_payload_bounds(frame: bytes, ethertype_at: int, network_at: int) -> tuple[int, int] | int:
    """Where the UDP payload of ``frame`` is: ``(start, end)``, or why there is none.

    ``ethertype_at`` / ``network_at`` locate the link header's ethertype field
    and the end of the link header (see ``_LINK_HEADERS``). 802.1Q/802.1ad
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


def import_cypcap() -> Any:
    """The ``cypcap`` module, or ``ModuleNotFoundError`` saying how to install it."""
    try:
        import cypcap
    except ImportError:
        raise ModuleNotFoundError(PCAP_MISSING_MESSAGE, name="cypcap") from None
    return cypcap


def _filter_error(pcap: Any, filter: str, message: str) -> str:
    """The reference's wording for a filter libpcap rejects.

    The reference's libpcap reports an expression that starts with a bare
    word (``"foo"``, ``"not a filter"``) as "syntax error in filter
    expression"; newer libpcap rejects those earlier, as "can't parse filter
    expression: syntax error" — which it still uses for other syntax errors
    (``"udp port"``). Inside ``udp and (...)`` the bare word reaches the same
    check as in the reference, which tells the two cases apart.
    """
    if message != _PARSE_ERROR:
        return message
    cypcap = import_cypcap()

    try:
        pcap.compile(f"udp and ({filter})")
    except cypcap.Error as exc:
        if exc.msg == _SYNTAX_ERROR:
            return _SYNTAX_ERROR
    return message


def _as_path(filename: object) -> str:
    if isinstance(filename, str):
        return filename
    if isinstance(filename, (bytes, os.PathLike)):
        return os.fsdecode(filename)
    raise TypeError(
        f"filename must be a str, bytes or os.PathLike, not {type(filename).__name__}"
    )


class PcapHandoff:
    """An open capture on its way from the caller's thread to a reader on the stream's loop.

    The reader :meth:`take`\\ s it; if none does (the stream was already
    stopped, or adding the reader failed), :meth:`discard` closes it.
    """

    __slots__ = ("_pcap", "filename", "linktype")

    def __init__(self, pcap: Any, filename: str, linktype: int) -> None:
        self._pcap: Any = pcap
        self.filename = filename
        self.linktype = linktype

    def take(self) -> Any:
        """Take ownership of the ``cypcap.Pcap`` (once)."""
        pcap = self._pcap
        if pcap is None:
            raise RuntimeError("pcap file already taken")
        self._pcap = None
        return pcap

    def discard(self) -> None:
        """Close the capture unless a reader took it."""
        pcap = self._pcap
        self._pcap = None
        if pcap is not None:
            pcap.close()


def open_pcap_file(filename: object, filter: object = "") -> PcapHandoff:
    """Open a capture file and apply a BPF ``filter`` (tcpdump syntax; '' = none).

    Errors raise here, in the caller's thread, as ``RuntimeError`` with
    libpcap's message (e.g. ``"<file>: No such file or directory"``, ``"syntax
    error in filter expression"``) or ``"pcap linktype is neither ethernet nor
    linux sll"`` for captures of other link types. ``TypeError`` for a
    ``filename`` or ``filter`` of the wrong type, ``ValueError`` for a
    ``filename`` holding a NUL character. ``ModuleNotFoundError`` saying how
    to install it where the optional ``cypcap`` package is missing.
    """
    path = _as_path(filename)
    if not isinstance(filter, str):
        raise TypeError(f"filter must be a str, not {type(filter).__name__}")
    cypcap = import_cypcap()

    if "\0" in path:
        raise ValueError(f"filename must not contain NUL characters (got {path!r})")
    try:
        pcap = cypcap.open_offline(os.fsencode(path))
    except cypcap.Error as exc:
        raise RuntimeError(exc.msg) from None
    except UnicodeDecodeError:  # libpcap's message quoted a file name that is not UTF-8
        raise RuntimeError(f"{path}: cannot open capture file") from None
    try:
        # The filter is checked before the link type, as in the reference.
        if filter:
            try:
                pcap.setfilter(filter)
            except cypcap.Error as exc:
                raise RuntimeError(_filter_error(pcap, filter, exc.msg)) from None
        linktype = int(pcap.datalink())
        if linktype not in _LINK_HEADERS:
            raise RuntimeError(_LINKTYPE_ERROR)
    except BaseException:
        pcap.close()
        raise
    return PcapHandoff(pcap, path, linktype)


class _Batch:
    """Frames read by one worker job: the UDP payloads and what ended the job."""

    __slots__ = ("payloads", "skipped", "invalid", "eof", "error")

    def __init__(self) -> None:
        self.payloads: list[memoryview] = []
        self.skipped = 0
        self.invalid = 0
        self.eof = False
        self.error: str | None = None


_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _get_executor() -> concurrent.futures.ThreadPoolExecutor:
    # Our own executor, not the loop's default: the reader must learn when a
    # read has finished even if the loop has been closed meanwhile (to close
    # the capture safely), which concurrent futures tell and asyncio ones don't.
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="spead2-pcap"
            )
        return _executor


class PcapReader(Reader):
    """Feeds the UDP payloads of a capture file to the stream; its end stops the stream.

    Lossless: while the ring is full, no more frames are fed (at most one
    batch is read ahead).
    """

    def __init__(self, sink: StreamSink, handoff: PcapHandoff) -> None:
        super().__init__(sink)
        self._filename = handoff.filename
        self._link = _LINK_HEADERS[handoff.linktype]
        self._pcap: Any = handoff.take()
        self._reading: concurrent.futures.Future[_Batch] | None = None
        # Skipped frames by reason (including "truncated"), for the final summary.
        self._skips = dict.fromkeys([*_REASONS.values(), "truncated"], 0)

    # -- worker thread ----------------------------------------------------------------

    def _read_batch(self, pcap: Any) -> _Batch:
        """Read and parse up to READ_FRAMES frames of ``pcap`` (runs on a worker thread)."""
        batch = _Batch()
        payloads = batch.payloads
        ethertype_at, network_at = self._link
        skips = self._skips
        size = 0
        try:
            for _ in range(READ_FRAMES):
                item = next(pcap, None)
                if item is None:
                    batch.eof = True
                    break
                header, frame = item
                if header.caplen < header.len:
                    log_limited(
                        logging.WARNING, "pcap-truncated",
                        "Packet was truncated (%d < %d)", header.caplen, header.len,
                    )
                    skips["truncated"] += 1
                    batch.invalid += 1
                    continue
                bounds = udp_payload_bounds(frame, ethertype_at, network_at)
                if isinstance(bounds, int):
                    skips[_REASONS[bounds]] += 1
                    if bounds == MALFORMED:
                        batch.invalid += 1
                    else:
                        batch.skipped += 1
                    continue
                payloads.append(memoryview(frame)[bounds[0] : bounds[1]])
                size += len(frame)
                if size >= READ_BYTES:
                    break
        except Exception as exc:  # cypcap.Error for a damaged file
            batch.error = getattr(exc, "msg", None) or str(exc)
        return batch

    # -- event loop -------------------------------------------------------------------

    def _submit(self) -> concurrent.futures.Future[_Batch]:
        self._reading = _get_executor().submit(self._read_batch, self._pcap)
        return self._reading

    async def _run(self) -> None:
        sink = self.sink
        loop = sink.loop
        pending = self._submit()
        while not self.closed:
            batch = await asyncio.wrap_future(pending, loop=loop)
            if self.closed:
                return
            ended = batch.eof or batch.error is not None
            if not ended:
                pending = self._submit()  # read ahead while this batch is fed
            if batch.skipped:
                sink.count_skipped(batch.skipped)
            if batch.invalid:
                sink.count_invalid(batch.invalid)
            payloads = batch.payloads
            total = len(payloads)
            start = 0
            while start < total:
                stop = min(start + BATCH_PACKETS, total)
                verdict = sink.feed(payloads[start:stop])
                if verdict == STOP:
                    return
                start = stop
                if verdict == PAUSE:
                    await sink.wait_for_space()
                elif start < total:
                    await asyncio.sleep(0)  # let the loop's other work in between sub-batches
                if self.closed:
                    return
            if ended:
                if batch.error is not None:
                    logger.warning("Error reading packet: %s", batch.error)
                self._log_summary()
                sink.stop_from_reader()
                return

    def _log_summary(self) -> None:
        skipped = {reason: n for reason, n in self._skips.items() if n}
        if skipped:
            logger.info(
                "pcap reader: %s: skipped %d frames (%s)", self._filename, sum(skipped.values()),
                ", ".join(f"{n} {reason}" for reason, n in skipped.items()),
            )

    def close(self) -> None:
        """Stop reading and close the capture (once any read in progress has finished)."""
        super().close()
        pcap = self._pcap
        if pcap is None:
            return
        self._pcap = None
        reading = self._reading
        if reading is None or reading.done():
            pcap.close()
        else:
            # Never close the capture under the worker's feet.
            reading.add_done_callback(lambda _: pcap.close())
