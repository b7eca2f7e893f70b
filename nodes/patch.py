"""The ComfyUI side of the relational forward: a DIFFUSION_MODEL wrapper, and the
conditioning keys that carry LumosX data to it in ``model_conds`` (so cond and uncond each
carry their own, however the sampler batches them): ``lumosx_latents`` (raw reference latents
``[1, 16, N_c, h, w]``), ``lumosx_masks`` (phrase masks ``[1, N_c, L_text]``),
``lumosx_config`` (the :class:`RelationalConfig` Bind built, handed whole to
``config_forward``) and ``lumosx_guard`` (:class:`UnpatchedGuard`: refuses a model without our
wrapper, which would silently make plain text-to-video). Without them the stock forward runs.

DIFFUSION_MODEL wrappers registered after ours (another pack's, EasyCache after LumosX Apply)
wrap the relational forward in place of the model's ``_forward`` (:func:`run_inner_wrappers`).
Context-window handlers are told to pass LumosX data to every window whole; references that
still arrive cut are refused naming the node.
"""
from __future__ import annotations

import logging
import sys

import torch

import comfy.conds
import comfy.patcher_extension

from ..lumosx_core import RelationalCache, RelationalConfig, config_forward

log = logging.getLogger("LumosX")

WRAPPER_KEY = "lumosx"
LATENTS = "lumosx_latents"
MASKS = "lumosx_masks"
CONFIG = "lumosx_config"
GUARD = "lumosx_guard"
KEYS = (LATENTS, MASKS, CONFIG, GUARD)

NOT_PATCHED = ("LumosX conditioning reached a MODEL without the LumosX patch: the references "
               "would be ignored and the video would be plain text-to-video. Load the model "
               "with LumosX Model Loader, or put LumosX Apply between your loader and the "
               "sampler (LumosX Sampler patches it for you)")


class UnpatchedGuard:
    """Rides in ``model_conds``. ComfyUI's ``BaseModel._apply_model`` asks every extra cond
    ``hasattr(extra, "dtype")`` right before the model call: the guard then checks that call's
    ``transformer_options`` hold our wrapper and raises otherwise (elsewhere it warns once)."""

    warned = False

    def __eq__(self, other):        # cond and uncond guards batch together
        return isinstance(other, UnpatchedGuard)

    def __hash__(self):
        return 0

    @property
    def dtype(self):
        frame = sys._getframe(1)
        opts = frame.f_locals.get("transformer_options") if \
            frame.f_code.co_name == "_apply_model" else None
        if isinstance(opts, dict):
            if not comfy.patcher_extension.get_wrappers_with_key(
                    comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, opts):
                raise ValueError(NOT_PATCHED)
        elif not UnpatchedGuard.warned:
            UnpatchedGuard.warned = True
            log.warning("LumosX: cannot check that the sampled MODEL has the LumosX patch on "
                        "this ComfyUI version; without it references are ignored")
        raise AttributeError("dtype")   # not a tensor: ComfyUI passes it through unchanged


def is_wan_t2v(diffusion_model) -> bool:
    """A plain Wan 2.1 text-to-video DiT (not I2V, VACE, camera, S2V, ...)."""
    import comfy.ldm.wan.model as wan
    return (type(diffusion_model) is wan.WanModel
            and getattr(diffusion_model, "model_type", None) == "t2v"
            and getattr(diffusion_model, "ref_conv", None) is None)


def describe_model(diffusion_model) -> str:
    name = type(diffusion_model).__name__
    kind = getattr(diffusion_model, "model_type", None)
    return f"{name}" + (f" ({kind})" if kind else "")


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
            if latents is None or config is None:
                raise ValueError("LumosX conditioning is incomplete (reference latents or "
                                 "layout missing): rebuild it with the LumosX Bind node")
            if not is_wan_t2v(model):
                raise ValueError(f"LumosX needs a Wan 2.1 text-to-video model; this MODEL is "
                                 f"{describe_model(model)}")
            if time_dim_concat is not None:
                raise ValueError("LumosX references cannot be combined with Phantom "
                                 "(time_dim_concat) references on the same conditioning")
            if clip_fea is not None:
                raise ValueError("LumosX does not take CLIP-vision image features (T2V only)")
            check_whole(latents, masks, config)
            latents = self.latent_format.process_in(latents.to(x))
            return config_forward(model, x, timestep, context, latents, config, masks,
                                  transformer_options=transformer_options, cache=self.cache,
                                  **kwargs)

        return run_inner_wrappers(executor, lumosx_forward, x, timestep, context, clip_fea,
                                  time_dim_concat, transformer_options, **kwargs)


def run_inner_wrappers(executor, inner, *args, **kwargs):
    """Run the DIFFUSION_MODEL wrappers that come after ours in the chain around ``inner``
    (instead of around the model's own ``_forward``), so that they compose with LumosX.
    A host whose executor does not expose its chain runs ``inner`` directly."""
    wrappers = getattr(executor, "wrappers", None)
    idx = getattr(executor, "idx", None)   # our own position: the executor that called us
    make = getattr(type(executor), "new_class_executor", None)
    if wrappers is None or not isinstance(idx, int) or make is None:
        return inner(*args, **kwargs)
    return make(inner, executor.class_obj, wrappers, idx + 1).execute(*args, **kwargs)


def check_whole(latents: torch.Tensor, masks, config: RelationalConfig) -> None:
    """Refuse references that something between Bind and the model cut (a context-window
    node slicing conditioning on the time axis): the video would silently lose identities."""
    n_c = config.layout.num_images
    cut = latents.ndim != 5 or latents.shape[2] != n_c
    if masks is not None and (masks.ndim != 3 or masks.shape[1] != n_c):
        cut = True
    if cut:
        raise ValueError(
            f"LumosX references arrived cut ({n_c} reference images expected, latents "
            f"{tuple(latents.shape)}): a node between LumosX Bind and the model sliced the "
            f"conditioning on the time axis (e.g. 'WAN Context Windows (Manual)'); remove that "
            f"node or use a ComfyUI whose context windows keep conditioning whole")


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
        mc[GUARD] = comfy.conds.CONDConstant(UnpatchedGuard())
        extra["model_conds"] = mc
        out.append([emb, extra])
    return out
