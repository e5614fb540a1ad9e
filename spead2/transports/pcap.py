"""Replay the UDP payloads of a pcap / pcapng capture file as SPEAD packets.

The file is opened, its BPF filter compiled and its link type checked in the
caller's thread (:func:`open_pcap_file`), so those errors raise to the caller.
The reader then reads and parses batches of frames on a worker thread (libpcap
reads are blocking file I/O) and feeds the UDP payloads to the stream on its
loop, pausing while the ring is full: nothing is lost. The end of the file
(or a read error) stops the stream. Frames are parsed with the codec in
:mod:`spead2.protocols.pcap`.

A live capture (a FIFO or pipe fed by ``tcpdump -w -``, or any file that is
not a regular file) is supported: a relay thread copies it into a pipe of
ours that libpcap reads, so stopping never waits for the writer (closing our
end of the pipe ends libpcap's read at once), and a batch is handed over as
soon as no more data is waiting, not when it is full. Worker and relay
threads are daemons: a reader blocked on a silent capture never holds up
interpreter exit.

Frames that carry no UDP datagram and IP fragments (which cannot be
reassembled one frame at a time) are skipped and counted in the stream's
``skipped_frames`` statistic; malformed frames and frames captured shorter
than they were on the wire are dropped and counted in ``invalid_packets``
(each shown where the stream's config registers it with ``add_stat``). The
breakdown by reason is logged at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import logging
import os
import queue
import select
import stat
import threading
from collections.abc import Callable
from typing import Any

from .._log import log_limited, logger
from ..protocols.pcap import LINK_HEADERS, MALFORMED, REASONS, preamble_size, udp_payload_bounds
from .base import BATCH_PACKETS, PAUSE, STOP, Reader, StreamSink

__all__ = ["PCAP_MISSING_MESSAGE", "PcapHandoff", "PcapReader", "import_cypcap", "open_pcap_file"]

#: What reading a capture file says where the optional ``cypcap`` package is missing.
PCAP_MISSING_MESSAGE = (
    "reading pcap files needs the optional cypcap package, which is not installed. "
    "Install it with: pip install 'aiospead2[pcap]' (it installs by itself on Linux x86-64, "
    "macOS and Windows x64; elsewhere this builds it from source, which needs a C compiler "
    "and libpcap's development files, e.g. apt install gcc libpcap-dev)"
)

#: Frames read (and parsed) per worker-thread job; bytes cap the batch too.
READ_FRAMES = 256
READ_BYTES = 1 << 20

_LINKTYPE_ERROR = "pcap linktype is neither ethernet nor linux sll"
_PARSE_ERROR = "can't parse filter expression: syntax error"
_SYNTAX_ERROR = "syntax error in filter expression"


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


#: The relay's pipe: big enough for a whole preamble (see _LiveInput) and for batches.
_PIPE_SIZE = 1 << 20
_PREAMBLE_MAX = 60 * 1024  # within the smallest pipe size (64 KiB): written without a reader


class _LiveInput:
    """Relays a capture that may never end (FIFO, pipe, device) into a pipe libpcap reads.

    libpcap's reads block; on a FIFO whose writer is silent they would block for
    ever. The relay thread waits on the source *and* on a wake-up pipe, so
    :meth:`close` ends it at once; it then closes the pipe's write end, and
    libpcap's read returns end of file. Runs on a daemon thread.

    libpcap holds the GIL while it opens a capture (its reads of frames release
    it): the relay forwards the capture's preamble (:func:`preamble_size`) in
    one write before :meth:`wait_for_preamble` returns, so that opening never
    waits for bytes the relay, needing the GIL, could not then forward.
    """

    def __init__(self, path: str) -> None:
        # Blocks until a writer opens the FIFO, as libpcap's own open would.
        self._source = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.set_blocking(self._source, False)
            self.read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
            self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except BaseException:
            os.close(self._source)
            raise
        try:
            fcntl.fcntl(self._write_fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except (OSError, AttributeError):  # over the user's limit, or not Linux: the default
            pass
        self._lock = threading.Lock()
        self._done = False
        self._preamble = threading.Event()
        threading.Thread(target=self._relay, name="spead2-pcap-relay", daemon=True).start()

    def wait_for_preamble(self) -> None:
        """Wait until libpcap can open the capture without blocking (or the source ended)."""
        self._preamble.wait()

    def _relay(self) -> None:
        poller = select.poll()
        poller.register(self._wake_read, select.POLLIN)
        poller.register(self._source, select.POLLIN)
        pending: bytearray | None = bytearray()
        try:
            while True:
                events = dict(poller.poll())
                if self._wake_read in events:
                    return
                size = 1 << 16 if pending is None else _PREAMBLE_MAX - len(pending)
                try:
                    data = os.read(self._source, size)
                except BlockingIOError:
                    continue
                if not data:
                    return  # the writer closed: end of the capture
                if pending is not None:
                    pending += data
                    if preamble_size(pending) is None and len(pending) < _PREAMBLE_MAX:
                        continue
                    data, pending = bytes(pending), None
                    os.write(self._write_fd, data)  # fits in the pipe: never blocks
                    self._preamble.set()
                    continue
                os.write(self._write_fd, data)  # blocks while libpcap is behind: lossless
        except OSError:  # libpcap's end closed (the capture was closed), or a read error
            return
        finally:
            with self._lock:
                self._done = True
                if pending:  # the source ended within the preamble: libpcap reports it
                    try:
                        os.write(self._write_fd, pending)
                    except OSError:
                        pass
                for fd in (self._write_fd, self._source, self._wake_read, self._wake_write):
                    os.close(fd)
            self._preamble.set()

    def has_data(self) -> bool:
        """Whether bytes are waiting in the pipe (libpcap may hold more, already read)."""
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        """Stop relaying: libpcap's read in progress (if any) returns end of file."""
        with self._lock:
            if not self._done:
                try:
                    os.write(self._wake_write, b"x")
                except BlockingIOError:  # already woken
                    pass

    def release(self) -> None:
        """Close our read end of the pipe (once libpcap has closed its own)."""
        self.close()
        fd, self.read_fd = self.read_fd, -1
        if fd >= 0:
            os.close(fd)  # a relay blocked writing to the pipe now fails, and ends


