"""Model nodes: load the LumosX DiT (any released format) or patch a MODEL from another loader."""
from __future__ import annotations

import comfy.sd
import folder_paths
from comfy_api.latest import io

from ..lumosx_core.convert import CheckpointError, load_converted
from ..lumosx_core.limits import Listed
from ..lumosx_core.model_lookup import (COMPUTE_DTYPES, LUMOSX_FOLDER, WEIGHT_DTYPES, DitFiles,
                                        model_folder, weight_options)
from .patch import apply_lumosx
from .validation import LumosXNode, check_inputs, schema

model_folder(folder_paths, LUMOSX_FOLDER, folder_paths.supported_pt_extensions)
DIT = DitFiles(folder_paths)
model_choices, name_error, resolve_model = DIT.choices, DIT.name_error, DIT.resolve


class LumosXModelLoader(LumosXNode):
    CHECKS = (Listed("model_name", name_error),)

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXModelLoader", "LumosX Model Loader",
            description=(
                "Loads the LumosX DiT (a .safetensors file, the authors' .pt/.pth or a "
                "distributed-checkpoint folder) from models/diffusion_models or models/lumosx "
                "and returns a MODEL with the LumosX patch installed."),
            inputs=[
                io.Combo.Input("model_name", options=model_choices(), tooltip=(
                    "The LumosX DiT in models/diffusion_models or models/lumosx (a file or a "
                    "distributed-checkpoint folder).")),
                io.Combo.Input("weight_dtype", options=WEIGHT_DTYPES, default="default", tooltip=(
                    "Storage of the weights, as in the stock diffusion model loader (fp8 saves "
                    "memory).")),
                io.Combo.Input(
                    "compute_dtype", options=list(COMPUTE_DTYPES), default="default",
                    optional=True, tooltip=(  # optional: graphs saved before it keep working
                        "DiT precision. default: ComfyUI's choice for the device (fp16 on most "
                        "GPUs). bf16 (released): bf16 weights and activations, as released.")),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip=(
                "The DiT with the LumosX patch: into the sampler."))],
        )

    @classmethod
    def execute(cls, model_name, weight_dtype, compute_dtype="default") -> io.NodeOutput:
        """Load, check and patch the DiT. A ``compute_dtype`` other than ``default`` also
        stores the weights in it (unless ``weight_dtype`` asks for fp8)."""
        check_inputs(cls, locals())
        try:
            sd = load_converted(resolve_model(model_name))
        except CheckpointError as e:
            raise ValueError(f"model_name '{model_name}': {e}") from None
        model = comfy.sd.load_diffusion_model_state_dict(
            sd, model_options=weight_options(weight_dtype, compute_dtype))
        if model is None:
            raise ValueError(f"model_name '{model_name}': ComfyUI could not detect a model in "
                             f"this file")
        if COMPUTE_DTYPES[compute_dtype] is not None:
            model.set_model_compute_dtype(COMPUTE_DTYPES[compute_dtype])
        return io.NodeOutput(apply_lumosx(model))


class LumosXApply(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXApply", "LumosX Apply",
            description=(
                "Returns a copy of a Wan 2.1 text-to-video MODEL that understands LumosX "
                "conditioning (references bound to people). Without LumosX conditioning the "
                "copy behaves exactly like the input."),
            inputs=[io.Model.Input("model", tooltip="A Wan 2.1 T2V model (the LumosX DiT).")],
            outputs=[io.Model.Output(display_name="model", tooltip=(
                "A copy that understands LumosX conditioning."))],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(apply_lumosx(model))


NODES = [LumosXModelLoader, LumosXApply]
