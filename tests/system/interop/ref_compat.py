"""Peer script run by *both* implementations: probes of behaviour that existing code relies on.

stdin: ``{"probe": NAME}``. stdout: one JSON line with the probe's findings.
The interop test runs it under the reference's interpreter and ours and
compares. Uses only spead2's public API (and ctypes for a C place callback).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import time
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.send

R = spead2.recv
S = spead2.send

#: Calls whose exception type is compared, grouped by what they exercise.
ARGUMENT_CASES = [
    # thread pool, flavour, memory pool
    "spead2.ThreadPool(-1)", "spead2.ThreadPool(0)", "spead2.ThreadPool('2')",
    "spead2.ThreadPool(1.5)", "spead2.ThreadPool(2**40)", "spead2.ThreadPool(1, [-1])",
    "spead2.Flavour(4, 64, 48, 0)", "spead2.Flavour(4, 64, 47, 0)", "spead2.Flavour(4, 65, 48, 0)",
    "spead2.Flavour(4, 64, 48, -1)", "spead2.Flavour('4', 64, 48, 0)",
    "spead2.Flavour(4, 64, 48, 2**40)", "spead2.Flavour(3, 64, 48, 0)",
    "spead2.MemoryPool(-1, 10, 1, 1)", "spead2.MemoryPool('a', 10, 1, 1)",
    "spead2.InprocQueue().add_packet('x')", "spead2.InprocQueue().add_packet(3)",
    # receive configuration
    "R.StreamConfig(max_heaps=0)", "R.StreamConfig(max_heaps=-1)", "R.StreamConfig(max_heaps=2**64)",
    "R.StreamConfig(max_heaps='4')", "R.StreamConfig(max_heaps=1.5)", "R.StreamConfig(substreams=0)",
    "R.StreamConfig(substreams=-1)", "R.StreamConfig(bug_compat=64)", "R.StreamConfig(bug_compat=-1)",
    "R.StreamConfig(memcpy=2)", "R.StreamConfig(stream_id=-1)", "R.StreamConfig(stop_on_stop_item='x')",
    "R.StreamConfig(memory_allocator=3)", "R.StreamConfig(foo=1)", "R.StreamConfig(4)",
    "R.RingStreamConfig(heaps=0)", "R.RingStreamConfig(heaps=-1)", "R.RingStreamConfig(heaps='1')",
    "R.StreamConfig().add_stat(3)", "R.StreamConfig().add_stat('heaps')",
    "R.StreamConfig().add_stat('x', 0)", "R.StreamConfig().get_stat_index('nope')",
    # receive streams and their readers
    "R.Stream(None)", "R.Stream(tp, 3)", "R.Stream(tp, R.StreamConfig(), 3)",
    "R.Stream(tp, ring_config=R.StreamConfig())",
    "stream().add_udp_reader(100000)", "stream().add_udp_reader(-1)", "stream().add_udp_reader('8888')",
    "stream().add_udp_reader(0, -1)", "stream().add_udp_reader(0, 2**64)",
    "stream().add_udp_reader(0, 9200, -1)", "stream().add_udp_reader(0, bind_hostname=3)",
    "stream().add_udp_reader(0.5)", "stream().add_udp_reader(None)", "stream().add_udp_reader(3.0)",
    "stream().add_udp_reader('239.1.2.3', 100000)",
    "stream().add_udp_reader('239.1.2.3', 0, interface_index=-1)",
    "stream().add_udp_reader('ff14::1', 0, interface_index=2**32)",
    "stream().add_udp_reader('127.0.0.1', 0)",
    "stream().add_udp_reader('ff14::1', 0, interface_address='127.0.0.1')",
    "stream().add_udp_reader('239.1.2.3', 0, interface_index=1)",
    "stream().add_udp_reader(tcp)", "stream().add_udp_reader(udp, -1)",
    "stream().add_tcp_reader(100000)", "stream().add_tcp_reader(-1)", "stream().add_tcp_reader('x')",
    "stream().add_tcp_reader(0, -1)", "stream().add_tcp_reader(udp)",
    "stream().add_buffer_reader('abc')", "stream().add_buffer_reader(3)",
    "stream().add_buffer_reader(None)", "stream().add_inproc_reader(3)",
    "stream().add_udp_pcap_file_reader(3)", "stream().add_udp_pcap_file_reader('/nonexistent.pcap')",
    "stream().add_udp_pcap_file_reader('x', 3)",
    # chunking
    "R.ChunkStreamConfig(max_chunks=0)", "R.ChunkStreamConfig(max_chunks=-1)",
    "R.ChunkStreamConfig(items=[-1])", "R.ChunkStreamConfig(items=3)",
    "R.ChunkStreamConfig(items=['a'])", "R.ChunkStreamConfig(max_heap_extra=-1)",
    "R.ChunkStreamConfig(place=3)", "R.ChunkStreamConfig(place=(3,))",
    "R.ChunkStreamConfig().enable_packet_presence(0)",
    "R.ChunkStreamConfig().enable_packet_presence(-1)",
    "R.ChunkRingbuffer(-1)", "R.ChunkRingbuffer('a')", "R.Chunk(chunk_id='a')",
    "R.Chunk(present=b'abc')", "R.Chunk(data=3)", "R.Chunk(stream_id=-1)",
    "R.ChunkStreamGroupConfig(max_chunks=0)", "R.ChunkStreamGroupConfig(eviction_mode=3)",
    "R.ChunkRingStream(tp, R.StreamConfig(), R.ChunkStreamConfig(), R.ChunkRingbuffer(2), "
    "R.ChunkRingbuffer(2))",
    "R.ChunkRingStream(tp, R.StreamConfig(), 3, R.ChunkRingbuffer(2), R.ChunkRingbuffer(2))",
    # send
    "S.StreamConfig(max_packet_size=-1)", "S.StreamConfig(rate=-1)", "S.StreamConfig(rate='x')",
    "S.StreamConfig(max_heaps=0)", "S.StreamConfig(max_heaps=-1)", "S.StreamConfig(burst_size=-1)",
    "S.StreamConfig(burst_rate_ratio=0.5)", "S.StreamConfig(rate_method=3)", "S.Heap(3)",
    "S.UdpStream(tp, [])", "S.UdpStream(tp, [('127.0.0.1', 100000)])",
    "S.UdpStream(tp, [('127.0.0.1', -1)])", "S.UdpStream(tp, [('127.0.0.1', '8888')])",
    "S.UdpStream(tp, ('127.0.0.1', 8888))", "S.UdpStream(tp, [('127.0.0.1', 8888)], buffer_size=-1)",
    "S.UdpStream(tp, [('239.1.1.1', 8888)], ttl=256)", "S.UdpStream(tp, [('239.1.1.1', 8888)], ttl=-1)",
    "S.UdpStream(tp, [('ff14::1', 8888)], ttl=1, interface_index=-1)",
    "S.UdpStream(tp, [('127.0.0.1', 8888)], S.StreamConfig(), 0, 1, 2**32)",
    "S.UdpStream(tp, tcp, [('127.0.0.1', 8888)])", "S.UdpStream(tp, 3, [('127.0.0.1', 8888)])",
    "S.TcpStream(tp, [('127.0.0.1', 100000)])", "S.TcpStream(tp, [])", "S.TcpStream(tp, udp)",
    "S.TcpStream(tp, 3)", "S.BytesStream(tp, 3)", "S.BytesStream(3)", "S.InprocStream(tp, [])",
    "S.InprocStream(tp, [3])", "S.InprocStream(tp, 3)",
    "S.BytesStream(tp).set_cnt_sequence(1, 0)", "S.BytesStream(tp).set_cnt_sequence(-1, 1)",
    "S.BytesStream(tp).set_cnt_sequence(1, -1)", "S.BytesStream(tp).set_cnt_sequence(2**64, 1)",
    "S.BytesStream(tp).send_heap(S.Heap(), substream_index=-1)",
    "S.BytesStream(tp).send_heap(S.Heap(), cnt=2**64)",
    "S.BytesStream(tp).send_heap(S.Heap(), substream_index=1)", "S.BytesStream(tp).send_heap(3)",
    "S.BytesStream(tp).send_heap(S.Heap(), rate='x')",
    "S.BytesStream(tp).send_heaps([], S.GroupMode.ROUND_ROBIN)",
    "S.BytesStream(tp).send_heaps([S.Heap()], 3)", "S.HeapReference(3)",
    "S.HeapReference(S.Heap(), substream_index=-1)",
    # items
    "spead2.Descriptor(0x1000, 'x', 'd', shape=(-2,))", "spead2.ItemGroup()[3]",
    "spead2.parse_range_list('a')",
]


def argument_errors() -> dict[str, list[str]]:
    """For each case, the exception's class and its bases' names (["ok"] if none)."""
    namespace: dict[str, Any] = {"spead2": spead2, "R": R, "S": S, "tp": spead2.ThreadPool()}
    namespace["stream"] = lambda: R.Stream(namespace["tp"])
    namespace["udp"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    namespace["tcp"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    result = {}
    for case in ARGUMENT_CASES:
        try:
            eval(case, namespace)
        except Exception as exc:
            result[case] = [cls.__name__ for cls in type(exc).__mro__]
        else:
            result[case] = ["ok"]
    return result


def _heap_bytes(pool: spead2.ThreadPool, n: int) -> bytes:
    stream = S.BytesStream(pool)
    group = S.ItemGroup()
    group.add_item(0x1000, "x", "x", shape=(), format=[("u", 32)])
    for i in range(n):
        group["x"].value = i
        stream.send_heap(group.get_heap(descriptors="none", data="all"))
    return stream.getvalue()


def backpressure() -> dict[str, Any]:
    """A 10-heap buffer and 10 inproc packets, ring of 4, nobody consuming: stats after stop()."""
    pool = spead2.ThreadPool()
    out = {}
    for kind in ("buffer", "inproc"):
        stream = R.Stream(pool, R.StreamConfig(), R.RingStreamConfig(heaps=4))
        data = _heap_bytes(pool, 10)
        if kind == "buffer":
            stream.add_buffer_reader(data)
        else:
            queue = spead2.InprocQueue()
            sender = S.InprocStream(pool, [queue])
            group = S.ItemGroup()
            group.add_item(0x1000, "x", "x", shape=(), format=[("u", 32)])
            for i in range(10):
                group["x"].value = i
                sender.send_heap(group.get_heap(descriptors="none", data="all"))
            # All queued before the reader starts, so that both implementations
            # take them in one batch (else the split depends on timing).
            stream.add_inproc_reader(queue)
        # A wait on a condition with a deadline (this peer runs in the reference's
        # interpreter, which cannot import the tests' helpers).
        deadline = time.monotonic() + 10
        while not stream.stats["worker_blocked"] and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.monotonic()
        stream.stop()
        stats = stream.stats
        out[kind] = {
            "stop_fast": time.monotonic() - started < 1.0,
            "heaps": stats["heaps"],
            "packets": stats["packets"],
            "worker_blocked": stats["worker_blocked"],
            "ring": stream.ringbuffer.size(),
            "names": list(stats.keys()),
        }
    return out


class _Place(ctypes.Structure):
    _fields_ = [
        ("packet", ctypes.c_void_p), ("packet_size", ctypes.c_size_t),
        ("items", ctypes.POINTER(ctypes.c_int64)), ("chunk_id", ctypes.c_int64),
        ("heap_index", ctypes.c_size_t), ("heap_offset", ctypes.c_size_t),
        ("batch_stats", ctypes.c_void_p), ("extra", ctypes.c_void_p),
        ("extra_offset", ctypes.c_size_t), ("extra_size", ctypes.c_size_t),
    ]


def chunk_accounting() -> dict[str, Any]:
    """A descriptor heap, 3 placed heaps, one place rejects, a stop heap; place accepts the stop
    heap or not. The statistics and the place calls seen."""
    heap_size = 8
    out = {}
    for accept_stop in (False, True):
        calls: list[list[int]] = []

        def place(
            ptr: int, size: int, calls: list[list[int]] = calls, accept_stop: bool = accept_stop
        ) -> None:
            data = ctypes.cast(ptr, ctypes.POINTER(_Place)).contents
            cnt, length = data.items[0], data.items[1]
            calls.append([cnt, length])
            if accept_stop and length == 1:
                data.chunk_id, data.heap_index, data.heap_offset = 0, 0, 0
            elif cnt < 100 and length == heap_size:
                data.chunk_id, data.heap_index, data.heap_offset = cnt // 4, cnt % 4, (cnt % 4) * heap_size

        callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)(place)
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        capsule = new_capsule(ctypes.cast(callback, ctypes.c_void_p), b"void (void *, size_t)", None)
        pool = spead2.ThreadPool()
        sender = S.BytesStream(pool)
        group = S.ItemGroup()
        group.add_item(0x1000, "x", "x", shape=(), format=[("u", 64)])
        sender.send_heap(group.get_heap(descriptors="all", data="none"))
        for cnt in (1, 2, 3, 100):
            group["x"].value = cnt
            sender.send_heap(group.get_heap(descriptors="none", data="all"), cnt=cnt)
        sender.send_heap(group.get_end())
        config = R.ChunkStreamConfig(
            items=[spead2.HEAP_CNT_ID, spead2.HEAP_LENGTH_ID], max_chunks=2, place=(capsule,)
        )
        data_ring, free_ring = R.ChunkRingbuffer(4), R.ChunkRingbuffer(4)
        stream = R.ChunkRingStream(pool, R.StreamConfig(), config, data_ring, free_ring)
        for _ in range(4):
            stream.add_free_chunk(
                R.Chunk(present=np.zeros(4, np.uint8), data=np.zeros(4 * heap_size, np.uint8))
            )
        stream.add_buffer_reader(sender.getvalue())
        chunks = [[chunk.chunk_id, chunk.present.tolist()] for chunk in data_ring]
        # The reference may publish the last batch's statistics after the data ring stops.
        deadline = time.monotonic() + 10  # a deadline wait, as above
        while stream.stats["heaps"] < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        out["accept_stop" if accept_stop else "reject_stop"] = {
            "stats": dict(stream.stats.items()), "calls": calls, "chunks": chunks,
        }
    return out


PROBES = {"arguments": argument_errors, "backpressure": backpressure, "chunks": chunk_accounting}


def main() -> None:
    request = json.load(sys.stdin)
    print(json.dumps(PROBES[request["probe"]]()), flush=True)
    # Streams blocked on full rings may hold the interpreter's exit: the answer is out.
    os._exit(0)


if __name__ == "__main__":
    main()
