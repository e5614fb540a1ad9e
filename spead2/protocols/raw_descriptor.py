"""The plain descriptor record passed between the wire codec and :class:`spead2.Descriptor`."""

from __future__ import annotations


class RawDescriptor:
    """A descriptor as carried on the wire, before interpretation.

    ``format`` is a list of ``(code, bits)``; ``shape`` a list of ints with
    ``None`` for a variable dimension. When ``numpy_header`` is non-empty it is
    authoritative and received descriptors carry empty ``shape``/``format``.
    """

    __slots__ = ("id", "name", "description", "numpy_header", "format", "shape")

    def __init__(self) -> None:
        #: The item ID the descriptor describes.
        self.id: int = 0
        #: The item's name (ASCII bytes).
        self.name: bytes = b""
        #: The item's description (ASCII bytes).
        self.description: bytes = b""
        #: A numpy ``.npy`` header giving dtype, order and shape (empty if none).
        self.numpy_header: bytes = b""
        #: The item's format: ``(code, bits)`` pairs such as ``("u", 48)``.
        self.format: list[tuple[str, int]] = []
        #: The item's shape, ``None`` for a variable dimension.
        self.shape: list[int | None] = []

    def __repr__(self) -> str:
        return (
            f"RawDescriptor(id={self.id:#x}, name={self.name!r}, "
            f"description={self.description!r}, format={self.format!r}, "
            f"shape={self.shape!r}, numpy_header={self.numpy_header!r})"
        )
