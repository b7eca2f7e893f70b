"""One-node sampling with the released LumosX defaults, on ComfyUI's own sampler."""
from __future__ import annotations

import comfy.model_sampling
import comfy.patcher_extension
import comfy.samplers
import nodes as comfy_nodes
from comfy_api.latest import io

from .patch import WRAPPER_KEY, apply_lumosx

MAX_STEPS = 200     # 4x the released 50
from .validation import latent_work_error, raise_if_invalid, validate


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
    if model.get_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY):
        return model
    return apply_lumosx(model)


class LumosXSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        samplers = comfy.samplers.KSampler.SAMPLERS
        schedulers = comfy.samplers.KSampler.SCHEDULERS
        return io.Schema(
            node_id="LumosXSampler",
            display_name="LumosX Sampler",
            category="LumosX",
            description=("Samples a LumosX video with the released defaults (flow shift 8, 50 "
                         "steps, CFG 6, DPM++ 2M) on ComfyUI's own sampler: progress bar, "
                         "previews and interrupt work as usual. Patches the model for LumosX "
                         "when it is not yet."),
            inputs=[
                io.Model.Input("model"),
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Latent.Input("latent"),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             control_after_generate=True),
                io.Int.Input("steps", default=50, min=1, max=MAX_STEPS),
                io.Float.Input("cfg", default=6.0, min=0.0, max=100.0, step=0.1),
                io.Combo.Input("sampler_name", options=samplers,
                               default="dpmpp_2m" if "dpmpp_2m" in samplers else samplers[0]),
                io.Combo.Input("scheduler", options=schedulers,
                               default="simple" if "simple" in schedulers else schedulers[0]),
                io.Float.Input("shift", default=8.0, min=0.1, max=100.0, step=0.1,
                               tooltip="Flow-matching shift (8 released); must be > 0."),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01),
            ],
            outputs=[io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return validate(cls, values)

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg, sampler_name,
                scheduler, shift, denoise) -> io.NodeOutput:
        raise_if_invalid(cls.validate_inputs(seed=seed, steps=steps, cfg=cfg,
                                             sampler_name=sampler_name, scheduler=scheduler,
                                             shift=shift, denoise=denoise))
        if not isinstance(latent, dict) or not hasattr(latent.get("samples"), "shape"):
            raise ValueError("latent: expected a LATENT (e.g. from LumosX Bind)")
        raise_if_invalid(latent_work_error("latent", latent["samples"]) or True)
        m = with_shift(ensure_patched(model), shift)
        (out,) = comfy_nodes.common_ksampler(m, seed, steps, cfg, sampler_name, scheduler,
                                             positive, negative, latent, denoise=denoise)
        return io.NodeOutput(out)


NODES = [LumosXSampler]
