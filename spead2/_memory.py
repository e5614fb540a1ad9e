"""Memory allocators for received heap payloads.

``MemoryAllocator`` hands out zero-filled ``bytearray``s; ``MmapAllocator``
anonymous mappings (the kernel supplies zero pages lazily, which is cheaper
than zero-filling large heaps); ``MemoryPool`` keeps buffers of one size for
reuse.
"""

from __future__ import annotations

import mmap
from collections.abc import Buffer
from typing import TYPE_CHECKING, overload

from ._log import logger

if TYPE_CHECKING:
    from ._thread_pool import ThreadPool


class MemoryAllocator:
    """The default allocator."""

    def allocate(self, size: int) -> Buffer:
        """A writable, zero-filled buffer of ``size`` bytes."""
        return bytearray(size)

    def release(self, buffer: Buffer) -> None:
        """Give back a buffer that nobody else references (optional for callers)."""


class MmapAllocator(MemoryAllocator):
    """Allocates with anonymous ``mmap``; ``flags`` are extra mmap flags."""

    def __init__(self, flags: int = 0, prefer_huge: bool = False) -> None:
        self.flags = flags
        self.prefer_huge = prefer_huge

    def allocate(self, size: int) -> Buffer:
        if size == 0:
            return bytearray()
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | self.flags
        buffer = mmap.mmap(-1, size, flags=flags)
        if self.prefer_huge and hasattr(mmap, "MADV_HUGEPAGE"):
            try:
                buffer.madvise(mmap.MADV_HUGEPAGE)
            except OSError:  # huge pages unavailable: plain pages are fine
                pass
        return buffer


class MemoryPool(MemoryAllocator):
    """A pool of ``upper``-byte buffers serving requests of ``lower``..``upper`` bytes.

    ``MemoryPool(lower, upper, max_free, initial, allocator=None)`` or
    ``MemoryPool(thread_pool, lower, upper, max_free, initial, low_water, allocator=None)``;
    with a thread pool, the pool is refilled to ``initial`` in the background
    whenever fewer than ``low_water`` buffers are free.
    """

    @overload
    def __init__(
        self, lower: int, upper: int, max_free: int, initial: int,
        allocator: MemoryAllocator | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self, thread_pool: ThreadPool, lower: int, upper: int, max_free: int, initial: int,
        low_water: int, allocator: MemoryAllocator | None = None,
    ) -> None: ...

    def __init__(self, *args: object, **kwargs: object) -> None:
        from ._thread_pool import ThreadPool

        if args and isinstance(args[0], ThreadPool) or "thread_pool" in kwargs:
            names = ["thread_pool", "lower", "upper", "max_free", "initial", "low_water", "allocator"]
        else:
            names = ["lower", "upper", "max_free", "initial", "allocator"]
        if len(args) > len(names):
            raise TypeError(f"MemoryPool takes at most {len(names)} arguments ({len(args)} given)")
        values: dict[str, object] = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"MemoryPool got an unexpected or repeated argument {key!r}")
            values[key] = value
        missing = [n for n in names if n not in values and n != "allocator"]
        if missing:
            raise TypeError(f"MemoryPool missing required arguments: {', '.join(missing)}")
        for name in ("lower", "upper", "max_free", "initial", "low_water"):
            if name in values and (not isinstance(values[name], int) or values[name] < 0):  # type: ignore[operator]
                raise TypeError(f"MemoryPool {name} must be a non-negative int, got {values[name]!r}")
        self.lower: int = values["lower"]  # type: ignore[assignment]
        self.upper: int = values["upper"]  # type: ignore[assignment]
        self.max_free: int = values["max_free"]  # type: ignore[assignment]
        self.initial: int = values["initial"]  # type: ignore[assignment]
        self.low_water: int = values.get("low_water", 0)  # type: ignore[assignment]
        self._thread_pool: ThreadPool | None = values.get("thread_pool")  # type: ignore[assignment]
        allocator = values.get("allocator")
        self._allocator: MemoryAllocator = allocator if isinstance(allocator, MemoryAllocator) else MemoryAllocator()
        self.warn_on_empty = True
        self._refilling = False
        self._free: list[Buffer] = [
            self._allocator.allocate(self.upper) for _ in range(min(self.initial, self.max_free))
        ]

    @property
    def free_buffers(self) -> int:
        """Buffers currently available in the pool."""
        return len(self._free)

    def allocate(self, size: int) -> Buffer:
        if not self.lower <= size <= self.upper:
            return self._allocator.allocate(size)
        if self._free:
            buffer = self._free.pop()
            # A recycled buffer holds an old heap's bytes; the assembler relies
            # on zero-filled memory for payload gaps.
            memoryview(buffer)[:] = bytes(len(memoryview(buffer)))
        else:
            if self.warn_on_empty:
                logger.warning("memory pool is empty when allocating %d bytes", size)
            buffer = self._allocator.allocate(self.upper)
        self._maybe_refill()
        return memoryview(buffer)[:size]

    def release(self, buffer: Buffer) -> None:
        view = memoryview(buffer)
        base = view.obj if isinstance(view.obj, bytearray | mmap.mmap) else None
        if base is not None and len(memoryview(base)) == self.upper and len(self._free) < self.max_free:
            self._free.append(base)

    def _maybe_refill(self) -> None:
        if self._thread_pool is None or self._refilling or len(self._free) >= self.low_water:
            return
        self._refilling = True
        loop = self._thread_pool.next_loop()
        loop.call_soon_threadsafe(self._refill)

    def _refill(self) -> None:
        try:
            while len(self._free) < min(self.initial, self.max_free):
                self._free.append(self._allocator.allocate(self.upper))
        finally:
            self._refilling = False
