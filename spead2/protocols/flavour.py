"""SPEAD flavours: SPEAD-64-XX with XX bits of heap address."""

from __future__ import annotations

from .arguments import fitting_int


class Flavour:
    """A SPEAD flavour: protocol version, pointer width, address width and bug-compat flags.

    ``Flavour()`` is SPEAD-64-40 with no bug-compatibility flags.
    """

    __slots__ = ("_version", "_item_pointer_bits", "_heap_address_bits", "_bug_compat")

    def __init__(
        self,
        version: int = 4,
        item_pointer_bits: int = 64,
        heap_address_bits: int = 40,
        bug_compat: int = 0,
    ) -> None:
        # As the reference's binding converts them: wrong types and values that do
        # not fit the C++ fields raise TypeError before any check of the value.
        version = fitting_int(version, "Flavour: version", -(2**31), 2**31 - 1)
        item_pointer_bits = fitting_int(item_pointer_bits, "Flavour: item_pointer_bits", -(2**31), 2**31 - 1)
        heap_address_bits = fitting_int(heap_address_bits, "Flavour: heap_address_bits", -(2**31), 2**31 - 1)
        bug_compat = fitting_int(bug_compat, "Flavour: bug_compat", 0, 2**32 - 1)
        if version != 4:
            raise ValueError(f"Version is not supported (got version={version!r}, expected 4)")
        if item_pointer_bits != 64:
            raise ValueError(
                f"item_pointer_bits not supported (got {item_pointer_bits!r}, expected 64)"
            )
        if heap_address_bits <= 0 or heap_address_bits >= 64:
            raise ValueError(f"heap_address_bits out of range (got {heap_address_bits!r})")
        if heap_address_bits % 8 != 0:
            raise ValueError(
                f"heap_address_bits not a multiple of 8 (got {heap_address_bits!r})"
            )
        self._version = int(version)
        self._item_pointer_bits = int(item_pointer_bits)
        self._heap_address_bits = int(heap_address_bits)
        self._bug_compat = int(bug_compat)

    @property
    def version(self) -> int:
        """SPEAD protocol version (always 4)."""
        return self._version

    @property
    def item_pointer_bits(self) -> int:
        """Bits in an item pointer (always 64)."""
        return self._item_pointer_bits

    @property
    def heap_address_bits(self) -> int:
        """Bits of address / immediate value in an item pointer."""
        return self._heap_address_bits

    @property
    def bug_compat(self) -> int:
        """Bitmask of ``BUG_COMPAT_*`` flags."""
        return self._bug_compat

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Flavour):
            return NotImplemented
        return (
            self._version == other._version
            and self._item_pointer_bits == other._item_pointer_bits
            and self._heap_address_bits == other._heap_address_bits
            and self._bug_compat == other._bug_compat
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-equality record, unhashable like the reference

    def __repr__(self) -> str:
        return (
            f"Flavour({self._version}, {self._item_pointer_bits}, "
            f"{self._heap_address_bits}, {self._bug_compat})"
        )
