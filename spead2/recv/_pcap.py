"""``add_udp_pcap_file_reader``: replay a capture file into a receive stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._thread_pool import run_on_loop
from ..transports.base import Reader
from ..transports.pcap import PcapReader, open_pcap_file

if TYPE_CHECKING:
    from ._receiver import ReceiverCore

__all__ = ["PcapReaders"]


class PcapReaders:
    """The pcap ``add_*_reader`` method of the receive streams."""

    if TYPE_CHECKING:
        _core: ReceiverCore

        def _add_reader(self, make: type[Reader], *args: Any) -> None: ...

    def add_udp_pcap_file_reader(self, filename: str, filter: str = "") -> None:
        """Receive the UDP payloads of a pcap or pcapng file, one SPEAD packet each.

        ``filter`` is a BPF expression in tcpdump's syntax (e.g. ``"udp port
        7148"``); '' keeps every frame. Ethernet (with or without 802.1Q tags)
        and Linux cooked (v1 and v2) captures of IPv4 and IPv6 are read;
        frames holding no UDP datagram and IP fragments are skipped and
        counted in the ``skipped_frames`` statistic, malformed frames and
        frames captured shorter than their wire length in
        ``invalid_packets`` (each shown where the stream's config registers
        it with ``add_stat``). Frames are replayed in file order, as fast as the
        consumer allows (nothing is dropped); the end of the file stops the
        stream.

        ``filename`` may also be a live capture that has no end yet: a FIFO or
        pipe written by ``tcpdump -U -w FIFO`` (or any file that is not a
        regular file). Opening it waits until the writer has written the
        capture's header; after that, frames are delivered as they arrive,
        ``stop()`` returns at once and releases the FIFO whatever the writer
        does, and the writer closing it ends the stream.

        Raises ``RuntimeError`` (with libpcap's message) if the file cannot be
        opened or the filter does not compile, and ``RuntimeError("pcap
        linktype is neither ethernet nor linux sll")`` for other link types.
        Reading capture files needs the optional ``cypcap`` package (installed
        with this package on Linux x86-64, macOS and Windows x64; elsewhere
        ``pip install 'aiospead2[pcap]'``): without it this raises
        ``ModuleNotFoundError`` saying how to install it.
        """
        core = self._core
        # The reference ignores readers added to a stopped stream before even
        # opening the file (and reports an explicit-start violation first).
        if not run_on_loop(core.loop, core.check_can_add_reader):
            return
        handoff = open_pcap_file(filename, filter)
        try:
            self._add_reader(PcapReader, handoff)
        finally:
            handoff.discard()  # closes it unless the reader took it (e.g. the stream had stopped)
