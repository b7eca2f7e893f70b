"""Sampling: the LumosX Sampler (released sampler and schedule by default, ComfyUI's own
selectable) and the released sampler / schedule as SAMPLER / SIGMAS for SamplerCustomAdvanced.

The released loop (``lumosx_core.solver``) feeds the DiT integer timesteps ``int64(σ·1000)``
of the float64 schedule while the solver steps in float32 σ. ComfyUI turns σ into the
timestep inside the model (``σ·1000`` as a float); the released SAMPLER puts the integer of
each step into the call's ``transformer_options`` and a DIFFUSION_MODEL wrapper of ours,
added to that sampling call's model options only, hands it to the DiT. Nothing global
changes and the MODEL is not modified.
"""
from __future__ import annotations

import logging

import torch

import comfy.model_sampling
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.latest import io

from ..lumosx_core.solver import released_schedule, released_timesteps, sample_released
from .patch import WRAPPER_KEY, apply_lumosx
from .validation import check_inputs, latent_work_error, validate

MAX_STEPS = 200     # 4x the released 50

log = logging.getLogger("LumosX")

#: option name of the released sampler / schedule in the LumosX Sampler's combos
RELEASED = "lumosx_released"
#: transformer_options key carrying the current step's integer DiT timestep
TIMESTEP_KEY = "lumosx_released_timestep"
TIMESTEP_WRAPPER_KEY = "lumosx_released_timesteps"
_DM = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL


def with_shift(model, shift: float):
    """Clone of ``model`` with flow-matching model sampling at ``shift`` (like
    ModelSamplingSD3)."""
    class ModelSamplingFlow(comfy.model_sampling.ModelSamplingDiscreteFlow,
                            comfy.model_sampling.CONST):
        pass

    ms = ModelSamplingFlow(model.model.model_config)
    ms.set_parameters(shift=shift, multiplier=1000)
    m = model.clone()
    m.add_object_patch("model_sampling", ms)
    return m


def ensure_patched(model):
    if model.get_wrappers(_DM, WRAPPER_KEY):
        return model
    return apply_lumosx(model)


# -- the released timesteps inside ComfyUI ------------------------------------------------

def released_timestep_wrapper(executor, x, timestep, context, clip_fea=None,
                              time_dim_concat=None, transformer_options={}, **kwargs):
    """DIFFUSION_MODEL wrapper (Wan's ``forward`` signature): replaces the float timestep
    ComfyUI computed (``σ·1000``) by the released integer of the step, when the released
    sampler set one in ``transformer_options``."""
    t_int = (transformer_options or {}).get(TIMESTEP_KEY)
    if t_int is not None and torch.is_tensor(timestep) and timestep.numel():
        sig = transformer_options.get("sigmas")
        if sig is not None:
            expected = float(sig.flatten()[0]) * 1000.0
            if abs(float(timestep.flatten()[0]) - expected) > 1.0:
                raise ValueError(
                    f"the LumosX released sampler needs a flow-matching model whose timestep "
                    f"is σ·1000 (Wan 2.1); this model maps σ={float(sig.flatten()[0]):.4f} to "
                    f"t={float(timestep.flatten()[0]):.2f}. Use a ComfyUI sampler with it")
        timestep = torch.full_like(timestep, float(t_int))
    return executor(x, timestep, context, clip_fea, time_dim_concat, transformer_options,
                    **kwargs)


def _with_wrapper(extra_args: dict) -> dict:
    """Copy of ``extra_args`` whose model options run :func:`released_timestep_wrapper`
    outermost (before the LumosX wrapper, which does not call further wrappers)."""
    extra = dict(extra_args or {})
    mo = dict(extra.get("model_options") or {})
    to = dict(mo.get("transformer_options") or {})
    wrappers = dict(to.get("wrappers") or {})
    dm = {k: v for k, v in (wrappers.get(_DM) or {}).items() if k != TIMESTEP_WRAPPER_KEY}
    wrappers[_DM] = {TIMESTEP_WRAPPER_KEY: [released_timestep_wrapper], **dm}
    to["wrappers"] = wrappers
    mo["transformer_options"] = to
    extra["model_options"] = mo
    return extra


