"""The ComfyUI side of the relational forward: a DIFFUSION_MODEL wrapper, and the
conditioning keys that carry LumosX data to it in ``model_conds`` (so cond and uncond each
carry their own, however the sampler batches them): ``lumosx_latents`` (raw reference latents
``[1, 16, N_c, h, w]``), ``lumosx_masks`` (phrase masks ``[1, N_c, L_text]``),
``lumosx_config`` (the :class:`RelationalConfig` Bind built, handed whole to
``config_forward``) and ``lumosx_guard`` (:class:`UnpatchedGuard`: refuses a model without our
wrapper, which would silently make plain text-to-video). Without them the stock forward runs.

DIFFUSION_MODEL wrappers registered after ours (another pack's, EasyCache after LumosX Apply)
wrap the relational forward in place of the model's ``_forward`` (``run_inner_wrappers``).
Context-window handlers are told to pass LumosX data to every window whole; references that
still arrive cut are refused naming the node.
"""
from __future__ import annotations

import torch

import comfy.conds
import comfy.patcher_extension

from ..lumosx_core import RelationalCache, RelationalConfig, config_forward
from ..lumosx_core.relational.host_call import (UnpatchedGuard, check_call, describe_model,
                                                run_inner_wrappers)

WRAPPER_KEY = "lumosx"
LATENTS = "lumosx_latents"
MASKS = "lumosx_masks"
CONFIG = "lumosx_config"
GUARD = "lumosx_guard"
KEYS = (LATENTS, MASKS, CONFIG, GUARD)


def _patched(transformer_options) -> bool:
    """Whether a model call's ``transformer_options`` hold our DIFFUSION_MODEL wrapper."""
    return bool(comfy.patcher_extension.get_wrappers_with_key(
        comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, transformer_options))


def is_wan_t2v(diffusion_model) -> bool:
    """A plain Wan 2.1 text-to-video DiT (not I2V, VACE, camera, S2V, ...)."""
    import comfy.ldm.wan.model as wan
    return (type(diffusion_model) is wan.WanModel
            and getattr(diffusion_model, "model_type", None) == "t2v"
            and getattr(diffusion_model, "ref_conv", None) is None)


class LumosXWrapper:
    """DIFFUSION_MODEL wrapper: with LumosX data in the call's extra conds it runs
    ``config_forward`` (its :class:`RelationalCache` builds the set-up once per run, keyed by
    value); without, the next executor unchanged."""

    def __init__(self, latent_format):
        self.latent_format = latent_format
        self.cache = RelationalCache()

    def __call__(self, executor, x, timestep, context, clip_fea=None, time_dim_concat=None,
                 transformer_options={}, **kwargs):
        if not any(k in kwargs for k in KEYS):
            return executor(x, timestep, context, clip_fea, time_dim_concat,
                            transformer_options, **kwargs)
        model = executor.class_obj

        def lumosx_forward(x, timestep, context, clip_fea=None, time_dim_concat=None,
                           transformer_options={}, **kwargs):
            latents, masks, config, _ = (kwargs.pop(k, None) for k in KEYS)
            check_call(model, is_wan_t2v(model), latents, masks, config, clip_fea,
                       time_dim_concat)
            latents = self.latent_format.process_in(latents.to(x))
            return config_forward(model, x, timestep, context, latents, config, masks,
                                  transformer_options=transformer_options, cache=self.cache,
                                  **kwargs)

        return run_inner_wrappers(executor, lumosx_forward, x, timestep, context, clip_fea,
                                  time_dim_concat, transformer_options, **kwargs)


def _keep_whole(cond_key, cond_value, window, x_in, device, new_cond_item):
    """Context-window ``resize_cond_item`` callback: LumosX data is per generation (every
    window sees all references), never sliced."""
    return cond_value if cond_key in KEYS else None


def keep_references_whole(handler) -> None:
    """Tell a context-window handler (hosts that offer the ``resize_cond_item`` callback) to
    pass LumosX data to every window whole. Idempotent."""
    try:
        import comfy.context_windows as cw
    except ImportError:  # pragma: no cover - host without context windows
        return
    event = getattr(getattr(cw, "IndexListCallbacks", None), "RESIZE_COND_ITEM", None)
    callbacks = getattr(handler, "callbacks", None)
    if event is None or not isinstance(callbacks, dict):
        return
    pe = comfy.patcher_extension
    if not pe.get_callbacks_with_key(event, WRAPPER_KEY, callbacks):
        pe.add_callback_with_key(event, WRAPPER_KEY, _keep_whole, callbacks)


def outer_sample_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: before sampling starts, make a context-window handler (if any)
    keep the references whole."""
    guider = executor.class_obj
    keep_references_whole(getattr(guider, "model_options", {}).get("context_handler"))
    return executor(*args, **kwargs)


def apply_lumosx(model):
    """Return a clone of ``model`` (a ModelPatcher) with the LumosX wrapper installed.
    The input MODEL is never modified."""
    if not is_wan_t2v(model.model.diffusion_model):
        raise ValueError(
            f"LumosX needs a Wan 2.1 text-to-video model (e.g. the LumosX DiT or Wan 2.1 T2V "
            f"1.3B); this MODEL is {describe_model(model.model.diffusion_model)}")
    m = model.clone()
    wmp = comfy.patcher_extension.WrappersMP
    for kind in (wmp.DIFFUSION_MODEL, wmp.OUTER_SAMPLE):
        m.remove_wrappers_with_key(kind, WRAPPER_KEY)
    m.add_wrapper_with_key(wmp.DIFFUSION_MODEL, WRAPPER_KEY,
                           LumosXWrapper(model.model.latent_format))
    m.add_wrapper_with_key(wmp.OUTER_SAMPLE, WRAPPER_KEY, outer_sample_wrapper)
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
        mc[GUARD] = comfy.conds.CONDConstant(UnpatchedGuard(_patched))
        extra["model_conds"] = mc
        out.append([emb, extra])
    return out
