"""Statistics configuration and snapshots (API.md §2.5)."""

from __future__ import annotations

import pytest

from spead2.protocols.stats import (
    CORE_STATS,
    StreamStatConfig,
    StreamStats,
    core_stat_configs,
)
from spead2.recv import stream_stat_indices

Mode = StreamStatConfig.Mode

CORE_NAMES = [
    "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
    "max_batch", "single_packet_heaps", "search_dist", "worker_blocked",
]


# -- StreamStatConfig -----------------------------------------------------------------


def test_mode_enum_like_reference():
    assert Mode.COUNTER.value == 0
    assert Mode.MAXIMUM.value == 1
    assert Mode(1) is Mode.MAXIMUM
    assert list(Mode.__members__) == ["COUNTER", "MAXIMUM"]
    assert repr(Mode.MAXIMUM) == "<Mode.MAXIMUM: 1>"
    assert str(Mode.MAXIMUM) == "Mode.MAXIMUM"
    assert Mode.MAXIMUM != 1  # not an int enum
    with pytest.raises(TypeError):
        int(Mode.MAXIMUM)


def test_stat_config_fields():
    stat = StreamStatConfig("a")
    assert stat.name == "a"
    assert stat.mode is Mode.COUNTER
    assert StreamStatConfig(name="b", mode=Mode.MAXIMUM).mode is Mode.MAXIMUM
    with pytest.raises(AttributeError):
        stat.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize("args", [("a", 1), (3,), (None, Mode.COUNTER)])
def test_stat_config_argument_types(args):
    with pytest.raises(TypeError):
        StreamStatConfig(*args)


def test_combine():
    assert StreamStatConfig("a").combine(3, 4) == 7
    assert StreamStatConfig("a", Mode.MAXIMUM).combine(3, 4) == 4
    assert StreamStatConfig("a", Mode.MAXIMUM).combine(9, 4) == 9
    with pytest.raises(TypeError):
        StreamStatConfig("a").combine(-3, 4)
    with pytest.raises(TypeError):
        StreamStatConfig("a").combine(1.5, 4)


def test_stat_config_equality_and_hash():
    assert StreamStatConfig("a") == StreamStatConfig("a")
    assert StreamStatConfig("a") != StreamStatConfig("a", Mode.MAXIMUM)
    assert StreamStatConfig("a") != StreamStatConfig("b")
    assert StreamStatConfig("a") != 3
    with pytest.raises(TypeError):
        hash(StreamStatConfig("a"))


def test_core_configs_and_indices():
    configs = core_stat_configs()
    assert [c.name for c in configs] == CORE_NAMES
    assert [c.mode for c in configs] == [Mode.MAXIMUM if n == "max_batch" else Mode.COUNTER for n in CORE_NAMES]
    assert [name for name, _ in CORE_STATS] == CORE_NAMES
    for index, name in enumerate(CORE_NAMES):
        assert getattr(stream_stat_indices, name.upper()) == index


# -- StreamStats ------------------------------------------------------------------------


def make_stats(values=None):
    config = core_stat_configs() + [StreamStatConfig("foo"), StreamStatConfig("mx", Mode.MAXIMUM)]
    return StreamStats(config, values if values is not None else range(1, 12))


def test_mapping_access():
    s = make_stats()
    assert s["heaps"] == 1
    assert s["foo"] == 10
    assert "foo" in s
    assert "nope" not in s
    assert s.get("nope") is None
    assert s.get("nope", 5) == 5
    assert s.get("mx", 5) == 11
    assert len(s) == 11
    assert list(s) == [*CORE_NAMES, "foo", "mx"]
    assert list(s.keys()) == list(s)
    assert list(s.values()) == list(range(1, 12))
    assert list(s.items())[-1] == ("mx", 11)
    assert dict(s)["packets"] == 4


def test_sequence_access():
    s = make_stats()
    assert s[0] == 1
    assert s[10] == 11
    assert s[True] == 2
    assert list(reversed(s)) == list(range(11, 0, -1))
    with pytest.raises(IndexError):
        s[11]
    with pytest.raises(TypeError):
        s[-1]
    with pytest.raises(KeyError):
        s["nope"]
    with pytest.raises(TypeError):
        s[1.0]  # type: ignore[index]


def test_type_errors_for_non_names():
    s = make_stats()
    with pytest.raises(TypeError):
        3 in s  # noqa: B015
    with pytest.raises(TypeError):
        s.get(3)  # type: ignore[arg-type]


def test_attributes_for_core_stats():
    s = make_stats()
    assert [getattr(s, name) for name in CORE_NAMES] == list(range(1, 10))
    s.packets = 99
    assert s["packets"] == 99
    with pytest.raises(AttributeError):
        s.foo  # noqa: B018


def test_setters():
    s = make_stats([0] * 11)
    s[0] = 5
    s["foo"] = 7
    s["mx"] = 3
    assert list(s.values()) == [5, 0, 0, 0, 0, 0, 0, 0, 0, 7, 3]
    with pytest.raises(TypeError):
        s[0] = -1
    with pytest.raises(TypeError):
        s[0] = 2**64
    with pytest.raises(IndexError):
        s[20] = 1
    with pytest.raises(KeyError):
        s["nope"] = 1
    with pytest.raises(TypeError):
        s.heaps = -1


def test_config_property_is_a_copy():
    s = make_stats()
    config = s.config
    assert [c.name for c in config][-2:] == ["foo", "mx"]
    config.clear()
    assert len(s.config) == 11


def test_snapshot_independent_of_source_list():
    values = list(range(11))
    s = make_stats(values)
    values[0] = 1000
    assert s[0] == 0


def test_add():
    a = make_stats()
    b = make_stats([10] * 11)
    total = a + b
    assert total["heaps"] == 11
    assert total["max_batch"] == 10  # maximum
    assert total["mx"] == 11  # maximum
    assert total["foo"] == 20
    assert list(a.values()) == list(range(1, 12))  # a is unchanged
    a += b
    assert list(a.values()) == list(total.values())


def test_add_requires_matching_config():
    a = make_stats()
    b = StreamStats(core_stat_configs())
    with pytest.raises(ValueError, match="config must match to add stats together"):
        a + b  # noqa: B018
    c = StreamStats(
        core_stat_configs() + [StreamStatConfig("foo"), StreamStatConfig("mx")], [0] * 11
    )
    with pytest.raises(ValueError, match="config must match"):
        a + c  # noqa: B018
    with pytest.raises(TypeError):
        a + 3  # type: ignore[operator]  # noqa: B018


def test_default_values_zero_and_length_checked():
    assert list(StreamStats(core_stat_configs()).values()) == [0] * 9
    with pytest.raises(ValueError):
        StreamStats(core_stat_configs(), [0] * 3)


def test_duplicate_names_first_wins():
    s = StreamStats([StreamStatConfig("a"), StreamStatConfig("a")], [1, 2])
    assert s["a"] == 1
