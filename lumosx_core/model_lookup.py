"""Which DiT files the Model Loader lists and which path a listed name loads, the weight
and compute precisions it offers, and the model folders the pack registers.

ComfyUI's model folders are passed in: ``paths`` is anything with ``folder_paths``'s
``get_folder_paths(folder)``, ``get_filename_list(folder)`` and ``get_full_path(folder, name)``
(the node passes the ``folder_paths`` module itself). No ComfyUI import here.
"""
from __future__ import annotations

import os
from typing import List, Optional

import torch

from .convert import CACHE_SUFFIX, is_distributed_checkpoint
from .model_files import missing_file_message

LUMOSX_FOLDER = "lumosx"
#: the folders the Model Loader reads, in the order it looks
DIT_FOLDERS = ("diffusion_models", LUMOSX_FOLDER)
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
#: compute precision of the DiT; "default" = what ComfyUI picks for the device (fp16 on most
#: GPUs), bf16 = the released inference (weights and activations in bf16)
COMPUTE_RELEASED = "bf16 (released)"
COMPUTE_DTYPES = {"default": None, COMPUTE_RELEASED: torch.bfloat16, "fp16": torch.float16,
                  "fp32": torch.float32}


def model_folder(paths, name: str, extensions=()) -> List[str]:
    """The roots of ComfyUI's model folder ``name`` (``paths``: the ``folder_paths`` module),
    registering ``models/<name>`` first unless another pack or extra_model_paths.yaml did."""
    default = os.path.join(paths.models_dir, name)
    if name not in paths.folder_names_and_paths:
        paths.folder_names_and_paths[name] = ([default], set(extensions))
    return paths.get_folder_paths(name) or [default]


def distributed_dirs(bases) -> List[str]:
    """Torch-distributed checkpoint folders (at most two levels down) under ``bases``, as
    ``name/``."""
    out = []
    for base in bases:
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


def _outside(name: str) -> Optional[str]:
    """The refusal of a name that points outside the model folders, else ``None``."""
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return (f"model_name '{name}': only files inside the model folders can be loaded "
                f"(no absolute paths or '..')")
    return None


class DitFiles:
    """The Model Loader's files, over ComfyUI's model folders (``paths``, see the module)."""

    def __init__(self, paths):
        self.paths = paths

    def choices(self) -> List[str]:
        """Every loadable name: files in :data:`DIT_FOLDERS` (not our converted copies,
        listed under their source's name) and distributed-checkpoint folders ``name/``."""
        names = [n for folder in DIT_FOLDERS for n in self.paths.get_filename_list(folder)
                 if not n.endswith(CACHE_SUFFIX)]
        names += distributed_dirs(self.paths.get_folder_paths(LUMOSX_FOLDER))
        return sorted(set(names))

    def name_error(self, name) -> Optional[str]:
        """Why ``name`` cannot be loaded (outside the folders, or not there), else ``None``."""
        if name is None:
            return None
        refusal = _outside(str(name))
        if refusal:
            return refusal
        if name not in self.choices():
            return missing_file_message("model_name", name, DIT_FOLDERS)
        return None

    def resolve(self, name: str) -> str:
        """Full path of a listed model name; names outside the model folders are refused."""
        parts = [p for p in name.replace("\\", "/").split("/") if p]
        refusal = _outside(name)
        if refusal:
            raise ValueError(refusal)
        if name.endswith("/"):
            for base in self.paths.get_folder_paths(LUMOSX_FOLDER):
                path = os.path.join(base, *parts)
                if is_distributed_checkpoint(path):
                    return path
        else:
            for folder in DIT_FOLDERS:
                path = self.paths.get_full_path(folder, name)
                if path is not None:
                    return path
            for folder in DIT_FOLDERS:       # a pipe, device or bad link:
                for base in self.paths.get_folder_paths(folder):   # the loader says what it is
                    path = os.path.join(base, *parts)
                    if os.path.lexists(path):
                        return path
        raise ValueError(missing_file_message("model_name", name, DIT_FOLDERS))


def weight_options(weight_dtype: str, compute_dtype: str = "default") -> dict:
    """ComfyUI ``model_options`` for a ``weight_dtype`` (:data:`WEIGHT_DTYPES`): fp8 storage;
    otherwise a ``compute_dtype`` other than ``default`` stores the weights in it too."""
    opts = {}
    if weight_dtype in ("fp8_e4m3fn", "fp8_e4m3fn_fast"):
        opts["dtype"] = torch.float8_e4m3fn
        if weight_dtype == "fp8_e4m3fn_fast":
            opts["fp8_optimizations"] = True
    elif weight_dtype == "fp8_e5m2":
        opts["dtype"] = torch.float8_e5m2
    dtype = COMPUTE_DTYPES.get(compute_dtype)
    if dtype is not None and "dtype" not in opts:
        opts["dtype"] = dtype
    return opts
