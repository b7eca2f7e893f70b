"""The ComfyUI patch: stock KSampler runs with LumosX conditioning on a tiny random Wan DiT
loaded by ComfyUI's own loader; the input MODEL stays untouched."""
import pytest
import torch

from standin import tiny_dit_state_dict

from shared_inputs import LT
from shared_inputs import SAMPLE_H as H
from shared_inputs import SAMPLE_T as T
from shared_inputs import SAMPLE_W as W
from shared_inputs import relational_cond as _cond


@pytest.fixture(scope="module")
def host(pack):
    import comfy.sd
    import nodes
    model = comfy.sd.load_diffusion_model_state_dict(tiny_dit_state_dict())
    assert model is not None, "ComfyUI did not detect the tiny Wan DiT"
    return model, nodes


def _sample(nodes, model, pos, neg, seed=1):
    latent = {"samples": torch.zeros(1, 16, T, H, W)}
    (out,) = nodes.common_ksampler(model, seed, 2, 4.0, "euler", "simple", pos, neg, latent)
    return out["samples"]


def test_ksampler_with_lumosx_conditioning(pack, host):
    model, nodes = host
    patch = pack.nodes.patch
    patched = patch.apply_lumosx(model)
    import comfy.patcher_extension as pe
    assert patched.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, patch.WRAPPER_KEY)
    assert not model.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, patch.WRAPPER_KEY)

    pos, neg = _cond(pack)
    out = _sample(nodes, patched, pos, neg)
    assert out.shape == (1, 16, T, H, W)                 # video-only latent
    assert torch.isfinite(out).all()

    plain_pos, plain_neg = _cond(pack, refs=False)
    stock = _sample(nodes, model, plain_pos, plain_neg)
    # the original MODEL would ignore LumosX data (a plain T2V video): refused instead (#13)
    with pytest.raises(ValueError, match="without the LumosX patch"):
        _sample(nodes, model, pos, neg)
    # the patched MODEL without LumosX data is the stock model
    assert torch.equal(_sample(nodes, patched, plain_pos, plain_neg), stock)
    # and with it, the references change the video
    assert (out - stock).abs().max() > 1e-3
    assert not model.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, patch.WRAPPER_KEY)


def test_cond_and_uncond_each_get_their_own_masks(pack, host):
    model, nodes = host
    patched = pack.nodes.patch.apply_lumosx(model)
    pos, neg = _cond(pack, neg_masks_zero=False)
    pos2, neg2 = _cond(pack, neg_masks_zero=True)
    a = _sample(nodes, patched, pos, neg)
    b = _sample(nodes, patched, pos2, neg2)
    assert (a - b).abs().max() > 1e-4   # the uncond pass saw different phrase masks


def test_wrapper_normalises_latents_and_calls_core(pack, host, monkeypatch):
    model, nodes = host
    patch = pack.nodes.patch
    host_call = pack.lumosx_core.relational.host_call
    seen = []
    real = host_call.config_forward

    def spy(m, x, t, ctx, latents, config, masks, **kw):
        seen.append((x.shape[0], latents.clone(), config, masks.clone(), kw))
        return real(m, x, t, ctx, latents, config, masks, **kw)

    monkeypatch.setattr(host_call, "config_forward", spy)
    pos, neg = _cond(pack)
    _sample(nodes, patch.apply_lumosx(model), pos, neg)
    assert seen
    batch, latents, config, masks, kw = seen[0]
    assert batch == 2                    # cond and uncond ran batched in one call
    raw = pos[0][1]["model_conds"][patch.LATENTS].cond
    fmt = model.model.latent_format
    assert torch.allclose(latents[:1], fmt.process_in(raw), atol=1e-5)
    # the RelationalConfig Bind attached reaches the core whole
    assert config is pos[0][1]["model_conds"][patch.CONFIG].cond
    assert config.layout == pack.lumosx_core.ConditionLayout(1, [2, 1])
    assert config.ratio == 0.5 and config.r2pe and config.parity
    assert masks.shape[1:] == (4, LT)
    # the set-up is cached for the run: built on step 1, reused on step 2
    cache = kw["cache"]
    assert isinstance(cache, pack.lumosx_core.RelationalCache)
    assert len(seen) == 2 and all(s[4]["cache"] is cache for s in seen)
    assert cache.misses == 4 and cache.hits == 4


def test_apply_node_and_wrong_model_error(pack, host):
    model, _ = host
    from ComfyUI_LumosX.nodes.model import LumosXApply
    out = LumosXApply.execute(model).result[0]
    assert out is not model
    assert LumosXApply.GET_SCHEMA().node_id.startswith("LumosX")
    import comfy.ldm.wan.model as wan
    import comfy.ops
    i2v = wan.WanModel(model_type="i2v", dim=128, ffn_dim=128, num_heads=1, num_layers=1,
                       text_dim=32, freq_dim=32, operations=comfy.ops.disable_weight_init)

    class Fake:
        class model:
            diffusion_model = i2v

    with pytest.raises(ValueError, match="text-to-video.*i2v"):
        pack.nodes.patch.apply_lumosx(Fake)
