"""Shared logic of the interop peers: build heaps from JSON specs, send them, receive and describe.

This module is imported by the peer scripts (``ref_sender.py``,
``ref_receiver.py``, ``ref_loopback.py``), which run under the *reference*
spead2's interpreter, and by the tests, which run it with *our* spead2. Every
function takes the ``spead2`` module to use as a parameter, so both
implementations run exactly the same code. Only spead2's public API, numpy and
the standard library are used; nothing here imports the project.

Sender spec (JSON)::

    {"flavour": [4, 64, 40, 0], "max_packet_size": 1472, "rate": 0.0,
     "transport": "bytes" | "udp" | "tcp",
     "path": "out.spead",                              # bytes: write here, else "hex"
     "endpoints": [["127.0.0.1", 7148], ...],        # udp/tcp; one per substream
     "ttl": 1, "interface_address": "127.0.0.1",       # optional: IPv4 multicast
     "mode": "stream" | "raw",                        # raw: PacketGenerator + plain socket
     "asyncio": false,                                 # use spead2.send.asyncio streams
     "heaps": [{"items": [item spec, ...], "ops": [["descriptor", i], ["item", i],
                ["start"], ["end"]], "cnt": null, "substream": 0,
                "drop": [packet indices to skip (negative: from the end), raw mode only],
                "reverse": false}],                       # raw mode: send the packets backwards
     "schedule": [0, [1, 2, 3], 4],   # int: send_heap; list: send_heaps (group_mode)
     "group_mode": "round_robin" | "serial"}

Item spec: ``{"id", "name", "description", "shape": [3, null], "dtype": ">i2" |
[["a", "<u2"], ["b", ">f4", [2]]] | null, "order": "C", "format": [["u", 12]] |
null, "value": ...}``. Lists at depth ``len(shape)`` of a structured dtype or a
multi-field format become tuples.

Receiver spec (JSON)::

    {"bug_compat": 0, "substreams": 1, "max_heaps": 4, "allow_out_of_order": false,
     "stop_on_stop_item": true, "contiguous_only": false, "keep_ranges": true,
     "expect_end_heaps": null, "deadline": 20.0, "asyncio": false,
     "readers": [{"kind": "udp", "host": "127.0.0.1"} | {"kind": "udp_port", "host": "::1"}
                 | {"kind": "multicast", "group": "239.255.1.2", "interface": "127.0.0.1"}
                 | {"kind": "tcp", "host": "127.0.0.1"} | {"kind": "buffer", "hex": "..."}
                 | {"kind": "pcap", "path": "...", "filter": "udp dst port 1234" | null,
                    "dst_port": 1234}]}

The receiver reports every heap (see :func:`describe_heap`) and the final
state of its ``ItemGroup``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

HEAP_CNT_ID = 1
HEAP_LENGTH_ID = 2
PAYLOAD_OFFSET_ID = 3
PAYLOAD_LENGTH_ID = 4

Ready = Callable[[list[int], Any], None]

#: The submodules used here; callers import them (see :func:`load_submodules`).
SUBMODULES = ("recv", "recv.asyncio", "send", "send.asyncio")


def check_is_reference(spead2: Any) -> None:
    """Refuse to run a peer with the project's own spead2 (e.g. picked up through the cwd).

    The peers must exercise the reference; the project's package sits three
    directories above this file.
    """
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    location = os.path.abspath(spead2.__file__)
    if location.startswith(project + os.sep):
        raise SystemExit(f"peer imported the project's spead2 ({location}), not the reference")


def load_submodules(spead2: Any) -> None:
    """Import the spead2 submodules this module uses (``import spead2`` alone may not)."""
    for name in SUBMODULES:
        importlib.import_module(f"{spead2.__name__}.{name}")


# ---------------------------------------------------------------------------
# Building values, items and heaps


def reference_and_request() -> tuple[Any, Any]:
    """For a peer script: the reference spead2 (checked, submodules loaded) and the JSON
    request, from the file named by the first argument, else from stdin."""
    import spead2

    check_is_reference(spead2)
    load_submodules(spead2)
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            return spead2, json.load(f)
    return spead2, json.load(sys.stdin)


def make_dtype(spec: Any) -> np.dtype:
    """A numpy dtype from its JSON form: a string, or a list of ``[name, type(, shape)]``."""
    if isinstance(spec, str):
        return np.dtype(spec)
    fields: list[tuple[Any, ...]] = []
    for field in spec:
        if len(field) > 2:
            fields.append((field[0], field[1], tuple(field[2])))
        else:
            fields.append((field[0], field[1]))
    return np.dtype(fields)


def _tuples(value: Any, depth: int) -> Any:
    if depth == 0:
        return tuple(value)
    return [_tuples(v, depth - 1) for v in value]


def build_value(spec: dict[str, Any]) -> Any:
    """The value an item spec describes (numpy array for dtype items)."""
    value = spec["value"]
    if isinstance(value, dict):
        return bytes.fromhex(value["hex"])
    depth = len(spec["shape"])
    if spec.get("dtype") is not None:
        dtype = make_dtype(spec["dtype"])
        if dtype.names is not None:
            value = _tuples(value, depth)
        return np.array(value, dtype=dtype, order=spec.get("order", "C"))
    fmt = spec.get("format") or []
    if len(fmt) > 1:
        return _tuples(value, depth)
    return value


def build_item(spead2: Any, spec: dict[str, Any]) -> Any:
    """An ``Item`` of the given spead2 module for an item spec."""
    fmt = spec.get("format")
    dtype = spec.get("dtype")
    return spead2.Item(
        spec["id"],
        spec["name"],
        spec["description"],
        tuple(spec["shape"]),
        dtype=None if dtype is None else make_dtype(dtype),
        order=spec.get("order", "C"),
        format=None if fmt is None else [(code, bits) for code, bits in fmt],
        value=build_value(spec),
    )


def build_heap(spead2: Any, spec: dict[str, Any], flavour: Any, keep: list[Any]) -> Any:
    """A ``spead2.send.Heap`` filled as ``spec["ops"]`` says.

    The heap refers to its items' buffers, so the items are appended to ``keep``.
    """
    heap = spead2.send.Heap(flavour)
    items = [build_item(spead2, item) for item in spec["items"]]
    keep.append(items)
    for op in spec["ops"]:
        if op[0] == "descriptor":
            heap.add_descriptor(items[op[1]])
        elif op[0] == "item":
            heap.add_item(items[op[1]])
        elif op[0] == "start":
            heap.add_start()
        elif op[0] == "end":
            heap.add_end()
        else:
            raise ValueError(f"unknown op {op!r}")
    return heap


def schedule(spec: dict[str, Any]) -> list[int | list[int]]:
    """The send order: an int is one ``send_heap``, a list one ``send_heaps`` group."""
    return spec.get("schedule") or list(range(len(spec["heaps"])))


def assign_cnts(spec: dict[str, Any]) -> list[int]:
    """The cnt every heap gets: explicit ones, else the stream's sequence 1, 2, …

    Automatic cnts are given in send order; explicit cnts do not advance the sequence.
    """
    cnts = [0] * len(spec["heaps"])
    following = 1
    for entry in schedule(spec):
        for index in [entry] if isinstance(entry, int) else entry:
            cnt = spec["heaps"][index].get("cnt")
            if cnt is None:
                cnt = following
                following += 1
            cnts[index] = cnt
    return cnts


# ---------------------------------------------------------------------------
# Describing what was received


def dtype_text(dtype: Any) -> str | None:
    """A canonical text for a numpy dtype (its ``.npy`` header description)."""
    if dtype is None:
        return None
    return repr(np.lib.format.dtype_to_descr(np.dtype(dtype)))


def canon(value: Any) -> Any:
    """A lossless, JSON-able form of a value, independent of numpy vs Python types."""
    if isinstance(value, np.ndarray):
        return canon(value.tolist())
    if isinstance(value, np.generic):
        return canon(value.item())
    if value is None:
        return None
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, complex):
        return {"complex": [value.real.hex(), value.imag.hex()]}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    return {"repr": repr(value)}


def value_type(value: Any) -> str:
    """The Python/numpy type of a value, with dtype, shape and memory order of arrays."""
    if isinstance(value, np.ndarray):
        order = "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
        return f"ndarray {dtype_text(value.dtype)} {value.shape} {order}"
    if isinstance(value, np.generic):
        return f"{type(value).__name__} {dtype_text(value.dtype)}"
    if isinstance(value, tuple):
        return "tuple(" + ", ".join(value_type(v) for v in value) + ")"
    return type(value).__name__


def describe_item(item: Any, with_value: bool = True) -> dict[str, Any]:
    """Everything about a received item: descriptor fields, value, value type, version."""
    result = {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "shape": [None if d is None else int(d) for d in item.shape],
        "dtype": dtype_text(item.dtype),
        "order": item.order,
        "format": [[code, int(bits)] for code, bits in item.format] if item.format else None,
        "version": item.version,
    }
    if with_value:
        result["value"] = canon(item.value)
        result["value_type"] = value_type(item.value)
    return result


def describe_heap(spead2: Any, heap: Any, item_group: Any) -> dict[str, Any]:
    """A report of one received heap; complete heaps are applied to ``item_group``."""
    flavour = heap.flavour
    report: dict[str, Any] = {
        "cnt": heap.cnt,
        "flavour": [
            flavour.version,
            flavour.item_pointer_bits,
            flavour.heap_address_bits,
            flavour.bug_compat,
        ],
        "start": bool(heap.is_start_of_stream()),
        "end": bool(heap.is_end_of_stream()),
    }
    if isinstance(heap, spead2.recv.IncompleteHeap):
        report["kind"] = "incomplete"
        report["heap_length"] = heap.heap_length
        report["received_length"] = heap.received_length
        report["payload_ranges"] = [[int(a), int(b)] for a, b in heap.payload_ranges]
        report["immediates"] = [[raw.id, bytes(memoryview(raw)).hex()] for raw in heap.get_items()]
        return report
    report["kind"] = "heap"
    report["descriptor_ids"] = sorted(raw.id for raw in heap.get_descriptors())
    try:
        updated = item_group.update(heap)
    except Exception as exc:  # a decoding failure is a result to compare, not a crash
        report["error"] = f"{type(exc).__name__}: {exc}"
        return report
    report["items"] = {name: describe_item(item) for name, item in updated.items()}
    return report


class Collector:
    """Turns received heaps into reports; says when the expected end heaps have arrived."""

    def __init__(self, spead2: Any, spec: dict[str, Any]) -> None:
        self.spead2 = spead2
        self.item_group = spead2.ItemGroup()
        self.reports: list[dict[str, Any]] = []
        self.expect_end_heaps = spec.get("expect_end_heaps")
        self.end_heaps = 0

    def add(self, heap: Any) -> bool:
        """Record ``heap``; True once the receiver should stop."""
        report = describe_heap(self.spead2, heap, self.item_group)
        self.reports.append(report)
        if report["end"]:
            self.end_heaps += 1
        return self.expect_end_heaps is not None and self.end_heaps >= self.expect_end_heaps

    def result(self, ports: list[int], notes: list[str], timed_out: bool) -> dict[str, Any]:
        """The receiver's final report."""
        return {
            "ports": ports,
            "notes": notes,
            "timed_out": timed_out,
            "heaps": self.reports,
            "final_items": {
                item.name: describe_item(item, with_value=False)
                for item in self.item_group.values()
            },
        }


