"""The relational forward inside a host's model call: the model wrapper, the guard that
refuses a call without it, the checks on what the call carries, and running the host's later
model wrappers around it. No ComfyUI import: the host's executor, what it knows about the
model and how to see our wrapper are passed in."""
from __future__ import annotations

import logging
import sys
from typing import Callable, Optional

import torch

from .forward import RelationalCache, RelationalConfig, config_forward

log = logging.getLogger("LumosX")

NOT_PATCHED = ("LumosX conditioning reached a MODEL without the LumosX patch: the references "
               "would be ignored and the video would be plain text-to-video. Load the model "
               "with LumosX Model Loader, or put LumosX Apply between your loader and the "
               "sampler (LumosX Sampler patches it for you)")


class UnpatchedGuard:
    """Rides in the conditioning's extra conds. ComfyUI's ``BaseModel._apply_model`` (the
    host function :attr:`CALLER`) asks every extra cond ``hasattr(extra, "dtype")`` right
    before the model call: the guard then asks ``is_patched`` about that call's
    ``transformer_options`` (do they hold our wrapper?) and raises otherwise (called from
    anywhere else it warns once)."""

    CALLER = "_apply_model"
    warned = False

    def __init__(self, is_patched: Callable[[dict], bool]):
        self.is_patched = is_patched

    def __eq__(self, other):        # cond and uncond guards batch together
        return isinstance(other, UnpatchedGuard)

    def __hash__(self):
        return 0

    @property
    def dtype(self):
        frame = sys._getframe(1)
        opts = frame.f_locals.get("transformer_options") if \
            frame.f_code.co_name == self.CALLER else None
        if isinstance(opts, dict):
            if not self.is_patched(opts):
                raise ValueError(NOT_PATCHED)
        elif not UnpatchedGuard.warned:
            UnpatchedGuard.warned = True
            log.warning("LumosX: cannot check that the sampled MODEL has the LumosX patch on "
                        "this ComfyUI version; without it references are ignored")
        raise AttributeError("dtype")   # not a tensor: ComfyUI passes it through unchanged


def describe_model(diffusion_model) -> str:
    """``ClassName (model_type)`` of a DiT, for error messages."""
    name = type(diffusion_model).__name__
    kind = getattr(diffusion_model, "model_type", None)
    return f"{name}" + (f" ({kind})" if kind else "")


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


def check_call(model, is_t2v: bool, latents: Optional[torch.Tensor], masks,
               config: Optional[RelationalConfig], clip_fea=None, time_dim_concat=None) -> None:
    """Refuse a model call the relational forward cannot serve: LumosX data incomplete, a
    DiT (``model``) that is not Wan 2.1 text-to-video (``is_t2v``, as the host knows it),
    Phantom references or CLIP-vision features on the same call, references cut on the way."""
    if latents is None or config is None:
        raise ValueError("LumosX conditioning is incomplete (reference latents or "
                         "layout missing): rebuild it with the LumosX Bind node")
    if not is_t2v:
        raise ValueError(f"LumosX needs a Wan 2.1 text-to-video model; this MODEL is "
                         f"{describe_model(model)}")
    if time_dim_concat is not None:
        raise ValueError("LumosX references cannot be combined with Phantom "
                         "(time_dim_concat) references on the same conditioning")
    if clip_fea is not None:
        raise ValueError("LumosX does not take CLIP-vision image features (T2V only)")
    check_whole(latents, masks, config)


def run_inner_wrappers(executor, inner, *args, **kwargs):
    """Run the model wrappers that come after ours in the host's chain around ``inner``
    (instead of around the model's own forward), so that they compose with LumosX. The
    executor (ComfyUI's ``WrapperExecutor``) exposes ``wrappers``, ``idx`` (our own position)
    and ``new_class_executor``; a host whose executor does not runs ``inner`` directly."""
    wrappers = getattr(executor, "wrappers", None)
    idx = getattr(executor, "idx", None)   # our own position: the executor that called us
    make = getattr(type(executor), "new_class_executor", None)
    if wrappers is None or not isinstance(idx, int) or make is None:
        return inner(*args, **kwargs)
    return make(inner, executor.class_obj, wrappers, idx + 1).execute(*args, **kwargs)


class RelationalWrapper:
    """The host's DIFFUSION_MODEL wrapper. A call whose extra conds hold LumosX data (``keys``:
    latents ``[1, 16, N_c, h, w]`` raw from the VAE, phrase masks, :class:`RelationalConfig`,
    guard) is checked (:func:`check_call`; ``is_t2v(model)`` as the host knows it) and runs
    ``config_forward``, inside the wrappers after ours (:func:`run_inner_wrappers`); its
    :class:`RelationalCache` builds the set-up once per run, keyed by value. Any other call
    goes to the next executor unchanged."""

    def __init__(self, latent_format, keys, is_t2v: Callable[[object], bool]):
        self.latent_format, self.keys, self.is_t2v = latent_format, tuple(keys), is_t2v
        self.cache = RelationalCache()

    def __call__(self, executor, x, timestep, context, clip_fea=None, time_dim_concat=None,
                 transformer_options={}, **kwargs):
        if not any(k in kwargs for k in self.keys):
            return executor(x, timestep, context, clip_fea, time_dim_concat,
                            transformer_options, **kwargs)
        model = executor.class_obj

        def lumosx_forward(x, timestep, context, clip_fea=None, time_dim_concat=None,
                           transformer_options={}, **kwargs):
            latents, masks, config, _ = (kwargs.pop(k, None) for k in self.keys)
            check_call(model, self.is_t2v(model), latents, masks, config, clip_fea,
                       time_dim_concat)
            latents = self.latent_format.process_in(latents.to(x))
            return config_forward(model, x, timestep, context, latents, config, masks,
                                  transformer_options=transformer_options, cache=self.cache,
                                  **kwargs)

        return run_inner_wrappers(executor, lumosx_forward, x, timestep, context, clip_fea,
                                  time_dim_concat, transformer_options, **kwargs)
