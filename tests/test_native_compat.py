"""LumosX with the nodes Wan users already chain (docs/works-with.md): each test runs
ComfyUI's own node classes in-process on the tiny test Wan (loaded by the stock loader) and
checks the row's claim. Features are detected in the host, never its version: a row whose core
node the host lacks skips with the reason."""
import sys

import pytest
import torch

import assets
from host_nodes import core_node, run
from standin import tiny_dit_state_dict

T, H, W, LT = 3, 8, 10, 16       # latent frames, latent h/w, text tokens
LAYOUT = (1, [2, 1])             # background, a person with an attribute, a face-only person


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sd():
    return tiny_dit_state_dict()


@pytest.fixture(scope="module")
def model(pack, sd):
    import comfy.sd
    m = comfy.sd.load_diffusion_model_state_dict(dict(sd))
    assert m is not None
    return m


def conds(pack, seed=0, batch_refs=None, neg_no_bias=True):
    """Synthetic LumosX conditioning (random text embeddings and reference latents)."""
    core, patch = pack.lumosx_core, pack.nodes.patch
    g = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(1, LT, 4096, generator=g), {}]]
    neg = [[torch.randn(1, LT, 4096, generator=g), {}]]
    layout = core.ConditionLayout(*LAYOUT)
    latents = torch.randn(1, 16, layout.num_images, H, W, generator=g)
    masks = torch.zeros(1, layout.num_images, LT, dtype=torch.bool)
    masks[0, 0, 1:3] = masks[0, 1, 4] = masks[0, 2, 5:7] = masks[0, 3, 9] = True
    cfg = core.RelationalConfig(layout)
    return (patch.attach(pos, latents, masks, cfg),
            patch.attach(neg, latents, torch.zeros_like(masks) if neg_no_bias else masks, cfg),
            neg)


def ksample(model, pos, neg, seed=1, steps=2, cfg=4.0, batch=1, sampler="euler", **latent_kw):
    import nodes
    latent = {"samples": torch.zeros(batch, 16, T, H, W), **latent_kw}
    (out,) = nodes.common_ksampler(model, seed, steps, cfg, sampler, "simple", pos, neg, latent)
    return out["samples"]


class PassLog:
    """A DIFFUSION_MODEL wrapper registered *before* LumosX Apply (so it sees every model call
    as the sampler makes it): records, per call, the batch, whether LumosX data came along and
    the data itself."""

    def __init__(self, patch):
        self.patch = patch
        self.calls = []

    def __call__(self, executor, x, timestep, context, *args, **kwargs):
        self.calls.append(dict(batch=x.shape[0], frames=x.shape[2], context=context.clone(),
                               latents=kwargs.get(self.patch.LATENTS),
                               masks=kwargs.get(self.patch.MASKS)))
        return executor(x, timestep, context, *args, **kwargs)

    def install(self, model):
        import comfy.patcher_extension as pe
        m = model.clone()
        m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test_pass_log", self)
        return m


# -- LoRA --------------------------------------------------------------------------------------

LORA_TARGETS = ["blocks.0.self_attn.q", "blocks.1.cross_attn.k", "blocks.0.ffn.0"]
LORA_RANK, LORA_ALPHA, LORA_STRENGTH = 4, 2.0, 0.8


def _lora(sd):
    """A LoRA for the tiny model in ComfyUI's own key format (what its LoRA extraction saves:
    ``diffusion_model.<module>.lora_up/lora_down.weight`` + ``.alpha``)."""
    g = torch.Generator().manual_seed(7)
    lora = {}
    for key in LORA_TARGETS:
        out_f, in_f = sd[key + ".weight"].shape
        lora[f"diffusion_model.{key}.lora_down.weight"] = 0.5 * torch.randn(LORA_RANK, in_f, generator=g)
        lora[f"diffusion_model.{key}.lora_up.weight"] = 0.5 * torch.randn(out_f, LORA_RANK, generator=g)
        lora[f"diffusion_model.{key}.alpha"] = torch.tensor(LORA_ALPHA)
    return lora


def _merged(sd, lora):
    merged = dict(sd)
    for key in LORA_TARGETS:
        up = lora[f"diffusion_model.{key}.lora_up.weight"]
        down = lora[f"diffusion_model.{key}.lora_down.weight"]
        merged[key + ".weight"] = sd[key + ".weight"] + (LORA_STRENGTH * LORA_ALPHA / LORA_RANK) * (up @ down)
    return merged


