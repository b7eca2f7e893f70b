"""Load LumosX / Wan 2.1 DiT checkpoints in the formats the authors release, check them, and
convert them to safetensors.

Accepted sources:

* ``.safetensors``;
* a pickled state dict (``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``), possibly nested under an
  ``ema`` / ``model`` / ``module`` / ``state_dict`` key and with ``module.`` prefixes -- read
  with ``torch.load(weights_only=True)`` only: a pickle that would run code is refused;
* a sharded torch-distributed checkpoint directory (``.metadata`` + ``*.distcp``). Its
  ``.metadata`` pickle is read by :class:`~lumosx_core.dcp_unpickle.MetadataUnpickler`, which
  builds only fresh metadata records (torch's own ``FileSystemReader.read_metadata`` is a plain
  ``pickle.load``, and ``dcp.load`` reads non-tensor items with ``weights_only=False``, so
  neither is ever called); every tensor chunk is read with ``torch.load(weights_only=True)``.

No file this module reads can run code or change the running program, and none can make it
claim more memory than its tensors need: only regular files are opened; sizes come from the
headers (torch's zip directory, the safetensors header, the checkpoint metadata) and are
checked before any data is read (:mod:`~lumosx_core.torch_zip`); a Wan checkpoint's tensors
are checked by name, shape and dtype from those headers, and for NaN / infinity once read
(:mod:`~lumosx_core.wan_checkpoint`). Command line: ``python -m lumosx_core.convert SRC DST``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import stat
import struct
import sys
from typing import Dict, Optional, Tuple

import torch

from .checkpoint_errors import CheckpointError, UnsafeCheckpointError
from .dcp_unpickle import MetadataUnpickler
from .torch_zip import Window, has_hole, is_zip, read_records
from .wan_checkpoint import WanInfo, check_finite, expected_shapes, inspect_wan

PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt")
SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
NEST_KEYS = ("ema", "ema_model", "model_ema", "state_dict", "model", "module", "net", "dit",
             "transformer")
STRIP_PREFIXES = ("module.", "_orig_mod.", "_fsdp_wrapped_module.", "model.diffusion_model.",
                  "diffusion_model.", "model.", "ema.", "ema_model.", "state_dict.")
CACHE_SUFFIX = ".lumosx.safetensors"
#: the largest safetensors header read (a 1.3B DiT's is ~100 KB)
SAFETENSORS_HEADER_MAX = 16 << 20
#: bytes a DCP chunk may hold beyond its tensor's data (torch.save's zip records: ~1.3 KB)
DCP_CHUNK_OVERHEAD = 64 << 10



def _first_line(e: BaseException) -> str:
    """First line of an exception's message, or its type when the message is empty."""
    lines = str(e).strip().splitlines()
    if not lines:
        return type(e).__name__
    line = lines[0].split(". ")[0]
    if isinstance(e, (KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError)):
        return f"{type(e).__name__}: {line}"
    return line


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


def regular_file(path: str, label: Optional[str] = None) -> int:
    """The size of ``path``, a regular file (links followed); a missing path is "not found",
    a named pipe, device, socket or folder (or a link to one, e.g. to ``/dev/zero``) "not a
    regular file" -- refused without opening it (a pipe would block forever)."""
    label = label or path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        broken = " (a link to a missing file)" if os.path.islink(path) else ""
        raise CheckpointError(f"checkpoint not found: {label}{broken}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {label}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a file")
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise CheckpointError(f"{label} is not a regular file: it is {kind}{link}. Checkpoints "
                              f"are read only from regular files: put the file itself there")
    return st.st_size


def is_distributed_checkpoint(path: str) -> bool:
    """A folder with a ``.metadata`` entry (any kind: a non-file one is refused on reading)."""
    return os.path.isdir(path) and os.path.lexists(os.path.join(path, ".metadata"))


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


def _torch_load(f, label: str, **kw):
    """``torch.load(f, weights_only=True)`` of an archive :func:`read_records` accepted, with
    torch's errors turned into :class:`UnsafeCheckpointError` (the pickle asks for objects
    other than tensors) or :class:`CheckpointError` (damaged)."""
    try:
        return torch.load(f, weights_only=True, **kw)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if any(m in msg for m in _UNSAFE_MARKERS):
            raise UnsafeCheckpointError(
                f"refused to load {label}: the pickle contains objects other than plain "
                f"tensors (loading it could run code). Convert it to .safetensors where you "
                f"trust it, or use the authors' released file. ({_detail(msg)})") from None
        raise CheckpointError(f"cannot read {label}: not a PyTorch checkpoint, or damaged "
                              f"({_detail(msg)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError,
            AttributeError, MemoryError, struct.error) as e:
        raise CheckpointError(f"cannot read {label}: not a PyTorch checkpoint, or damaged or "
                              f"truncated ({_first_line(e)})") from None


