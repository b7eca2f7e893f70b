"""Feeding the DiT the released integer timesteps inside a host's sampling call.

The released SAMPLER (:func:`sample_with_timesteps`, run by ComfyUI's KSAMPLER) puts each
step's integer DiT timestep in the call's ``transformer_options`` (:data:`TIMESTEP_KEY`); a
DIFFUSION_MODEL wrapper (:func:`released_timestep_wrapper`) added to that call's model options
only hands it to the DiT in place of the host's float ``σ·1000``. The MODEL is not modified.
The host's wrapper kind (ComfyUI's ``WrappersMP.DIFFUSION_MODEL``) is passed in; no ComfyUI
import here.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import torch

from .solver import flow_timestep_error, sample_released, timestep_table

log = logging.getLogger("LumosX")

#: transformer_options key carrying the current step's integer DiT timestep
TIMESTEP_KEY = "lumosx_released_timestep"
TIMESTEP_WRAPPER_KEY = "lumosx_released_timesteps"


def released_timestep_wrapper(executor, x, timestep, context, clip_fea=None,
                              time_dim_concat=None, transformer_options={}, **kwargs):
    """DIFFUSION_MODEL wrapper: the step's released integer (set by the released sampler in
    ``transformer_options``) replaces the host's float timestep, on a flow model only."""
    t_int = (transformer_options or {}).get(TIMESTEP_KEY)
    if t_int is not None and torch.is_tensor(timestep) and timestep.numel():
        sig = transformer_options.get("sigmas")
        err = None if sig is None else flow_timestep_error(sig.flatten()[0], timestep.flatten()[0])
        if err:
            raise ValueError(err)
        timestep = torch.full_like(timestep, float(t_int))
    return executor(x, timestep, context, clip_fea, time_dim_concat, transformer_options,
                    **kwargs)


def with_timestep(extra_args: dict, wrapper_kind: str, t_int: Optional[int] = None) -> dict:
    """Copy of ``extra_args`` whose model options run :func:`released_timestep_wrapper`
    outermost among the ``wrapper_kind`` wrappers (and, with ``t_int``, carry that step's
    integer timestep)."""
    mo = dict(extra_args.get("model_options") or {})
    to = dict(mo.get("transformer_options") or {})
    wrappers = dict(to.get("wrappers") or {})
    dm = {k: v for k, v in (wrappers.get(wrapper_kind) or {}).items()
          if k != TIMESTEP_WRAPPER_KEY}
    wrappers[wrapper_kind] = {TIMESTEP_WRAPPER_KEY: [released_timestep_wrapper], **dm}
    to["wrappers"] = wrappers
    if t_int is not None:
        to[TIMESTEP_KEY] = int(t_int)
    return dict(extra_args, model_options=dict(mo, transformer_options=to))


def sample_with_timesteps(model: Callable, x: torch.Tensor, sigmas: torch.Tensor,
                          extra_args: Optional[dict] = None, callback=None, disable=None,
                          timesteps: Optional[torch.Tensor] = None, *,
                          wrapper_kind: str) -> torch.Tensor:
    """Sampler function of the released loop (k-diffusion contract, as
    :func:`sample_released`) with the DiT fed the released integer timesteps (``timesteps``
    ``[n]`` when known, else recovered from ``sigmas``)."""
    table, exact = timestep_table(sigmas, timesteps)
    if not exact:
        log.warning("LumosX released sampler: these sigmas are not a released schedule "
                    "(LumosX Released Schedule, denoise 1); DiT timesteps are int(σ·1000) "
                    "of the float32 σ, which can be one above the released ones")

    def stepped(xx, sigma, **kw):   # a σ off the schedule keeps the host's timestep
        return model(xx, sigma, **with_timestep(kw, wrapper_kind,
                                                table.get(float(sigma.flatten()[0]))))

    return sample_released(stepped, x, sigmas, dict(extra_args or {}), callback, disable)
