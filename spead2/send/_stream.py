"""Machinery common to every send stream: the stream base and its two drivers.

Heap references (``send_heaps``' per-heap cnt, substream and rate) are in
:mod:`._references`.

Layers, top to bottom:

* :class:`Stream` — the public base: the cnt sequence, ``num_substreams``,
  and turning a call's heaps into a validated :class:`_HeapGroup` (argument
  errors here, then the core's scheduler).
* :class:`~spead2.protocols.scheduler.GroupScheduler` (sans-IO, in the core):
  yields the packets of a group in transmission order (``GroupMode``) with
  the time each may be sent (:class:`~spead2.protocols.rate.RateLimiter`);
  :func:`~spead2.protocols.scheduler.schedule_group` makes one, assigning the
  automatic cnts (:class:`~spead2.protocols.scheduler.CntSequence`).
* Two drivers that move the scheduler's packets to a transport:
  :class:`SyncStream` (``send_heap``/``send_heaps``; runs in the calling
  thread, sleeps with :func:`time.sleep`) and :class:`AsyncStream`
  (``async_send_heap(s)``, ``flush``, ``async_flush``; a task on the running
  event loop works through a queue of at most ``max_heaps`` heaps).

Transport boundary
------------------
A concrete stream gives its driver one transport object. It only moves
packets; it knows nothing of heaps, cnts or rates.

* ``num_substreams: int`` — number of destinations; heaps choose one with
  ``substream_index`` (already range-checked when the transport sees it).
* Synchronous streams (:class:`SyncTransport`):
  ``send_packet(substream_index, packet) -> None`` sends one packet, blocking
  if it must. ``packet`` is a list of buffers (``bytes`` / flat byte
  ``memoryview``) whose concatenation is the packet: send it with
  scatter/gather I/O (``socket.sendmsg(packet)``), don't join it.
* Asyncio streams (:class:`AsyncTransport`), called on the event loop:

  - ``send_packet(substream_index, packet) -> Awaitable[None] | None`` must
    not block. Return ``None`` once the packet is handed over, or an
    awaitable that completes when it has been (e.g. waiting for a full UDP
    socket buffer to drain, or a TCP writer's ``drain()``); the driver awaits
    it before the next packet.
  - ``send_packet_blocking(substream_index, packet) -> None``: the same, but
    allowed to block; used by the synchronous ``flush()`` when it is called
    on the loop's own thread and so cannot wait for the loop.

  In-memory transports implement both with one method that returns ``None``.

In both cases errors are raised as :class:`OSError` (from the call or the
awaitable); they fail the heap group being sent (the remaining packets of the
group are dropped) and the stream carries on with the next group. The
buffers in ``packet`` are only guaranteed unchanged until the call (or its
awaitable) completes: a transport that keeps them longer must copy them.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import inspect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Protocol

from .._log import log_limited
from ..protocols.arguments import uint64
from ..protocols.packetizer import Packet
from ..protocols.rate import RateLimiter
from ..protocols.scheduler import CntSequence, GroupScheduler, schedule_group
from ._config import GroupMode, StreamConfig
from ._heap import Heap
from ._references import (
    HeapReference,
    HeapReferenceList,
    _check_cnt,
    _check_heap,
    _check_rate,
    _convert_heaps,
    _Ref,
)

__all__ = [
    "AsyncStream",
    "Packet",
    "AsyncTransport",
    "HeapReference",
    "HeapReferenceList",
    "Stream",
    "SyncStream",
    "SyncTransport",
]


class SyncTransport(Protocol):
    """What a synchronous send stream needs from its transport (see the module docstring)."""

    @property
    def num_substreams(self) -> int:
        """Number of destinations."""
        ...

    def send_packet(self, substream_index: int, packet: Packet, /) -> None:
        """Send one packet (a list of buffers), blocking if necessary; raise ``OSError`` on failure."""
        ...


class AsyncTransport(Protocol):
    """What an asyncio send stream needs from its transport (see the module docstring)."""

    @property
    def num_substreams(self) -> int:
        """Number of destinations."""
        ...

    def send_packet(self, substream_index: int, packet: Packet, /) -> Awaitable[None] | None:
        """Hand one packet over without blocking; return an awaitable if the driver must wait."""
        ...

    def send_packet_blocking(self, substream_index: int, packet: Packet, /) -> None:
        """Hand one packet over, blocking the thread if necessary."""
        ...


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _check_mode(mode: object) -> GroupMode:
    if not isinstance(mode, GroupMode):
        raise TypeError(f"mode must be a GroupMode (got {mode!r})")
    return mode


class _HeapGroup:
    """One ``send_heap(s)`` call's worth of heaps, validated and ready to send."""

    __slots__ = ("n_heaps", "scheduler", "pending", "future", "waiters")

    def __init__(self, n_heaps: int, scheduler: GroupScheduler) -> None:
        self.n_heaps = n_heaps
        self.scheduler = scheduler
        #: A packet the rate limiter has scheduled but that is not sent yet.
        self.pending: tuple[int, Packet, float] | None = None
        self.future: asyncio.Future[int] | None = None
        #: ``async_flush`` callers waiting for this group to finish.
        self.waiters: list[asyncio.Future[None]] = []