def _checked_archive(f, size: int, label: str):
    """The records of a torch.save archive, checked by :func:`read_records` (nothing of its
    data read); an empty or non-zip file is a plain :class:`CheckpointError`."""
    if size == 0:
        raise CheckpointError(f"cannot read {label}: the file is empty (0 bytes); download it "
                              f"again")
    if not is_zip(f):
        raise CheckpointError(
            f"cannot read {label}: not a PyTorch checkpoint (torch.save's zip format), or "
            f"damaged. (Files in torch's legacy pre-1.6 format are not read: re-save them "
            f"with a current torch or convert them to .safetensors where you trust them.)")
    return read_records(f, size, label)


def _pickle_file(path: str, map_location: str):
    name = os.path.basename(path)
    size = regular_file(path, name)
    with open(path, "rb") as f:
        _checked_archive(f, size, name)
    return _torch_load(path, name, map_location=map_location)


def load_pickle(path: str):
    """``torch.load(weights_only=True)``: plain tensors and containers only, from a torch.save
    archive whose records were checked first (:func:`~lumosx_core.torch_zip.read_records`:
    stored, inside the file, within the size limits). A pickle that asks for anything else is
    refused (:class:`UnsafeCheckpointError`); an empty, damaged or non-checkpoint file is a
    plain :class:`CheckpointError`."""
    return _pickle_file(path, "cpu")


