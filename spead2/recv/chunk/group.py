"""Chunk stream groups: several streams sharing each chunk, each writing its part.

:class:`ChunkStreamRingGroup` owns the rings and its
:class:`ChunkStreamGroupMember`\\ s; the members' placers share the chunks
through a thread-safe :class:`_GroupState`, each reaching it through a
:class:`_MemberSource`.
"""

from __future__ import annotations

import asyncio
import collections.abc
import enum
import operator
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, overload

from ..._errors import Empty, Stopped
from ..._thread_pool import ThreadPool
from ..._wakeup import Waiter, wake
from ...protocols.chunking import (
    NOT_READY,
    RELEASE_ALL,
    SOURCE_STOPPED,
    TOO_OLD,
    chunk_stream_stat_configs,
)
from .._config import StreamConfig, UintOption
from .._receiver import _Stream
from .config import Chunk, ChunkStreamConfig
from .rings import ChunkRingbuffer, ChunkRingPair
from .stream import ChunkStreamCore, StreamChunkSource, drop_undeliverable, flush_to_ring

__all__ = ["ChunkStreamGroupConfig", "ChunkStreamGroupMember", "ChunkStreamRingGroup"]


class ChunkStreamGroupConfig:
    """Configuration of a :class:`ChunkStreamRingGroup`: ``max_chunks`` and ``eviction_mode``."""

    class EvictionMode(enum.Enum):
        """What the group does when a member lags behind the window."""

        #: Advance promptly, forcing laggard members to give up their chunks.
        LOSSY = 0
        #: Advance only once every member has finished the oldest chunk.
        LOSSLESS = 1

    #: Default number of chunks under construction at once (as for a single stream).
    DEFAULT_MAX_CHUNKS: ClassVar[int] = ChunkStreamConfig.DEFAULT_MAX_CHUNKS

    __slots__ = ("_max_chunks", "_eviction_mode")

    def __init__(
        self, *, max_chunks: int = DEFAULT_MAX_CHUNKS, eviction_mode: EvictionMode = EvictionMode.LOSSY
    ) -> None:
        self.max_chunks = max_chunks
        self.eviction_mode = eviction_mode

    max_chunks = UintOption(
        "Most chunks the group holds at once.",
        zero_error="max_chunks cannot be 0",
    )

    @property
    def eviction_mode(self) -> ChunkStreamGroupConfig.EvictionMode:
        """``LOSSY`` (default) or ``LOSSLESS``."""
        return self._eviction_mode

    @eviction_mode.setter
    def eviction_mode(self, value: ChunkStreamGroupConfig.EvictionMode) -> None:
        if not isinstance(value, ChunkStreamGroupConfig.EvictionMode):
            raise TypeError(
                "eviction_mode must be a ChunkStreamGroupConfig.EvictionMode, "
                f"not {type(value).__name__} ({value!r})"
            )
        self._eviction_mode = value

    def copy(self) -> ChunkStreamGroupConfig:
        """An independent copy."""
        return ChunkStreamGroupConfig(max_chunks=self.max_chunks, eviction_mode=self._eviction_mode)

    def __repr__(self) -> str:
        return f"ChunkStreamGroupConfig(max_chunks={self.max_chunks}, eviction_mode={self._eviction_mode})"


class _Member:
    """The group's view of one member stream."""

    __slots__ = ("core", "stream_id", "tail", "requested", "closed")

    def __init__(self, stream_id: int) -> None:
        self.core: ChunkStreamCore | None = None
        self.stream_id = stream_id
        #: This member uses no chunk below ``tail`` (RELEASE_ALL once stopped).
        self.tail = 0
        #: Highest tail a lossy eviction has asked this member to move to.
        self.requested = 0
        self.closed = False