class Stream:
    """Common base of all send streams: cnt sequence, substreams and heap validation.

    Not constructed directly; see ``BytesStream``, ``InprocStream``, ``UdpStream``,
    ``TcpStream`` and their ``spead2.send.asyncio`` counterparts.
    """

    def __init__(self, config: StreamConfig | None, num_substreams: int) -> None:
        if config is None:
            config = StreamConfig()
        elif not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a spead2.send.StreamConfig (got {config!r})")
        self._config = copy.copy(config)
        self._num_substreams = num_substreams
        self._cnts = CntSequence()
        self._limiter = RateLimiter(self._config.burst_size, self._config.burst_rate_ratio)
        #: Clock for rate limiting (seconds, monotonic). Tests substitute a fake.
        self._clock: Callable[[], float] = time.monotonic

    @property
    def num_substreams(self) -> int:
        """Number of destinations (endpoints or queues) heaps can be sent to."""
        return self._num_substreams

    def set_cnt_sequence(self, next: int, step: int) -> None:
        """Make automatic cnts ``next``, ``next + step``, ... (initially 1, 2, ...).

        Values are unsigned 64-bit (negative → ``TypeError``); the sequence
        wraps modulo 2**64 and each cnt is reduced modulo
        ``2**heap_address_bits`` of the heap it is given to.
        """
        next_cnt = uint64(next, "next")
        step_value = uint64(step, "step")
        if step_value == 0:
            raise ValueError("step cannot be 0")
        self._cnts.next = next_cnt
        self._cnts.step = step_value

    def _prepare(self, refs: Sequence[_Ref], mode: GroupMode) -> _HeapGroup:
        """Validate a group and assign its cnts (all or nothing).

        Raises ``OSError(EINVAL)`` for an empty group, a bad substream or an
        out-of-range explicit cnt, and ``ValueError`` if a heap cannot be
        packetized with this stream's packet size. Nothing changes on error.
        """
        if not refs:
            log_limited(logging.WARNING, "send.empty", "Empty heap group")
            raise _oserror(errno.EINVAL)
        for heap, cnt, substream_index, _ in refs:
            if substream_index >= self._num_substreams:
                log_limited(
                    logging.WARNING,
                    "send.substream",
                    "async_send_heap(s): dropping heap because substream index is out of range",
                )
                raise _oserror(errno.EINVAL)
            if cnt >= 0 and cnt >> heap.flavour.heap_address_bits:
                log_limited(
                    logging.WARNING,
                    "send.cnt",
                    "async_send_heap(s): dropping heap because cnt is out of range",
                )
                raise _oserror(errno.EINVAL)
        config = self._config
        scheduler = schedule_group(
            refs,
            self._cnts,
            mode is GroupMode.ROUND_ROBIN,
            config.max_packet_size,
            config.rate,
            self._limiter,
        )
        return _HeapGroup(len(refs), scheduler)

    def _check_group_size(self, n_heaps: int, queued: int) -> None:
        if queued + n_heaps > self._config.max_heaps:
            log_limited(
                logging.WARNING,
                "send.full",
                "async_send_heap(s): dropping heap because queue is full",
            )
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))


async def _nothing() -> None:
    pass


async def _wait(waiter: asyncio.Future[None]) -> None:
    await waiter


