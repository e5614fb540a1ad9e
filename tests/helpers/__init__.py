"""What several test modules share, imported as ``tests.helpers.<module>`` (the repository root
is on ``sys.path``: ``pythonpath`` in pyproject.toml). Test modules never import each other;
fixtures live in ``tests/conftest.py``.

- ``packets``: SPEAD packets and raw descriptors built byte by byte.
- ``in_order_packets``: heaps sent in order, and hostile streams of them (payloads in place).
- ``assembler``: a bare heap assembler with its output and statistics.
- ``batch_streams``: hostile packet streams, batches cut from them, and runners for the
  batch-path differential tests (assembler and chunk placer).
- ``heaps``: numbered heaps that the transport tests send and check.
- ``streams``: receive-stream configurations.
- ``waiting``: waiting on a condition with a deadline; a watchdog that stops a stream.
- ``clock``: a fake clock for the send streams' rate limiting.
- ``reference``: the reference spead2's interpreter (tests skip without it).
- ``tools``: running the command-line tools and examples as subprocesses.
- ``pcap_files``: writing capture files.
"""