def test_lora_before_or_after_apply_equals_merged_weights(pack, model, sd, tmp_path):
    import comfy.sd
    import folder_paths
    import safetensors.torch
    patch = pack.nodes.patch
    lora = _lora(sd)
    lora_dir = tmp_path / "loras"
    lora_dir.mkdir()
    safetensors.torch.save_file(lora, str(lora_dir / "lumosx_test_lora.safetensors"))
    folder_paths.add_model_folder_path("loras", str(lora_dir))
    loader = core_node("nodes", "LoraLoaderModelOnly")

    pos, neg, plain_neg = conds(pack)
    plain_pos = [[pos[0][0], {}]]
    stock_before = ksample(model, plain_pos, plain_neg)
    lumosx_before = ksample(patch.apply_lumosx(model), pos, neg)

    merged = patch.apply_lumosx(comfy.sd.load_diffusion_model_state_dict(_merged(sd, lora)))
    want = ksample(merged, pos, neg)
    assert (want - lumosx_before).abs().max() > 1e-3          # the LoRA matters

    (after,) = run(loader, model=patch.apply_lumosx(model),
                   lora_name="lumosx_test_lora.safetensors", strength_model=LORA_STRENGTH)
    (lora_model,) = run(loader, model=model, lora_name="lumosx_test_lora.safetensors",
                        strength_model=LORA_STRENGTH)
    before = patch.apply_lumosx(lora_model)
    for m in (after, before):
        assert torch.allclose(ksample(m, pos, neg), want, atol=1e-5, rtol=1e-5)
    # no leak: the unpatched MODEL and a fresh LumosX copy still give what they gave before
    assert torch.equal(ksample(model, plain_pos, plain_neg), stock_before)
    assert torch.equal(ksample(patch.apply_lumosx(model), pos, neg), lumosx_before)


# -- custom sampling ---------------------------------------------------------------------------

def test_sampler_custom_advanced_matches_lumosx_sampler(pack, model):
    from ComfyUI_LumosX.nodes.sampling import LumosXSampler
    cs = "comfy_extras.nodes_custom_sampler"
    pos, neg, _ = conds(pack)
    seed, steps, cfg, shift = 5, 3, 5.0, 8.0
    latent = {"samples": torch.zeros(1, 16, T, H, W)}
    (ours,) = run(LumosXSampler, model=model, positive=pos, negative=neg, latent=latent,
                  seed=seed, steps=steps, cfg=cfg, sampler_name="dpmpp_2m", scheduler="simple",
                  shift=shift, denoise=1.0)

    (m,) = run(core_node("comfy_extras.nodes_model_advanced", "ModelSamplingSD3"),
               model=pack.nodes.patch.apply_lumosx(model), shift=shift)
    (guider,) = run(core_node(cs, "CFGGuider"), model=m, positive=pos, negative=neg, cfg=cfg)
    (sigmas,) = run(core_node(cs, "BasicScheduler"), model=m, scheduler="simple", steps=steps,
                    denoise=1.0)
    (sampler,) = run(core_node(cs, "KSamplerSelect"), sampler_name="dpmpp_2m")
    (noise,) = run(core_node(cs, "RandomNoise"), noise_seed=seed)
    out = run(core_node(cs, "SamplerCustomAdvanced"), noise=noise, guider=guider,
              sampler=sampler, sigmas=sigmas, latent_image=latent)[0]
    assert out["samples"].shape == ours["samples"].shape
    assert torch.allclose(out["samples"], ours["samples"], atol=1e-6, rtol=0)
    plain = ksample(model, [[pos[0][0], {}]], [[neg[0][0], {}]], seed=seed)
    assert (plain - ours["samples"]).abs().max() > 1e-3      # the references were used


# -- reference-dropped dual CFG ----------------------------------------------------------------

