"""Model nodes: load the LumosX DiT (any released format) or patch a MODEL from another loader."""
from __future__ import annotations

import os

import comfy.sd
import folder_paths
from comfy_api.latest import io

from ..lumosx_core.convert import CheckpointError, load_converted
from ..lumosx_core.limits import Listed, choice_error
from ..lumosx_core.model_lookup import (COMPUTE_DTYPES, LUMOSX_FOLDER, WEIGHT_DTYPES, DitFiles,
                                        weight_options)
from .patch import apply_lumosx
from .validation import LumosXNode, check_inputs, schema

DIT = DitFiles(folder_paths)
model_choices, name_error, resolve_model = DIT.choices, DIT.name_error, DIT.resolve


def register_folders() -> None:
    """Register ``models/lumosx`` (checkpoints of any accepted format) once."""
    if LUMOSX_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[LUMOSX_FOLDER] = (
            [os.path.join(folder_paths.models_dir, LUMOSX_FOLDER)],
            set(folder_paths.supported_pt_extensions))


register_folders()


def load_lumosx_model(name: str, weight_dtype: str = "default", compute_dtype: str = "default"):
    """Load, check and patch the DiT. ``compute_dtype`` other than ``default``: the weights
    are stored in it too (unless ``weight_dtype`` asks for fp8) and the model computes in it
    whatever the device would pick (ComfyUI's model compute dtype)."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(choice_error("compute_dtype", compute_dtype, COMPUTE_DTYPES))
    path = resolve_model(name)
    try:
        sd = load_converted(path)
    except CheckpointError as e:
        raise ValueError(f"model_name '{name}': {e}") from None
    opts = weight_options(weight_dtype, compute_dtype)
    dtype = COMPUTE_DTYPES[compute_dtype]
    model = comfy.sd.load_diffusion_model_state_dict(sd, model_options=opts)
    if model is None:
        raise ValueError(f"model_name '{name}': ComfyUI could not detect a model in this file")
    if dtype is not None:
        model.set_model_compute_dtype(dtype)
    return apply_lumosx(model)


class LumosXModelLoader(LumosXNode):
    CHECKS = (Listed("model_name", name_error),)

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXModelLoader", "LumosX Model Loader",
            description=("Loads the LumosX DiT from models/diffusion_models or models/lumosx: "
                         ".safetensors, the authors' .pt/.pth state dicts (converted once and "
                         "cached as safetensors beside them) or a torch-distributed checkpoint "
                         "folder. Returns a MODEL with the LumosX patch installed."),
            inputs=[
                io.Combo.Input("model_name", options=model_choices(),
                               tooltip="The LumosX DiT in models/diffusion_models or "
                                       "models/lumosx (a file or a distributed-checkpoint "
                                       "folder)."),
                io.Combo.Input("weight_dtype", options=WEIGHT_DTYPES, default="default",
                               tooltip="Storage of the weights, as in the stock diffusion "
                                       "model loader (fp8 saves memory)."),
                io.Combo.Input("compute_dtype", options=list(COMPUTE_DTYPES), default="default",
                               optional=True,  # graphs saved before it keep working
                               tooltip="DiT precision. default: ComfyUI's choice for the device "
                                       "(fp16 on most GPUs). bf16 (released): bf16 weights and "
                                       "activations, as the authors ran it (their time "
                                       "embedding, modulation and head stay fp32; ComfyUI's "
                                       "Wan runs them in the compute dtype)."),
            ],
            outputs=[io.Model.Output(display_name="model",
                                     tooltip="The DiT with the LumosX patch: into the sampler.")],
        )

    @classmethod
    def execute(cls, model_name, weight_dtype, compute_dtype="default") -> io.NodeOutput:
        check_inputs(cls, locals())
        return io.NodeOutput(load_lumosx_model(model_name, weight_dtype, compute_dtype))


class LumosXApply(LumosXNode):
    """Patch a MODEL from the stock loaders (any weight_dtype, LoRAs) for LumosX conditioning."""

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXApply", "LumosX Apply",
            description=("Returns a copy of a Wan 2.1 text-to-video MODEL that understands "
                         "LumosX conditioning (references bound to people). Without LumosX "
                         "conditioning the copy behaves exactly like the input."),
            inputs=[io.Model.Input("model", tooltip="A Wan 2.1 T2V model (the LumosX DiT).")],
            outputs=[io.Model.Output(display_name="model",
                                     tooltip="A copy that understands LumosX conditioning.")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(apply_lumosx(model))


NODES = [LumosXModelLoader, LumosXApply]
