"""The per-run set-up cache of the relational forward: hit on every step after the first of a
run, never shared between jobs whose layout, sizes, masks or switches differ."""
import pytest
import torch

from lumosx_core import ConditionLayout, RelationalCache, relational_forward
from oracle import dense_relational_forward
from standin import make_wan

TOL = 1e-5
H, W, T, LT = 18, 20, 2, 24     # 9 x 10 token grid: padded to 16 x 16 for the text bias


@pytest.fixture(scope="module")
def model():
    return make_wan(dim=256, heads=2, layers=2, ffn=256, text_dim=32)


def _job(layout, seed, B=2, T=T, H=H, W=W):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, T, H, W, generator=g)
    ctx = torch.randn(B, LT, 32, generator=g)
    cond = torch.randn(1, 16, layout.num_images, H, W, generator=g)
    masks = torch.rand(B, layout.num_images, LT, generator=g) > 0.6
    return x, ctx, cond, masks


def _steps(x, seed):
    """Three sampler steps: new noise and timestep each, same references and masks."""
    g = torch.Generator().manual_seed(seed + 99)
    return [(x + 0.1 * s * torch.randn(x.shape, generator=g),
             torch.full((x.shape[0],), 900.0 - 300 * s)) for s in range(3)]


@torch.no_grad()
def test_cache_is_hit_within_one_run_and_changes_nothing(model):
    layout = ConditionLayout(1, [3, 2])
    x, ctx, cond, masks = _job(layout, 0)
    cache = RelationalCache()
    misses = []
    for xs, t in _steps(x, 0):
        cached = relational_forward(model, xs, t, ctx, cond, layout, masks, cache=cache)
        plain = relational_forward(model, xs, t, ctx, cond, layout, masks)
        assert torch.equal(cached, plain)
        misses.append(cache.misses)
    # freqs, self-attention plan, cell index, text weights: built on the first step only
    assert misses == [4, 4, 4]
    assert cache.hits == 8 and len(cache) == 4


@torch.no_grad()
def test_jobs_with_other_inputs_never_share_cached_data(model):
    """One cache (one MODEL in one ComfyUI process) serving jobs that differ in one input each.
    Layouts with the same number of images and so the same tensor shapes are included: a key
    made of shapes alone would hand them each other's positions, blocks and templates."""
    base = ConditionLayout(1, [2])
    # (layout, switches, seed of inputs and masks, size, must build new set-up)
    jobs = [
        (base, {}, 0, {}, True),
        (ConditionLayout(0, [3]), {}, 0, {}, True),         # same N_c, other grouping
        (ConditionLayout(0, [1, 2]), {}, 0, {}, True),      # same N_c, two people
        (base, {}, 1, {}, True),                            # other phrase masks and inputs
        (base, {"r2pe": False}, 0, {}, True),
        (base, {"parity": False}, 0, {}, True),
        (base, {"self_mask": False}, 0, {}, False),         # may reuse: nothing it uses differs
        (base, {"ratio": 1.0}, 0, {}, False),               # ratio is applied after the cache
        (base, {}, 0, {"H": 16, "W": 24}, True),            # other video size
        (base, {}, 0, {"T": 3}, True),                      # other length
    ]
    cache = RelationalCache(per_kind=2)   # small, so entries are also evicted on the way
    results = []
    for layout, flags, seed, size, fresh in jobs + jobs[:3]:   # and back to the first jobs
        x, ctx, cond, masks = _job(layout, seed, **size)
        t = torch.tensor([700.0, 300.0])
        before = cache.misses
        cached = relational_forward(model, x, t, ctx, cond, layout, masks, cache=cache, **flags)
        dense = dense_relational_forward(model, x, t, ctx, cond, layout, masks, **flags)
        assert (cached - dense).abs().max().item() <= TOL, (layout, flags, seed, size)
        assert torch.equal(cached, relational_forward(model, x, t, ctx, cond, layout, masks,
                                                      **flags))
        results.append(cached)
        if fresh and len(results) <= len(jobs):
            assert cache.misses > before, f"job {len(results) - 1} reused another job's set-up"
    # the same layout's second run must differ from the other layouts' outputs (sanity: the
    # features matter at this size, so a shared entry would have been visible)
    assert (results[0] - results[1]).abs().max().item() > 1e-3
    assert (results[0] - results[3]).abs().max().item() > 1e-3


def test_cache_evicts_least_recent_and_none_key_is_not_cached():
    cache = RelationalCache(per_kind=2)
    built = []

    def make(v):
        built.append(v)
        return v
    assert cache.get("k", 1, lambda: make(1)) == 1
    assert cache.get("k", 2, lambda: make(2)) == 2
    assert cache.get("k", 1, lambda: make(-1)) == 1          # hit, 1 is now most recent
    assert cache.get("k", 3, lambda: make(3)) == 3           # evicts 2
    assert cache.get("k", 2, lambda: make(22)) == 22         # rebuilt
    assert cache.get("k", None, lambda: make(5)) == 5
    assert cache.get("k", None, lambda: make(6)) == 6        # uncacheable: built each time
    assert built == [1, 2, 3, 22, 5, 6] and len(cache) == 2


@torch.no_grad()
def test_rope_options_are_part_of_the_key(model):
    """ComfyUI's ScaleROPE options change every position: a RoPE table built without them must
    not serve a job that has them (and back)."""
    layout = ConditionLayout(1, [2])
    x, ctx, cond, masks = _job(layout, 0)
    t = torch.tensor([700.0, 300.0])
    cache = RelationalCache()
    for opts in ({}, {"rope_options": {"scale_t": 2.0, "shift_y": 1.0}}, {}):
        cached = relational_forward(model, x, t, ctx, cond, layout, masks, cache=cache,
                                    transformer_options=dict(opts))
        plain = relational_forward(model, x, t, ctx, cond, layout, masks,
                                   transformer_options=dict(opts))
        assert torch.equal(cached, plain), opts
    assert cache.misses == 5      # 4 on the first job, the scaled RoPE table on the second
