"""Load LumosX / Wan 2.1 DiT checkpoints in the formats the authors release, check them, and
convert them to safetensors.

Accepted sources:

* ``.safetensors``;
* a pickled state dict (``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``), possibly nested under an
  ``ema`` / ``model`` / ``module`` / ``state_dict`` key and with ``module.`` prefixes -- read
  with ``torch.load(weights_only=True)`` only: a pickle that would run code is refused;
* a sharded torch-distributed checkpoint directory (``.metadata`` + ``*.distcp``). Its
  ``.metadata`` pickle is read by :class:`MetadataUnpickler`, which can only build the
  checkpoint-metadata classes (torch's own ``FileSystemReader.read_metadata`` is a plain
  ``pickle.load``, and ``dcp.load`` reads non-tensor items with ``weights_only=False``, so
  neither is ever called); every tensor chunk is read with ``torch.load(weights_only=True)``.

No file this module reads can run code. Command line: ``python -m lumosx_core.convert SRC DST``.
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

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


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks for objects that could run code: refused unread."""


def _first_line(e: BaseException) -> str:
    """First line of an exception's message, or its type when the message is empty."""
    lines = str(e).strip().splitlines()
    if not lines:
        return type(e).__name__
    line = lines[0].split(". ")[0]
    if isinstance(e, (KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError)):
        return f"{type(e).__name__}: {line}"
    return line


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


#: What torch's weights-only unpickler says when a pickle names a callable it does not allow
#: (the pickle was made to build objects other than tensors: loading it could run code).
#: ("Unsupported operand N" is not one of them: that is a file that is no torch pickle at all.)
_UNSAFE_MARKERS = ("GLOBAL ", "Trying to call reduce for", "Can only create new object",
                   "Can only build", "persistent_load of")


def load_pickle(path: str):
    """``torch.load(weights_only=True)``: plain tensors and containers only. A pickle that
    asks for anything else is refused (:class:`UnsafeCheckpointError`); an empty, damaged or
    non-checkpoint file is a plain :class:`CheckpointError`."""
    name = os.path.basename(path)
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"cannot read {name}: the file is empty (0 bytes); download it "
                              f"again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if any(m in msg for m in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(
                f"refused to load {name}: the pickle contains objects other than plain "
                f"tensors (loading it could run code). Convert it to .safetensors where you "
                f"trust it, or use the authors' released file. ({_detail(msg)})") from None
        raise CheckpointError(f"cannot read {name}: not a PyTorch checkpoint, or damaged "
                              f"({_detail(msg)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError,
            AttributeError, MemoryError) as e:
        raise CheckpointError(f"cannot read {name}: not a PyTorch checkpoint, or damaged or "
                              f"truncated ({_first_line(e)})") from None


