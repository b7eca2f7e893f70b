"""Torch's zip checkpoint container (what ``torch.save`` writes: a ``.pt`` file, or one chunk of
a torch-distributed checkpoint's data file), checked from its headers before anything is read.

``torch.load`` allocates each record at the size the zip directory declares and inflates
compressed records, so a 1 MB file can declare a gigabyte. :func:`read_records` reads only the
end-of-directory records and the central directory (bounded) and refuses, before any data is
read:

* a compressed record (torch never compresses: a compressed record can inflate to any size);
* a record whose data lies outside the file (or the byte range), or overlaps another's (the
  records together then ask for more memory than the file holds);
* a directory larger than :data:`ZIP_DIRECTORY_MAX`, a ``data.pkl`` larger than
  :data:`PICKLE_MAX`, duplicate names, data before or inside the directory.

So reading the records never claims more memory than the bytes that are really there.
:class:`Window` lets ``torch.load`` read one byte range of a larger file (a DCP chunk) without
copying it first; :func:`has_hole` finds sparse ranges (no data on disk).
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Dict

from .checkpoint_errors import CheckpointError

#: the largest central directory read (a 1.3B DiT's is ~100 KB; torch writes ~100 bytes per
#: tensor)
ZIP_DIRECTORY_MAX = 16 << 20
#: the largest ``data.pkl`` (the pickle of the tensors' structure; ~150 bytes per tensor)
PICKLE_MAX = 16 << 20

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_LOCATOR64 = b"PK\x06\x07"
_U16, _U32 = 0xFFFF, 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    """One record of the archive: its ``name``, ``size`` in bytes and where its data starts
    (from the start of the archive)."""

    name: str
    size: int
    data_start: int


class Window(io.RawIOBase):
    """The bytes ``[start, start + length)`` of an open binary file, as a file of their own."""

    def __init__(self, f, start: int, length: int):
        super().__init__()
        self._f, self._start, self._length, self._pos = f, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buf) -> int:
        n = max(0, min(len(buf), self._length - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(buf)[:n])
        self._pos += got or 0
        return got or 0


def is_zip(f) -> bool:
    """Whether ``f`` (at position 0) starts like a zip archive, as ``torch.load`` decides."""
    f.seek(0)
    head = f.read(4)
    f.seek(0)
    return head == _LOCAL


def _bad(label: str, why: str) -> CheckpointError:
    return CheckpointError(f"cannot read {label}: not a PyTorch checkpoint, or damaged ({why})")


def _directory_span(f, length: int, label: str):
    """``(offset, size, entries)`` of the central directory, from the end records."""
    tail_len = min(length, 22 + 0xFFFF)
    f.seek(length - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        raise _bad(label, "no zip directory at its end")
    end_pos = length - tail_len + at
    (_, _, _, _, entries, size, offset, _) = struct.unpack("<IHHHHIIH", tail[at:at + 22])
    dir_end = end_pos
    loc = b""
    if end_pos >= 20:
        f.seek(end_pos - 20)
        loc = f.read(20)
    if loc[:4] == _LOCATOR64:              # zip64 (miniz, torch's writer, always adds one)
        (rec_pos,) = struct.unpack("<Q", loc[8:16])
        if rec_pos + 56 > end_pos - 20:
            raise _bad(label, "zip64 end record outside the file")
        f.seek(rec_pos)
        rec = f.read(56)
        if rec[:4] != _END64:
            raise _bad(label, "zip64 end record missing")
        entries, size, offset = struct.unpack("<QQQ", rec[32:56])
        dir_end = rec_pos
    elif entries == _U16 or size == _U32 or offset == _U32:
        raise _bad(label, "zip64 locator missing")
    if offset + size != dir_end:
        raise _bad(label, "the zip directory is not where its end record says")
    if size > ZIP_DIRECTORY_MAX:
        raise CheckpointError(f"cannot read {label}: its zip directory declares {size} bytes, "
                              f"more than a checkpoint needs (limit {ZIP_DIRECTORY_MAX})")
    return offset, size, entries


def _zip64_extra(extra: bytes, size: int, comp: int, local: int):
    """Replace the 0xFFFFFFFF fields by their values from the zip64 extra field."""
    i = 0
    while i + 4 <= len(extra):
        tag, n = struct.unpack("<HH", extra[i:i + 4])
        body = extra[i + 4:i + 4 + n]
        if tag == 1:
            vals = [struct.unpack("<Q", body[j:j + 8])[0] for j in range(0, len(body) - 7, 8)]
            fields = []
            for v in (size, comp, local):
                fields.append(vals.pop(0) if v == _U32 and vals else v)
            return tuple(fields)
        i += 4 + n
    return size, comp, local


def read_records(f, length: int, label: str) -> Dict[str, Record]:
    """The records of the zip archive held by ``f`` (``length`` bytes from position 0),
    checked from the directory alone: every record stored (not compressed), inside the
    archive, before the directory, not overlapping another, names unique, ``data.pkl`` at most
    :data:`PICKLE_MAX`. Raises :class:`CheckpointError` naming ``label``."""
    offset, size, entries = _directory_span(f, length, label)
    f.seek(offset)
    directory = f.read(size)
    if len(directory) != size:
        raise _bad(label, "truncated zip directory")
    records: Dict[str, Record] = {}
    spans = []
    i = 0
    for _ in range(entries):
        if directory[i:i + 4] != _CENTRAL or i + 46 > size:
            raise _bad(label, "damaged zip directory")
        (method, comp, usize, n_name, n_extra, n_comment) = struct.unpack(
            "<H8xIIHHH", directory[i + 10:i + 34])
        (local,) = struct.unpack("<I", directory[i + 42:i + 46])
        name = directory[i + 46:i + 46 + n_name].decode("utf-8", "replace")
        extra = directory[i + 46 + n_name:i + 46 + n_name + n_extra]
        usize, comp, local = _zip64_extra(extra, usize, comp, local)
        i += 46 + n_name + n_extra + n_comment
        if method != 0:
            raise CheckpointError(
                f"refused {label}: its record {name} is compressed (method {method}, "
                f"{comp} bytes declaring {usize}); torch never compresses records, and a "
                f"compressed record can inflate to any size. Re-save the checkpoint with "
                f"torch.save, or convert it to .safetensors")
        if comp != usize:
            raise _bad(label, f"record {name} declares {usize} bytes but stores {comp}")
        if name in records:
            raise _bad(label, f"record {name} appears twice")
        if local + 30 > offset:
            raise _bad(label, f"record {name} starts outside the file")
        f.seek(local)
        head = f.read(30)
        if head[:4] != _LOCAL:
            raise _bad(label, f"record {name} has no local header")
        n1, n2 = struct.unpack("<HH", head[26:30])
        start = local + 30 + n1 + n2
        if start + usize > offset:
            raise CheckpointError(
                f"cannot read {label}: its record {name} declares {usize} bytes, more than "
                f"the file holds there ({max(0, offset - start)}); the file is truncated or "
                f"damaged: download it again")
        if name.endswith("/data.pkl") and usize > PICKLE_MAX:
            raise CheckpointError(f"cannot read {label}: its pickle declares {usize} bytes, "
                                  f"more than a checkpoint needs (limit {PICKLE_MAX})")
        records[name] = Record(name, usize, start)
        spans.append((local, start + usize, name))
    spans.sort()
    for (a0, a1, a), (b0, _, b) in zip(spans, spans[1:]):
        if b0 < a1:
            raise _bad(label, f"records {a} and {b} overlap")
    return records


def has_hole(f, start: int, end: int) -> bool:
    """Whether the bytes ``[start, end)`` of the open file ``f`` contain a hole (a sparse
    region with no data on disk). ``False`` where the file system cannot tell."""
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_hole is None or end <= start:
        return False
    fd = f.fileno()
    here = os.lseek(fd, 0, os.SEEK_CUR)      # the buffered reader's idea of the position
    try:
        return os.lseek(fd, start, seek_hole) < end
    except OSError:
        return False
    finally:
        os.lseek(fd, here, os.SEEK_SET)