def _at_step(extra_args: dict, t_int: int) -> dict:
    mo = dict(extra_args["model_options"])
    mo["transformer_options"] = dict(mo["transformer_options"], **{TIMESTEP_KEY: int(t_int)})
    return dict(extra_args, model_options=mo)


def sample_released_comfy(model, x, sigmas, extra_args=None, callback=None, disable=None,
                          timesteps=None):
    """ComfyUI sampler function of the released loop: :func:`sample_released` with the DiT
    fed the released integer timesteps (``timesteps`` ``[n]`` when known, else recovered
    from ``sigmas``)."""
    if timesteps is None:
        timesteps, exact = released_timesteps(sigmas)
        if not exact:
            log.warning("LumosX released sampler: these sigmas are not a released schedule "
                        "(LumosX Released Schedule, denoise 1); DiT timesteps are int(σ·1000) "
                        "of the float32 σ, which can be one above the released ones")
    timesteps = torch.as_tensor(timesteps).flatten().tolist()
    table = {float(s): int(t) for s, t in zip(sigmas.detach().float().cpu().tolist(), timesteps)}
    base = _with_wrapper(extra_args)

    def stepped(xx, sigma, **kw):
        t_int = table.get(float(sigma.flatten()[0]))
        if t_int is None:  # not a step of this schedule: leave ComfyUI's timestep
            return model(xx, sigma, **kw)
        return model(xx, sigma, **_at_step(kw, t_int))

    return sample_released(stepped, x, sigmas, base, callback, disable)


def released_sampler(timesteps=None):
    """A ComfyUI SAMPLER running the released loop."""
    opts = {} if timesteps is None else {"timesteps": timesteps}
    return comfy.samplers.KSAMPLER(sample_released_comfy, extra_options=opts)


def released_sigmas(steps: int, shift: float, denoise: float = 1.0):
    """``(sigmas, timesteps)`` of the released schedule; ``denoise < 1`` keeps the last
    ``steps`` steps of a ``steps / denoise`` schedule (as ComfyUI does)."""
    if denoise <= 0.0:
        return torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    total = steps if denoise > 0.9999 else int(steps / denoise)
    sigmas, t = released_schedule(total, shift)
    return sigmas[-(steps + 1):], t[-steps:]


# -- nodes ----------------------------------------------------------------------------------

def schedule_inputs() -> dict:
    """``steps``, ``shift`` and ``denoise`` (50 and 8 released), the same inputs in the LumosX
    Sampler and the Released Schedule."""
    return {"steps": io.Int.Input("steps", default=50, min=1, max=MAX_STEPS),
            "shift": io.Float.Input("shift", default=8.0, min=0.1, max=100.0, step=0.1,
                                    tooltip="Flow shift (8 released); must be > 0."),
            "denoise": io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01)}


class LumosXSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        samplers = [RELEASED, *comfy.samplers.KSampler.SAMPLERS]
        schedulers = [RELEASED, *comfy.samplers.KSampler.SCHEDULERS]
        schedule = schedule_inputs()
        return io.Schema(
            node_id="LumosXSampler",
            display_name="LumosX Sampler",
            category="LumosX",
            description=("Samples a LumosX video with the released settings: the authors' "
                         "flow DPM-Solver++(2M) and schedule (lumosx_released: integer DiT "
                         "timesteps), shift 8, 50 steps, CFG 6. ComfyUI's own samplers and "
                         "schedulers stay selectable. Progress bar, previews and interrupt "
                         "work as usual. Patches the model for LumosX when it is not yet."),
            inputs=[
                io.Model.Input("model"),
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Latent.Input("latent"),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             control_after_generate=True),
                schedule["steps"],
                io.Float.Input("cfg", default=6.0, min=0.0, max=100.0, step=0.1),
                io.Combo.Input("sampler_name", options=samplers, default=RELEASED,
                               tooltip="lumosx_released = the released solver (flow "
                                       "DPM-Solver++(2M) in log-SNR of the flow); the others "
                                       "are ComfyUI's (dpmpp_2m is close, not equal)."),
                io.Combo.Input("scheduler", options=schedulers, default=RELEASED,
                               tooltip="lumosx_released = the released schedule (shifted "
                                       "linspace in float64); the others are ComfyUI's."),
                schedule["shift"],
                schedule["denoise"],
            ],
            outputs=[io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        latent = values.get("latent")   # linked: known in execute only
        return validate(cls, values, latent_work_error(
            "latent", latent.get("samples") if isinstance(latent, dict) else None))

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg, sampler_name,
                scheduler, shift, denoise) -> io.NodeOutput:
        check_inputs(cls, locals())
        if not isinstance(latent, dict) or not hasattr(latent.get("samples"), "shape"):
            raise ValueError("latent: expected a LATENT (e.g. from LumosX Bind)")
        m = with_shift(ensure_patched(model), shift)
        timesteps = None
        if scheduler == RELEASED:
            sigmas, timesteps = released_sigmas(steps, shift, denoise)
        else:
            ks = comfy.samplers.KSampler(m, steps=steps, device=m.load_device,
                                         sampler=sampler_name, scheduler=scheduler,
                                         denoise=denoise, model_options=m.model_options)
            sigmas = ks.sigmas
        if sampler_name == RELEASED:
            sampler = released_sampler(timesteps if denoise > 0.9999 else None)
        else:
            sampler = comfy.samplers.sampler_object(sampler_name)
        out = dict(latent)
        latent_image = comfy.sample.fix_empty_latent_channels(m, latent["samples"])
        if sigmas.numel() == 0:
            out["samples"] = latent_image
            return io.NodeOutput(out)
        noise = comfy.sample.prepare_noise(latent_image, seed, latent.get("batch_index"))
        callback = latent_preview.prepare_callback(m, sigmas.shape[-1] - 1)
        out["samples"] = comfy.sample.sample_custom(
            m, noise, cfg, sampler, sigmas, positive, negative, latent_image,
            noise_mask=latent.get("noise_mask"), callback=callback,
            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        return io.NodeOutput(out)


class LumosXReleasedSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXReleasedSampler",
            display_name="LumosX Released Sampler",
            category="LumosX",
            description=("The released LumosX solver as a SAMPLER for SamplerCustomAdvanced: "
                         "flow DPM-Solver++(2M), midpoint, in λ = log((1−σ)/σ), first order on "
                         "the first and last step, with the DiT fed the released integer "
                         "timesteps. Use it with the LumosX Released Schedule (flow models "
                         "only: Wan 2.1)."),
            inputs=[],
            outputs=[io.Sampler.Output(display_name="sampler")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(released_sampler())


class LumosXReleasedSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXReleasedSchedule",
            display_name="LumosX Released Schedule",
            category="LumosX",
            description=("The released sigmas: s = linspace(1, 0, steps+1), σ = shift·s / "
                         "(1 + (shift−1)·s) in float64, then 0 (50 steps, shift 8 released). "
                         "With the LumosX Released Sampler the DiT gets the released integer "
                         "timesteps."),
            inputs=[
                *schedule_inputs().values(),
            ],
            outputs=[io.Sigmas.Output(display_name="sigmas")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return validate(cls, values)

    @classmethod
    def execute(cls, steps, shift, denoise=1.0) -> io.NodeOutput:
        check_inputs(cls, locals())
        return io.NodeOutput(released_sigmas(steps, shift, denoise)[0])


NODES = [LumosXSampler, LumosXReleasedSampler, LumosXReleasedSchedule]
