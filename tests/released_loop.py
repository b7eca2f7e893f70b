"""The released sampling loop written plainly in torch, for parity tests: a relational forward
of the cond and the uncond pass (the uncond pass with the positive prompt's phrase masks, as
released), CFG on the velocity, the released solver and integer timesteps. The forward is
the pack's ``relational_forward`` or the dense oracle (``tests/oracle.py``)."""
from __future__ import annotations

import torch

from lumosx_core import relational_forward
from lumosx_core.solver import released_schedule, sample_released


def lumosx_parts(conditioning):
    """(context, raw reference latents, phrase masks, RelationalConfig) of a LumosX
    CONDITIONING entry (what the Bind node attaches)."""
    emb, extra = conditioning[0]
    mc = extra["model_conds"]
    return emb, mc["lumosx_latents"].cond, mc["lumosx_masks"].cond, mc["lumosx_config"].cond


def noise_like(shape, seed: int) -> torch.Tensor:
    """ComfyUI's noise for a seed (``comfy.sample.prepare_noise``): CPU randn."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def sample_loop(diffusion_model, latents_mean, latents_std, ctx_p, ctx_n, latents, layout,
                masks, noise: torch.Tensor, steps: int, shift: float, cfg: float,
                integer_timesteps: bool = True, forward=relational_forward,
                **options) -> torch.Tensor:
    """Sample in the model's latent space from ``noise`` (σ = 1) with the contexts
    ``ctx_p``/``ctx_n``, raw reference ``latents``, ``layout`` and phrase ``masks`` (both
    passes) and return the VAE-space latent (``x·std + mean``), like a ComfyUI sampler's
    output. ``integer_timesteps=False`` feeds the DiT ``σ·1000`` as a float instead (what
    ComfyUI's samplers do). ``options``: the forward's switches (ratio, r2pe, ...)."""
    mean = latents_mean.view(1, -1, 1, 1, 1)
    std = latents_std.view(1, -1, 1, 1, 1)
    lat = (latents.float() - mean) / std
    sigmas, timesteps = released_schedule(steps, shift)
    t_of = {float(s): float(t) if integer_timesteps else float(s) * 1000.0
            for s, t in zip(sigmas[:-1].tolist(), timesteps.tolist())}

    def model(x, sigma, **_):
        t = torch.full((x.shape[0],), t_of[float(sigma[0])])
        v_c = forward(diffusion_model, x, t, ctx_p, lat, layout, masks, **options)
        v_u = forward(diffusion_model, x, t, ctx_n, lat, layout, masks, **options)
        v = v_u + cfg * (v_c - v_u)
        return x - sigma.view(-1, 1, 1, 1, 1) * v

    with torch.no_grad():
        out = sample_released(model, noise.clone(), sigmas, disable=True)
    return out * std + mean


def released_loop(diffusion_model, latents_mean, latents_std, positive, negative,
                  noise: torch.Tensor, steps: int, shift: float, cfg: float,
                  integer_timesteps: bool = True) -> torch.Tensor:
    """:func:`sample_loop` on the LumosX data of Bind's positive conditioning (the negative
    conditioning's context)."""
    ctx_p, lat, masks, config = lumosx_parts(positive)
    return sample_loop(diffusion_model, latents_mean, latents_std, ctx_p, negative[0][0], lat,
                       config.layout, masks, noise, steps, shift, cfg, integer_timesteps,
                       ratio=config.ratio, r2pe=config.r2pe, self_mask=config.self_mask,
                       cross_mask=config.cross_mask, parity=config.parity)
