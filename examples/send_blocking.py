"""Send heaps with the blocking API: ``spead2.send.UdpStream`` and ``send_heap``.

By default it also starts a receiver in a background thread, so it runs on
its own; with ``--no-receiver`` it only sends, e.g. to
``spead2_recv --values 127.0.0.1:8888`` or ``recv_blocking.py --no-sender``.

    python examples/send_blocking.py [--port 8888] [--heaps 5]
"""

from __future__ import annotations

import argparse
import threading

import numpy as np

import spead2
import spead2.recv
import spead2.send


def send(port: int, heaps: int) -> None:
    """The sending side: describe the items once, then send one heap per update."""
    thread_pool = spead2.ThreadPool()
    stream = spead2.send.UdpStream(
        thread_pool, [("127.0.0.1", port)], spead2.send.StreamConfig(rate=1e8)
    )
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "timestamp", "Sample counter", shape=(), format=[("u", 48)])
    item_group.add_item(0x1001, "samples", "Voltage samples", shape=(256,), dtype=np.float32)
    for i in range(heaps):
        item_group["timestamp"].value = 1024 * i
        item_group["samples"].value = np.linspace(0, 1, 256, dtype=np.float32) * i
        size = stream.send_heap(item_group.get_heap())  # blocks until it is on the wire
        print(f"sent heap {i}: {size} bytes")
    stream.send_heap(item_group.get_end())  # tells the receiver the stream is over
    print("sent end of stream")


def receive(stream: spead2.recv.Stream, result: list[int]) -> None:
    """A minimal receiver, for checking what arrived (see recv_blocking.py)."""
    item_group = spead2.ItemGroup()
    for heap in stream:
        if item_group.update(heap):
            result.append(int(item_group["timestamp"].value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="UDP port on 127.0.0.1 [8888]")
    parser.add_argument("--heaps", type=int, default=5, help="data heaps to send [5]")
    parser.add_argument("--no-receiver", action="store_true", help="only send")
    args = parser.parse_args()

    receiver = None
    if not args.no_receiver:
        stream = spead2.recv.Stream(spead2.ThreadPool())
        stream.add_udp_reader(args.port, bind_hostname="127.0.0.1")  # bound before we send
        received: list[int] = []
        receiver = threading.Thread(target=receive, args=(stream, received), daemon=True)
        receiver.start()
    send(args.port, args.heaps)
    if receiver is not None:
        receiver.join(timeout=10)
        stream.stop()  # in case the end of stream was lost
        print(f"receiver got {len(received)} heaps, timestamps {received}")


if __name__ == "__main__":
    main()