@pytest.fixture(scope="module")
def bound(pack):
    """Bind outputs for a background + one person with an attribute (tiny umT5, tiny VAE)."""
    import comfy.sd
    from lumosx_test_pack import build_tiny_clip
    from ComfyUI_LumosX.nodes.bind import LumosXBind
    from ComfyUI_LumosX.nodes.references import LumosXPerson, LumosXReference
    clip = build_tiny_clip(assets.spiece_model())
    vae = comfy.sd.VAE(sd=assets.tiny_wan_vae_state_dict())
    img = lambda c: assets.to_image_tensor(assets.garment(c))  # noqa: E731
    refs = LumosXReference.execute(assets.to_image_tensor(assets.scene()), "sunny garden",
                                   "background").result[0]
    refs = LumosXPerson.execute(img((230, 220, 200)), "astronaut", refs,
                                attribute_1=img((200, 30, 30)), phrase_1="red jacket").result[0]
    return run(LumosXBind, clip=clip, vae=vae, references=refs, width=W * 8, height=H * 8,
               length=(T - 1) * 4 + 1, negative_prompt="blurry, static",
               prompt="an astronaut in a red jacket in a sunny garden", uncond_bias="no bias")


def test_dual_cfg_three_conditionings_reach_the_model_as_designed(pack, model, bound):
    patch = pack.nodes.patch
    positive, negative, latent, _, _, negative_no_refs = bound
    cs = "comfy_extras.nodes_custom_sampler"
    log = PassLog(patch)
    (m,) = run(core_node("comfy_extras.nodes_model_advanced", "ModelSamplingSD3"),
               model=patch.apply_lumosx(log.install(model)), shift=8.0)

    def dual(cfg2):
        (guider,) = run(core_node(cs, "DualCFGGuider"), model=m, cond1=positive, cond2=negative,
                        negative=negative_no_refs, cfg_conds=3.0, cfg_cond2_negative=cfg2,
                        style="regular")
        (sigmas,) = run(core_node(cs, "BasicScheduler"), model=m, scheduler="simple", steps=1,
                        denoise=1.0)
        (sampler,) = run(core_node(cs, "KSamplerSelect"), sampler_name="euler")
        (noise,) = run(core_node(cs, "RandomNoise"), noise_seed=3)
        return run(core_node(cs, "SamplerCustomAdvanced"), noise=noise, guider=guider,
                   sampler=sampler, sigmas=sigmas, latent_image=latent)[0]["samples"]

    # cfg_cond2_negative 1: the reference-free negative drops out: plain CFG (LumosX Sampler)
    from ComfyUI_LumosX.nodes.sampling import LumosXSampler
    (plain,) = run(LumosXSampler, model=model, positive=positive, negative=negative,
                   latent=latent, seed=3, steps=1, cfg=3.0, sampler_name="euler",
                   scheduler="simple", shift=8.0, denoise=1.0)
    assert torch.allclose(dual(1.0), plain["samples"], atol=1e-5 * plain["samples"].abs().max())
    log.calls.clear()
    out = dual(2.0)
    assert torch.isfinite(out).all()
    assert (out - plain["samples"]).abs().max() > 1e-3     # the reference guidance acts

    # one step = three conditionings, however the sampler batched them; name each by its text
    texts = {"positive": positive[0][0][0], "negative": negative[0][0][0]}
    seen = {}
    for call in log.calls:
        for i in range(call["batch"]):
            ctx = call["context"][i]
            name = next(n for n, t in texts.items()
                        if torch.allclose(ctx[:t.shape[0]], t.to(ctx), atol=1e-3))
            refs = call["latents"] is not None
            if refs:
                name += "+refs"
            seen[name] = call["masks"][i].bool() if refs else None
    assert set(seen) == {"positive+refs", "negative+refs", "negative"}
    pos_masks = positive[0][1]["model_conds"][patch.MASKS].cond[0]
    assert torch.equal(seen["positive+refs"], pos_masks)           # positive: its phrase masks
    assert seen["positive+refs"].any()
    assert not seen["negative+refs"].any()                         # uncond_bias "no bias"
    assert seen["negative"] is None                                # text only: stock forward


# -- EasyCache ---------------------------------------------------------------------------------

def _count_lumosx_passes(pack, monkeypatch):
    """A list that gets the DiT timestep (a 0-d tensor: no host read, so nothing changes under
    torch.compile) of every LumosX forward from now on."""
    host_call = pack.lumosx_core.relational.host_call
    calls = []
    real = host_call.config_forward

    def spy(model, x, timestep, *a, **k):
        calls.append(timestep.flatten()[0])
        return real(model, x, timestep, *a, **k)

    monkeypatch.setattr(host_call, "config_forward", spy)
    return calls


