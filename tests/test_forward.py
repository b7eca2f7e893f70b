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


def test_host_call_checks_in_order_and_name_what_to_do():
    """lumosx_core.relational.host_call: what a model call carrying LumosX data is refused
    for, first reason first, and the later wrappers run around the relational forward."""
    from lumosx_core import RelationalConfig
    from lumosx_core.relational.host_call import check_call, run_inner_wrappers

    class WanModel:
        model_type = "i2v"

    cfg = RelationalConfig(ConditionLayout(0, [2]))
    lat, masks = torch.zeros(1, 16, 2, 2, 2), torch.zeros(1, 2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="incomplete"):
        check_call(WanModel(), False, None, masks, cfg)
    with pytest.raises(ValueError, match=r"this MODEL is WanModel \(i2v\)"):
        check_call(WanModel(), False, lat, masks, cfg)
    with pytest.raises(ValueError, match="Phantom"):
        check_call(WanModel(), True, lat, masks, cfg, time_dim_concat=torch.zeros(1))
    with pytest.raises(ValueError, match="CLIP-vision"):
        check_call(WanModel(), True, lat, masks, cfg, clip_fea=torch.zeros(1))
    with pytest.raises(ValueError, match="arrived cut"):
        check_call(WanModel(), True, lat[:, :, :1], masks, cfg)
    check_call(WanModel(), True, lat, masks, cfg)

    calls = []

    class Executor:
        """The host's executor chain: ours at ``idx``, one wrapper after it."""

        def __init__(self, inner, class_obj, wrappers, idx):
            self.inner, self.class_obj, self.wrappers, self.idx = inner, class_obj, wrappers, idx

        @classmethod
        def new_class_executor(cls, inner, class_obj, wrappers, idx):
            return cls(inner, class_obj, wrappers, idx)

        def execute(self, *a, **k):
            if self.idx < len(self.wrappers):
                nxt = Executor(self.inner, self.class_obj, self.wrappers, self.idx + 1)
                return self.wrappers[self.idx](nxt, *a, **k)
            return self.inner(*a, **k)

    def later(executor, x):
        calls.append("later")
        return executor.execute(x + 1)

    def inner(x):
        calls.append("inner")
        return x * 10

    assert run_inner_wrappers(Executor(None, None, ["ours", later], 0), inner, 1) == 20
    assert calls == ["later", "inner"]
    assert run_inner_wrappers(object(), inner, 2) == 20        # no chain: inner directly


def test_unpatched_guard_refuses_a_call_without_our_wrapper(caplog):
    from lumosx_core.relational.host_call import NOT_PATCHED, UnpatchedGuard
    seen = []
    guard = UnpatchedGuard(lambda opts: seen.append(opts) or opts.get("ours", False))
    assert guard == UnpatchedGuard(None) and hash(guard) == hash(UnpatchedGuard(None))

    def _apply_model(extra, transformer_options):       # the host's call site
        return hasattr(extra, "dtype")

    assert _apply_model(guard, {"ours": True}) is False   # passes through: not a tensor
    with pytest.raises(ValueError) as err:
        _apply_model(guard, {})
    assert str(err.value) == NOT_PATCHED and seen == [{"ours": True}, {}]
    UnpatchedGuard.warned = False
    assert hasattr(guard, "dtype") is False and hasattr(guard, "dtype") is False
    assert caplog.text.count("cannot check") == 1          # elsewhere: warned once
