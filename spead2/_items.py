"""``Descriptor``, ``Item`` and ``ItemGroup``: item metadata, values, and the receive-side item table.

The value codec itself lives in :mod:`spead2.protocols.values`; a descriptor
builds its :class:`~spead2.protocols.values.ValueCodec` lazily and drops it
whenever ``shape``, ``dtype``, ``order`` or ``format`` is reassigned.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import ItemsView, KeysView, Sequence, ValuesView
from typing import Any, Protocol

import numpy as np

from ._log import log_limited, logger
from .protocols.constants import (
    BUG_COMPAT_SWAP_ENDIAN,
    DESCRIPTOR_ID,
    IMMEDIATE,
    STREAM_CTRL_ID,
    UNRESERVED_ID,
)
from .protocols.flavour import Flavour
from .protocols.heaps import Heap, immediate_items
from .protocols.heaps import RawItem as _HeapItem
from .protocols.raw_descriptor import RawDescriptor
from .protocols.values import (
    AddressedPlan,
    ValueCodec,
    compatible_shape,
    dynamic_shape,
    format_to_dtype,
    make_numpy_header,
    parse_numpy_header,
)

__all__ = ["Descriptor", "Item", "ItemGroup"]

_DEFAULT_FLAVOUR = Flavour()
_frombuffer = np.frombuffer


class _RawItem(Protocol):
    """What ``Item.set_from_raw`` uses of a received item (``spead2.recv.RawItem``)."""

    @property
    def is_immediate(self) -> bool: ...

    def __buffer__(self, flags: int, /) -> memoryview: ...


class _ReceivedHeap(Protocol):
    """What ``ItemGroup.update`` needs of a received heap.

    Typed as what streams yield (any heap), so ``for heap in stream:
    group.update(heap)`` type-checks; an incomplete heap, which has no
    ``get_descriptors``, is refused at run time with a clear message.
    """

    @property
    def flavour(self) -> Flavour: ...

    def get_items(self) -> Sequence[Any]: ...


class Descriptor:
    """Metadata for a SPEAD item.

    ``shape`` is a sequence of dimensions with at most one ``None`` (a
    variable-size dimension); exactly one of ``dtype`` (a numpy dtype) and
    ``format`` (a list of ``(code, bits)`` pairs) describes an element.
    Violations raise ``ValueError`` (checked in the reference's order).
    """

    def __init__(
        self,
        id: int,
        name: str,
        description: str,
        shape: Sequence[int | None],
        dtype: Any = None,
        order: str = "C",
        format: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        shape = tuple(shape)
        if sum(1 for dim in shape if dim is None) > 1:
            raise ValueError("Cannot have multiple unknown dimensions")
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.hasobject:
                raise ValueError("Cannot use dtype that has reference-counted objects")
            if format is not None:
                raise ValueError("Only one of dtype and format can be specified")
            if dtype.itemsize == 0:
                raise ValueError("Cannot use zero-sized dtype")
            if None in shape:
                raise ValueError("Cannot have unknown dimensions when using numpy descriptor")
        else:
            if format is None:
                raise ValueError("One of dtype and format must be specified")
            if order != "C":
                raise ValueError("When specifying format, order must be 'C'")
            format_to_dtype(format)  # validation only
        if order not in ("C", "F"):
            raise ValueError("Order must be 'C' or 'F'")
        self.id = id
        self.name = name
        self.description = description
        self._shape: tuple[int | None, ...] = shape
        self._dtype: np.dtype[Any] | None = dtype
        self._order = order
        self._format = format
        self._codec: ValueCodec | None = None

    # Reassigning any of these changes how values are coded: drop the codec.

    @property
    def shape(self) -> tuple[int | None, ...]:
        """Dimensions; ``None`` marks the variable-size dimension."""
        return self._shape

    @shape.setter
    def shape(self, value: Sequence[int | None]) -> None:
        self._shape = tuple(value)
        self._codec = None

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """numpy dtype of an element, or ``None`` when ``format`` describes it."""
        return self._dtype

    @dtype.setter
    def dtype(self, value: Any) -> None:
        self._dtype = None if value is None else np.dtype(value)
        self._codec = None

    @property
    def order(self) -> str:
        """``'C'`` or ``'F'`` storage order of array values."""
        return self._order

    @order.setter
    def order(self, value: str) -> None:
        self._order = value
        self._codec = None

    @property
    def format(self) -> Sequence[Sequence[Any]] | None:
        """List of ``(code, bits)`` fields, or ``None`` when ``dtype`` describes elements."""
        return self._format

    @format.setter
    def format(self, value: Sequence[Sequence[Any]] | None) -> None:
        self._format = value
        self._codec = None

    @property
    def _value_codec(self) -> ValueCodec:
        codec = self._codec
        if codec is None:
            codec = self._codec = ValueCodec(self._shape, self._order, self._dtype, self._format)
        return codec

    @property
    def itemsize_bits(self) -> int:
        """Number of bits per element."""
        if self._dtype is not None:
            return self._dtype.itemsize * 8
        assert self._format is not None
        return sum(int(bits) for _, bits in self._format)

    def is_variable_size(self) -> bool:
        """Whether any dimension of the shape is variable (``None``)."""
        return None in self._shape

    def allow_immediate(self) -> bool:
        """Whether a value may be sent as an immediate (fixed size, whole bytes per element)."""
        return not self.is_variable_size() and (
            self._dtype is not None or self.itemsize_bits % 8 == 0
        )

    def dynamic_shape(self, max_elements: int) -> Sequence[int]:
        """The shape of a value received in data big enough for ``max_elements`` elements.

        A fixed shape is returned as is (a tuple); a variable one as a list
        with the ``None`` filled in.
        """
        return dynamic_shape(self._shape, max_elements)

    def compatible_shape(self, shape: Sequence[int | None]) -> bool:
        """Whether ``shape`` is compatible with this descriptor's (possibly variable) shape."""
        return compatible_shape(self._shape, shape)

    @classmethod
    def from_raw(cls, raw_descriptor: RawDescriptor, flavour: Flavour) -> Any:
        """Build a descriptor (or ``Item``, when called on it) from a received ``RawDescriptor``.

        A non-empty numpy header is authoritative for shape, order and dtype;
        under ``BUG_COMPAT_SWAP_ENDIAN`` the dtype's byte order is swapped back.
        """
        if raw_descriptor.numpy_header:
            shape, order, dtype = parse_numpy_header(raw_descriptor.numpy_header.decode("ascii"))
            if flavour.bug_compat & BUG_COMPAT_SWAP_ENDIAN:
                dtype = dtype.newbyteorder()
            return cls(
                raw_descriptor.id,
                raw_descriptor.name.decode("ascii"),
                raw_descriptor.description.decode("ascii"),
                shape,
                dtype,
                order,
            )
        return cls(
            raw_descriptor.id,
            raw_descriptor.name.decode("ascii"),
            raw_descriptor.description.decode("ascii"),
            raw_descriptor.shape,
            None,
            "C",
            raw_descriptor.format,
        )

    def to_raw(self, flavour: Flavour) -> RawDescriptor:
        """The ``RawDescriptor`` to send in ``flavour`` (its ``bug_compat`` matters)."""
        raw = RawDescriptor()
        raw.id = self.id
        raw.name = self.name.encode("ascii")
        raw.description = self.description.encode("ascii")
        raw.shape = list(self._shape)
        if self._dtype is not None:
            dtype = self._dtype
            if flavour.bug_compat & BUG_COMPAT_SWAP_ENDIAN:
                dtype = dtype.newbyteorder()
            header = make_numpy_header(dtype, self._order, self._shape)  # type: ignore[arg-type]
            raw.numpy_header = header.encode("ascii")
        else:
            assert self._format is not None
            raw.format = [(str(code), int(bits)) for code, bits in self._format]
        return raw

    def __repr__(self) -> str:
        kind = f"dtype={self._dtype!r}" if self._dtype is not None else f"format={self._format!r}"
        return f"<spead2.{type(self).__name__} id={self.id:#x} name={self.name!r} shape={self._shape!r} {kind}>"


def _same_descriptor(a: Descriptor, b: Descriptor) -> bool:
    """Whether two descriptors would code values identically and say the same thing."""
    if (a.dtype is None) != (b.dtype is None):
        return False
    return (
        a.name == b.name
        and a.description == b.description
        and a.shape == b.shape
        and (a.dtype is None or a.dtype == b.dtype)
        and a.order == b.order
        and a.format == b.format
    )


class Item(Descriptor):
    """A SPEAD item: a descriptor plus a current value and a version number.

    ``version`` starts at 1 and goes up by one on every assignment to
    ``value``; in-place changes to a mutable value are not noticed.
    """

    def __init__(
        self,
        id: int,
        name: str,
        description: str,
        shape: Sequence[int | None],
        dtype: Any = None,
        order: str = "C",
        format: Sequence[Sequence[Any]] | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(id, name, description, shape, dtype, order, format)
        self._value = value
        self.version = 1

    @property
    def value(self) -> Any:
        """Current value; assigning bumps ``version``. ``None`` cannot be assigned."""
        return self._value

    @value.setter
    def value(self, new_value: Any) -> None:
        if new_value is None:
            raise ValueError("Item value cannot be set to None")
        self._value = new_value
        self.version += 1

    def set_from_raw(self, raw_item: _RawItem, new_order: str = "=") -> None:
        """Decode a received item into ``value`` (bumping ``version``).

        ``new_order`` is the numpy byte order numeric arrays are converted to:
        ``'='`` native (default), ``'|'`` keep the wire order.
        """
        self.value = self._decode(memoryview(raw_item), raw_item.is_immediate, new_order)

    def _decode(self, raw: memoryview, is_immediate: bool, new_order: str) -> Any:
        """The value received bytes ``raw`` carry (never None)."""
        codec = self._codec or self._value_codec
        return codec.decode(raw, is_immediate, new_order, self.name)

    def to_buffer(self) -> Any:
        """The current value encoded for sending, as a buffer-protocol object."""
        return self._value_codec.encode(self._value)


class _UpdatePlan:
    """How :meth:`ItemGroup.update` decodes the addressed values of heaps with one layout.

    A receiver usually gets heap after heap with the same items at the same
    addresses and no descriptors: the work of finding each item and checking
    its value's size against its shape is then done once, for the first such
    heap, and later heaps with an equal layout (the list ``Heap._addressed``
    returns) only pay for the values. Each step records the item and codec
    it was made for; :meth:`ItemGroup.update` checks both per heap.
    """

    __slots__ = ("layout", "new_order", "has_descriptors", "steps")

    def __init__(self, layout: list[tuple[int, int, int]], new_order: str, group: ItemGroup) -> None:
        self.layout = layout
        self.new_order = new_order
        self.has_descriptors = any(
            item_id == DESCRIPTOR_ID and length > 0 for item_id, _, length in layout
        )
        #: (id, address, length, item, codec, decode) per value, in layout order;
        #: ``decode`` is None where only ``ItemGroup._apply`` will do (an
        #: unknown ID, a subclass of Item, a value only the codec can decode).
        self.steps: list[tuple[int, int, int, Item | None, ValueCodec | None, AddressedPlan | None]] = []
        for item_id, address, length in layout:
            if length <= 0 or item_id <= STREAM_CTRL_ID:
                continue
            item = group._by_id.get(item_id)
            codec = None if item is None else item._codec
            decode = None
            if type(item) is Item:
                try:
                    codec = item._value_codec
                    decode = codec.addressed_plan(length, new_order)
                except Exception:  # e.g. a bad new_order: _apply reports it, in its turn
                    codec = item._codec
            self.steps.append((item_id, address, length, item, codec, decode))


class ItemGroup:
    """Items indexable by ID (an integer) or by name (a string).

    Adding an item whose descriptor equals the existing one with that ID keeps
    the existing object (assigning the new value, if any). Otherwise items
    with the same ID or name are dropped and the new item's version is made
    higher than theirs, so consumers that only watch versions see the change.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, Item] = {}
        self._by_name: dict[str, Item] = {}
        #: How the last heap's addressed values were decoded (see ``_UpdatePlan``).
        self._plan: _UpdatePlan | None = None

    def _add_item(self, item: Item) -> None:
        """Install ``item`` by the rule in the class docstring."""
        old = self._by_id.get(item.id)
        if old is not None and _same_descriptor(old, item):
            if item.value is not None:
                old.value = item.value
            return
        old_by_name = self._by_name.get(item.name)
        if old is not None or old_by_name is not None:
            logger.info("Descriptor replacement for ID %#x, name %s", item.id, item.name)
            version = item.version
            for replaced in (old, old_by_name):
                if replaced is not None:
                    self._by_id.pop(replaced.id, None)
                    self._by_name.pop(replaced.name, None)
                    version = max(version, replaced.version + 1)
            item.version = version
        self._by_id[item.id] = item
        self._by_name[item.name] = item

    def add_item(
        self,
        id: int | None,
        name: str,
        description: str,
        shape: Sequence[int | None],
        dtype: Any = None,
        order: str = "C",
        format: Sequence[Sequence[Any]] | None = None,
        value: Any = None,
    ) -> Item:
        """Add a new item; ``id=None`` picks the smallest unused ID ≥ 0x1000.

        Returns the newly constructed ``Item``, even when the group kept an
        identical existing one (see the class docstring).
        """
        if id is None:
            id = UNRESERVED_ID
            while id in self._by_id:
                id += 1
        item = Item(id, name, description, shape, dtype, order, format, value=value)
        self._add_item(item)
        return item

    def __getitem__(self, key: int | np.integer[Any] | str) -> Item:
        if isinstance(key, numbers.Integral):
            return self._by_id[key]
        return self._by_name[key]  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, numbers.Integral):
            return key in self._by_id
        return key in self._by_name

    def __len__(self) -> int:
        return len(self._by_id)

    def keys(self) -> KeysView[str]:
        """Item names, in insertion order."""
        return self._by_name.keys()

    def ids(self) -> KeysView[int]:
        """Item IDs, in insertion order."""
        return self._by_id.keys()

    def values(self) -> ValuesView[Item]:
        """The items, in insertion order."""
        return self._by_id.values()

    def items(self) -> ItemsView[str, Item]:
        """``(name, item)`` pairs, in insertion order."""
        return self._by_name.items()

    def update(self, heap: _ReceivedHeap, new_order: str = "=") -> dict[str, Item]:
        """Apply a received heap: its descriptors first, then its item values.

        Returns the items whose values the heap carried, by name. Items with
        IDs up to ``STREAM_CTRL_ID`` are skipped; values for unknown IDs are
        logged and skipped. Decoding errors raise ``ValueError``.
        ``new_order``: byte order for numeric arrays (``'='`` native,
        ``'|'`` as on the wire; see ``numpy.dtype.newbyteorder``).
        """
        updated: dict[str, Item] = {}
        raw_items: Sequence[Any]
        if type(heap) is Heap:
            # Our own heaps: the addressed values as the plan for their layout
            # says, without building RawItems.
            layout = heap._layout
            if layout is None:
                layout = heap._addressed()
            plan = self._plan
            if plan is not None and (plan.new_order != new_order or (
                plan.layout is not layout and plan.layout != layout
            )):
                plan = None
            if plan is None or plan.has_descriptors:
                # Unusable descriptors are reported; this layer logs them, rate-limited.
                for raw in heap.get_descriptors(log_limited):
                    self._add_item(Item.from_raw(raw, flavour=heap.flavour))
            if plan is None:
                plan = self._plan = _UpdatePlan(layout, new_order, self)
            # Each step checks that its item and codec are still those the
            # plan was made for; one that is not takes _apply, the general
            # path, and the plan is made again for the next heap.
            payload = heap._payload
            get = self._by_id.get
            for item_id, address, length, item, codec, decode in plan.steps:
                if decode is not None and get(item_id) is item and item is not None and item._codec is codec:
                    dtype, elements, finish = decode
                    value = _frombuffer(payload, dtype, elements, address)
                    item._value = value if finish is None else finish(value)
                    item.version += 2  # as _apply does
                    updated[item.name] = item
                    continue
                if get(item_id) is not item or (item is not None and item._codec is not codec):
                    self._plan = None
                self._apply(item_id, False, address, memoryview(payload)[address : address + length],
                            new_order, updated)
            for word in heap._raw_pointers:
                if word >= IMMEDIATE:
                    break
            else:
                return updated
            raw_items = immediate_items(heap._pointers, heap.flavour.heap_address_bits)
        else:
            get_descriptors = getattr(heap, "get_descriptors", None)
            if get_descriptors is None:
                raise TypeError(
                    f"ItemGroup.update needs a complete heap (spead2.recv.Heap), not "
                    f"{type(heap).__name__} (cnt={getattr(heap, 'cnt', '?')}); with "
                    "contiguous_only=False, check isinstance(heap, spead2.recv.Heap) first"
                )
            raw_descriptors: list[RawDescriptor] = (
                get_descriptors(log_limited) if isinstance(heap, Heap) else get_descriptors()
            )
            for raw in raw_descriptors:
                self._add_item(Item.from_raw(raw, flavour=heap.flavour))
            raw_items = heap.get_items()
        for raw_item in raw_items:
            item_id = raw_item.id
            if item_id > STREAM_CTRL_ID:
                self._apply(item_id, raw_item.is_immediate, raw_item.immediate_value,
                            memoryview(raw_item), new_order, updated)
        return updated

    def _apply(
        self, item_id: int, is_immediate: bool, value: int, raw: memoryview, new_order: str,
        updated: dict[str, Item],
    ) -> None:
        """Decode one received value into its item (one step of :meth:`update`)."""
        item = self._by_id.get(item_id)
        if item is None:
            log_limited(
                logging.WARNING,
                "items.no_descriptor",
                "Item with ID %#x received but there is no descriptor",
                item_id,
            )
            return
        if type(item) is Item:
            # What set_from_raw does, then the second version bump the reference makes here.
            item._value = item._decode(raw, is_immediate, new_order)
            item.version += 2
        else:  # a subclass may override set_from_raw or the value setter
            item.set_from_raw(_HeapItem(item_id, is_immediate, value, raw), new_order=new_order)
            item.version += 1
        updated[item.name] = item

    def __repr__(self) -> str:
        return f"<spead2.ItemGroup {len(self._by_id)} items: {list(self._by_name)!r}>"