def _rel(a, b):
    return float((a - b).norm() / b.norm())


EASYCACHE_STEPS, EASYCACHE_REUSE = 20, 0.3


@pytest.mark.parametrize("order", ["easycache_after_apply", "easycache_before_apply"])
def test_easycache_composes_with_lumosx(pack, model, order, monkeypatch, capsys):
    """EasyCache around the LumosX forward: with reuse_threshold 0 nothing is reused and the
    latent is identical; at 0.3 it skips steps (never the first two, which it needs to
    measure the change) and reuses the LumosX outputs there: the cached latent stays close to
    the uncached one -- at most 0.05 per skipped step, and within a quarter of how far the
    references move the video (the same run without them)."""
    node = core_node("comfy_extras.nodes_easycache", "EasyCache")
    patch = pack.nodes.patch
    pos, neg, plain_neg = conds(pack)
    steps = EASYCACHE_STEPS

    def build(threshold):
        if order == "easycache_after_apply":
            return run(node, model=patch.apply_lumosx(model), reuse_threshold=threshold,
                       start_percent=0.0, end_percent=1.0)[0]
        return patch.apply_lumosx(run(node, model=model, reuse_threshold=threshold,
                                      start_percent=0.0, end_percent=1.0)[0])

    calls = _count_lumosx_passes(pack, monkeypatch)
    ref = ksample(patch.apply_lumosx(model), pos, neg, steps=steps)
    every_step = [float(t) for t in calls]
    assert len(every_step) == steps                # cond + uncond batched: one pass per step
    calls.clear()
    off = ksample(build(0.0), pos, neg, steps=steps)   # caching off: nothing reused
    assert [float(t) for t in calls] == every_step and torch.equal(off, ref)
    calls.clear()
    cached = ksample(build(EASYCACHE_REUSE), pos, neg, steps=steps)
    ran = [float(t) for t in calls]
    skipped = [i for i, t in enumerate(every_step) if t not in ran]
    assert len(calls) == steps - len(skipped)      # the others ran the LumosX forward
    plain = ksample(model, [[pos[0][0], {}]], plain_neg, steps=steps)
    diff, effect = _rel(cached, ref), _rel(plain, ref)
    with capsys.disabled():
        print(f"\nEasyCache {order}, reuse {EASYCACHE_REUSE}, {steps} steps: skipped steps "
              f"{skipped}; cached vs uncached {diff:.3f}, without references {effect:.3f}")
    assert skipped and min(skipped) >= 2, skipped
    assert 0 < diff <= 0.05 * len(skipped), (diff, skipped)
    assert diff <= 0.25 * effect, (diff, effect)


# -- TorchCompileModel -------------------------------------------------------------------------

def with_sdpa(model):
    """A clone whose attention is ComfyUI's SDPA function, its default on GPUs. (Its CPU
    default, sub-quadratic attention, asks psutil for free memory on every call, which dynamo
    cannot trace: a graph break per attention call with or without LumosX.)"""
    import comfy.ldm.modules.attention as attention
    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = \
        lambda func, *args, **kwargs: attention.attention_pytorch(*args, **kwargs)
    return m


def compile_node(monkeypatch, backend=None):
    """The TorchCompileModel node; ``backend``: a dynamo backend swapped in for its
    ``inductor`` (the node's own compile path otherwise: wrapper, keys, guard options)."""
    node = core_node("comfy_extras.nodes_torch_compile", "TorchCompileModel")
    if backend is not None:
        import comfy_api.torch_helpers.torch_compile as tc
        real = getattr(tc.set_torch_compile_wrapper, "real", tc.set_torch_compile_wrapper)

        def swapped(model, backend=None, options=None, **kw):   # inductor's options go too
            return real(model=model, backend=backend_fn, **kw)
        backend_fn, swapped.real = backend, real
        for mod in (tc, sys.modules[node.__module__]):
            if hasattr(mod, "set_torch_compile_wrapper"):
                monkeypatch.setattr(mod, "set_torch_compile_wrapper", swapped)
    return node