class PcapHandoff:
    """An open capture on its way from the caller's thread to a reader on the stream's loop.

    The reader :meth:`take`\\ s it; if none does (the stream was already
    stopped, or adding the reader failed), :meth:`discard` closes it.
    """

    __slots__ = ("_live", "_pcap", "filename", "linktype")

    def __init__(self, pcap: Any, filename: str, linktype: int, live: _LiveInput | None) -> None:
        self._pcap: Any = pcap
        self._live = live
        self.filename = filename
        self.linktype = linktype

    def take(self) -> tuple[Any, _LiveInput | None]:
        """Take ownership of the ``cypcap.Pcap`` and of its relay, if live (once)."""
        pcap = self._pcap
        if pcap is None:
            raise RuntimeError("pcap file already taken")
        self._pcap = None
        live, self._live = self._live, None
        return pcap, live

    def discard(self) -> None:
        """Close the capture unless a reader took it."""
        pcap = self._pcap
        self._pcap = None
        live, self._live = self._live, None
        if live is not None:
            live.close()
        if pcap is not None:
            pcap.close()
        if live is not None:
            live.release()


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
    live = _LiveInput(path) if _is_live(path) else None
    opened = path if live is None else f"/dev/fd/{live.read_fd}"
    try:
        if live is not None:
            live.wait_for_preamble()
        pcap = cypcap.open_offline(os.fsencode(opened))
    except cypcap.Error as exc:
        _discard_live(live)
        raise RuntimeError(exc.msg.replace(opened, path)) from None
    except UnicodeDecodeError:  # libpcap's message quoted a file name that is not UTF-8
        _discard_live(live)
        raise RuntimeError(f"{path}: cannot open capture file") from None
    except BaseException:
        _discard_live(live)
        raise
    try:
        # The filter is checked before the link type, as in the reference.
        if filter:
            try:
                pcap.setfilter(filter)
            except cypcap.Error as exc:
                raise RuntimeError(_filter_error(pcap, filter, exc.msg)) from None
        linktype = int(pcap.datalink())
        if linktype not in LINK_HEADERS:
            raise RuntimeError(_LINKTYPE_ERROR)
    except BaseException:
        pcap.close()
        _discard_live(live)
        raise
    return PcapHandoff(pcap, path, linktype, live)


