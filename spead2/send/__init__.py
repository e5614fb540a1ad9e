"""Sending SPEAD: heaps, packet generation, stream configuration and streams."""

from ._config import GroupMode, RateMethod, StreamConfig
from ._generator import HeapGenerator, ItemGroup
from ._heap import Heap, PacketGenerator
from ._memory_streams import BytesStream, InprocStream
from ._network_streams import TcpStream, UdpStream
from ._stream import HeapReference, HeapReferenceList, Stream

__all__ = [
    "BytesStream",
    "GroupMode",
    "Heap",
    "HeapGenerator",
    "HeapReference",
    "HeapReferenceList",
    "InprocStream",
    "ItemGroup",
    "PacketGenerator",
    "RateMethod",
    "Stream",
    "StreamConfig",
    "TcpStream",
    "UdpStream",
]