# ---------------------------------------------------------------------------
# Receiving


def free_port(family: socket.AddressFamily = socket.AF_INET, host: str = "") -> int:
    """A UDP port that was free a moment ago (for APIs that take a port number)."""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
        return int(sock.getsockname()[1])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


UDP_BUFFER = 4 * 1024 * 1024


def add_readers(
    spead2: Any, stream: Any, readers: list[dict[str, Any]]
) -> tuple[list[int], list[str]]:
    """Add the readers a receiver spec lists; returns their ports and notes."""
    ports: list[int] = []
    notes: list[str] = []
    for reader in readers:
        kind = reader["kind"]
        max_size = reader.get("max_size", 9200 if kind != "tcp" else 65536)
        if kind == "udp":
            # Bind port 0 ourselves and hand the socket over, so the port is never guessed.
            with socket.socket(_family(reader["host"]), socket.SOCK_DGRAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
                sock.bind((reader["host"], 0))
                ports.append(sock.getsockname()[1])
                stream.add_udp_reader(sock, max_size)
        elif kind == "udp_port":
            port = free_port(_family(reader["host"]), reader["host"])
            ports.append(port)
            stream.add_udp_reader(port, max_size, UDP_BUFFER, reader["host"])
        elif kind == "multicast":
            port = free_port()
            ports.append(port)
            stream.add_udp_reader(reader["group"], port, max_size, UDP_BUFFER, reader["interface"])
        elif kind == "tcp":
            with socket.socket(_family(reader["host"]), socket.SOCK_STREAM) as sock:
                sock.bind((reader["host"], 0))
                sock.listen(1)
                ports.append(sock.getsockname()[1])
                stream.add_tcp_reader(sock, max_size)
        elif kind == "buffer":
            if "path" in reader:
                with open(reader["path"], "rb") as f:
                    data = f.read()
            else:
                data = bytes.fromhex(reader["hex"])
            stream.add_buffer_reader(data)
        elif kind == "pcap":
            if hasattr(stream, "add_udp_pcap_file_reader"):
                if reader.get("filter") is None:
                    stream.add_udp_pcap_file_reader(reader["path"])
                else:
                    stream.add_udp_pcap_file_reader(reader["path"], reader["filter"])
            else:
                # A spead2 built without libpcap (the PyPI wheel of the reference):
                # extract the UDP payloads ourselves, applying the filter's port.
                notes.append("pcap-fallback")
                dst_port = reader.get("dst_port") if reader.get("filter") is not None else None
                payloads = pcap_udp_payloads(reader["path"], dst_port)
                stream.add_buffer_reader(b"".join(payloads))
        else:
            raise ValueError(f"unknown reader kind {kind!r}")
    return ports, notes


def _configs(spead2: Any, spec: dict[str, Any]) -> tuple[Any, Any]:
    config = spead2.recv.StreamConfig(
        bug_compat=spec.get("bug_compat", 0),
        substreams=spec.get("substreams", 1),
        max_heaps=spec.get("max_heaps", 4),
        allow_out_of_order=spec.get("allow_out_of_order", False),
        stop_on_stop_item=spec.get("stop_on_stop_item", True),
    )
    ring_config = spead2.recv.RingStreamConfig(
        heaps=spec.get("ring_heaps", 8),
        contiguous_only=spec.get("contiguous_only", False),
        incomplete_keep_payload_ranges=spec.get("keep_ranges", True),
    )
    return config, ring_config


def receive(
    spead2: Any,
    spec: dict[str, Any],
    ready: Ready | None = None,
) -> dict[str, Any]:
    """Receive as ``spec`` says until the stream stops (or its deadline passes).

    ``ready(ports, stream)`` is called once the readers are listening.
    """
    if spec.get("asyncio"):
        return asyncio.run(_receive_async(spead2, spec, ready))
    thread_pool = spead2.ThreadPool()
    config, ring_config = _configs(spead2, spec)
    stream = spead2.recv.Stream(thread_pool, config, ring_config)
    collector = Collector(spead2, spec)
    timed_out = threading.Event()

    def on_deadline() -> None:
        timed_out.set()
        stream.stop()

    timer = threading.Timer(spec.get("deadline", 20.0), on_deadline)
    timer.start()
    try:
        ports, notes = add_readers(spead2, stream, spec["readers"])
        if ready is not None:
            ready(ports, stream)
        for heap in stream:
            if collector.add(heap):
                stream.stop()
    finally:
        timer.cancel()
        stream.stop()
    return collector.result(ports, notes, timed_out.is_set())


async def _receive_async(spead2: Any, spec: dict[str, Any], ready: Ready | None) -> dict[str, Any]:
    thread_pool = spead2.ThreadPool()
    config, ring_config = _configs(spead2, spec)
    stream = spead2.recv.asyncio.Stream(thread_pool, config, ring_config)
    collector = Collector(spead2, spec)

    async def consume() -> None:
        async for heap in stream:
            if collector.add(heap):
                stream.stop()

    timed_out = False
    try:
        ports, notes = add_readers(spead2, stream, spec["readers"])
        if ready is not None:
            ready(ports, stream)
        try:
            await asyncio.wait_for(consume(), spec.get("deadline", 20.0))
        except TimeoutError:
            timed_out = True
    finally:
        stream.stop()
    return collector.result(ports, notes, timed_out)


# ---------------------------------------------------------------------------
# Sending


def packet_fields(packet: bytes) -> dict[int, int]:
    """The immediate HEAP_CNT … PAYLOAD_LENGTH fields of a SPEAD packet (no spead2 needed)."""
    heap_address_bits = packet[3] * 8
    n_items = int.from_bytes(packet[6:8], "big")
    id_mask = (1 << (63 - heap_address_bits)) - 1
    value_mask = (1 << heap_address_bits) - 1
    fields: dict[int, int] = {}
    for i in range(n_items):
        pointer = int.from_bytes(packet[8 + 8 * i : 16 + 8 * i], "big")
        item_id = (pointer >> heap_address_bits) & id_mask
        if pointer >> 63 and HEAP_CNT_ID <= item_id <= PAYLOAD_LENGTH_ID:
            fields.setdefault(item_id, pointer & value_mask)
    return fields


def _stream_config(spead2: Any, spec: dict[str, Any]) -> Any:
    # Room for two schedule entries in flight (the asyncio sender keeps at most two).
    largest = max([1, *(len(e) for e in schedule(spec) if not isinstance(e, int))])
    return spead2.send.StreamConfig(
        max_packet_size=spec.get("max_packet_size", 1472),
        rate=spec.get("rate", 0.0),
        max_heaps=max(4, 2 * largest),
    )


def _endpoints(spec: dict[str, Any]) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in spec["endpoints"]]


