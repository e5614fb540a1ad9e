"""Sans-IO SPEAD core: bytes in, objects out. No sockets, loops, threads or clocks."""
