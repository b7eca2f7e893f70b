"""Condition layout: counts, block kinds and token ranges."""
import pytest
from hypothesis import given, settings, strategies as st

from lumosx_core import ConditionLayout


def test_counts_and_order():
    lay = ConditionLayout(non_person=1, groups=[3, 2])
    assert lay.num_images == 6 and lay.num_people == 2
    blocks = lay.blocks(frames=2, tokens_per_frame=4)
    assert [(b.kind, b.index, b.frames) for b in blocks] == [
        ("video", 0, 2), ("non_person", 0, 1), ("person", 0, 3), ("person", 1, 2)]


def test_blocks_by_kind_not_size():
    # a group of exactly T images is still a person block (the reference's size test would
    # mistake it for the video)
    lay = ConditionLayout(non_person=0, groups=[3, 1])
    blocks = lay.blocks(frames=3, tokens_per_frame=4)
    assert [(b.kind, b.start, b.stop) for b in blocks] == [
        ("video", 0, 12), ("person", 12, 24), ("person", 24, 28)]


def test_equality_and_hash_for_batching():
    a = ConditionLayout(1, [2, 1])
    assert a == ConditionLayout(1, (2, 1)) and hash(a) == hash(ConditionLayout(1, [2, 1]))
    assert a != ConditionLayout(1, [1, 2])
    assert ConditionLayout.from_dict(a.to_dict()) == a


@pytest.mark.parametrize("bad", [dict(non_person=-1), dict(groups=[2, 0]), dict(non_person=1.5)])
def test_invalid_layouts_raise(bad):
    with pytest.raises(ValueError):
        ConditionLayout(**bad)


@settings(max_examples=60, deadline=None)
@given(non_person=st.integers(0, 4), groups=st.lists(st.integers(1, 5), max_size=4),
       frames=st.integers(1, 6), P=st.integers(1, 12))
def test_blocks_tile_the_sequence(non_person, groups, frames, P):
    lay = ConditionLayout(non_person, groups)
    blocks = lay.blocks(frames, P)
    assert blocks[0].kind == "video" and blocks[0].size == frames * P
    pos = 0
    for b in blocks:
        assert b.start == pos and b.stop > b.start and b.size == b.frames * P
        pos = b.stop
    assert pos == lay.sequence_length(frames, P)
    kinds = [b.kind for b in blocks[1:]]
    assert kinds == ["non_person"] * non_person + ["person"] * len(groups)
    assert [b.frames for b in blocks[1 + non_person:]] == list(groups)
    ranges = lay.image_token_ranges(frames, P)
    assert len(ranges) == lay.num_images
    assert all(e - s == P for s, e in ranges) and (not ranges or ranges[-1][1] == pos)
