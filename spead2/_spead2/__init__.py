"""Compatibility home of names the reference keeps in its private extension module."""

from ..protocols.raw_descriptor import RawDescriptor

__all__ = ["RawDescriptor"]