def _make_sync_stream(spead2: Any, spec: dict[str, Any], config: Any) -> Any:
    thread_pool = spead2.ThreadPool()
    transport = spec["transport"]
    if transport == "bytes":
        return spead2.send.BytesStream(thread_pool, config)
    if transport == "udp":
        if "ttl" in spec:
            return spead2.send.UdpStream(
                thread_pool,
                _endpoints(spec),
                config,
                spead2.send.UdpStream.DEFAULT_BUFFER_SIZE,
                spec["ttl"],
                spec["interface_address"],
            )
        return spead2.send.UdpStream(thread_pool, _endpoints(spec), config)
    if transport == "tcp":
        return spead2.send.TcpStream(thread_pool, _endpoints(spec), config)
    raise ValueError(f"unknown transport {transport!r}")


def _group_mode(spead2: Any, spec: dict[str, Any]) -> Any:
    name = spec.get("group_mode", "round_robin")
    return {
        "round_robin": spead2.send.GroupMode.ROUND_ROBIN,
        "serial": spead2.send.GroupMode.SERIAL,
    }[name]


def _references(spead2: Any, spec: dict[str, Any], heaps: list[Any], group: list[int]) -> list[Any]:
    refs = []
    for index in group:
        heap_spec = spec["heaps"][index]
        cnt = heap_spec.get("cnt")
        refs.append(
            spead2.send.HeapReference(
                heaps[index],
                cnt=-1 if cnt is None else cnt,
                substream_index=heap_spec.get("substream", 0),
            )
        )
    return refs


