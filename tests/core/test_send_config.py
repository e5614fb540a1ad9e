"""Tests for ``spead2.send`` StreamConfig, RateMethod and GroupMode (API.md §5.4–5.5)."""

from __future__ import annotations

import copy
import enum
import math

import pytest

from spead2.send._config import GroupMode, RateMethod, StreamConfig


def test_defaults() -> None:
    config = StreamConfig()
    assert config.max_packet_size == 1472
    assert config.rate == 0.0
    assert config.burst_size == 65536
    assert config.max_heaps == 4
    assert config.burst_rate_ratio == 1.05
    assert config.rate_method is RateMethod.AUTO
    assert config.burst_rate == 0.0


def test_class_constants() -> None:
    assert StreamConfig.DEFAULT_MAX_PACKET_SIZE == 1472
    assert StreamConfig.DEFAULT_BURST_SIZE == 65536
    assert StreamConfig.DEFAULT_MAX_HEAPS == 4
    assert StreamConfig.DEFAULT_BURST_RATE_RATIO == 1.05
    assert StreamConfig.DEFAULT_RATE_METHOD is RateMethod.AUTO


def test_enums() -> None:
    assert issubclass(RateMethod, enum.Enum)
    assert [(m.name, m.value) for m in RateMethod] == [("SW", 0), ("HW", 1), ("AUTO", 2)]
    assert [(m.name, m.value) for m in GroupMode] == [("ROUND_ROBIN", 0), ("SERIAL", 1)]


def test_keywords_and_conversion() -> None:
    config = StreamConfig(
        max_packet_size=9000,
        rate=1,
        burst_size=0,
        max_heaps=7,
        burst_rate_ratio=2,
        rate_method=RateMethod.SW,
    )
    assert config.max_packet_size == 9000
    assert config.rate == 1.0 and isinstance(config.rate, float)
    assert config.burst_size == 0
    assert config.max_heaps == 7
    assert config.burst_rate_ratio == 2.0 and isinstance(config.burst_rate_ratio, float)
    assert config.rate_method is RateMethod.SW
    assert config.burst_rate == 2.0


def test_positional_rejected() -> None:
    with pytest.raises(TypeError):
        StreamConfig(1472)  # type: ignore[misc]
    with pytest.raises(TypeError):
        StreamConfig(foo=1)  # type: ignore[call-arg]


def test_max_packet_size_not_validated() -> None:
    # Checked when a heap is sent, not here (as in the reference).
    assert StreamConfig(max_packet_size=0).max_packet_size == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": -1}, "rate must be non-negative"),
        ({"rate": math.nan}, "rate must be non-negative"),
        ({"rate": math.inf}, "rate must be non-negative"),
        ({"max_heaps": 0}, "max_heaps must be positive"),
        ({"burst_rate_ratio": 0.5}, "burst rate ratio must be at least 1.0 and finite"),
        ({"burst_rate_ratio": math.inf}, "burst rate ratio must be at least 1.0 and finite"),
        ({"burst_rate_ratio": math.nan}, "burst rate ratio must be at least 1.0 and finite"),
    ],
)
def test_value_errors(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        StreamConfig(**kwargs)  # type: ignore[arg-type]
    # The message also reports the bad value.
    name, value = next(iter(kwargs.items()))
    shown = value if name == "max_heaps" else float(value)
    assert f"(got {shown!r})" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_heaps": -1},
        {"max_packet_size": -1},
        {"burst_size": -1},
        {"max_packet_size": 1.5},
        {"rate_method": 0},
        {"rate_method": 5},
        {"rate": "1"},
        {"burst_size": 1 << 64},
    ],
)
def test_type_errors(kwargs: dict[str, object]) -> None:
    # The reference's unsigned / enum parameters reject these with TypeError.
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        StreamConfig(**kwargs)  # type: ignore[arg-type]


def test_setters_validate() -> None:
    config = StreamConfig()
    config.rate = 5
    assert config.rate == 5.0
    config.burst_rate_ratio = 3
    assert config.burst_rate == 15.0
    with pytest.raises(ValueError, match="rate must be non-negative"):
        config.rate = -1
    with pytest.raises(ValueError, match="max_heaps must be positive"):
        config.max_heaps = 0
    with pytest.raises(ValueError, match="burst rate ratio"):
        config.burst_rate_ratio = 0.9
    with pytest.raises(AttributeError):
        config.burst_rate = 1.0  # type: ignore[misc]
    # Failed assignments leave the old values.
    assert (config.rate, config.max_heaps, config.burst_rate_ratio) == (5.0, 4, 3.0)


def test_copy_is_independent() -> None:
    config = StreamConfig(rate=10.0, max_heaps=2)
    other = copy.copy(config)
    config.rate = 20.0
    assert other.rate == 10.0
    assert other.max_heaps == 2
    assert "rate=10.0" in repr(other)
