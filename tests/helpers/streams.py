"""Helpers shared by the receive-stream tests."""

from __future__ import annotations

from typing import Any

import spead2.recv


def counting_config(**kwargs: Any) -> spead2.recv.StreamConfig:
    """A receive ``StreamConfig`` that also counts our extra statistics.

    By default a stream has exactly the reference's statistics; registering
    ``invalid_packets`` and ``skipped_frames`` asks for ours as well.
    """
    config = spead2.recv.StreamConfig(**kwargs)
    config.add_stat("invalid_packets")
    config.add_stat("skipped_frames")
    return config
