"""Heaps the transport tests send and check: numbered heaps whose data says their number."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

import spead2
import spead2.recv
import spead2.send


def indexed_group() -> spead2.send.ItemGroup:
    """An "index" (u32) and a variable-length "data" (i32) item."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "index", "Heap index", (), format=[("u", 32)])
    group.add_item(0x1001, "data", "Samples", (None,), format=[("i", 32)])
    return group


def heap_packets(
    n: int, samples: int = 64, max_packet_size: int = 1472, end: bool = True, first_cnt: int = 1,
) -> list[list[bytes]]:
    """Packets per heap: ``n`` data heaps (index i, data ``arange(samples) * (i + 1)``, each with
    its descriptors), then a stop heap if ``end``; heap i has cnt ``first_cnt + i``."""
    group = indexed_group()
    heaps = []
    for i in range(n):
        group["index"].value = i
        group["data"].value = np.arange(samples, dtype="<i4") * (i + 1)
        heap = group.get_heap(descriptors="all", data="all")
        heaps.append([bytes(p) for p in spead2.send.PacketGenerator(heap, first_cnt + i, max_packet_size)])
    if end:
        end_heap = group.get_end()
        heaps.append([bytes(p) for p in spead2.send.PacketGenerator(end_heap, first_cnt + n, max_packet_size)])
    return heaps


def received_indices(heaps: Iterable[spead2.recv.HeapBase], samples: int = 64) -> list[int]:
    """The indices of heaps made by :func:`heap_packets`, each checked complete and intact."""
    group = spead2.ItemGroup()
    seen = []
    for heap in heaps:
        assert not isinstance(heap, spead2.recv.IncompleteHeap)
        updated = group.update(heap)
        index = int(updated["index"].value)
        np.testing.assert_array_equal(updated["data"].value, np.arange(samples) * (index + 1))
        seen.append(index)
    return seen


def check_heaps(heaps: Iterable[spead2.recv.HeapBase], n: int, samples: int = 64, first: int = 0) -> None:
    """The heaps are data heaps ``first .. first+n-1`` of :func:`heap_packets`, in order."""
    assert received_indices(heaps, samples) == list(range(first, first + n))


def numbered_bytes_heap(n_bytes: int = 5000, index: int = 0, descriptors: str = "all") -> spead2.send.Heap:
    """A heap of an "index" (u32) and ``n_bytes`` of data ``(arange + index) % 251``."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "index", "Heap index", (), format=[("u", 32)], value=index)
    group.add_item(0x1001, "data", "Bytes", (n_bytes,), dtype=np.uint8,
                   value=((np.arange(n_bytes) + index) % 251).astype(np.uint8))
    return group.get_heap(descriptors=descriptors, data="all")