def _detail(msg: str) -> str:
    """The informative line of torch's weights-only error (it opens with advice we replace)."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("WeightsUnpickler error", "Unsupported", "Trying", "Can only",
                          "invalid load key", "could not find", "unpickling")):
            return ln
    return lines[0] if lines else "unreadable pickle"


# -- torch-distributed checkpoint folders, read without trusting their pickles -----------------

#: The largest ``.metadata`` file read (a real one is a few MB even for many ranks).
DCP_METADATA_MAX_BYTES = 256 << 20


def _dcp_allowed_globals() -> Dict[Tuple[str, str], object]:
    """``(module, name) -> object`` for everything a torch-distributed ``.metadata`` pickle
    legitimately names: the metadata dataclasses, ``torch.Size``, dtypes, layouts, paths,
    ordered dicts and sets. Nothing in it runs code beyond building these values."""
    import collections
    import pathlib

    import torch.distributed.checkpoint.filesystem as dcp_fs
    import torch.distributed.checkpoint.metadata as dcp_md
    allowed: Dict[Tuple[str, str], object] = {}

    def add(module, names):
        for n in names:
            obj = getattr(module, n, None)
            if obj is not None:
                allowed[(module.__name__, n)] = obj

    add(dcp_md, ("Metadata", "MetadataIndex", "TensorStorageMetadata", "BytesStorageMetadata",
                 "ChunkStorageMetadata", "TensorProperties", "StorageMeta",
                 "_MEM_FORMAT_ENCODING"))
    add(dcp_fs, ("_StorageInfo", "_StoragePrefix"))
    try:  # older torch pickled TensorProperties from the sharded-tensor module
        import torch.distributed._shard.sharded_tensor.metadata as shard_md
        add(shard_md, ("TensorProperties", "MEM_FORMAT_ENCODING"))
    except ImportError:  # pragma: no cover
        pass
    for n, v in vars(torch).items():
        if isinstance(v, torch.dtype):
            allowed[("torch", n)] = v
    allowed[("torch", "Size")] = torch.Size
    from torch import serialization
    allowed[("torch.serialization", "_get_layout")] = serialization._get_layout
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    allowed[("builtins", "set")] = set
    allowed[("builtins", "frozenset")] = frozenset
    for n in ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath", "Path"):
        allowed[("pathlib", n)] = getattr(pathlib, n)
    return allowed


class MetadataUnpickler(pickle.Unpickler):
    """Unpickler for a torch-distributed ``.metadata`` file: only the classes of
    :func:`_dcp_allowed_globals` can be named; anything else (``os.system``, ``eval``,
    ``subprocess``, arbitrary classes) raises :class:`UnsafeCheckpointError` before it is
    looked up."""

    def __init__(self, file, source: str = ".metadata"):
        super().__init__(file)
        self._allowed = _dcp_allowed_globals()
        self._source = source

    def find_class(self, module, name):
        obj = self._allowed.get((module, name))
        if obj is None:
            raise UnsafeCheckpointError(
                f"refused to read {self._source}: it asks to build {module}.{name}, which "
                f"checkpoint metadata never needs (loading it could run code). Only torch-"
                f"distributed checkpoint metadata is accepted there; re-save the checkpoint "
                f"where you trust it, or convert it to .safetensors.")
        return obj

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"refused to read {self._source}: it holds persistent "
                                    f"references, which checkpoint metadata never has")


def read_dcp_metadata(path: str):
    """The ``Metadata`` of a torch-distributed checkpoint folder, unpickled by
    :class:`MetadataUnpickler` and checked to be what ``dcp.save`` writes."""
    from torch.distributed.checkpoint.metadata import Metadata
    meta_path = os.path.join(path, ".metadata")
    label = f"{os.path.basename(path.rstrip(os.sep))}/.metadata"
    size = os.path.getsize(meta_path)
    if size == 0:
        raise CheckpointError(f"cannot read {label}: the file is empty")
    if size > DCP_METADATA_MAX_BYTES:
        raise CheckpointError(f"cannot read {label}: {size} bytes is more than checkpoint "
                              f"metadata ever needs (limit {DCP_METADATA_MAX_BYTES})")
    with open(meta_path, "rb") as f:
        data = f.read()
    try:
        meta = MetadataUnpickler(io.BytesIO(data), label).load()
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RuntimeError, MemoryError, RecursionError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {label}: not torch-distributed checkpoint metadata, "
                              f"or damaged ({_first_line(e)})") from None
    if not isinstance(meta, Metadata) or not isinstance(
            getattr(meta, "state_dict_metadata", None), dict) or not isinstance(
            getattr(meta, "storage_data", None), dict):
        raise CheckpointError(f"cannot read {label}: it is not torch-distributed checkpoint "
                              f"metadata (got {type(meta).__name__})")
    return meta


def _dims(value, what: str) -> Tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CheckpointError(f"malformed distributed checkpoint metadata: {what} = {value!r}")
    return tuple(value)


def _storage_index(meta, path: str) -> Dict[Tuple[str, Tuple[int, ...]], object]:
    """``(fqn, chunk offsets) -> _StorageInfo`` with every file name checked to be a plain
    file inside the checkpoint folder."""
    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import MetadataIndex
    out = {}
    for idx, info in meta.storage_data.items():
        if not isinstance(idx, MetadataIndex) or not isinstance(info, _StorageInfo):
            raise CheckpointError("malformed distributed checkpoint metadata: storage entry "
                                  f"{idx!r}")
        rel = info.relative_path
        if (not isinstance(rel, str) or not rel or rel != os.path.basename(rel)
                or "/" in rel or "\\" in rel or rel in (".", "..")):
            raise CheckpointError(f"refused distributed checkpoint: storage file {rel!r} is not "
                                  f"a plain file name inside the checkpoint folder")
        for field_name in ("offset", "length"):
            v = getattr(info, field_name, None)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise CheckpointError(f"malformed distributed checkpoint metadata: {rel} "
                                      f"{field_name} = {v!r}")
        if getattr(info, "transform_descriptors", None):
            raise CheckpointError(
                f"this distributed checkpoint was saved with storage transforms "
                f"({', '.join(map(str, info.transform_descriptors))}), which LumosX does not "
                f"read; re-save it without them or convert it to .safetensors")
        offsets = _dims(tuple(idx.offset) if idx.offset is not None else (), "chunk offset")
        out[(idx.fqn, offsets)] = info
    return out


def load_distributed(path: str) -> Dict[str, torch.Tensor]:
    """Load a torch-distributed (DCP) checkpoint folder into full tensors, no process group
    needed. The metadata goes through :func:`read_dcp_metadata`; each tensor chunk is read
    with ``torch.load(weights_only=True)`` from its own byte range, and every tensor must be
    covered exactly by its chunks (no uninitialised memory). Non-tensor items are skipped
    unread. Nested dicts come back flattened with dots (``"model.blocks.0..."``)."""
    from torch.distributed.checkpoint.metadata import (ChunkStorageMetadata,
                                                       TensorStorageMetadata)
    meta = read_dcp_metadata(path)
    storage = _storage_index(meta, path)
    plan = []
    for key, m in meta.state_dict_metadata.items():
        if not isinstance(m, TensorStorageMetadata):
            continue
        dtype = getattr(getattr(m, "properties", None), "dtype", None)
        if not isinstance(key, str) or not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"malformed distributed checkpoint metadata for {key!r}")
        size = _dims(m.size, f"{key} size")
        chunks = []
        for c in m.chunks if isinstance(m.chunks, (list, tuple)) else ():
            if not isinstance(c, ChunkStorageMetadata):
                raise CheckpointError(f"malformed distributed checkpoint metadata for {key}")
            off, sz = _dims(c.offsets, f"{key} chunk offsets"), _dims(c.sizes, f"{key} chunk sizes")
            if len(off) != len(size) or len(sz) != len(size) or any(
                    o + n > d for o, n, d in zip(off, sz, size)):
                raise CheckpointError(f"malformed distributed checkpoint metadata: a chunk of "
                                      f"{key} lies outside its tensor {list(size)}")
            info = storage.get((key, off))
            if info is None:
                raise CheckpointError(f"distributed checkpoint incomplete: no stored data for "
                                      f"{key} at offset {list(off)}")
            chunks.append((off, sz, info))
        plan.append((key, size, dtype, chunks))
    if not plan:
        raise CheckpointError(f"the distributed checkpoint {path} holds no tensors")

    # Bound what we allocate by what is on disk: a metadata file cannot ask for more memory
    # than the data files it points at could fill.
    file_sizes = {}
    for _, _, _, chunks in plan:
        for _, _, info in chunks:
            rel = info.relative_path
            if rel not in file_sizes:
                full = os.path.join(path, rel)
                if not os.path.isfile(full):
                    raise CheckpointError(f"distributed checkpoint incomplete: {rel} is missing "
                                          f"from {path}")
                file_sizes[rel] = os.path.getsize(full)
            if info.offset + info.length > file_sizes[rel]:
                raise CheckpointError(f"distributed checkpoint truncated: {rel} is shorter "
                                      f"than its metadata says")
    wanted = sum(_numel(size) * _itemsize(dtype) for _, size, dtype, _ in plan)
    if wanted > sum(file_sizes.values()):
        raise CheckpointError(f"malformed distributed checkpoint: its metadata describes "
                              f"{wanted} bytes of tensors but its data files hold only "
                              f"{sum(file_sizes.values())}")

    out: Dict[str, torch.Tensor] = {}
    handles = {}
    try:
        for key, size, dtype, chunks in plan:
            out[key] = _assemble(path, key, size, dtype, chunks, handles)
    finally:
        for f in handles.values():
            f.close()
    return out


def _numel(size) -> int:
    n = 1
    for d in size:
        n *= d
    return n


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _assemble(path, key, size, dtype, chunks, handles) -> torch.Tensor:
    """One full tensor from its chunks; each chunk is a ``torch.save``-d tensor at
    ``[offset, offset + length)`` of its data file."""
    full = torch.empty(size, dtype=dtype)
    covered = torch.zeros(size, dtype=torch.bool) if len(chunks) > 1 else None
    filled = 0
    for off, sz, info in chunks:
        f = handles.get(info.relative_path)
        if f is None:
            f = handles[info.relative_path] = open(os.path.join(path, info.relative_path), "rb")
        f.seek(info.offset)
        raw = f.read(info.length)
        try:
            t = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise UnsafeCheckpointError(
                f"refused to load {info.relative_path} ({key}): its data holds objects other "
                f"than plain tensors (loading it could run code) ({_detail(str(e))})") from None
        except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError,
                TypeError, AttributeError) as e:
            raise CheckpointError(f"cannot read {key} from {info.relative_path}: damaged or "
                                  f"truncated ({_first_line(e)})") from None
        if not torch.is_tensor(t) or tuple(t.shape) != sz or t.dtype != dtype:
            raise CheckpointError(
                f"distributed checkpoint inconsistent: {key} chunk at {list(off)} holds "
                f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}"
                f"{' ' + str(t.dtype) if torch.is_tensor(t) else ''}, metadata says {list(sz)} "
                f"{dtype}")
        region = tuple(slice(o, o + n) for o, n in zip(off, sz))
        full[region] = t
        if covered is not None:
            if bool(covered[region].any()):
                raise CheckpointError(f"distributed checkpoint inconsistent: chunks of {key} "
                                      f"overlap")
            covered[region] = True
        filled += _numel(sz)
    if filled != _numel(size):
        raise CheckpointError(f"distributed checkpoint incomplete: the chunks of {key} cover "
                              f"{filled} of its {_numel(size)} values")
    return full


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)}: not a valid safetensors "
                              f"file or truncated ({_first_line(e)}). Download it again.") from None


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
    try:
        save_file(clean, tmp, metadata=metadata or {})
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.remove(tmp)  # never leave a half-written file behind
        except OSError:
            pass
        raise


def check_destination(dst: str, src: Optional[str] = None) -> None:
    """Refuse, before any work, a destination that cannot be written: a folder, a missing
    or unwritable parent folder, or the source itself."""
    if not dst:
        raise CheckpointError("destination: give a file name ending in .safetensors")
    if os.path.isdir(dst):
        raise CheckpointError(f"destination {dst} is a folder: give a file name ending in "
                              f".safetensors (e.g. {os.path.join(dst, 'lumosx.safetensors')})")
    if src is not None and os.path.exists(dst) and os.path.samefile(src, dst):
        raise CheckpointError(f"destination {dst} is the source itself: choose another name")
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise CheckpointError(f"destination folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(dst)
                                                    and not os.access(dst, os.W_OK)):
        raise CheckpointError(f"destination {dst} is not writable (no permission in "
                              f"{parent})")


def cache_path(src: str) -> str:
    """Where the converted copy of ``src`` lives: beside it."""
    return src.rstrip("/\\") + CACHE_SUFFIX


def convert(src: str, dst: str) -> WanInfo:
    """Load ``src`` (any accepted format), check it is a Wan 2.1 T2V DiT, write ``dst``
    (checked first: :func:`check_destination`)."""
    if not os.path.exists(src):
        raise CheckpointError(f"checkpoint not found: {src}")
    check_destination(dst, src)
    sd = load_checkpoint(src)
    info = inspect_wan(sd)
    from safetensors import SafetensorError
    try:
        save_safetensors(sd, dst, {"lumosx_source": os.path.basename(src.rstrip("/\\")),
                                   "format": "wan2.1-t2v"})
    except (OSError, SafetensorError) as e:
        why = getattr(e, "strerror", None) or _first_line(e)
        raise CheckpointError(f"cannot write {dst}: {why}") from None
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
        from safetensors import SafetensorError
        try:
            save_safetensors(sd, cached, {"lumosx_source": os.path.basename(src.rstrip("/\\"))})
        except (OSError, SafetensorError):
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
    except OSError as e:  # anything the checks above could not foresee (disk full, ...)
        print(f"error: {e.filename or args.dst}: {e.strerror or _first_line(e)}",
              file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: Wan 2.1 T2V, dim {info.dim}, {info.layers} blocks, "
          f"ffn {info.ffn_dim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
