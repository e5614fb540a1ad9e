"""Receive configuration classes (API.md §2.3, §2.4)."""

from __future__ import annotations

import copy

import pytest

from spead2._memory import MemoryAllocator
from spead2.protocols.stats import StreamStatConfig
from spead2.recv._config import RingStreamConfig, StreamConfig

Mode = StreamStatConfig.Mode


def test_stream_config_defaults():
    c = StreamConfig()
    assert StreamConfig.DEFAULT_MAX_HEAPS == 4
    assert c.max_heaps == 4
    assert c.substreams == 1
    assert c.bug_compat == 0
    assert c.memcpy == 0
    assert isinstance(c.memory_allocator, MemoryAllocator)
    assert c.stop_on_stop_item is True
    assert c.allow_unsized_heaps is True
    assert c.allow_out_of_order is False
    assert c.stream_id == 0
    assert c.explicit_start is False


def test_stream_config_keywords():
    c = StreamConfig(
        max_heaps=7, substreams=3, bug_compat=7, memcpy=1, memory_allocator=None,
        stop_on_stop_item=False, allow_unsized_heaps=False, allow_out_of_order=True,
        stream_id=2**64 - 1, explicit_start=True,
    )
    assert (c.max_heaps, c.substreams, c.bug_compat, c.memcpy) == (7, 3, 7, 1)
    assert c.memory_allocator is None
    assert (c.stop_on_stop_item, c.allow_unsized_heaps, c.allow_out_of_order) == (False, False, True)
    assert (c.stream_id, c.explicit_start) == (2**64 - 1, True)


def test_keyword_only_and_unknown_keyword():
    with pytest.raises(TypeError):
        StreamConfig(1)  # type: ignore[misc]
    with pytest.raises(TypeError, match="got an unexpected keyword argument"):
        StreamConfig(foo=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RingStreamConfig(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_heaps": 0}, "max_heaps cannot be 0"),
        ({"substreams": 0}, "substreams cannot be 0"),
        ({"bug_compat": 8}, "unknown compatibility bits in bug_compat"),
        ({"memcpy": 2}, "Unknown memcpy function"),
        ({"memcpy": -1}, "Unknown memcpy function"),
    ],
)
def test_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}") as info:
        StreamConfig(**kwargs)
    # The message names the parameter and the value.
    name, value = next(iter(kwargs.items()))
    assert name in str(info.value)
    c = StreamConfig()
    with pytest.raises(ValueError, match=f"^{message}"):
        setattr(c, name, value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_heaps": -1}, {"max_heaps": 1.5}, {"max_heaps": None}, {"max_heaps": "3"},
        {"max_heaps": 2**64}, {"substreams": -1}, {"bug_compat": -1}, {"stream_id": -1},
        {"stop_on_stop_item": "x"}, {"allow_out_of_order": []}, {"memory_allocator": 3},
    ],
)
def test_type_errors(kwargs):
    with pytest.raises(TypeError):
        StreamConfig(**kwargs)


def test_integer_and_flag_conversions_like_reference():
    assert StreamConfig(max_heaps=True).max_heaps == 1
    assert StreamConfig(max_heaps=2**64 - 1).max_heaps == 2**64 - 1
    assert StreamConfig(stop_on_stop_item=1).stop_on_stop_item is True
    assert StreamConfig(stop_on_stop_item=None).stop_on_stop_item is False
    assert StreamConfig(allow_out_of_order=0.0).allow_out_of_order is False


def test_setters():
    c = StreamConfig()
    c.max_heaps = 7
    c.allow_out_of_order = True
    c.memory_allocator = None
    c.memory_allocator = MemoryAllocator()
    assert c.max_heaps == 7
    assert c.allow_out_of_order is True


def test_stats_registration():
    c = StreamConfig()
    assert [s.name for s in c.stats] == [
        "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
        "max_batch", "single_packet_heaps", "search_dist", "worker_blocked",
    ]
    assert c.next_stat_index() == 9
    assert c.add_stat("foo") == 9
    assert c.add_stat("bar", Mode.MAXIMUM) == 10
    assert c.add_stat(name="baz", mode=Mode.MAXIMUM) == 11
    assert c.next_stat_index() == 12
    assert c.get_stat_index("bar") == 10
    assert c.get_stat_index("heaps") == 0
    assert c.stats[10] == StreamStatConfig("bar", Mode.MAXIMUM)
    with pytest.raises(ValueError, match="^A statistic called foo already exists$"):
        c.add_stat("foo")
    with pytest.raises(ValueError, match="^A statistic called heaps already exists$"):
        c.add_stat("heaps")
    with pytest.raises(IndexError, match="^nope is not a known statistic name$"):
        c.get_stat_index("nope")
    with pytest.raises(TypeError):
        c.add_stat("x", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.add_stat(3)  # type: ignore[arg-type]
    assert c.next_stat_index() == 12


def test_stats_list_is_a_copy():
    c = StreamConfig()
    c.stats.append(StreamStatConfig("x"))
    assert len(c.stats) == 9


def test_copy_is_independent():
    c = StreamConfig(max_heaps=5)
    c.add_stat("foo")
    d = c.copy()
    assert copy.copy(c).max_heaps == 5
    c.max_heaps = 9
    c.add_stat("bar")
    assert d.max_heaps == 5
    assert [s.name for s in d.stats][9:] == ["foo"]
    assert d.memory_allocator is c.memory_allocator
    d.add_stat("baz")
    assert [s.name for s in c.stats][9:] == ["foo", "bar"]


def test_unhashable_identity_equality():
    # Like the reference: equality is identity.
    assert StreamConfig() != StreamConfig()


def test_ring_config():
    r = RingStreamConfig()
    assert RingStreamConfig.DEFAULT_HEAPS == 4
    assert (r.heaps, r.contiguous_only, r.incomplete_keep_payload_ranges) == (4, True, False)
    r = RingStreamConfig(heaps=9, contiguous_only=False, incomplete_keep_payload_ranges=True)
    assert (r.heaps, r.contiguous_only, r.incomplete_keep_payload_ranges) == (9, False, True)
    with pytest.raises(ValueError, match="^heaps must be at least 1.*heaps=0"):
        RingStreamConfig(heaps=0)
    with pytest.raises(ValueError, match="^heaps must be at least 1"):
        r.heaps = 0
    with pytest.raises(TypeError):
        RingStreamConfig(heaps=-1)
    with pytest.raises(TypeError, match="got an unexpected keyword argument"):
        RingStreamConfig(foo=1)  # type: ignore[call-arg]
    r.contiguous_only = 0
    assert r.contiguous_only is False
    d = r.copy()
    r.heaps = 3
    assert d.heaps == 9
    assert copy.copy(d).heaps == 9


def test_reprs_mention_options():
    assert "max_heaps=4" in repr(StreamConfig())
    assert "heaps=4" in repr(RingStreamConfig())