class _GroupState:
    """The chunks a group's members share; every method is thread-safe.

    A chunk is obtained from the free ring when the first member needs it
    and goes to the data ring once every member has moved past it, in
    ascending ID order. The group holds at most ``max_chunks`` chunks: a
    member needing a newer one waits until the oldest is released by every
    member (LOSSLESS), or first asks the laggards to give it up (LOSSY).
    """

    def __init__(self, config: ChunkStreamGroupConfig, data: ChunkRingbuffer, free: ChunkRingbuffer) -> None:
        self.lock = threading.Lock()
        self.max_chunks = config.max_chunks
        self.lossy = config.eviction_mode is ChunkStreamGroupConfig.EvictionMode.LOSSY
        self.data = data
        self.free = free
        self.members: list[_Member] = []
        self.chunks: dict[int, Chunk] = {}
        self.head = -1
        self.tail = 0
        self.outgoing: deque[Chunk] = deque()
        self.generation = 0
        self.change_waiters: list[Waiter] = []
        self.started = False
        self.user_stopped = False
        self.finished = False
        self.producer_removed = False

    # -- members' placers (each on its own loop) ---------------------------------------

    def acquire(self, member: _Member, chunk_id: int) -> tuple[Any, str]:
        """The shared chunk for ``chunk_id``, or a placer sentinel and what to wait for."""
        evict: list[tuple[ChunkStreamCore, int]] = []
        with self.lock:
            self.started = True
            if self.finished:
                return SOURCE_STOPPED, ""
            if chunk_id < self.tail:
                return TOO_OLD, ""
            if chunk_id <= self.head:
                return self.chunks.get(chunk_id, TOO_OLD), ""
            new_tail = chunk_id - self.max_chunks + 1
            if new_tail > self.tail:
                laggards = [m for m in self.members if m.tail < new_tail]
                if laggards:
                    if self.lossy:
                        for lag in laggards:
                            if lag.requested < new_tail and lag.core is not None:
                                lag.requested = new_tail
                                evict.append((lag.core, new_tail))
                    result: tuple[Any, str] = (NOT_READY, "members")
                else:
                    self._flush_below_locked(new_tail)
                    result = self._take_locked(member, chunk_id)
            else:
                result = self._take_locked(member, chunk_id)
        for core, tail in evict:
            _call_on_loop(core, core.flush_until, tail)
        if result[0] is not NOT_READY:
            self.deliver()
        return result

    def _take_locked(self, member: _Member, chunk_id: int) -> tuple[Any, str]:
        for next_id in range(max(self.head + 1, self.tail), chunk_id + 1):
            try:
                chunk = self.free.get_nowait()
            except Empty:
                return NOT_READY, "free"
            except Stopped:
                return SOURCE_STOPPED, ""
            chunk.chunk_id = next_id
            chunk.stream_id = member.stream_id
            self.chunks[next_id] = chunk
            self.head = next_id
        return self.chunks.get(chunk_id, TOO_OLD), ""

    def release(self, member: _Member, tail: int) -> None:
        with self.lock:
            if tail <= member.tail:
                return
            member.tail = tail
            low = min(m.tail for m in self.members)
            if low < RELEASE_ALL:
                self._flush_below_locked(low)
            else:
                self._flush_below_locked(RELEASE_ALL)
            self.generation += 1
            waiters, self.change_waiters = self.change_waiters, []
        wake(waiters)
        self.deliver()

    def _flush_below_locked(self, tail: int) -> None:
        chunks = self.chunks
        while chunks:
            first = next(iter(chunks))
            if first >= tail:
                break
            self.outgoing.append(chunks.pop(first))
        if tail > self.tail:
            self.tail = tail

    def deliver(self) -> None:
        with self.lock:
            flush_to_ring(self.outgoing, self.data)

    @property
    def backlogged(self) -> bool:
        return bool(self.outgoing)

    def wait_change(self, loop: asyncio.AbstractEventLoop, generation: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        with self.lock:
            if self.generation != generation or self.finished:
                future.set_result(None)
            else:
                self.change_waiters = [w for w in self.change_waiters if not w[1].done()]
                self.change_waiters.append((loop, future))
        return future

    # -- stopping -------------------------------------------------------------------------

    def member_closed(self, member: _Member, by_user: bool) -> None:
        """A member's placer has stopped (its chunks are released)."""
        others: list[ChunkStreamCore] = []
        with self.lock:
            member.closed = True
            if by_user:
                self.user_stopped = True
                others = [m.core for m in self.members if not m.closed and m.core is not None]
            all_closed = all(m.closed for m in self.members)
        # Stopping any member by the user stops the whole group.
        for core in others:
            _call_on_loop(core, core.stop)
        if all_closed:
            self.finish()

    def finish(self) -> None:
        """Every member has stopped: flush all chunks; on a user stop, stop both rings."""
        with self.lock:
            self._flush_below_locked(RELEASE_ALL)
            self.finished = True
            waiters, self.change_waiters = self.change_waiters, []
            flush_to_ring(self.outgoing, self.data)
            user = self.user_stopped
            if user:
                drop_undeliverable(self.outgoing)
        wake(waiters)
        if user:
            self.data.stop()
            self.free.stop()

    def network_done(self) -> None:
        with self.lock:
            done = (
                self.finished and not self.outgoing and not self.producer_removed
                and all(m.closed for m in self.members)
            )
            if done:
                self.producer_removed = True
        if done:
            self.data.remove_producer()


def _call_on_loop(core: ChunkStreamCore, func: Callable[..., Any], *args: Any) -> None:
    """Run ``func(*args)`` on ``core``'s loop soon, without waiting."""
    loop = core.loop
    if loop.is_closed():
        func(*args)
        return
    try:
        loop.call_soon_threadsafe(func, *args)
    except RuntimeError:  # closed meanwhile
        func(*args)


class _MemberSource(StreamChunkSource):
    """One member's access to its group's chunks."""

    def __init__(self, state: _GroupState, member: _Member) -> None:
        self._state = state
        self._member = member
        self._reason = ""
        self._generation = 0

    @property
    def backlogged(self) -> bool:
        return self._state.backlogged

    def acquire(self, chunk_id: int) -> Any:
        state = self._state
        generation = state.generation
        chunk, reason = state.acquire(self._member, chunk_id)
        if chunk is NOT_READY:
            self._reason = reason
            self._generation = generation
        return chunk

    def release(self, tail: int) -> None:
        self._state.release(self._member, tail)

    def deliver(self) -> None:
        self._state.deliver()

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        state = self._state
        futures = []
        if state.backlogged:
            futures.append(state.data._wait_space(loop))
        if blocked:
            if self._reason == "free":
                futures.append(state.free._wait_data(loop))
            else:
                futures.append(state.wait_change(loop, self._generation))
        return futures

    def close(self, by_user: bool) -> None:
        self._state.member_closed(self._member, by_user)

    def network_done(self) -> None:
        self._state.network_done()


class ChunkStreamGroupMember(_Stream):
    """One stream of a :class:`ChunkStreamRingGroup` (made by :meth:`ChunkStreamRingGroup.emplace_back`).

    Has the reader methods, ``start``, ``stop``, ``stats`` and ``config``;
    stopping it stops the whole group.
    """

    _core: ChunkStreamCore
    _group: ChunkStreamRingGroup
    _member: _Member

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "spead2.recv.ChunkStreamGroupMember: No constructor defined! "
            "(use ChunkStreamRingGroup.emplace_back)"
        )

    @classmethod
    def _create(
        cls,
        group: ChunkStreamRingGroup,
        thread_pool: ThreadPool,
        config: StreamConfig,
        chunk_config: ChunkStreamConfig,
    ) -> ChunkStreamGroupMember:
        self = cls.__new__(cls)
        self._group = group
        config = config.copy()
        config.allow_unsized_heaps = False
        chunk_config = chunk_config.copy()
        member = _Member(config.stream_id)
        source = _MemberSource(group._state, member)
        loop = self._select_loop(thread_pool)
        core = ChunkStreamCore(loop, config, chunk_config, chunk_stream_stat_configs(config), source)
        member.core = core
        self._member = member
        self._init_core(thread_pool, core)
        return self

    def stop(self) -> None:
        """Stop this member, and with it the whole group."""
        self._group.stop()