class SyncStream(Stream):
    """A stream whose ``send_heap``/``send_heaps`` do all the work in the calling thread.

    Calls from several threads are serialised: each group is sent completely
    before the next starts, in the order the calls got the stream's lock.
    As in the reference, the stream has ``max_heaps`` slots: heaps being
    sent or waiting for their turn take one each, and a call that finds too
    few free raises ``BlockingIOError(EAGAIN)`` at once instead of waiting.
    """

    def __init__(self, config: StreamConfig | None, transport: SyncTransport) -> None:
        super().__init__(config, transport.num_substreams)
        self._transport = transport
        self._lock = threading.Lock()
        self._slots_lock = threading.Lock()
        self._in_flight = 0  # heaps of calls in progress (sending or waiting for _lock)
        #: How to wait for the rate limiter. Tests substitute a fake.
        self._sleep: Callable[[float], None] = time.sleep

    def send_heap(
        self, heap: Heap, cnt: int = -1, substream_index: int = 0, rate: float = -1.0
    ) -> int:
        """Send one heap and return the number of bytes sent (all its packets).

        ``cnt < 0`` takes the next automatic cnt (explicit cnts don't advance
        the sequence); ``rate < 0`` uses the stream's rate, ``0`` is unlimited.
        Raises ``OSError(EINVAL)`` for an out-of-range cnt or substream,
        ``ValueError`` if the packet size is too small for the heap and
        ``OSError`` for transport errors.
        """
        ref = (_check_heap(heap), _check_cnt(cnt),
               uint64(substream_index, "substream_index"), _check_rate(rate))
        return self._send((ref,), GroupMode.SERIAL)

    def send_heaps(
        self, heaps: HeapReferenceList | Sequence[HeapReference], mode: GroupMode
    ) -> int:
        """Send a group of heaps interleaved according to ``mode``; return the total bytes sent.

        The group is checked as a whole before anything is sent. An empty
        group → ``OSError(EINVAL)``; more heaps than ``max_heaps`` →
        ``BlockingIOError(EAGAIN)``.
        """
        return self._send(_convert_heaps(heaps), _check_mode(mode))

    def _send(self, refs: Sequence[_Ref], mode: GroupMode) -> int:
        n_heaps = len(refs)
        with self._slots_lock:
            self._check_group_size(n_heaps, self._in_flight)
            self._in_flight += n_heaps
        try:
            return self._send_locked(refs, mode)
        finally:
            with self._slots_lock:
                self._in_flight -= n_heaps

    def _send_locked(self, refs: Sequence[_Ref], mode: GroupMode) -> int:
        with self._lock:
            group = self._prepare(refs, mode)
            scheduler = group.scheduler
            send_packet = self._transport.send_packet
            if not scheduler.limited:
                while (item := scheduler.next_packet(0.0)) is not None:
                    send_packet(item[0], item[1])
                self._limiter.idle(self._clock())  # unlimited packets count as idle time
                return scheduler.bytes_sent
            clock = self._clock
            sleep = self._sleep
            try:
                while True:
                    now = clock()
                    item = scheduler.next_packet(now)
                    if item is None:
                        break
                    substream_index, packet, send_time = item
                    if send_time > now:
                        sleep(send_time - now)
                    send_packet(substream_index, packet)
            finally:
                # The queue is empty between calls: no catching up for the
                # gap until the next call, but a sleep that overshot at the
                # end of this one is still made up then.
                self._limiter.idle(clock())
            return scheduler.bytes_sent


#: Packets an asyncio stream sends before letting other tasks run.
_PUMP_BATCH = 256