def _is_live(path: str) -> bool:
    """Whether ``path`` is a capture that may never end: a FIFO, pipe, socket or device."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False  # libpcap reports the error, in its words
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _discard_live(live: _LiveInput | None) -> None:
    if live is not None:
        live.release()


class _Batch:
    """Frames read by one worker job: the UDP payloads and what ended the job."""

    __slots__ = ("payloads", "skipped", "invalid", "eof", "error")

    def __init__(self) -> None:
        self.payloads: list[memoryview] = []
        self.skipped = 0
        self.invalid = 0
        self.eof = False
        self.error: str | None = None


class _DaemonWorkers:
    """Runs read jobs on daemon threads, started as needed and kept for later jobs.

    Not the loop's default executor: the reader must learn when a read has
    finished even if the loop has been closed meanwhile (to close the capture
    safely), which concurrent futures tell and asyncio ones don't. Not a
    ``ThreadPoolExecutor`` either: its threads are joined at interpreter exit,
    and a read of a silent live capture must never hold up exit.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0

    def submit[T](self, job: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # an idle thread will take this job
        self._jobs.put((future, job))
        if start:
            threading.Thread(target=self._work, name="spead2-pcap", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, job = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:
                    future.set_exception(exc)
            del future, job
            with self._lock:
                self._idle += 1


_workers = _DaemonWorkers()


class PcapReader(Reader):
    """Feeds the UDP payloads of a capture file to the stream; its end stops the stream.

    Lossless: while the ring is full, no more frames are fed (at most one
    batch is read ahead).
    """

    def __init__(self, sink: StreamSink, handoff: PcapHandoff) -> None:
        super().__init__(sink)
        self._filename = handoff.filename
        self._link = LINK_HEADERS[handoff.linktype]
        self._pcap, self._live = handoff.take()
        self._reading: concurrent.futures.Future[_Batch] | None = None
        # Skipped frames by reason (including "truncated"), for the final summary.
        self._skips = dict.fromkeys([*REASONS.values(), "truncated"], 0)

    # -- worker thread ----------------------------------------------------------------

    def _read_batch(self, pcap: Any) -> _Batch:
        """Read and parse up to READ_FRAMES frames of ``pcap`` (runs on a worker thread)."""
        batch = _Batch()
        payloads = batch.payloads
        ethertype_at, network_at = self._link
        skips = self._skips
        live = self._live
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
                    skips[REASONS[bounds]] += 1
                    if bounds == MALFORMED:
                        batch.invalid += 1
                    else:
                        batch.skipped += 1
                    continue
                payloads.append(memoryview(frame)[bounds[0] : bounds[1]])
                size += len(frame)
                if size >= READ_BYTES or (live is not None and not live.has_data()):
                    # On a live capture, hand over what has arrived rather than
                    # wait (maybe for ever) for a full batch.
                    break
        except Exception as exc:  # cypcap.Error for a damaged file
            batch.error = getattr(exc, "msg", None) or str(exc)
        return batch

    # -- event loop -------------------------------------------------------------------

    def _submit(self) -> concurrent.futures.Future[_Batch]:
        pcap = self._pcap
        self._reading = _workers.submit(lambda: self._read_batch(pcap))
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
        live, self._live = self._live, None
        if live is not None:
            live.close()  # a read waiting on a silent live capture returns at once

        def release() -> None:
            pcap.close()
            if live is not None:
                live.release()

        reading = self._reading
        if reading is None or reading.done():
            release()
        else:
            # Never close the capture under the worker's feet.
            reading.add_done_callback(lambda _: release())
