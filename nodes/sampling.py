"""Sampling: the LumosX Sampler (ComfyUI's ModelSamplingSD3 + SamplerCustom, by default with
the released solver and schedule) and the released SAMPLER / SIGMAS for SamplerCustomAdvanced."""
from __future__ import annotations

import comfy.patcher_extension
import comfy.sample
import comfy.samplers
from comfy_api.latest import io

from ..lumosx_core.limits import LatentWork
from ..lumosx_core.released_timesteps import sample_with_timesteps
from ..lumosx_core.solver import released_schedule
from .patch import WRAPPER_KEY, apply_lumosx
from .validation import LumosXNode, check_inputs, schema

#: option name of the released sampler / schedule in the LumosX Sampler's combos
RELEASED = "lumosx_released"
_DM = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL


def run_core_node(node, **inputs) -> tuple:
    """The outputs of a ComfyUI core node run as the graph would, old style (``FUNCTION``) or
    new (``execute``)."""
    out = getattr(node(), node.FUNCTION)(**inputs) if hasattr(node, "FUNCTION") else \
        node.execute(**inputs)
    return out if isinstance(out, tuple) else out.result


def released_sampler(timesteps=None):
    """A ComfyUI SAMPLER running the released loop."""
    opts = {"wrapper_kind": _DM, **({} if timesteps is None else {"timesteps": timesteps})}
    return comfy.samplers.KSAMPLER(sample_with_timesteps, extra_options=opts)


def schedule_inputs() -> dict:
    """``steps``, ``shift`` and ``denoise``: the Sampler's and the Released Schedule's."""
    return {"steps": io.Int.Input("steps", default=50, min=1, max=200, tooltip=(
                "Denoising steps (50 released).")),
            "shift": io.Float.Input("shift", default=8.0, min=0.1, max=100.0, step=0.1, tooltip=(
                "Flow shift (8 released); must be > 0.")),
            "denoise": io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01,
                                      tooltip=("1 from pure noise; below 1 only the last steps "
                                               "of a longer schedule run."))}


class LumosXSampler(LumosXNode):
    CHECKS = (LatentWork("latent"),)

    @classmethod
    def define_schema(cls):
        schedule = schedule_inputs()
        return schema(
            "LumosXSampler", "LumosX Sampler",
            description=(
                "Samples a LumosX video with the released settings (the authors' solver and "
                "schedule lumosx_released, shift 8, 50 steps, CFG 6); ComfyUI's samplers and "
                "schedulers stay selectable. Patches the model for LumosX when needed."),
            inputs=[
                io.Model.Input("model", tooltip=(
                    "A Wan 2.1 T2V model; patched for LumosX here when it is not yet.")),
                io.Conditioning.Input("positive", tooltip="Bind's positive."),
                io.Conditioning.Input("negative", tooltip="Bind's negative."),
                io.Latent.Input("latent", tooltip=(
                    "Bind's empty video latent (or any video latent of that size).")),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             control_after_generate=True, tooltip="Noise seed."),
                schedule["steps"],
                io.Float.Input("cfg", default=6.0, min=0.0, max=100.0, step=0.1, tooltip=(
                    "Classifier-free guidance scale (6 released).")),
                io.Combo.Input("sampler_name", default=RELEASED, options=[
                    RELEASED, *comfy.samplers.KSampler.SAMPLERS], tooltip=(
                        "lumosx_released = the released solver (flow DPM-Solver++(2M) in "
                        "log-SNR of the flow); the others are ComfyUI's (dpmpp_2m is close, not "
                        "equal).")),
                io.Combo.Input("scheduler", default=RELEASED, options=[
                    RELEASED, *comfy.samplers.KSampler.SCHEDULERS], tooltip=(
                        "lumosx_released = the released schedule (shifted linspace in "
                        "float64); the others are ComfyUI's.")),
                schedule["shift"],
                schedule["denoise"],
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip=(
                "The sampled video latent: into VAE Decode."))],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg, sampler_name,
                scheduler, shift, denoise) -> io.NodeOutput:
        check_inputs(cls, locals())
        if not isinstance(latent, dict) or not hasattr(latent.get("samples"), "shape"):
            raise ValueError("latent: expected a LATENT (e.g. from LumosX Bind)")
        from comfy_extras.nodes_custom_sampler import SamplerCustom  # here: a host without
        from comfy_extras.nodes_model_advanced import ModelSamplingSD3  # them loses this node only
        patched = model if model.get_wrappers(_DM, WRAPPER_KEY) else apply_lumosx(model)
        (m,) = run_core_node(ModelSamplingSD3, model=patched, shift=shift)
        timesteps = None
        if scheduler == RELEASED:
            sigmas, timesteps = released_schedule(steps, shift, denoise)
        else:
            sigmas = comfy.samplers.KSampler(m, steps=steps, device=m.load_device,
                                             sampler=sampler_name, scheduler=scheduler,
                                             denoise=denoise, model_options=m.model_options).sigmas
        if sigmas.numel() == 0:      # nothing to denoise: the latent as it is
            return io.NodeOutput({**latent, "samples": comfy.sample.fix_empty_latent_channels(
                m, latent["samples"])})
        sampler = (released_sampler(timesteps) if sampler_name == RELEASED
                   else comfy.samplers.sampler_object(sampler_name))
        return io.NodeOutput(run_core_node(
            SamplerCustom, model=m, add_noise=True, noise_seed=seed, cfg=cfg, positive=positive,
            negative=negative, sampler=sampler, sigmas=sigmas, latent_image=latent)[0])


class LumosXReleasedSampler(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXReleasedSampler", "LumosX Released Sampler",
            description=(
                "The released LumosX solver (flow DPM-Solver++(2M), the DiT fed the released "
                "integer timesteps) as a SAMPLER for SamplerCustomAdvanced. Use it with the "
                "LumosX Released Schedule."),
            inputs=[],
            outputs=[io.Sampler.Output(display_name="sampler", tooltip=(
                "The released solver: SamplerCustomAdvanced's sampler."))],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(released_sampler())


class LumosXReleasedSchedule(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXReleasedSchedule", "LumosX Released Schedule",
            description=(
                "The released sigmas (shifted linspace in float64; 50 steps, shift 8 released) "
                "for SamplerCustomAdvanced. With the LumosX Released Sampler the DiT gets the "
                "released integer timesteps."),
            inputs=list(schedule_inputs().values()),
            outputs=[io.Sigmas.Output(display_name="sigmas", tooltip=(
                "The released sigmas: SamplerCustomAdvanced's sigmas."))],
        )

    @classmethod
    def execute(cls, steps, shift, denoise=1.0) -> io.NodeOutput:
        check_inputs(cls, locals())
        return io.NodeOutput(released_schedule(steps, shift, denoise)[0])


NODES = [LumosXSampler, LumosXReleasedSampler, LumosXReleasedSchedule]