class AsyncStream(Stream):
    """A stream driven by a task on the running event loop (``spead2.send.asyncio``).

    ``async_send_heap(s)`` queue synchronously (so order is the call order)
    and return a future for the bytes sent. At most ``max_heaps`` heaps may
    be queued or in flight; beyond that the future fails with
    ``BlockingIOError(EAGAIN)``. The queue is processed in order by a task
    that exists only while there is work.
    """

    def __init__(self, config: StreamConfig | None, transport: AsyncTransport) -> None:
        super().__init__(config, transport.num_substreams)
        self._transport = transport
        self._queue: deque[_HeapGroup] = deque()
        self._queued_heaps = 0
        #: Sends whose future has not yet run its callbacks, failed ones
        #: included: the reference's count, which existing code reads.
        self._active = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        #: How to wait for the rate limiter on the loop / in a blocking flush().
        #: Tests substitute fakes.
        self._sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        self._blocking_sleep: Callable[[float], None] = time.sleep

    def async_send_heap(
        self, heap: Heap, cnt: int = -1, substream_index: int = 0, rate: float = -1.0
    ) -> asyncio.Future[int]:
        """Queue one heap; the returned future resolves to the bytes sent.

        Not a coroutine: the heap is queued before this returns. The future
        fails with ``BlockingIOError(EAGAIN)`` if the queue is full,
        ``OSError(EINVAL)`` for an out-of-range cnt or substream and
        ``OSError`` for transport errors. A packet size too small for the
        heap raises ``ValueError`` here. Needs a running event loop.
        """
        ref = (_check_heap(heap), _check_cnt(cnt),
               uint64(substream_index, "substream_index"), _check_rate(rate))
        return self._async_send((ref,), GroupMode.SERIAL)

    def async_send_heaps(
        self, heaps: HeapReferenceList | Sequence[HeapReference], mode: GroupMode
    ) -> asyncio.Future[int]:
        """Queue a group of heaps (interleaved per ``mode``); the future resolves to total bytes.

        An empty group makes the future fail with ``OSError(EINVAL)``.
        """
        return self._async_send(_convert_heaps(heaps), _check_mode(mode))

    def flush(self) -> None:
        """Block until every queued heap has been sent or has failed.

        Called on the stream's own event loop thread, this cannot wait for the
        loop, so it sends the remaining packets itself (blocking the loop, as
        the reference does).
        """
        loop = self._loop
        if loop is None or not self._queue:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop and loop.is_running():
            # The loop runs in another thread: let it do the work.
            asyncio.run_coroutine_threadsafe(self._flush_on_loop(), loop).result()
            return
        # The driver task, if any, is parked in an await; when it wakes it
        # carries on with whatever is queued then.
        while self._queue:
            delay = self._pump(self._queue[0], blocking=True)
            if isinstance(delay, float) and delay > 0.0:
                self._blocking_sleep(delay)

    @inspect.markcoroutinefunction
    def async_flush(self) -> Coroutine[object, None, None]:
        """Wait until every heap queued before this call has been sent or has failed.

        Use as ``await stream.async_flush()``. "Before this call" means before
        ``async_flush()`` is called, not before the coroutine starts running
        (so ``create_task(stream.async_flush())`` ignores heaps queued after).
        """
        if not self._queue:
            return _nothing()
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        # Groups finish in order, so the last one queued finishing means all have.
        self._queue[-1].waiters.append(waiter)
        return _wait(waiter)

    def _one_done(self, future: asyncio.Future[int]) -> None:
        self._active -= 1

    async def _flush_on_loop(self) -> None:
        # async_flush() itself must run on the loop: it touches the queue.
        await self.async_flush()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._queue:
                raise RuntimeError("send stream is already in use on another event loop")
            self._loop = loop
        return loop

    def _async_send(self, refs: Sequence[_Ref], mode: GroupMode) -> asyncio.Future[int]:
        loop = self._get_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._active += 1
        future.add_done_callback(self._one_done)
        try:
            self._check_group_size(len(refs), self._queued_heaps)
            group = self._prepare(refs, mode)
        except OSError as exc:
            future.set_exception(exc)
            return future
        group.future = future
        self._queue.append(group)
        self._queued_heaps += group.n_heaps
        if self._task is None:
            self._task = loop.create_task(self._run())
        return future

    async def _run(self) -> None:
        try:
            while self._queue:
                group = self._queue[0]
                wait = self._pump(group, blocking=False)
                if wait is None:
                    continue
                if isinstance(wait, float):
                    await self._sleep(wait)
                    continue
                try:
                    await wait
                except Exception as exc:
                    # Unless a flush() finished the group while we waited.
                    if self._queue and self._queue[0] is group:
                        self._finish(group, exc)
        except asyncio.CancelledError:
            # E.g. the loop is shutting down: nothing will send the queued
            # heaps any more.
            self._cancel_all()
            raise
        finally:
            self._task = None
            self._limiter.idle(self._clock())

    def _pump(self, group: _HeapGroup, blocking: bool) -> float | Awaitable[None] | None:
        """Send packets of ``group`` until it finishes or something must be waited for.

        Returns ``None`` once the group has finished (successfully or not), a
        delay in seconds to sleep for the rate limiter (``0.0`` just to let
        other tasks run), or an awaitable from the transport.
        """
        scheduler = group.scheduler
        transport = self._transport
        send_packet = transport.send_packet_blocking if blocking else transport.send_packet
        limited = scheduler.limited
        clock = self._clock
        now = clock() if limited else 0.0
        item = group.pending
        group.pending = None
        budget = _PUMP_BATCH
        try:
            while True:
                if item is None:
                    item = scheduler.next_packet(now)
                    if item is None:
                        self._finish(group, None)
                        return None
                substream_index, packet, send_time = item
                if send_time > now:
                    now = clock()
                    if send_time > now:
                        group.pending = item
                        return send_time - now
                result = send_packet(substream_index, packet)
                item = None
                if result is not None:
                    return result
                if limited:
                    now = clock()
                if not blocking:
                    budget -= 1
                    if budget == 0:
                        return 0.0
        except Exception as exc:
            self._finish(group, exc)
            return None

    def _finish(self, group: _HeapGroup, exc: BaseException | None) -> None:
        """Retire the group at the head of the queue and resolve its future and waiters."""
        self._queue.popleft()
        self._queued_heaps -= group.n_heaps
        future = group.future
        if future is not None and not future.done():
            if exc is None:
                future.set_result(group.scheduler.bytes_sent)
            else:
                future.set_exception(exc)
        for waiter in group.waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self._queue:
            self._limiter.idle()

    def _cancel_all(self) -> None:
        while self._queue:
            group = self._queue.popleft()
            if group.future is not None:
                group.future.cancel()
            for waiter in group.waiters:
                waiter.cancel()
        self._queued_heaps = 0