class ChunkStreamRingGroup(ChunkRingPair, collections.abc.Sequence):  # type: ignore[type-arg]
    """Several chunk streams filling shared chunks, each its own part of every chunk.

    A sequence of its :class:`ChunkStreamGroupMember`\\ s (added with
    :meth:`emplace_back` before any data arrives). Chunks come from the free
    ring and go to the data ring, in ascending ID order, once every member
    has moved past them; ``config.eviction_mode`` decides what happens when a
    member lags (see :class:`ChunkStreamGroupConfig`). :meth:`stop`, or
    stopping any member, stops every member, flushes the chunks to the data
    ring (as far as it has room) and stops both rings. When the members
    all stop because their data ended, the chunks are flushed (waiting for
    room) and the data ring stops once its last producer is done.
    """

    def __init__(
        self,
        config: ChunkStreamGroupConfig,
        data_ringbuffer: ChunkRingbuffer,
        free_ringbuffer: ChunkRingbuffer,
    ) -> None:
        if not isinstance(config, ChunkStreamGroupConfig):
            raise TypeError(
                f"config must be a spead2.recv.ChunkStreamGroupConfig, not {type(config).__name__}"
            )
        super().__init__(data_ringbuffer, free_ringbuffer)
        self._config = config.copy()
        self._state = _GroupState(self._config, self._data_ring, self._free_ring)
        self._members: list[ChunkStreamGroupMember] = []
        self._data_ring.add_producer()

    @property
    def config(self) -> ChunkStreamGroupConfig:
        """A copy of the group's configuration."""
        return self._config.copy()

    def emplace_back(
        self, thread_pool: ThreadPool, config: StreamConfig, chunk_stream_config: ChunkStreamConfig
    ) -> ChunkStreamGroupMember:
        """Add a member stream (before any data arrives) and return it."""
        _Stream._check_types(thread_pool, config)
        if not isinstance(chunk_stream_config, ChunkStreamConfig):
            raise TypeError(
                "chunk_stream_config must be a spead2.recv.ChunkStreamConfig, "
                f"not {type(chunk_stream_config).__name__}"
            )
        if chunk_stream_config.max_chunks > self._config.max_chunks:
            raise ValueError(
                "stream max_chunks must not be larger than group max_chunks "
                f"(stream max_chunks={chunk_stream_config.max_chunks}, "
                f"group max_chunks={self._config.max_chunks})"
            )
        if chunk_stream_config.place is None:
            raise ValueError("chunk_config.place is not set")
        state = self._state
        with state.lock:
            if state.started or state.finished or state.user_stopped:
                raise RuntimeError("Cannot add a stream after group has started receiving data")
            member = ChunkStreamGroupMember._create(self, thread_pool, config, chunk_stream_config)
            state.members.append(member._member)
        self._members.append(member)
        return member

    def stop(self) -> None:
        """Stop every member, flush the chunks to the data ring and stop both rings."""
        for member in list(self._members):
            member._core.stop_threadsafe()
        state = self._state
        with state.lock:
            state.user_stopped = True
        state.finish()

    # -- Sequence --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._members)

    @overload
    def __getitem__(self, index: int) -> ChunkStreamGroupMember: ...
    @overload
    def __getitem__(self, index: slice) -> list[ChunkStreamGroupMember]: ...
    def __getitem__(self, index: int | slice) -> ChunkStreamGroupMember | list[ChunkStreamGroupMember]:
        if isinstance(index, slice):
            return self._members[index]
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"group members are indexed by int or slice, not {type(index).__name__}"
            ) from None
        return self._members[position]
