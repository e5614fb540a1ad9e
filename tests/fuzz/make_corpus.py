"""Regenerate the committed seed corpus (``tests/fuzz/corpus/TARGET/``) from our sender.

Usage: ``python tests/fuzz/make_corpus.py`` (deterministic; rewrites the
``seed-*`` files, leaves any other file, such as a saved crash, alone).

Seeds are real packets from ``spead2.send.PacketGenerator`` over varied heaps
(every flavour, dtype and bit-packed items, strings, F-order arrays, start and
stop heaps, tiny and jumbo packet sizes), delivered in order, shuffled,
duplicated and with losses for the assembler.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))

import spead2  # noqa: E402
from spead2.protocols.descriptors import encode_descriptor  # noqa: E402
from tests.fuzz import _harness  # noqa: E402

CORPUS = os.path.join(_HERE, "corpus")


def _write(target: str, data: bytes) -> None:
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main() -> None:
    """Write every seed file."""
    for target in ("packet", "assembler", "descriptors", "itemgroup", "tcp"):
        directory = os.path.join(CORPUS, target)
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                if name.startswith("seed-"):
                    os.remove(os.path.join(directory, name))
    rng = random.Random(2024)
    for index, (bits, packets) in enumerate(_harness.seed_heaps()):
        for packet in packets[:3]:
            _write("packet", packet)
        # In order, as sent; then shuffled with duplicates and a loss, out of order.
        _write("assembler", _harness.frame(packets, config=0x20))
        mixed = packets + rng.sample(packets, k=min(2, len(packets)))
        rng.shuffle(mixed)
        if len(mixed) > 3:
            del mixed[rng.randrange(len(mixed))]
        _write("assembler", _harness.frame(mixed, config=_harness.OUT_OF_ORDER | 0x18))
        if index % 2 == 0:
            _write("itemgroup", _harness.frame(packets, config=0x30))
        stream = b"".join(packets)
        if len(stream) < 8192:
            # Config byte (max_size, buffer sizes), then the read-size seed, then the bytes.
            _write("tcp", bytes([index * 7 & 0x3F, index, 0x5A, 0xA5]) + stream)
        flavour = spead2.Flavour(4, 64, bits, 0)
        for spec in _harness._items_for(index, bits)[:3]:
            item = spead2.Item(**spec)
            try:
                value = encode_descriptor(item.to_raw(flavour), flavour)
            except ValueError:
                continue
            _write("descriptors", bytes([index & 7]) + value)
    # The direct-heap mode of the itemgroup target: flags (odd), pointer count, pointers, payload.
    _write("itemgroup", bytes([0x01, 2]) + (0x1000 << 40).to_bytes(8) + (0x1001 << 40 | 4).to_bytes(8) + bytes(range(12)))


if __name__ == "__main__":
    main()
