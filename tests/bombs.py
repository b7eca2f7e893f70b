"""Small files that ask for a lot (issues #25, #28), made cheaply for the tests: pictures that
declare huge sizes, checkpoints whose records inflate or whose shards are sparse, and
``.metadata`` pickles that use only allowed names to change objects of the process.

Big sizes are declared, never written: PNGs are compressed rows of zeros streamed through
zlib, large files are sparse (``truncate``), compressed records are streamed."""
from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zipfile
import zlib

import torch


# -- pictures ---------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(path, width: int, height: int, whole: bool = True) -> int:
    """An RGB PNG declaring ``width x height``. ``whole``: every row present (zeros,
    compressed ~1000:1); else a truncated 65-byte file that decoders fill in (the 'declares
    9000x9000' bomb). Returns its size in bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if whole:
        co = zlib.compressobj(9)
        row = bytes(1 + 3 * width)
        idat = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    else:
        idat = zlib.compress(bytes(1 + 3 * width))[:8]
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


# -- torch.save archives ------------------------------------------------------------------------

def pt_with_compressed_record(path, nbytes: int) -> int:
    """A torch.save archive of one small tensor whose data record is replaced by ``nbytes``
    of zeros, deflated and streamed (~1 KB per MB): torch never writes compressed records, and
    the old loader inflated it in full before refusing the file. Returns the file size."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w") as dst:
        bombed = False
        for info in src.infolist():
            if "/data/" in info.filename and not bombed:
                bombed = True
                entry = zipfile.ZipInfo(info.filename)
                entry.compress_type = zipfile.ZIP_DEFLATED
                for level in ("compress_level", "_compresslevel"):   # Python >= 3.13, older
                    if level in type(entry).__slots__:
                        setattr(entry, level, 1)                      # zeros: fast, ~1:1000
                        break
                with dst.open(entry, "w", force_zip64=True) as out:
                    zero = bytes(1 << 20)
                    for _ in range(nbytes >> 20):
                        out.write(zero)
            else:
                dst.writestr(info, src.read(info.filename))
    return os.path.getsize(path)


# -- torch-distributed checkpoints ------------------------------------------------------------

def save_dcp(state: dict, path) -> str:
    import torch.distributed.checkpoint as dcp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(path), no_dist=True)
    return str(path)


def read_metadata(path):
    from lumosx_core.dcp_unpickle import MetadataUnpickler
    with open(os.path.join(path, ".metadata"), "rb") as f:
        return MetadataUnpickler(f).load()


def write_metadata(path, meta) -> None:
    with open(os.path.join(path, ".metadata"), "wb") as f:
        pickle.dump(meta, f)


def dcp_oversized_shard(path, nbytes: int, state=None, key: str = "a") -> str:
    """A checkpoint of ``state`` (default one 4-byte tensor ``a``) whose metadata gives the
    chunk of ``key`` a stored range ``nbytes`` long (the shard grown sparsely to hold it): the
    old loader read the whole range."""
    save_dcp(state if state is not None else {"a": torch.ones(1)}, path)
    meta = read_metadata(path)
    for idx, info in meta.storage_data.items():
        if idx.fqn == key:
            shard = os.path.join(path, info.relative_path)
            info.length = nbytes
            with open(shard, "r+b") as f:
                f.truncate(max(os.path.getsize(shard), info.offset + nbytes))
    write_metadata(path, meta)
    return str(path)


def dcp_sparse(path, shapes: dict, dtype=torch.float32) -> str:
    """A checkpoint whose metadata declares ``{key: shape}`` tensors of ``dtype``, each one
    chunk in one sparse shard (no data on disk, the declared bytes long): the old loader
    allocated and read it all before torch refused the zeros. Built from the metadata
    classes, no tensor made."""
    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import (ChunkStorageMetadata, Metadata,
                                                       MetadataIndex, TensorProperties,
                                                       TensorStorageMetadata)
    os.makedirs(path, exist_ok=True)
    item = torch.empty((), dtype=dtype).element_size()
    sdm, storage, offset = {}, {}, 0
    for key, shape in shapes.items():
        size = torch.Size(shape)
        zero = torch.Size([0] * len(shape))
        sdm[key] = TensorStorageMetadata(TensorProperties(dtype=dtype), size,
                                         [ChunkStorageMetadata(zero, size)])
        length = size.numel() * item + 1024
        storage[MetadataIndex(key, zero)] = _StorageInfo("__0_0.distcp", offset, length)
        offset += length
    with open(os.path.join(path, "__0_0.distcp"), "wb") as f:
        f.truncate(offset)
    write_metadata(path, Metadata(state_dict_metadata=sdm, storage_data=storage))
    return str(path)