def compiled_run(pack, model, pos, neg, monkeypatch, steps=2):
    """``(latent, graphs, breaks)``: sample through TorchCompileModel with a recording dynamo
    backend (dynamo's tracing and guards, the graphs run as traced); ``breaks``: dynamo's
    graph-break counter by reason."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    counters.clear()
    (m,) = run(compile_node(monkeypatch, record), model=model, backend="inductor")
    import comfy.patcher_extension as pe
    from comfy_api.torch_helpers.torch_compile import COMPILE_KEY
    assert m.get_wrappers(pe.WrappersMP.APPLY_MODEL, COMPILE_KEY)
    out = ksample(m, pos, neg, steps=steps)
    breaks = dict(counters["graph_break"])
    torch._dynamo.reset()
    return out, graphs, breaks


def _calls(graphs, name):
    return sum(1 for g in graphs for n in g.graph.nodes
               if n.op == "call_function" and name in str(n.target))


def test_torch_compile_model_compiles_the_lumosx_forward(pack, model, monkeypatch):
    """Dynamo compiles the LumosX forward (docs/works-with.md): the transformer blocks with
    the relational self-attention and text bias land in a compiled graph, and the only graph
    break LumosX adds is its set-up, which runs eagerly by design (forward_setup)."""
    patch = pack.nodes.patch
    pos, neg, plain_neg = conds(pack)
    plain_pos = [[pos[0][0], {}]]
    sdpa = with_sdpa(model)
    layers = len(model.model.diffusion_model.blocks)

    stock, stock_graphs, stock_breaks = compiled_run(pack, patch.apply_lumosx(sdpa), plain_pos,
                                                     plain_neg, monkeypatch)
    assert stock_breaks == {}                       # the stock Wan forward: one graph, no break
    assert _calls(stock_graphs, "scaled_dot_product_attention") == 2 * layers

    calls = _count_lumosx_passes(pack, monkeypatch)
    ref = ksample(patch.apply_lumosx(sdpa), pos, neg)
    calls.clear()
    out, graphs, breaks = compiled_run(pack, patch.apply_lumosx(sdpa), pos, neg, monkeypatch)
    assert calls, "the LumosX forward did not run under torch.compile"
    assert torch.allclose(out, ref, atol=1e-5 * ref.abs().max(), rtol=0)
    assert graphs, "dynamo compiled nothing (a full fallback to eager)"
    # the blocks are compiled: every linear layer of every block (q, k, v, o of self- and
    # cross-attention, the two FFN layers) and more attention calls than the stock forward's
    # two per block -- the relational self-attention and the per-image text bias -- in one graph
    biggest = max(graphs, key=lambda g: len(g.graph.nodes))
    assert _calls([biggest], "linear") >= 10 * layers
    assert _calls([biggest], "scaled_dot_product_attention") > 2 * layers
    # every break is the eager set-up (dynamo counts it once per frame it resumes)
    assert breaks and all("forward_setup" in reason for reason in breaks), breaks


def test_torch_compile_model_inductor_equals_eager(pack, monkeypatch):
    """The real ``inductor`` backend (C++ code generation with the host's compiler) on a
    one-block model, one step, LumosX conditioning: the same latent as eager."""
    import shutil
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler for inductor's CPU code")
    import comfy.sd
    import torch._dynamo
    patch = pack.nodes.patch
    small = with_sdpa(comfy.sd.load_diffusion_model_state_dict(
        tiny_dit_state_dict(dim=128, layers=1, ffn=128)))
    pos, neg, _ = conds(pack)
    ref = ksample(patch.apply_lumosx(small), pos, neg, steps=1)
    torch._dynamo.reset()
    (m,) = run(compile_node(monkeypatch), model=patch.apply_lumosx(small), backend="inductor")
    calls = _count_lumosx_passes(pack, monkeypatch)
    out = ksample(m, pos, neg, steps=1)
    torch._dynamo.reset()
    assert calls
    assert torch.allclose(out, ref, atol=1e-5 * ref.abs().max(), rtol=0), \
        (out - ref).abs().max()


# -- context windows ---------------------------------------------------------------------------

def test_context_windows_every_window_sees_all_references(pack, model, monkeypatch):
    node = core_node("comfy_extras.nodes_context_windows", "WanContextWindowsManual")
    core, patch = pack.lumosx_core, pack.nodes.patch
    frames = 5
    # as many reference images as latent frames: a handler that slices conditioning on the
    # time axis by its length would cut the references (0.33's does, unless told not to)
    layout = core.ConditionLayout(1, [2, 2])
    assert layout.num_images == frames
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, frames, H, W, generator=g)
    masks = torch.zeros(1, frames, LT, dtype=torch.bool)
    masks[0, :, 2] = True
    cfg = core.RelationalConfig(layout)
    pos = patch.attach([[torch.randn(1, LT, 4096, generator=g), {}]], latents, masks, cfg)
    neg = patch.attach([[torch.randn(1, LT, 4096, generator=g), {}]], latents, masks, cfg)

    seen = []
    real = core.relational.host_call.config_forward

    def spy(m, x, t, ctx, lat, lay, msk, **kw):
        seen.append((x.shape[2], lat.clone(), msk.clone()))
        return real(m, x, t, ctx, lat, lay, msk, **kw)

    monkeypatch.setattr(core.relational.host_call, "config_forward", spy)
    (m,) = run(node, model=patch.apply_lumosx(model), context_length=9, context_overlap=4,
               context_schedule="standard_static", fuse_method="pyramid")
    import nodes
    latent = {"samples": torch.zeros(1, 16, frames, H, W)}
    (out,) = nodes.common_ksampler(m, 1, 2, 4.0, "euler", "simple", pos, neg, latent)
    assert torch.isfinite(out["samples"]).all()
    window_frames = {f for f, _, _ in seen}
    assert window_frames and max(window_frames) < frames           # windows were used
    want = model.model.latent_format.process_in(latents)
    for f, lat, msk in seen:                                       # every window: every reference
        assert lat.shape[2] == frames
        assert torch.allclose(lat[:1], want, atol=1e-6)
        assert torch.equal(msk[:1].bool(), masks)


def test_references_cut_on_the_way_are_refused(pack):
    core = pack.lumosx_core
    check_whole = core.relational.host_call.check_whole
    cfg = core.RelationalConfig(core.ConditionLayout(1, [2, 2]))
    cut = torch.zeros(1, 16, 3, H, W)          # 3 of 5 reference frames
    with pytest.raises(ValueError, match="Context Windows"):
        check_whole(cut, torch.zeros(1, 5, LT, dtype=torch.bool), cfg)
    with pytest.raises(ValueError, match="remove that node"):
        check_whole(torch.zeros(1, 16, 5, H, W), torch.zeros(1, 3, LT, dtype=torch.bool), cfg)


# -- batch -------------------------------------------------------------------------------------

def test_batch_equals_each_sample_alone(pack, model):
    from ComfyUI_LumosX.nodes.sampling import LumosXSampler
    pos, neg, _ = conds(pack)
    args = dict(model=model, positive=pos, negative=neg, seed=11, steps=2, cfg=5.0,
                sampler_name="euler", scheduler="simple", shift=8.0, denoise=1.0)
    batch = run(LumosXSampler, latent={"samples": torch.zeros(3, 16, T, H, W)}, **args)[0]
    for i in range(3):   # the same noise alone: ComfyUI's batch_index picks sample i's noise
        alone = run(LumosXSampler, latent={"samples": torch.zeros(1, 16, T, H, W),
                                           "batch_index": [i]}, **args)[0]
        diff = (batch["samples"][i:i + 1] - alone["samples"]).abs().max()
        assert diff <= 1e-4 * alone["samples"].abs().max(), diff   # fp32 batched-GEMM rounding
    assert (batch["samples"][0] - batch["samples"][1]).abs().max() > 1e-3


# -- fp8 weights -------------------------------------------------------------------------------

@pytest.mark.parametrize("weight_dtype", ["fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"])
def test_fp8_weights_load_and_run(pack, sd, model, weight_dtype, tmp_path):
    import folder_paths
    from ComfyUI_LumosX.nodes.model import LumosXModelLoader
    d = tmp_path / "diffusion_models"
    d.mkdir()
    assets.write_safetensors(sd, str(d / "lumosx_fp8_test.safetensors"))
    folder_paths.add_model_folder_path("diffusion_models", str(d))
    (m,) = run(LumosXModelLoader, model_name="lumosx_fp8_test.safetensors",
               weight_dtype=weight_dtype)
    want_dtype = torch.float8_e5m2 if weight_dtype == "fp8_e5m2" else torch.float8_e4m3fn
    assert m.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == want_dtype
    import comfy.sd
    patch = pack.nodes.patch
    pos, neg, _ = conds(pack)
    out = ksample(m, pos, neg)
    assert torch.isfinite(out).all()
    # what it must compute: the LumosX forward of the fp8-rounded weights in fp32 (CPU casts
    # each weight to the compute dtype), i.e. an fp32 model holding those rounded weights
    rounded = {k: v.float() for k, v in m.model.diffusion_model.state_dict().items()}
    ref = ksample(patch.apply_lumosx(comfy.sd.load_diffusion_model_state_dict(rounded)), pos, neg)
    assert torch.allclose(out, ref, atol=1e-4 * ref.abs().max(), rtol=0)
    # and the rounding is real (the fp32 model differs)
    assert (ksample(patch.apply_lumosx(model), pos, neg) - out).abs().max() > 1e-3


# -- another pack's wrapper, rope_options ------------------------------------------------------

def test_other_packs_diffusion_model_wrapper_runs_on_lumosx_passes(pack, model):
    import comfy.patcher_extension as pe
    patch = pack.nodes.patch
    pos, neg, _ = conds(pack)
    ref = ksample(patch.apply_lumosx(model), pos, neg, steps=1)
    seen = []

    def other_pack(executor, x, timestep, context, *args, **kwargs):
        seen.append(patch.LATENTS in kwargs)
        return executor(x, timestep, context, *args, **kwargs) * 0.5

    m = patch.apply_lumosx(model).clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "other_pack", other_pack)
    out = ksample(m, pos, neg, steps=1)
    assert seen == [True]                 # registered after ours, it still ran (LumosX pass)
    # euler, 1 step from pure noise (sigma 1): latent = out(noise - v), `out` the latent
    # format's affine map; the wrapped forward is ours, so halving v gives the LumosX run's v
    # halved: out(noise - v/2) = (out(noise) + ref) / 2
    import comfy.sample
    noise = comfy.sample.prepare_noise(torch.zeros(1, 16, T, H, W), 1)
    want = 0.5 * (model.model.process_latent_out(noise) + ref)
    assert torch.allclose(out, want, atol=1e-5 * want.abs().max())
    assert (out - ref).abs().max() > 1e-2


def test_scale_rope_node_scales_every_relational_position(pack, model, monkeypatch):
    """ScaleROPE on a LumosX model (docs/works-with.md), with relational RoPE, a background,
    a person with an attribute, a second person and the text bias active: the DiT gets every
    token's R2PE position scaled and shifted (id -> shift + scale * id). Checked against
    positions computed without the core: the video's are the host's own ``rope_encode``
    under these rope_options, the whole table is the oracle's per-token loop, scaled."""
    from oracle import dense_position_ids
    node = core_node("comfy_extras.nodes_rope", "ScaleROPE")
    core, patch = pack.lumosx_core, pack.nodes.patch
    pos, neg, _ = conds(pack)
    rope = {"scale_x": 0.5, "shift_x": 2.0, "scale_y": 1.5, "shift_y": -1.0, "scale_t": 2.0,
            "shift_t": 1.0}
    (scaled,) = run(node, model=patch.apply_lumosx(model), **rope)
    dm = model.model.diffusion_model
    seen, real = [], dm.forward_orig

    def spy(*args, **kwargs):
        topts = kwargs["transformer_options"]
        seen.append((kwargs["freqs"], topts.get("optimized_attention_override"),
                     dict(topts.get("rope_options") or {})))
        return real(*args, **kwargs)

    monkeypatch.setattr(dm, "forward_orig", spy)
    out = ksample(scaled, pos, neg, steps=1)
    freqs, override, options = seen[-1]
    assert options == rope                                    # the node's options arrived
    assert isinstance(override, core.RelationalAttention)     # LumosX attention active
    seen.clear()
    plain = ksample(patch.apply_lumosx(model), pos, neg, steps=1)
    unscaled = seen[-1][0]

    layout, Hp, Wp = core.ConditionLayout(*LAYOUT), H // 2, W // 2
    ids = dense_position_ids(layout, T, Hp, Wp, r2pe=True)
    assert ids[:, 1:].max() >= 2 * Hp                         # relational: attributes offset
    scale = torch.tensor([rope["scale_t"], rope["scale_y"], rope["scale_x"]])
    shift = torch.tensor([rope["shift_t"], rope["shift_y"], rope["shift_x"]])
    with torch.no_grad():
        want = dm.rope_embedder((ids * scale + shift).unsqueeze(0)).movedim(1, 2)
        host = dm.rope_encode(T, H, W, device=freqs.device, dtype=torch.float32,
                              transformer_options={"rope_options": rope})
        want_plain = dm.rope_embedder(ids.unsqueeze(0)).movedim(1, 2)
    assert freqs.shape == want.shape
    assert torch.allclose(freqs, want, atol=1e-6)
    assert torch.allclose(freqs[:, :T * Hp * Wp], host, atol=1e-6)
    assert torch.allclose(unscaled, want_plain, atol=1e-6)
    assert (out - plain).abs().max() > 1e-3                   # and the video changes


def test_rope_options_apply_to_references_as_core_does_for_phantom():
    from standin import make_wan
    from lumosx_core import ConditionLayout, relational_forward
    m = make_wan(seed=3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 3, 4, 6, generator=g)
    refs = torch.randn(1, 16, 2, 4, 6, generator=g)
    ctx = torch.randn(1, 8, 32, generator=g)
    t = torch.tensor([500.0])
    rope = {"scale_x": 0.5, "shift_x": 2.0, "scale_y": 1.5, "shift_y": 0.0, "scale_t": 2.0,
            "shift_t": 1.0}
    topts = {"rope_options": rope}
    layout = ConditionLayout(2, [])
    with torch.no_grad():
        phantom = m(x, t, ctx, time_dim_concat=refs, transformer_options=topts)
        ours = relational_forward(m, x, t, ctx, refs, layout, None, r2pe=False,
                                  self_mask=False, cross_mask=False, transformer_options=topts)
        unscaled = relational_forward(m, x, t, ctx, refs, layout, None, r2pe=False,
                                      self_mask=False, cross_mask=False)
    assert torch.allclose(ours, phantom, atol=1e-5)
    assert (ours - unscaled).abs().max() > 1e-3



# -- the shipped dual-CFG workflow on the real headless server ---------------------------------

def test_shipped_dual_cfg_workflow_runs_on_the_server(server, tmp_path, capsys):
    """workflows/api/dual_cfg.api.json (DualCFGGuider fed Bind's positive, negative and
    negative_no_refs; SamplerCustomAdvanced) on stand-in models through ``lumosx run``."""
    import json
    import demo
    import shipped
    from lumosx_core.cli import main
    api = shipped.load(shipped.api_path("dual_cfg"))
    (bind_id,) = [k for k, n in api.items() if n["class_type"] == "LumosXBind"]
    (guider,) = [n for n in api.values() if n["class_type"] == "DualCFGGuider"]
    assert guider["inputs"]["cond1"] == [bind_id, 0] and guider["inputs"]["cond2"] == [bind_id, 1]
    assert guider["inputs"]["negative"] == [bind_id, 5]             # negative_no_refs
    opts = demo.standin_overrides(server.assets["standin_spiece"],
                                  size={"width": 64, "height": 48, "length": 5})
    # the stand-in options as option/value pairs; steps live in BasicScheduler here
    args = [a for opt, value in zip(opts[::2], opts[1::2])
            if not value.startswith("LumosXSampler.") for a in (opt, value)]
    result = tmp_path / "job.json"
    capsys.readouterr()
    rc = main(["run", shipped.api_path("dual_cfg"), "--server", server.url, "--out",
               str(tmp_path / "out"), "--json", str(result), *args,
               "--set", "BasicScheduler.steps=2"])
    err = capsys.readouterr().err
    assert rc == 0, err + server.log()[-3000:]
    (job,) = json.loads(result.read_text())
    assert job["status"] == "success"
    assert set(job["ran"]) | set(job["cached"]) == set(job["nodes"])
    assert [f for f in job["files"] if f.endswith(".mp4")]