def _detail(msg: str) -> str:
    """The informative line of torch's weights-only error (it opens with advice we replace)."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("WeightsUnpickler error", "Unsupported", "Trying", "Can only",
                          "invalid load key", "could not find", "unpickling")):
            return ln
    return lines[0] if lines else "unreadable pickle"


# -- torch-distributed checkpoint folders, read without trusting their pickles -----------------

#: The largest ``.metadata`` file read: the 1.3B DiT's is ~0.2 MB per rank that saved it, so
#: this allows checkpoints of ~80 ranks (and bounds what the pure-Python unpickler builds).
DCP_METADATA_MAX_BYTES = 16 << 20


def read_dcp_metadata(path: str):
    """The ``Metadata`` of a torch-distributed checkpoint folder, unpickled by
    :class:`~lumosx_core.dcp_unpickle.MetadataUnpickler` (fresh records only, nothing of the
    process changed) and checked to be what ``dcp.save`` writes."""
    from torch.distributed.checkpoint.metadata import Metadata
    meta_path = os.path.join(path, ".metadata")
    label = f"{os.path.basename(path.rstrip(os.sep))}/.metadata"
    size = regular_file(meta_path, label)
    if size == 0:
        raise CheckpointError(f"cannot read {label}: the file is empty")
    if size > DCP_METADATA_MAX_BYTES:
        raise CheckpointError(f"cannot read {label}: {size} bytes is more than checkpoint "
                              f"metadata ever needs (limit {DCP_METADATA_MAX_BYTES})")
    with open(meta_path, "rb") as f:
        data = f.read(DCP_METADATA_MAX_BYTES + 1)
    try:
        meta = MetadataUnpickler(io.BytesIO(data), label).load()
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # any failure of the parse of an untrusted file: damaged
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


def _dcp_plan(path: str):
    """``[(key, size, dtype, [(offsets, sizes, storage info), ...]), ...]``: every tensor of
    the checkpoint and where its chunks are, from the metadata alone (nothing else read)."""
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
    return plan


def _check_chunks(path: str, plan) -> None:
    """Before anything is allocated or read: every data file is a regular file; every chunk's
    byte range lies inside its file, holds data on disk (no sparse hole) and is at most its
    tensor data plus torch.save's records (:data:`DCP_CHUNK_OVERHEAD`); its zip directory
    declares stored records of exactly the chunk's size; and the tensors together ask for no
    more memory than the data files hold."""
    file_sizes, handles = {}, {}
    try:
        for key, _, dtype, chunks in plan:
            for off, sz, info in chunks:
                rel = info.relative_path
                if rel not in file_sizes:
                    full = os.path.join(path, rel)
                    if not os.path.lexists(full):
                        raise CheckpointError(f"distributed checkpoint incomplete: {rel} is "
                                              f"missing from {path}")
                    file_sizes[rel] = regular_file(full, f"{os.path.basename(path)}/{rel}")
                    handles[rel] = open(full, "rb")
                where = f"{rel} ({key} at {list(off)})"
                start, length = info.offset, info.length
                if start + length > file_sizes[rel]:
                    raise CheckpointError(f"distributed checkpoint truncated: {rel} is shorter "
                                          f"than its metadata says")
                need = _numel(sz) * _itemsize(dtype)
                if length > need + DCP_CHUNK_OVERHEAD:
                    raise CheckpointError(
                        f"refused distributed checkpoint: its metadata gives {where} {length} "
                        f"bytes for {need} bytes of tensor data ({list(sz)} {dtype}); a chunk "
                        f"holds its data plus at most {DCP_CHUNK_OVERHEAD} bytes")
                f = handles[rel]
                if has_hole(f, start, start + length):
                    raise CheckpointError(
                        f"refused distributed checkpoint: {where} is sparse (a hole with no "
                        f"data on disk), so it cannot be the saved tensor: copy the checkpoint "
                        f"again")
                records = read_records(Window(f, start, length), length, where)
                stored = sum(r.size for r in records.values() if "/data/" in r.name)
                if stored != need:
                    raise CheckpointError(
                        f"distributed checkpoint inconsistent: {where} stores {stored} bytes of "
                        f"tensor data, its metadata says {list(sz)} {dtype} ({need} bytes)")
    finally:
        for f in handles.values():
            f.close()
    wanted = sum(_numel(size) * _itemsize(dtype) for _, size, dtype, _ in plan)
    if wanted > sum(file_sizes.values()):
        raise CheckpointError(f"malformed distributed checkpoint: its metadata describes "
                              f"{wanted} bytes of tensors but its data files hold only "
                              f"{sum(file_sizes.values())}")


def load_distributed(path: str) -> Dict[str, torch.Tensor]:
    """Load a torch-distributed (DCP) checkpoint folder into full tensors, no process group
    needed. The metadata goes through :func:`read_dcp_metadata`, every chunk through
    :func:`_check_chunks` before anything is read; each chunk is then read with
    ``torch.load(weights_only=True)`` from its own byte range, and every tensor must be
    covered exactly by its chunks (no uninitialised memory). Non-tensor items are skipped
    unread. Nested dicts come back flattened with dots (``"model.blocks.0..."``)."""
    plan = _dcp_plan(path)
    _check_chunks(path, plan)
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
    ``[offset, offset + length)`` of its data file (read in place, not copied first)."""
    whole = len(chunks) == 1 and chunks[0][1] == tuple(size)
    full = None if whole else torch.empty(size, dtype=dtype)
    covered = torch.zeros(size, dtype=torch.bool) if len(chunks) > 1 else None
    filled = 0
    for off, sz, info in chunks:
        f = handles.get(info.relative_path)
        if f is None:
            f = handles[info.relative_path] = open(os.path.join(path, info.relative_path), "rb")
        where = f"{info.relative_path} ({key})"
        t = _torch_load(Window(f, info.offset, info.length), where, map_location="cpu")
        if not torch.is_tensor(t) or tuple(t.shape) != sz or t.dtype != dtype:
            raise CheckpointError(
                f"distributed checkpoint inconsistent: {key} chunk at {list(off)} holds "
                f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}"
                f"{' ' + str(t.dtype) if torch.is_tensor(t) else ''}, metadata says {list(sz)} "
                f"{dtype}")
        if whole:
            return t
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


# -- safetensors ----------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": getattr(torch, "float8_e4m3fn", None),
    "F8_E5M2": getattr(torch, "float8_e5m2", None),
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool, "U16": getattr(torch, "uint16", None),
    "U32": getattr(torch, "uint32", None), "U64": getattr(torch, "uint64", None),
    "C64": torch.complex64,
}


def _safetensors_header(path: str) -> Tuple[str, dict]:
    """``(name, header)``: the file's JSON header, read after its declared length was checked
    against the file and :data:`SAFETENSORS_HEADER_MAX` (the safetensors library itself checks
    each tensor's byte range against its shape and dtype before reading data)."""
    name = os.path.basename(path)
    size = regular_file(path, name)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"cannot read {name}: not a valid safetensors file or "
                                  f"truncated ({size} bytes). Download it again.")
        (n,) = struct.unpack("<Q", head)
        if n > SAFETENSORS_HEADER_MAX:
            raise CheckpointError(f"cannot read {name}: its header declares {n} bytes, more "
                                  f"than a model needs (limit {SAFETENSORS_HEADER_MAX}); the "
                                  f"file is damaged or not a safetensors file")
        if 8 + n > size:
            raise CheckpointError(f"cannot read {name}: not a valid safetensors file or "
                                  f"truncated (its header runs past the end). Download it "
                                  f"again.")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {name}: not a valid safetensors file or "
                              f"truncated ({_first_line(e)}). Download it again.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot read {name}: not a valid safetensors file")
    return name, header


