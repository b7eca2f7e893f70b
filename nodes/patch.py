"""The model patch: our DIFFUSION_MODEL wrapper (``relational.host_call.RelationalWrapper``)
installed on a clone, and the ``model_conds`` that carry LumosX data to it (cond and uncond
each their own): reference latents, phrase masks, Bind's ``RelationalConfig`` and a guard that
refuses a model without the wrapper. Context-window handlers keep that data whole."""
from __future__ import annotations

import torch

import comfy.conds
import comfy.patcher_extension

from ..lumosx_core import RelationalConfig
from ..lumosx_core.relational.host_call import RelationalWrapper, UnpatchedGuard, describe_model

WRAPPER_KEY = "lumosx"
KEYS = ("lumosx_latents", "lumosx_masks", "lumosx_config", "lumosx_guard")
LATENTS, MASKS, CONFIG, GUARD = KEYS


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
                           RelationalWrapper(model.model.latent_format, KEYS, is_wan_t2v))
    m.add_wrapper_with_key(wmp.OUTER_SAMPLE, WRAPPER_KEY, outer_sample_wrapper)
    return m


def attach(conditioning, latents: torch.Tensor, masks: torch.Tensor, config: RelationalConfig):
    """Copy of a CONDITIONING list whose every entry carries the LumosX data.

    ``latents``: raw VAE latents ``[1, 16, N_c, h, w]``; ``masks``: bool ``[1, N_c, L_text]``.
    """
    ours = {LATENTS: comfy.conds.CONDRegular(latents), MASKS: comfy.conds.CONDRegular(masks),
            CONFIG: comfy.conds.CONDConstant(config),
            GUARD: comfy.conds.CONDConstant(UnpatchedGuard(_patched))}
    return [[emb, {**extra, "model_conds": {**extra.get("model_conds", {}), **ours}}]
            for emb, extra in conditioning]
