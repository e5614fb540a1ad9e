"""Configure a receive stream with a ``spead2.MemoryPool`` for its heap payloads.

A memory pool keeps a stock of equal-sized buffers for heaps whose size lies
between ``lower`` and ``upper``, so a high-rate receiver does not ask the
system for fresh memory for every heap. The pool is set on the
``StreamConfig``; everything else is ordinary receiving. Here the heaps come
from a sender on the same loop through an in-process queue, so the example
needs no network at all.

    python examples/memory_pool.py [--heaps 6] [--heap-size 1048576]
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio


async def send(queue: spead2.InprocQueue, heaps: int, heap_size: int) -> None:
    """Big heaps of one uint8 array each, then the end of the stream."""
    stream = spead2.send.asyncio.InprocStream(spead2.ThreadPool(), [queue])
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "data", "Bulk data", shape=(heap_size,), dtype=np.uint8)
    for i in range(heaps):
        item_group["data"].value = np.full(heap_size, i % 256, np.uint8)
        await stream.async_send_heap(item_group.get_heap())
    await stream.async_send_heap(item_group.get_end())


async def receive(queue: spead2.InprocQueue, pool: spead2.MemoryPool) -> int:
    config = spead2.recv.StreamConfig(memory_allocator=pool, max_heaps=2)
    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool(), config)
    stream.add_inproc_reader(queue)
    item_group = spead2.ItemGroup()
    heaps = 0
    async for heap in stream:
        updated = item_group.update(heap)
        if "data" in updated:
            data = updated["data"].value
            print(f"heap {heap.cnt}: {data.nbytes} bytes, all equal to {data[0]}: "
                  f"{bool((data == data[0]).all())}")
            heaps += 1
    return heaps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heaps", type=int, default=6, help="heaps to send [6]")
    parser.add_argument("--heap-size", type=int, default=1 << 20, help="bytes per heap [1048576]")
    args = parser.parse_args()

    # Buffers of `upper` bytes serve requests of lower..upper bytes; keep at
    # most 8 free ones, and make 4 up front.
    pool = spead2.MemoryPool(lower=args.heap_size // 2, upper=args.heap_size + 4096,
                             max_free=8, initial=4)
    queue = spead2.InprocQueue()
    received, _ = await asyncio.gather(
        receive(queue, pool), send(queue, args.heaps, args.heap_size)
    )
    queue.stop()
    print(f"received {received} heaps of {args.heap_size} bytes "
          f"(pool: {pool.free_buffers} free buffers of {args.heap_size + 4096} bytes)")


if __name__ == "__main__":
    asyncio.run(main())