def _safetensors_layout(path: str) -> Dict[str, torch.Tensor]:
    """Meta tensors (names, shapes, dtypes) of a safetensors file, from its header only."""
    name, header = _safetensors_header(path)
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"cannot read {name}: tensor {key} has no valid shape")
        if dtype is None:       # a dtype torch cannot hold: reported as what it is
            raise CheckpointError(f"{name}: tensor {key} is {entry.get('dtype')}, not a "
                                  f"floating-point weight LumosX can use")
        out[key] = torch.empty(shape, dtype=dtype, device="meta")
    return out


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    _safetensors_header(path)
    try:
        return load_file(path)
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)}: not a valid safetensors "
                              f"file or truncated ({_first_line(e)}). Download it again.") from None


# -- any format --------------------------------------------------------------------------------

def _kind(path: str) -> str:
    if is_distributed_checkpoint(path):
        return "dcp"
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder without a torch-distributed checkpoint "
                              f"(.metadata file missing)")
    regular_file(path)
    low = path.lower()
    if low.endswith(SAFETENSORS_EXTENSIONS):
        return "safetensors"
    if low.endswith(PICKLE_EXTENSIONS):
        return "pickle"
    raise CheckpointError(f"unsupported checkpoint type: {os.path.basename(path)} (use "
                          f".safetensors, .pt/.pth or a distributed checkpoint folder)")


def read_layout(path: str) -> Dict[str, torch.Tensor]:
    """The checkpoint's tensors as meta tensors (Wan key names, shapes, dtypes), from its
    headers alone: the safetensors header, the pickle of a torch.save archive (its data
    records unread), a distributed checkpoint's metadata. For checking a file before reading
    it."""
    kind = _kind(path)
    if kind == "dcp":
        return unwrap_state_dict({key: torch.empty(size, dtype=dtype, device="meta")
                                  for key, size, dtype, _ in _dcp_plan(path)})
    if kind == "safetensors":
        return unwrap_state_dict(_safetensors_layout(path))
    return unwrap_state_dict(_pickle_file(path, "meta"))


def load_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """Read any accepted source into a flat ``{name: tensor}`` state dict (Wan key names)."""
    kind = _kind(path)
    if kind == "dcp":
        return unwrap_state_dict(load_distributed(path))
    if kind == "safetensors":
        return unwrap_state_dict(load_safetensors(path))
    return unwrap_state_dict(load_pickle(path))


def load_checked(path: str) -> Tuple[Dict[str, torch.Tensor], WanInfo]:
    """Load a Wan 2.1 T2V DiT checkpoint: its headers checked first (:func:`read_layout` +
    :func:`~lumosx_core.wan_checkpoint.inspect_wan`: every tensor present with its shape and a
    floating dtype, before any data is read), then its data, then NaN / infinity per tensor.
    Every error names the file."""
    name = os.path.basename(path.rstrip("/\\"))
    info = inspect_wan(read_layout(path), name)
    sd = load_checkpoint(path)
    info = inspect_wan(sd, name)
    check_finite(sd, name, expected_shapes(info))
    return sd, info


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
    if not os.path.lexists(src):
        raise CheckpointError(f"checkpoint not found: {src}")
    check_destination(dst, src)
    sd, info = load_checked(src)
    from safetensors import SafetensorError
    try:
        save_safetensors(sd, dst, {"lumosx_source": os.path.basename(src.rstrip("/\\")),
                                   "format": "wan2.1-t2v"})
    except (OSError, SafetensorError) as e:
        why = getattr(e, "strerror", None) or _first_line(e)
        raise CheckpointError(f"cannot write {dst}: {why}") from None
    return info


def load_converted(src: str, write_cache: bool = True) -> Dict[str, torch.Tensor]:
    """Load ``src`` (checked by :func:`load_checked`); non-safetensors sources are converted
    once and cached beside it, and the cache is used while it is newer than the source."""
    if src.lower().endswith(SAFETENSORS_EXTENSIONS):
        return load_checked(src)[0]
    cached = cache_path(src)
    if os.path.isfile(cached) and os.path.getmtime(cached) >= _mtime(src):
        return load_checked(cached)[0]
    sd = load_checked(src)[0]
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
