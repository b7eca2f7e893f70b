"""The relational forward on ComfyUI's own WanModel: stock equality, dense parity, isolation."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from lumosx_core import ConditionLayout, relational_forward
from oracle import dense_relational_forward
from standin import make_wan

TOL = 1e-5
# 9 x 10 token grid (latent 18 x 20): padded to 16 x 16, so the parity quirk is exercised
H, W, T, LT = 18, 20, 2, 24


@pytest.fixture(scope="module")
def model():
    return make_wan(dim=256, heads=2, layers=2, ffn=256, text_dim=32)


def _inputs(layout, B=2, seed=0, T=T, H=H, W=W):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, T, H, W, generator=g)
    t = torch.tensor([700.0, 300.0][:B] + [500.0] * max(0, B - 2))
    ctx = torch.randn(B, LT, 32, generator=g)
    cond = torch.randn(1, 16, layout.num_images, H, W, generator=g)
    masks = torch.rand(B, layout.num_images, LT, generator=g) > 0.7
    return x, t, ctx, cond, masks


@torch.no_grad()
def test_no_references_equals_stock_forward(model):
    x, t, ctx, _, _ = _inputs(ConditionLayout())
    stock = model(x, t, ctx)
    ours = relational_forward(model, x, t, ctx, None, ConditionLayout())
    assert ours.shape == x.shape
    assert (ours - stock).abs().max().item() <= TOL
    empty = torch.zeros(1, 16, 0, H, W)
    assert (relational_forward(model, x, t, ctx, empty, ConditionLayout(), None) - stock).abs().max() <= TOL


@torch.no_grad()
@pytest.mark.parametrize("layout", [ConditionLayout(1, [3, 2]), ConditionLayout(0, [1, 1]),
                                    ConditionLayout(2, [])])
def test_all_features_off_equals_phantom_time_dim_concat(model, layout):
    x, t, ctx, cond, masks = _inputs(layout)
    stock = model(x, t, ctx, time_dim_concat=cond.expand(2, -1, -1, -1, -1))
    ours = relational_forward(model, x, t, ctx, cond, layout, masks, r2pe=False,
                              self_mask=False, cross_mask=False)
    assert ours.shape == x.shape
    assert (ours - stock).abs().max().item() <= TOL


flag_sets = st.fixed_dictionaries({
    "r2pe": st.booleans(), "self_mask": st.booleans(), "cross_mask": st.booleans(),
    "parity": st.booleans(), "ratio": st.sampled_from([0.5, 1.0, 0.25])})


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(non_person=st.integers(0, 2), groups=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       flags=flag_sets, seed=st.integers(0, 1000), B=st.integers(1, 2))
@torch.no_grad()
def test_efficient_equals_dense_reference(model, non_person, groups, flags, seed, B):
    layout = ConditionLayout(non_person, groups)
    x, t, ctx, cond, masks = _inputs(layout, B=B, seed=seed)
    ours = relational_forward(model, x, t, ctx, cond, layout, masks, **flags)
    dense = dense_relational_forward(model, x, t, ctx, cond, layout, masks, **flags)
    assert ours.shape == x.shape
    assert (ours - dense).abs().max().item() <= TOL


@torch.no_grad()
def test_each_feature_changes_the_output(model):
    """The test model is built so that switching any feature moves the output far above
    fp32 noise -- otherwise the parity tests above could not catch a wrong implementation."""
    layout = ConditionLayout(1, [3, 2])
    x, t, ctx, cond, masks = _inputs(layout)
    full = relational_forward(model, x, t, ctx, cond, layout, masks)
    for flags in [dict(r2pe=False), dict(self_mask=False), dict(cross_mask=False),
                  dict(parity=False), dict(ratio=1.0)]:
        other = relational_forward(model, x, t, ctx, cond, layout, masks, **flags)
        rel = ((other - full).norm() / full.norm()).item()
        assert rel > 1e-3, (flags, rel)


@torch.no_grad()
def test_isolation_between_condition_blocks(model):
    layout = ConditionLayout(1, [2, 2, 1])          # bg | A: 2 | B: 2 | C: 1
    x, t, ctx, cond, masks = _inputs(layout, B=1)
    P = (H // 2) * (W // 2)
    blocks = layout.blocks(T, P)
    changed = blocks[3]                               # person B
    cond2 = cond.clone()
    cond2[:, :, 3:5] = torch.randn_like(cond2[:, :, 3:5])

    def run(c):
        states = []
        hooks = [b.register_forward_hook(lambda m, i, o: states.append(o.clone()))
                 for b in model.blocks]
        try:
            out = relational_forward(model, x, t, ctx, c, layout, masks)
        finally:
            for h in hooks:
                h.remove()
        return out, states

    out1, s1 = run(cond)
    out2, s2 = run(cond2)
    assert len(s1) == len(model.blocks)
    for a, b in zip(s1, s2):
        for blk in blocks[1:]:
            if blk is changed:
                assert (a[:, blk.start:blk.stop] - b[:, blk.start:blk.stop]).abs().max() > 1e-3
            else:
                assert torch.equal(a[:, blk.start:blk.stop], b[:, blk.start:blk.stop]), blk
    assert (out1 - out2).abs().max() > 1e-3          # the video does see person B


@torch.no_grad()
def test_batch_items_get_their_own_bias(model):
    """cond and uncond are batched together in ComfyUI: each item must equal its own run."""
    layout = ConditionLayout(1, [2, 1])
    x, t, ctx, cond, masks = _inputs(layout, B=2)
    masks[1] = False                                   # the second item: no text bias at all
    both = relational_forward(model, x, t, ctx, cond, layout, masks)
    for i in range(2):
        alone = relational_forward(model, x[i:i + 1], t[i:i + 1], ctx[i:i + 1], cond, layout,
                                   masks[i:i + 1])
        assert (both[i:i + 1] - alone).abs().max().item() <= TOL


@torch.no_grad()
def test_chains_an_existing_attention_override(model):
    layout = ConditionLayout(0, [2, 1])
    x, t, ctx, cond, masks = _inputs(layout, B=1)
    seen = []

    def previous(func, q, k, v, heads, **kw):
        seen.append(q.shape[1])
        return func(q, k, v, heads, **kw)

    base = relational_forward(model, x, t, ctx, cond, layout, masks)
    chained = relational_forward(model, x, t, ctx, cond, layout, masks,
                                 transformer_options={"optimized_attention_override": previous})
    assert seen, "the previous override was not called"
    assert (base - chained).abs().max().item() <= TOL


def test_bad_inputs_name_the_input(model):
    layout = ConditionLayout(1, [2])
    x, t, ctx, cond, masks = _inputs(layout, B=1)
    with pytest.raises(ValueError, match="cond_latents"):
        relational_forward(model, x, t, ctx, cond[:, :, :2], layout, masks)
    with pytest.raises(ValueError, match="phrase_masks"):
        relational_forward(model, x, t, ctx, cond, layout, masks[:, :2])
    with pytest.raises(ValueError, match="cond_latents"):
        relational_forward(model, x, t, ctx, None, layout, masks)
