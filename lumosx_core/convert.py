"""Load LumosX / Wan 2.1 DiT checkpoints in the formats the authors release, check them, and
convert them to safetensors.

Accepted sources:

* ``.safetensors``;
* a pickled state dict (``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``), possibly nested under an
  ``ema`` / ``model`` / ``module`` / ``state_dict`` key and with ``module.`` prefixes -- read
  with ``torch.load(weights_only=True)`` only: a pickle that would run code is refused;
* a sharded torch-distributed checkpoint directory (``.metadata`` + ``*.distcp``).

Command line: ``python -m lumosx_core.convert SRC DST``.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from typing import Dict, Optional

import torch

PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt")
SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
NEST_KEYS = ("ema", "ema_model", "model_ema", "state_dict", "model", "module", "net", "dit",
             "transformer")
STRIP_PREFIXES = ("module.", "_orig_mod.", "_fsdp_wrapped_module.", "model.diffusion_model.",
                  "diffusion_model.", "model.", "ema.", "ema_model.", "state_dict.")
CACHE_SUFFIX = ".lumosx.safetensors"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says why and what to do."""


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


def is_distributed_checkpoint(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, ".metadata"))


def _tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) for k in obj) and any(torch.is_tensor(v) for v in obj.values())


def unwrap_state_dict(obj) -> Dict[str, torch.Tensor]:
    """Find the DiT's tensors inside a loaded checkpoint object and normalise key names."""
    for _ in range(4):  # descend through wrapper dicts ({"ema": {...}, "step": ...})
        if not isinstance(obj, dict):
            break
        inner = next((obj[k] for k in NEST_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not _tensor_dict(obj):
        raise CheckpointError("no tensors found in the checkpoint (looked under "
                              f"{', '.join(NEST_KEYS)}); is it a model state dict?")
    return {_strip_prefixes(k): v for k, v in obj.items() if torch.is_tensor(v)}


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in STRIP_PREFIXES:
            if key.startswith(p):
                key = key[len(p):]
                changed = True
    return key


def load_pickle(path: str):
    """``torch.load(weights_only=True)``: plain tensors and containers only."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {os.path.basename(path)}: the pickle contains objects other than "
            f"plain tensors (loading it could run code). Convert it to .safetensors where you "
            f"trust it, or use the authors' released file. ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)}: the file is damaged or "
                              f"truncated ({str(e).splitlines()[0]})") from None


def load_distributed(path: str) -> Dict[str, torch.Tensor]:
    """Load a torch-distributed (DCP) checkpoint directory into full tensors, no process
    group needed."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    reader = dcp.FileSystemReader(path)
    meta = reader.read_metadata()
    target = {}
    for key, m in meta.state_dict_metadata.items():
        if isinstance(m, TensorStorageMetadata):
            target[key] = torch.empty(m.size, dtype=m.properties.dtype)
    if not target:
        raise CheckpointError(f"the distributed checkpoint {path} holds no tensors")
    with warnings.catch_warnings():  # "no process group: assuming one process" is the point
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(target, storage_reader=reader, no_dist=True)
    return target  # nested dicts come back flattened with dots ("model.blocks.0...")


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)}: not a valid safetensors "
                              f"file or truncated ({e}). Download it again.") from None


def load_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """Read any accepted source into a flat ``{name: tensor}`` state dict (Wan key names)."""
    if is_distributed_checkpoint(path):
        return unwrap_state_dict(load_distributed(path))
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder without a torch-distributed checkpoint "
                              f"(.metadata file missing)")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    low = path.lower()
    if low.endswith(SAFETENSORS_EXTENSIONS):
        return unwrap_state_dict(load_safetensors(path))
    if low.endswith(PICKLE_EXTENSIONS):
        return unwrap_state_dict(load_pickle(path))
    raise CheckpointError(f"unsupported checkpoint type: {os.path.basename(path)} (use "
                          f".safetensors, .pt/.pth or a distributed checkpoint folder)")


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


