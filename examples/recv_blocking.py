"""Receive heaps with the blocking API: ``for heap in stream`` and ``ItemGroup.update``.

By default it also starts a sender in a background thread, so it runs on its
own; with ``--no-sender`` it waits for someone else's stream, e.g.
``spead2_send --heaps 5 127.0.0.1:8888`` or ``send_blocking.py --no-receiver``.

    python examples/recv_blocking.py [--port 8888] [--heaps 5]
"""

from __future__ import annotations

import argparse
import threading

import numpy as np

import spead2
import spead2.recv
import spead2.send


def receive(stream: spead2.recv.Stream) -> int:
    """Print every heap's new values until the sender ends the stream."""
    item_group = spead2.ItemGroup()
    heaps = 0
    for heap in stream:  # ends when the stop heap arrives (or stream.stop())
        updated = item_group.update(heap)  # applies descriptors, then values
        for name, item in updated.items():
            print(f"heap {heap.cnt}: {name} = {item.value}")
        heaps += 1
    stats = stream.stats
    print(f"received {heaps} heaps, {stats['packets']} packets, "
          f"{stats['incomplete_heaps_evicted'] + stats['incomplete_heaps_flushed']} incomplete")
    return heaps


def send(port: int, heaps: int) -> None:
    """A small sender to receive from (see send_blocking.py)."""
    stream = spead2.send.UdpStream(spead2.ThreadPool(), [("127.0.0.1", port)],
                                   spead2.send.StreamConfig(rate=1e8))
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "counter", "A counter", shape=(), format=[("u", 32)])
    item_group.add_item(0x1001, "row", "Some numbers", shape=(4,), dtype=np.int16)
    for i in range(heaps):
        item_group["counter"].value = i
        item_group["row"].value = np.arange(4, dtype=np.int16) * i
        stream.send_heap(item_group.get_heap())
    stream.send_heap(item_group.get_end())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="UDP port on 127.0.0.1 [8888]")
    parser.add_argument("--heaps", type=int, default=5, help="heaps the built-in sender sends [5]")
    parser.add_argument("--no-sender", action="store_true", help="only receive")
    args = parser.parse_args()

    stream = spead2.recv.Stream(spead2.ThreadPool(), spead2.recv.StreamConfig(max_heaps=4))
    stream.add_udp_reader(args.port, bind_hostname="127.0.0.1")
    watchdog = None
    if not args.no_sender:
        threading.Thread(target=send, args=(args.port, args.heaps), daemon=True).start()
        watchdog = threading.Timer(10, stream.stop)  # bounds the run if the end is lost
        watchdog.daemon = True
        watchdog.start()
    receive(stream)
    if watchdog is not None:
        watchdog.cancel()


if __name__ == "__main__":
    main()
