"""Model nodes: load the LumosX DiT (any released format) or patch a MODEL from another loader."""
from __future__ import annotations

import logging
import os

import torch

import comfy.sd
import folder_paths
from comfy_api.latest import io

from ..lumosx_core.convert import (CACHE_SUFFIX, CheckpointError, is_distributed_checkpoint,
                                   load_converted)
from ..lumosx_core.model_files import missing_file_message
from .patch import apply_lumosx
from ..lumosx_core.limits import Listed, choice_error
from .validation import LumosXNode, check_inputs

log = logging.getLogger("LumosX")

LUMOSX_FOLDER = "lumosx"
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
#: compute precision of the DiT; "default" = what ComfyUI picks for the device (fp16 on most
#: GPUs), bf16 = the released inference (weights and activations in bf16)
COMPUTE_RELEASED = "bf16 (released)"
COMPUTE_DTYPES = {"default": None, COMPUTE_RELEASED: torch.bfloat16, "fp16": torch.float16,
                  "fp32": torch.float32}


def register_folders() -> None:
    """Register ``models/lumosx`` (checkpoints of any accepted format) once."""
    if LUMOSX_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[LUMOSX_FOLDER] = (
            [os.path.join(folder_paths.models_dir, LUMOSX_FOLDER)],
            set(folder_paths.supported_pt_extensions))


register_folders()


def _distributed_dirs():
    """Torch-distributed checkpoint folders under the lumosx model folders, as ``name/``."""
    out = []
    for base in folder_paths.get_folder_paths(LUMOSX_FOLDER):
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, _ in os.walk(base, followlinks=True):
            depth = os.path.relpath(dirpath, base).count(os.sep)
            if depth >= 2:
                dirnames[:] = []
            for d in list(dirnames):
                full = os.path.join(dirpath, d)
                if is_distributed_checkpoint(full):
                    out.append(os.path.relpath(full, base).replace(os.sep, "/") + "/")
                    dirnames.remove(d)
    return out


def model_choices():
    names = []
    for folder in ("diffusion_models", LUMOSX_FOLDER):
        for name in folder_paths.get_filename_list(folder):
            if name.endswith(CACHE_SUFFIX):
                continue  # our converted copies: listed under their source's name
            names.append(name)
    names += _distributed_dirs()
    return sorted(set(names))


def name_error(name) -> str | None:
    if name is None:
        return None
    parts = str(name).replace("\\", "/").split("/")
    if os.path.isabs(str(name)) or ".." in parts:
        return (f"model_name '{name}': only files inside the model folders can be loaded "
                f"(no absolute paths or '..')")
    if name not in model_choices():
        return missing_file_message("model_name", name, ("diffusion_models", LUMOSX_FOLDER))
    return None


def resolve_model(name: str) -> str:
    """Full path of a listed model name; names outside the model folders are refused."""
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or ".." in parts:
        raise ValueError(f"model_name '{name}': only files inside the model folders can be "
                         f"loaded")
    if name.endswith("/"):
        for base in folder_paths.get_folder_paths(LUMOSX_FOLDER):
            path = os.path.join(base, *[p for p in parts if p])
            if is_distributed_checkpoint(path):
                return path
    else:
        for folder in ("diffusion_models", LUMOSX_FOLDER):
            path = folder_paths.get_full_path(folder, name)
            if path is not None:
                return path
        for folder in ("diffusion_models", LUMOSX_FOLDER):   # a pipe, device or bad link:
            for base in folder_paths.get_folder_paths(folder):   # the loader says what it is
                path = os.path.join(base, *[p for p in parts if p])
                if os.path.lexists(path):
                    return path
    raise ValueError(missing_file_message("model_name", name,
                                          ("diffusion_models", LUMOSX_FOLDER)))


def weight_options(weight_dtype: str) -> dict:
    opts = {}
    if weight_dtype == "fp8_e4m3fn":
        opts["dtype"] = torch.float8_e4m3fn
    elif weight_dtype == "fp8_e4m3fn_fast":
        opts["dtype"] = torch.float8_e4m3fn
        opts["fp8_optimizations"] = True
    elif weight_dtype == "fp8_e5m2":
        opts["dtype"] = torch.float8_e5m2
    return opts


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
    opts = weight_options(weight_dtype)
    dtype = COMPUTE_DTYPES[compute_dtype]
    if dtype is not None and "dtype" not in opts:
        opts["dtype"] = dtype
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
        return io.Schema(
            node_id="LumosXModelLoader",
            display_name="LumosX Model Loader",
            category="LumosX",
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
        return io.Schema(
            node_id="LumosXApply",
            display_name="LumosX Apply",
            category="LumosX",
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
