"""Efficient relational attention pieces against their dense counterparts."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lumosx_core import (ConditionLayout, image_bias, relational_cross_attention,
                         relational_self_attention, text_weights)
from lumosx_core.relational.attention import sdpa_attention
from oracle import (_attention, dense_cross_bias, dense_image_scores,
                                   dense_self_mask, dense_templates)

layouts = st.builds(ConditionLayout, st.integers(0, 3), st.lists(st.integers(1, 4), max_size=3))


def _qkv(B, L, C, seed, Lk=None):
    g = torch.Generator().manual_seed(seed)
    Lk = L if Lk is None else Lk
    return (torch.randn(B, L, C, generator=g) * 2, torch.randn(B, Lk, C, generator=g) * 2,
            torch.randn(B, Lk, C, generator=g))


@settings(max_examples=40, deadline=None)
@given(layout=layouts, frames=st.integers(1, 4), P=st.integers(1, 9), B=st.integers(1, 2),
       seed=st.integers(0, 10_000), self_mask=st.booleans())
def test_self_attention_equals_dense_mask(layout, frames, P, B, seed, self_mask):
    heads, C = 2, 16
    L = layout.sequence_length(frames, P)
    q, k, v = _qkv(B, L, C, seed)
    ours = relational_self_attention(q, k, v, heads, layout, frames, P, self_mask=self_mask)
    dense = _attention(q, k, v, heads, mask=dense_self_mask(layout, frames, P, self_mask))
    assert ours.shape == (B, L, C)
    assert (ours - dense).abs().max().item() <= 1e-5


def test_self_attention_batches_equal_blocks_and_never_builds_LxL():
    layout = ConditionLayout(non_person=2, groups=[2, 1, 2])   # sizes: P,P | 2P,P,2P
    frames, P, heads = 3, 6, 2
    L = layout.sequence_length(frames, P)
    q, k, v = _qkv(1, L, 8, 0)
    calls = []

    def spy(q_, k_, v_, h_):
        calls.append((q_.shape[0], q_.shape[1], k_.shape[1]))
        return sdpa_attention(q_, k_, v_, h_)

    relational_self_attention(q, k, v, heads, layout, frames, P, attn=spy)
    # one video call over all keys, one batched call per distinct block size
    assert calls == [(1, frames * P, L), (3, P, P), (2, 2 * P, 2 * P)]


def test_reference_quirk_not_copied_group_of_T_images():
    # T = 3 and a group of 3 images: the group must still see only itself
    layout = ConditionLayout(0, [3, 1])
    frames, P = 3, 4
    mask = dense_self_mask(layout, frames, P)
    g0 = slice(12, 24)
    assert mask[g0, g0].all() and not mask[g0, 24:].any() and not mask[g0, :12].any()


@settings(max_examples=40, deadline=None)
@given(layout=layouts, seed=st.integers(0, 10_000), B=st.integers(1, 3), L=st.integers(1, 12))
def test_text_weights_equal_spec_formula(layout, seed, B, L):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(B, layout.num_images, L, generator=g) > 0.6
    assert torch.allclose(text_weights(layout, masks), dense_templates(layout, masks), atol=1e-7)


def test_template_shared_words_cancel_and_others_push_down():
    layout = ConditionLayout(0, [2, 1, 1])
    # tokens: 0 "man"(p0) 1 "jacket"(p0 attr) 2 "woman"(p1) 3 "hat"(p2) 4 shared by p0 and p1
    m = torch.zeros(1, 4, 6, dtype=torch.bool)
    m[0, 0, [0, 4]] = True
    m[0, 1, 1] = True
    m[0, 2, [2, 4]] = True
    m[0, 3, 3] = True
    w = text_weights(layout, m)[0]
    assert w[0].tolist() == w[1].tolist() == [1, 1, -0.5, -0.5, 0.5, 0]
    assert w[2].tolist() == [-0.5, -0.5, 1, -0.5, 0.5, 0]
    assert w[3].tolist() == [-0.5, -0.5, -0.5, 1, -1, 0]


@pytest.mark.parametrize("Hp,Wp", [(9, 10), (8, 16), (3, 5), (30, 52), (17, 8)])
@pytest.mark.parametrize("parity", [True, False])
def test_image_scores_equal_released_construction(Hp, Wp, parity):
    heads, C, Lt = 2, 16, 7
    q, k, _ = _qkv(2, Hp * Wp, C, Hp * 100 + Wp, Lk=Lt)
    w = torch.randn(2, Lt)
    ours = image_bias(q, k, heads, Hp, Wp, w, ratio=0.5, parity=parity)
    for b in range(2):
        dense = 0.5 * dense_image_scores(q[b], k[b], heads, Hp, Wp, parity).abs() * w[b]
        assert (ours[b] - dense).abs().max().item() <= 1e-5


def test_parity_quirk_only_matters_when_width_is_not_a_multiple_of_8():
    heads, C, Lt = 2, 16, 5
    w = torch.ones(1, Lt)
    q, k, _ = _qkv(1, 9 * 10, C, 1, Lk=Lt)
    a = image_bias(q, k, heads, 9, 10, w, 1.0, parity=True)
    b = image_bias(q, k, heads, 9, 10, w, 1.0, parity=False)
    assert (a - b).abs().max() > 1e-2
    q, k, _ = _qkv(1, 9 * 16, C, 1, Lk=Lt)
    assert torch.equal(image_bias(q, k, heads, 9, 16, w, 1.0, True),
                       image_bias(q, k, heads, 9, 16, w, 1.0, False))


@settings(max_examples=30, deadline=None)
@given(layout=layouts, frames=st.integers(1, 3), Hp=st.integers(1, 10), Wp=st.integers(1, 10),
       seed=st.integers(0, 10_000), parity=st.booleans(), ratio=st.sampled_from([0.0, 0.5, 2.0]))
def test_cross_attention_equals_dense_bias(layout, frames, Hp, Wp, seed, parity, ratio):
    heads, C, Lt, B = 2, 16, 6, 2
    L = layout.sequence_length(frames, Hp * Wp)
    q, k, v = _qkv(B, L, C, seed, Lk=Lt)
    g = torch.Generator().manual_seed(seed + 1)
    masks = torch.rand(B, layout.num_images, Lt, generator=g) > 0.5
    ours = relational_cross_attention(q, k, v, heads, layout, frames, Hp, Wp,
                                      text_weights(layout, masks), ratio, parity)
    bias = dense_cross_bias(q, k, heads, layout, frames, Hp, Wp, masks, ratio, parity)
    dense = _attention(q, k, v, heads, bias=bias)
    assert (ours - dense).abs().max().item() <= 1e-5
    # video rows never biased
    plain = _attention(q, k, v, heads)
    assert (ours[:, :frames * Hp * Wp] - plain[:, :frames * Hp * Wp]).abs().max() <= 1e-5
