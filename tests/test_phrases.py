"""Phrase-to-token masks: strict contiguous match, every occurrence, never padding."""
import torch
from hypothesis import given, settings, strategies as st

from lumosx_core import find_occurrences, phrase_mask, strip_special
from lumosx_core.conditioning.binding import bind_phrases
from lumosx_core.conditioning.references import RefImage


def test_all_occurrences_contiguous_only():
    prompt = [5, 7, 9, 3, 7, 9, 7, 4, 9, 1, 0, 0]
    m = phrase_mask(prompt, [7, 9], length=16)
    assert m.shape == (16,) and m.dtype == torch.bool
    assert m.nonzero().flatten().tolist() == [1, 2, 4, 5]   # 7 ... 9 (gap) is not a match
    assert find_occurrences(prompt, [7, 9]) == [1, 4]


def test_absent_or_empty_phrase_is_all_false():
    assert not phrase_mask([1, 2, 3], [4], 8).any()
    assert not phrase_mask([1, 2, 3], [], 8).any()
    assert not phrase_mask([1, 2], [1, 2, 3], 8).any()


def test_padding_never_marked():
    prompt = [8, 8, 1, 0, 0, 0]
    assert phrase_mask(prompt, [0, 0], 6, valid=3).sum() == 0
    assert phrase_mask(prompt, [8], 6, valid=3).nonzero().flatten().tolist() == [0, 1]


def test_strip_special_cuts_at_eos():
    assert strip_special([12, 44, 1, 0, 0]) == [12, 44]
    assert strip_special([12, 1, 13]) == [12]


def test_bind_phrases_stacks_one_mask_per_reference():
    refs = [RefImage(torch.ones(2, 2, 3), p, "object") for p in ("a b", "c", "d")]
    ms, report = bind_phrases(refs, [3, 4, 5, 3, 4], [[3, 4], [5], [9]], 6, valid=5)
    assert [m.found for m in report.matches] == [True, True, False]
    assert ms.tolist() == [[True, True, False, True, True, False],
                           [False, False, True, False, False, False],
                           [False] * 6]


@settings(max_examples=80, deadline=None)
@given(prompt=st.lists(st.integers(2, 6), min_size=1, max_size=30),
       phrase=st.lists(st.integers(2, 6), min_size=1, max_size=3))
def test_mask_marks_exactly_the_union_of_matches(prompt, phrase):
    m = phrase_mask(prompt, phrase, length=40)
    expect = [False] * 40
    k = len(phrase)
    for s in range(len(prompt) - k + 1):
        if prompt[s:s + k] == phrase:
            for i in range(s, s + k):
                expect[i] = True
    assert m.tolist() == expect
