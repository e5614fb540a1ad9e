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
        self.id: int = 0
        self.name: bytes = b""
        self.description: bytes = b""
        self.numpy_header: bytes = b""
        self.format: list[tuple[str, int]] = []
        self.shape: list[int | None] = []

    def __repr__(self) -> str:
        return (
            f"RawDescriptor(id={self.id:#x}, name={self.name!r}, "
            f"description={self.description!r}, format={self.format!r}, "
            f"shape={self.shape!r}, numpy_header={self.numpy_header!r})"
        )
