"""What a Wan 2.1 text-to-video DiT state dict must hold, checked before the model is built:
which model a file is (:func:`inspect_wan`), every tensor the DiT needs with its shape and a
floating-point dtype (:func:`expected_shapes`), and finite values (:func:`check_finite`).

ComfyUI builds the DiT with uninitialised weights and loads the state dict non-strictly, so a
missing tensor would silently stay garbage, a mis-shaped one fails with a bare size-mismatch
message, and integer, boolean or NaN weights give an all-black video marked success. Every
check here names the file and the tensor instead. The checks work on meta tensors too (shapes
and dtypes read from a file's headers), so a wrong file is refused before its data is read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from .checkpoint_errors import CheckpointError

#: Wan 2.1's sinusoidal time-embedding width and patch size (fixed by the architecture)
FREQ_DIM = 256
PATCH = (1, 2, 2)
#: values checked per call of :func:`check_finite` (bounds its temporary memory)
FINITE_CHUNK = 1 << 24


@dataclass(frozen=True)
class WanInfo:
    """What a Wan 2.1 T2V DiT state dict describes."""

    dim: int
    layers: int
    ffn_dim: int
    in_dim: int
    out_dim: int
    text_dim: int

    @property
    def heads(self) -> int:
        return self.dim // 128

    def describe(self) -> str:
        blocks = f"{self.layers} block" + ("s" if self.layers != 1 else "")
        return (f"a Wan 2.1 T2V DiT with dim {self.dim}, {blocks}, ffn {self.ffn_dim}, text "
                f"{self.text_dim}")


def expected_shapes(info: WanInfo) -> Dict[str, Tuple[int, ...]]:
    """Every tensor of a Wan 2.1 T2V DiT (ComfyUI's ``WanModel``, the released key names)
    and its shape."""
    d, f, t = info.dim, info.ffn_dim, info.text_dim
    out = info.out_dim * PATCH[0] * PATCH[1] * PATCH[2]
    shapes = {
        "patch_embedding.weight": (d, info.in_dim) + PATCH, "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, t), "text_embedding.0.bias": (d,),
        "text_embedding.2.weight": (d, d), "text_embedding.2.bias": (d,),
        "time_embedding.0.weight": (d, FREQ_DIM), "time_embedding.0.bias": (d,),
        "time_embedding.2.weight": (d, d), "time_embedding.2.bias": (d,),
        "time_projection.1.weight": (6 * d, d), "time_projection.1.bias": (6 * d,),
        "head.modulation": (1, 2, d), "head.head.weight": (out, d), "head.head.bias": (out,),
    }
    for i in range(info.layers):
        b = f"blocks.{i}."
        shapes[b + "modulation"] = (1, 6, d)
        for attn in ("self_attn", "cross_attn"):
            for p in ("q", "k", "v", "o"):
                shapes[f"{b}{attn}.{p}.weight"] = (d, d)
                shapes[f"{b}{attn}.{p}.bias"] = (d,)
            shapes[f"{b}{attn}.norm_q.weight"] = (d,)
            shapes[f"{b}{attn}.norm_k.weight"] = (d,)
        shapes[b + "norm3.weight"] = (d,)
        shapes[b + "norm3.bias"] = (d,)
        shapes[b + "ffn.0.weight"] = (f, d)
        shapes[b + "ffn.0.bias"] = (f,)
        shapes[b + "ffn.2.weight"] = (d, f)
        shapes[b + "ffn.2.bias"] = (d,)
    return shapes


def _what_else(keys) -> str:
    joined = " ".join(list(keys)[:200])
    if "shared.weight" in keys or "encoder.block.0.layer.0.SelfAttention.q.weight" in joined:
        return "a T5/umT5 text encoder (put it in models/text_encoders)"
    if any(k.startswith(("decoder.", "encoder.conv1", "conv1.")) for k in keys):
        return "a VAE (put it in models/vae)"
    if any(k.startswith(("double_blocks.", "single_blocks.")) for k in keys):
        return "a Flux/Hunyuan-style DiT, not Wan"
    if any(k.startswith(("input_blocks.", "down_blocks.")) for k in keys):
        return "a UNet (Stable Diffusion family), not Wan"
    return "not a Wan 2.1 DiT"


_KINDS = [
    ("vace_patch_embedding.weight", "a Wan VACE model"),
    ("control_adapter.conv.weight", "a Wan Fun camera-control model"),
    ("casual_audio_encoder.encoder.final_linear.weight", "a Wan S2V (speech-to-video) model"),
    ("audio_proj.audio_proj_glob_1.layer.bias", "a HuMo model"),
    ("face_adapter.fuser_blocks.0.k_norm.weight", "a Wan Animate model"),
    ("img_emb.proj.0.bias", "a Wan image-to-video (I2V/FLF2V) model"),
    ("blocks.0.cross_attn.k_img.weight", "a Wan image-to-video (I2V) model"),
    ("ref_conv.weight", "a Wan Fun reference model"),
]
_BLOCK = re.compile(r"blocks\.(\d+)\.")


def _prefix(source: Optional[str]) -> str:
    return f"{source}: " if source else ""


def _dim(sd, key: str, ndim: int, axis: int, want: str, source) -> int:
    shape = tuple(sd[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"{_prefix(source)}tensor {key} has shape {list(shape)}; a Wan "
                              f"2.1 T2V DiT has {want} there")
    return int(shape[axis])


def inspect_wan(sd: Dict[str, torch.Tensor], source: Optional[str] = None) -> WanInfo:
    """Check ``sd`` is a whole Wan 2.1 *text-to-video* DiT: raise :class:`CheckpointError`
    naming what it is otherwise, or (naming ``source`` and the tensor, with the shape it
    should have) a tensor that is missing, mis-shaped or not floating point. ``sd`` may hold
    meta tensors."""
    keys = set(sd)
    need = ("patch_embedding.weight", "head.modulation", "head.head.weight",
            "blocks.0.self_attn.q.weight", "blocks.0.cross_attn.k.weight", "text_embedding.0.weight")
    if not all(k in keys for k in need):
        raise CheckpointError(f"this file is {_what_else(keys)}; LumosX needs a Wan 2.1 T2V "
                              f"DiT (the LumosX checkpoint)")
    for key, name in _KINDS:
        if key in keys:
            raise CheckpointError(f"this file is {name}; LumosX needs a Wan 2.1 text-to-video "
                                  f"DiT (the LumosX checkpoint)")
    dim = _dim(sd, "patch_embedding.weight", 5, 0, "[dim, 16, 1, 2, 2]", source)
    in_dim = int(sd["patch_embedding.weight"].shape[1])
    out_dim = _dim(sd, "head.head.weight", 2, 0, "[64, dim]", source) // 4
    if in_dim != 16 or out_dim != 16:
        what = ("a Wan 2.2 TI2V 5B model" if in_dim == 48 or out_dim == 48 else
                f"a Wan model with {in_dim} input channels (image/control conditioned)")
        raise CheckpointError(f"this file is {what}; LumosX needs a Wan 2.1 text-to-video DiT "
                              f"with 16 latent channels")
    if dim == 5120:
        raise CheckpointError("this file is Wan 2.1 14B; LumosX is a fine-tune of Wan 2.1 T2V "
                              "1.3B (dim 1536): load the LumosX checkpoint")
    if dim % 128:
        raise CheckpointError(f"hidden size {dim} is not a multiple of the Wan head size 128")
    layers = 1 + max(int(m.group(1)) for m in map(_BLOCK.match, keys) if m)
    ffn_key = next((f"blocks.{i}.ffn.0.weight" for i in range(layers)
                    if f"blocks.{i}.ffn.0.weight" in keys), None)
    ffn = _dim(sd, ffn_key, 2, 0, "[ffn, dim]", source) if ffn_key else 8960  # Wan 2.1 1.3B
    info = WanInfo(dim=dim, layers=layers, ffn_dim=ffn, in_dim=in_dim, out_dim=out_dim,
                   text_dim=_dim(sd, "text_embedding.0.weight", 2, 1, "[dim, 4096]", source))
    check_tensors(sd, info, source)
    return info


def check_tensors(sd: Dict[str, torch.Tensor], info: WanInfo, source: Optional[str] = None):
    """Every tensor of :func:`expected_shapes` is in ``sd``, with that shape and a floating
    point dtype."""
    shapes = expected_shapes(info)
    missing = [k for k in shapes if k not in sd]
    if missing:
        listed = ", ".join(f"{k} {list(shapes[k])}" for k in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise CheckpointError(
            f"{_prefix(source)}tensor {listed}{more} missing: {info.describe()} has "
            f"{'them' if len(missing) > 1 else 'it'}. The file is incomplete or not a whole "
            f"LumosX / Wan 2.1 T2V checkpoint: download it again")
    for key, shape in shapes.items():
        t = sd[key]
        if tuple(t.shape) != shape:
            raise CheckpointError(
                f"{_prefix(source)}tensor {key} has shape {list(t.shape)}; {info.describe()} "
                f"needs {list(shape)}. The file is damaged or from another model: use the "
                f"released LumosX checkpoint")
        if not t.dtype.is_floating_point:
            raise CheckpointError(
                f"{_prefix(source)}tensor {key} is {t.dtype}: a DiT's weights are floating "
                f"point (float32, bfloat16, float16 or float8), so this file is not a usable "
                f"LumosX checkpoint: use the released one")


def check_finite(sd: Dict[str, torch.Tensor], source: Optional[str] = None, keys=None) -> None:
    """Refuse, naming ``source`` and the tensor, weights holding NaN or infinity (they make a
    black video). ``keys``: the tensors to check (default all); :data:`FINITE_CHUNK` values at
    a time."""
    for key in (sd if keys is None else keys):
        t = sd[key]
        if not t.dtype.is_floating_point or t.numel() == 0 or t.is_meta:
            continue
        flat = t.reshape(-1)
        for start in range(0, flat.numel(), FINITE_CHUNK):
            part = flat[start:start + FINITE_CHUNK]
            if part.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
                part = part.float()                       # float8: no reductions of its own
            lo, hi = torch.aminmax(part)
            if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
                raise CheckpointError(
                    f"{_prefix(source)}tensor {key} holds NaN or infinite values: the weights "
                    f"are damaged (a diverged training or a broken conversion) and would give a "
                    f"black video; use the released LumosX checkpoint")