# -- .metadata pickles that use only allowed names --------------------------------------------
# assembled from opcodes: each tries to change an object of the process, and some would have
# with a find_class allowlist alone (they did: issue #25)

def _s(text: str) -> bytes:                  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:     # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


_MD = "torch.distributed.checkpoint.metadata"


def _setattr_on(target: bytes, name: str) -> bytes:
    return _p(target + b"N}" + _s(name) + _s("x") + b"s\x86b")


def _dictstate_on(target: bytes, name: str, value: bytes = _s("x")) -> bytes:
    return _p(target + b"}" + _s(name) + value + b"sb")


class _ReduceEx:
    def __init__(self, result):
        self.result = result

    def __reduce_ex__(self, protocol):
        return self.result


def mutating_metadata() -> dict:
    """``{case: pickle bytes}``: BUILD onto allowed classes, a function, an enum member and
    values; getattr chains; copyreg; ``__reduce_ex__`` results; calls with arguments."""
    import collections
    import pathlib
    enum_member = _g(_MD, "_MEM_FORMAT_ENCODING") + b"K\x00\x85R"
    return {
        "build_posixpath_setattr": _setattr_on(_g("pathlib", "PosixPath"), "is_relative_to"),
        "build_posixpath_dict": _dictstate_on(_g("pathlib", "PosixPath"), "is_relative_to"),
        "build_chunk_class": _setattr_on(_g(_MD, "ChunkStorageMetadata"), "__init__"),
        "build_chunk_class_dict": _dictstate_on(_g(_MD, "ChunkStorageMetadata"), "sizes"),
        "build_metadata_class": _setattr_on(_g(_MD, "Metadata"), "__eq__"),
        "build_enum_member": _dictstate_on(enum_member, "_value_", b"K\x05"),
        "build_layout_function": _dictstate_on(_g("torch.serialization", "_get_layout"),
                                               "cache", b"}"),
        "build_dtype": _setattr_on(_g("torch", "float32"), "is_floating_point"),
        "setitems_on_enum": _p(enum_member + _s("a") + _s("b") + b"s"),
        "append_to_class": _p(_g(_MD, "Metadata") + _s("a") + b"a"),
        "getattr_chain": _p(_s("pathlib") + _s("PosixPath.is_relative_to") + b"\x93"),
        "getattr_builtin": _p(_g("builtins", "getattr") + _g("pathlib", "PosixPath")
                              + _s("is_relative_to") + b"\x86R"),
        "copyreg_reconstructor": _p(_g("copyreg", "_reconstructor") + _g(_MD, "Metadata")
                                    + _g("builtins", "object") + b"N\x87R"),
        "copyreg_extension": _p(b"\x82\x01"),
        "reduce_ex_path_with_state": pickle.dumps(
            _ReduceEx((pathlib.PosixPath, ("a",), {"_x": 1})), protocol=4),
        "reduce_ex_size_with_state": pickle.dumps(
            _ReduceEx((torch.Size, ((1, 2),), {"x": 1})), protocol=4),
        "reduce_ex_ordereddict_state": pickle.dumps(
            _ReduceEx((collections.OrderedDict, (), {"move_to_end": 1})), protocol=4),
        "reduce_record_with_args": _p(_g(_MD, "ChunkStorageMetadata") + _g("torch", "Size")
                                      + b")\x85R" + _g("torch", "Size") + b")\x85R\x86R"),
        "newobj_on_path": _p(_g("pathlib", "PosixPath") + b")\x81"),
        "build_record_twice": _p(_g(_MD, "StorageMeta") + b")\x81}b}" + _s("x")
                                 + _s("y") + b"sb"),
        "build_record_dunder": _p(_g(_MD, "StorageMeta") + b")\x81}" + _s("__class__")
                                  + _g("pathlib", "PosixPath") + b"sb"),
    }
