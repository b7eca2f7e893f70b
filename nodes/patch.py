"""The ComfyUI side of the relational forward: a DIFFUSION_MODEL wrapper and the conditioning
keys that carry LumosX data to it.

Per-generation data travels in the conditioning's ``model_conds`` so that cond and uncond each
get their own in whatever batching the sampler picks:

* ``lumosx_latents``: ``CONDRegular`` of the raw (VAE-space) reference latents
  ``[1, 16, N_c, h, w]``;
* ``lumosx_masks``: ``CONDRegular`` of the phrase masks ``[1, N_c, L_text]``;
* ``lumosx_config``: ``CONDConstant`` of a :class:`RelationalConfig` (layout and switches).

A MODEL whose conditioning carries none of these runs exactly the stock forward.
"""
from __future__ import annotations

import logging

import torch

import comfy.conds
import comfy.patcher_extension

from ..lumosx_core import RelationalCache, RelationalConfig, relational_forward

WRAPPER_KEY = "lumosx"
LATENTS = "lumosx_latents"
MASKS = "lumosx_masks"
CONFIG = "lumosx_config"
KEYS = (LATENTS, MASKS, CONFIG)

log = logging.getLogger("LumosX")


def is_wan_t2v(diffusion_model) -> bool:
    """A plain Wan 2.1 text-to-video DiT (not I2V, VACE, camera, S2V, ...)."""
    try:
        import comfy.ldm.wan.model as wan
    except ImportError:  # pragma: no cover - host without Wan
        return False
    return (type(diffusion_model) is wan.WanModel
            and getattr(diffusion_model, "model_type", None) == "t2v"
            and getattr(diffusion_model, "ref_conv", None) is None)


def describe_model(diffusion_model) -> str:
    name = type(diffusion_model).__name__
    kind = getattr(diffusion_model, "model_type", None)
    return f"{name}" + (f" ({kind})" if kind else "")


class LumosXWrapper:
    """DIFFUSION_MODEL wrapper: reads LumosX data from the call's extra conds and runs
    :func:`relational_forward`; without LumosX data it calls the next executor unchanged.

    Holds a :class:`RelationalCache`, so the LumosX set-up (RoPE table, indices, text weights)
    is built on a run's first step and reused by the others; entries are keyed by value, so
    jobs with other layouts, sizes, masks or switches never see them."""

    def __init__(self, latent_format):
        self.latent_format = latent_format
        self.cache = RelationalCache()

    def __call__(self, executor, x, timestep, context, clip_fea=None, time_dim_concat=None,
                 transformer_options={}, **kwargs):
        if not any(k in kwargs for k in KEYS):
            return executor(x, timestep, context, clip_fea, time_dim_concat,
                            transformer_options, **kwargs)
        latents = kwargs.pop(LATENTS, None)
        masks = kwargs.pop(MASKS, None)
        config = kwargs.pop(CONFIG, None)
        if latents is None or config is None:
            raise ValueError("LumosX conditioning is incomplete (reference latents or layout "
                             "missing): rebuild it with the LumosX Bind node")
        model = executor.class_obj
        if not is_wan_t2v(model):
            raise ValueError(f"LumosX needs a Wan 2.1 text-to-video model; this MODEL is "
                             f"{describe_model(model)}")
        if time_dim_concat is not None:
            raise ValueError("LumosX references cannot be combined with Phantom "
                             "(time_dim_concat) references on the same conditioning")
        if clip_fea is not None:
            raise ValueError("LumosX does not take CLIP-vision image features (T2V only)")
        latents = self.latent_format.process_in(latents.to(x))
        return relational_forward(model, x, timestep, context, latents, config.layout, masks,
                                  transformer_options=transformer_options, **config.options(),
                                  cache=self.cache, **kwargs)


def apply_lumosx(model):
    """Return a clone of ``model`` (a ModelPatcher) with the LumosX wrapper installed.
    The input MODEL is never modified."""
    if not is_wan_t2v(model.model.diffusion_model):
        raise ValueError(
            f"LumosX needs a Wan 2.1 text-to-video model (e.g. the LumosX DiT or Wan 2.1 T2V "
            f"1.3B); this MODEL is {describe_model(model.model.diffusion_model)}")
    m = model.clone()
    m.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY,
                           LumosXWrapper(model.model.latent_format))
    return m


def attach(conditioning, latents: torch.Tensor, masks: torch.Tensor, config: RelationalConfig):
    """Copy of a CONDITIONING list whose every entry carries the LumosX data.

    ``latents``: raw VAE latents ``[1, 16, N_c, h, w]``; ``masks``: bool ``[1, N_c, L_text]``.
    """
    out = []
    for emb, extra in conditioning:
        extra = dict(extra)
        mc = dict(extra.get("model_conds", {}))
        mc[LATENTS] = comfy.conds.CONDRegular(latents)
        mc[MASKS] = comfy.conds.CONDRegular(masks)
        mc[CONFIG] = comfy.conds.CONDConstant(config)
        extra["model_conds"] = mc
        out.append([emb, extra])
    return out
