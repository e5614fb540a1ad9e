"""Compatibility home of receive names the reference keeps in its private extension module."""

from ..protocols.heaps import HeapBase, RawItem
from ..recv._receiver import _Stream

__all__ = ["HeapBase", "RawItem", "_Stream"]