def inspect_wan(sd: Dict[str, torch.Tensor]) -> WanInfo:
    """Check ``sd`` is a Wan 2.1 *text-to-video* DiT; raise :class:`CheckpointError` naming
    what it is otherwise."""
    keys = set(sd)
    need = ("patch_embedding.weight", "head.modulation", "head.head.weight",
            "blocks.0.self_attn.q.weight", "blocks.0.cross_attn.k.weight", "text_embedding.0.weight")
    if not all(k in keys for k in need):
        raise CheckpointError(f"this file is {_what_else(keys)}; LumosX needs a Wan 2.1 T2V "
                              f"DiT (the LumosX checkpoint)")
    kinds = [
        ("vace_patch_embedding.weight", "a Wan VACE model"),
        ("control_adapter.conv.weight", "a Wan Fun camera-control model"),
        ("casual_audio_encoder.encoder.final_linear.weight", "a Wan S2V (speech-to-video) model"),
        ("audio_proj.audio_proj_glob_1.layer.bias", "a HuMo model"),
        ("face_adapter.fuser_blocks.0.k_norm.weight", "a Wan Animate model"),
        ("img_emb.proj.0.bias", "a Wan image-to-video (I2V/FLF2V) model"),
        ("blocks.0.cross_attn.k_img.weight", "a Wan image-to-video (I2V) model"),
        ("ref_conv.weight", "a Wan Fun reference model"),
    ]
    for key, name in kinds:
        if key in keys:
            raise CheckpointError(f"this file is {name}; LumosX needs a Wan 2.1 text-to-video "
                                  f"DiT (the LumosX checkpoint)")
    pe = sd["patch_embedding.weight"]
    dim, in_dim = int(pe.shape[0]), int(pe.shape[1])
    out_dim = int(sd["head.head.weight"].shape[0]) // 4
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
    layers = 0
    while f"blocks.{layers}.self_attn.q.weight" in keys:
        layers += 1
    return WanInfo(dim=dim, layers=layers, ffn_dim=int(sd["blocks.0.ffn.0.weight"].shape[0]),
                   in_dim=in_dim, out_dim=out_dim,
                   text_dim=int(sd["text_embedding.0.weight"].shape[1]))


def save_safetensors(sd: Dict[str, torch.Tensor], dst: str, metadata: Optional[dict] = None):
    """Write atomically (a temporary file renamed into place); shared storage is cloned."""
    from safetensors.torch import save_file
    seen = set()
    clean = {}
    for k, v in sd.items():
        v = v.contiguous()
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else None
        if ptr is not None and ptr in seen:
            v = v.clone()
        elif ptr is not None:
            seen.add(ptr)
        clean[k] = v
    tmp = dst + ".partial"
    save_file(clean, tmp, metadata=metadata or {})
    os.replace(tmp, dst)


def cache_path(src: str) -> str:
    """Where the converted copy of ``src`` lives: beside it."""
    return src.rstrip("/\\") + CACHE_SUFFIX


def convert(src: str, dst: str) -> WanInfo:
    """Load ``src`` (any accepted format), check it is a Wan 2.1 T2V DiT, write ``dst``."""
    sd = load_checkpoint(src)
    info = inspect_wan(sd)
    save_safetensors(sd, dst, {"lumosx_source": os.path.basename(src.rstrip("/\\")),
                               "format": "wan2.1-t2v"})
    return info


def load_converted(src: str, write_cache: bool = True) -> Dict[str, torch.Tensor]:
    """Load ``src``; non-safetensors sources are converted once and cached beside it, and the
    cache is used while it is newer than the source."""
    if src.lower().endswith(SAFETENSORS_EXTENSIONS):
        sd = load_checkpoint(src)
        inspect_wan(sd)
        return sd
    cached = cache_path(src)
    if os.path.isfile(cached) and os.path.getmtime(cached) >= _mtime(src):
        sd = load_safetensors(cached)
        inspect_wan(sd)
        return sd
    sd = load_checkpoint(src)
    inspect_wan(sd)
    if write_cache:
        try:
            save_safetensors(sd, cached, {"lumosx_source": os.path.basename(src.rstrip("/\\"))})
        except OSError:
            pass  # read-only model folder: just use it uncached
    return sd


def _mtime(path: str) -> float:
    if os.path.isdir(path):
        return max([os.path.getmtime(os.path.join(path, f)) for f in os.listdir(path)]
                   + [os.path.getmtime(path)])
    return os.path.getmtime(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lumosx_core.convert",
                                 description="Convert a LumosX / Wan 2.1 T2V DiT checkpoint "
                                             "(.pt/.pth, safetensors or a torch-distributed "
                                             "checkpoint folder) to .safetensors.")
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args(argv)
    try:
        info = convert(args.src, args.dst)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: Wan 2.1 T2V, dim {info.dim}, {info.layers} blocks, "
          f"ffn {info.ffn_dim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
