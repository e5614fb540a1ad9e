"""Command-line programs: ``spead2_send``, ``spead2_recv``, ``spead2_bench`` and ``spead2_capture``.

Each is a module with a ``main()`` entry point (``python -m spead2.tools.send``
etc.); the option sets are those of the C++ spead2's tools, with options this implementation cannot
honour (ibverbs) refused with a message rather than ignored.
"""
