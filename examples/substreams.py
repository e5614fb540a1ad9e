"""Substreams: one send stream, several destinations, heaps interleaved packet by packet.

A ``UdpStream`` given several endpoints has one substream per endpoint; each
heap names its ``substream_index``. ``async_send_heaps`` sends a group of
heaps together, and with ``GroupMode.ROUND_ROBIN`` their packets are
interleaved, which spreads a burst over several receivers. Here two receive
streams (one per UDP port) run on the same loop and report which heaps each
got.

    python examples/substreams.py [--port 8888] [--groups 4]

(uses ports PORT and PORT+1)
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio

SUBSTREAMS = 2


async def send(ports: list[int], groups: int) -> None:
    endpoints = [("127.0.0.1", port) for port in ports]
    config = spead2.send.StreamConfig(max_packet_size=1472, rate=1e8, max_heaps=SUBSTREAMS)
    stream = spead2.send.asyncio.UdpStream(spead2.ThreadPool(), endpoints, config)
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "beam", "Which substream", shape=(), format=[("u", 32)])
    item_group.add_item(0x1001, "samples", "Samples", shape=(2048,), dtype=np.int16)
    for g in range(groups):
        heaps = []
        for index in range(SUBSTREAMS):
            item_group["beam"].value = index
            item_group["samples"].value = np.full(2048, g, np.int16)
            # Every receiver needs the descriptors, so send them in each first group.
            heap = item_group.get_heap(descriptors="all" if g == 0 else "stale", data="all")
            heaps.append(spead2.send.HeapReference(heap, substream_index=index))
        await stream.async_send_heaps(heaps, spead2.send.GroupMode.ROUND_ROBIN)
    ends = [spead2.send.HeapReference(item_group.get_end(), substream_index=index)
            for index in range(SUBSTREAMS)]
    await stream.async_send_heaps(ends, spead2.send.GroupMode.ROUND_ROBIN)


async def receive(name: str, stream: spead2.recv.asyncio.Stream) -> list[int]:
    item_group = spead2.ItemGroup()
    cnts = []
    async for heap in stream:
        updated = item_group.update(heap)
        if "beam" in updated:
            cnts.append(heap.cnt)
            print(f"{name}: heap {heap.cnt} for beam {updated['beam'].value}, "
                  f"samples[0] = {updated['samples'].value[0]}")
    return cnts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="first UDP port [8888]")
    parser.add_argument("--groups", type=int, default=4, help="groups of heaps to send [4]")
    args = parser.parse_args()

    ports = [args.port + i for i in range(SUBSTREAMS)]
    streams = []
    for port in ports:
        stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
        stream.add_udp_reader(port, bind_hostname="127.0.0.1")
        streams.append(stream)
    receivers = [asyncio.create_task(receive(f"port {port}", stream))
                 for port, stream in zip(ports, streams, strict=True)]
    await send(ports, args.groups)
    try:
        results = await asyncio.wait_for(asyncio.gather(*receivers), timeout=10)
    except TimeoutError:  # an end of stream was lost: stop anyway
        for stream in streams:
            stream.stop()
        results = [[] for _ in ports]
    for port, cnts in zip(ports, results, strict=True):
        print(f"port {port} received heaps {cnts}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