def _store_bytes(spec: dict[str, Any], data: bytes, result: dict[str, Any]) -> None:
    """Bytes of the "bytes" transport: to the file ``spec["path"]``, else into the result."""
    if spec.get("path"):
        with open(spec["path"], "wb") as f:
            f.write(data)
    else:
        result["hex"] = data.hex()


def send(spead2: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Send the heaps of a sender spec; returns ``{"bytes_sent", "hex"?, "heaps"?}``."""
    flavour = spead2.Flavour(*spec["flavour"])
    keep: list[Any] = []
    heaps = [build_heap(spead2, heap, flavour, keep) for heap in spec["heaps"]]
    if spec.get("mode") == "raw":
        return _send_raw(spead2, spec, heaps)
    if spec.get("asyncio"):
        return asyncio.run(_send_async(spead2, spec, heaps))
    config = _stream_config(spead2, spec)
    stream = _make_sync_stream(spead2, spec, config)
    total = 0
    for entry in schedule(spec):
        if isinstance(entry, int):
            heap_spec = spec["heaps"][entry]
            cnt = heap_spec.get("cnt")
            total += stream.send_heap(
                heaps[entry], -1 if cnt is None else cnt, heap_spec.get("substream", 0)
            )
        else:
            total += stream.send_heaps(
                _references(spead2, spec, heaps, entry), _group_mode(spead2, spec)
            )
    result: dict[str, Any] = {"bytes_sent": total}
    if spec["transport"] == "bytes":
        _store_bytes(spec, stream.getvalue(), result)
    del stream  # closes a TCP connection (the receiver then sees EOF)
    return result


async def _send_async(spead2: Any, spec: dict[str, Any], heaps: list[Any]) -> dict[str, Any]:
    thread_pool = spead2.ThreadPool()
    config = _stream_config(spead2, spec)
    transport = spec["transport"]
    if transport == "udp":
        if "ttl" in spec:
            stream = spead2.send.asyncio.UdpStream(
                thread_pool,
                _endpoints(spec),
                config,
                spead2.send.asyncio.UdpStream.DEFAULT_BUFFER_SIZE,
                spec["ttl"],
                spec["interface_address"],
            )
        else:
            stream = spead2.send.asyncio.UdpStream(thread_pool, _endpoints(spec), config)
    elif transport == "tcp":
        stream = await spead2.send.asyncio.TcpStream.connect(thread_pool, _endpoints(spec), config)
    else:
        raise ValueError(f"no asyncio stream for transport {transport!r}")
    futures = []
    for entry in schedule(spec):
        if isinstance(entry, int):
            heap_spec = spec["heaps"][entry]
            cnt = heap_spec.get("cnt")
            futures.append(
                stream.async_send_heap(
                    heaps[entry], -1 if cnt is None else cnt, heap_spec.get("substream", 0)
                )
            )
        else:
            futures.append(
                stream.async_send_heaps(
                    _references(spead2, spec, heaps, entry), _group_mode(spead2, spec)
                )
            )
        # At most two entries in flight, which max_heaps allows (see _stream_config).
        if len(futures) >= 2:
            await futures[-2]
    total = sum([await future for future in futures])
    await stream.async_flush()
    del stream
    return {"bytes_sent": total}


def _send_raw(spead2: Any, spec: dict[str, Any], heaps: list[Any]) -> dict[str, Any]:
    """PacketGenerator packets, skipping each heap's ``drop`` indices, sent with a plain socket."""
    cnts = assign_cnts(spec)
    summary = []
    out: list[tuple[int, bytes]] = []
    for entry in schedule(spec):
        for index in [entry] if isinstance(entry, int) else entry:
            heap_spec = spec["heaps"][index]
            packets = list(
                spead2.send.PacketGenerator(
                    heaps[index], cnts[index], spec.get("max_packet_size", 1472)
                )
            )
            drop = {i % len(packets) for i in heap_spec.get("drop", [])}
            kept = [p for i, p in enumerate(packets) if i not in drop]
            if heap_spec.get("reverse"):
                kept.reverse()
            first = packet_fields(packets[0])
            summary.append(
                {
                    "cnt": cnts[index],
                    "n_packets": len(packets),
                    "heap_length": first.get(HEAP_LENGTH_ID, -1),
                    "kept": [
                        [packet_fields(p)[PAYLOAD_OFFSET_ID], packet_fields(p)[PAYLOAD_LENGTH_ID]]
                        for p in kept
                    ],
                }
            )
            out.extend((heap_spec.get("substream", 0), p) for p in kept)
    result: dict[str, Any] = {"bytes_sent": sum(len(p) for _, p in out), "heaps": summary}
    transport = spec["transport"]
    if transport == "bytes":
        _store_bytes(spec, b"".join(p for _, p in out), result)
    elif transport == "udp":
        endpoints = _endpoints(spec)
        with socket.socket(_family(endpoints[0][0]), socket.SOCK_DGRAM) as sock:
            for substream, packet in out:
                sock.sendto(packet, endpoints[substream])
    elif transport == "tcp":
        with socket.create_connection(_endpoints(spec)[0], timeout=10) as sock:
            sock.sendall(b"".join(p for _, p in out))
    else:
        raise ValueError(f"unknown transport {transport!r}")
    return result


# ---------------------------------------------------------------------------
# pcap files (only for a spead2 without libpcap)


def pcap_udp_payloads(path: str, dst_port: int | None = None) -> list[bytes]:
    """The UDP payloads in a classic pcap file (Ethernet, Linux cooked or raw IP links)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    record = struct.Struct(endian + "IIII")
    payloads = []
    offset = 24
    while offset + record.size <= len(data):
        _, _, caplen, _ = record.unpack_from(data, offset)
        frame = data[offset + record.size : offset + record.size + caplen]
        offset += record.size + caplen
        if linktype == 1:  # Ethernet
            ethertype, ip = int.from_bytes(frame[12:14], "big"), frame[14:]
        elif linktype == 113:  # Linux cooked v1
            ethertype, ip = int.from_bytes(frame[14:16], "big"), frame[16:]
        elif linktype == 276:  # Linux cooked v2
            ethertype, ip = int.from_bytes(frame[0:2], "big"), frame[20:]
        elif linktype in (12, 101):  # raw IP
            ethertype, ip = (0x86DD if frame[0] >> 4 == 6 else 0x0800), frame
        else:
            raise ValueError(f"{path}: unsupported link type {linktype}")
        if ethertype == 0x0800 and ip[9] == 17:
            udp = ip[(ip[0] & 0x0F) * 4 :]
        elif ethertype == 0x86DD and ip[6] == 17:
            udp = ip[40:]
        else:
            continue
        if dst_port is not None and int.from_bytes(udp[2:4], "big") != dst_port:
            continue
        payloads.append(bytes(udp[8 : int.from_bytes(udp[4:6], "big")]))
    return payloads
