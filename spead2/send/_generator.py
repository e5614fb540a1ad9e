"""``HeapGenerator`` and ``send.ItemGroup``: turn an item group into heaps of what changed.

The generator remembers, per item ID, which item object it last saw (by weak
reference, so it never keeps items alive), the version of the value it last
sent and the call at which it last sent the descriptor.
"""

from __future__ import annotations

import weakref

from .._items import Item
from .._items import ItemGroup as _BaseItemGroup
from ..protocols.flavour import Flavour
from ._heap import Heap

__all__ = ["HeapGenerator", "ItemGroup"]

_DEFAULT_FLAVOUR = Flavour()
_CHOICES = ("stale", "all", "none")


class _Sent:
    """What was last sent for one item ID."""

    __slots__ = ("item", "version", "descriptor_cnt")

    def __init__(self, item: Item) -> None:
        self.item: weakref.ref[Item] = weakref.ref(item)
        self.version: int | None = None  # version of the value last sent
        self.descriptor_cnt: int | None = None  # call number the descriptor was last sent at


class HeapGenerator:
    """Builds heaps holding the descriptors and values of ``item_group`` that are due.

    ``descriptor_frequency``: when not ``None``, a descriptor already sent is
    sent again once that many heaps have been generated since.
    """

    def __init__(
        self,
        item_group: _BaseItemGroup,
        descriptor_frequency: int | None = None,
        flavour: Flavour = _DEFAULT_FLAVOUR,
    ) -> None:
        self._item_group = item_group
        self._descriptor_frequency = descriptor_frequency
        self._flavour = flavour
        self._sent: dict[int, _Sent] = {}
        self._descriptor_cnt = 0

    def _descriptor_stale(self, sent: _Sent) -> bool:
        if sent.descriptor_cnt is None:
            return True
        frequency = self._descriptor_frequency
        return frequency is not None and self._descriptor_cnt - sent.descriptor_cnt >= frequency

    def add_to_heap(self, heap: Heap, descriptors: str = "stale", data: str = "stale") -> Heap:
        """Add the due descriptors and values to ``heap`` and return it.

        ``descriptors`` and ``data`` are each ``'stale'`` (only what changed or
        is due), ``'all'`` or ``'none'``. Per item the descriptor comes before
        the value; items without a value are never added.
        """
        if descriptors not in _CHOICES:
            raise ValueError("descriptors must be one of 'stale', 'all', 'none'")
        if data not in _CHOICES:
            raise ValueError("data must be one of 'stale', 'all', 'none'")
        sent_by_id = self._sent
        for item in self._item_group.values():
            sent = sent_by_id.get(item.id)
            if sent is None or sent.item() is not item:
                # New or replaced item: forget what was sent for the old one.
                sent = sent_by_id[item.id] = _Sent(item)
            if descriptors == "all" or (descriptors == "stale" and self._descriptor_stale(sent)):
                heap.add_descriptor(item)
                sent.descriptor_cnt = self._descriptor_cnt
            if item.value is not None and (
                data == "all" or (data == "stale" and sent.version != item.version)
            ):
                heap.add_item(item)
                sent.version = item.version
        self._descriptor_cnt += 1
        return heap

    def get_heap(self, descriptors: str = "stale", data: str = "stale") -> Heap:
        """A new heap in this generator's flavour, filled by :meth:`add_to_heap`."""
        return self.add_to_heap(Heap(self._flavour), descriptors, data)

    def get_start(self) -> Heap:
        """A new heap holding only a stream-start control item."""
        heap = Heap(self._flavour)
        heap.add_start()
        return heap

    def get_end(self) -> Heap:
        """A new heap holding only a stream-stop control item."""
        heap = Heap(self._flavour)
        heap.add_end()
        return heap


class ItemGroup(_BaseItemGroup, HeapGenerator):
    """An item group that is its own :class:`HeapGenerator`."""

    def __init__(
        self, descriptor_frequency: int | None = None, flavour: Flavour = _DEFAULT_FLAVOUR
    ) -> None:
        _BaseItemGroup.__init__(self)
        HeapGenerator.__init__(self, self, descriptor_frequency, flavour)

    def __repr__(self) -> str:
        return f"<spead2.send.ItemGroup {len(self)} items: {list(self.keys())!r}>"
