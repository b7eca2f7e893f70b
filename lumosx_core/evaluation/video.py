"""Reading generated videos for the ``lumosx eval`` command, sampling frames evenly.

* ``.mp4 .webm .mkv .mov .avi .m4v``: PyAV (``av``, installed with ComfyUI);
* ``.webp .gif .png .apng``: Pillow (animated or single image);
* a folder: its image files (``.png .jpg .jpeg .webp .bmp``) in natural name order are the
  frames.

Every frame's declared size is checked before it is decoded (``image_limits``: at most
``MAX_PICTURE_PIXELS`` per frame, ``MAX_BATCH_PIXELS`` for the sampled frames together).

Videos are matched to cases by case id (the first field of ``caption.txt``):
``<videos>/<case id>.<ext>`` or the frames folder ``<videos>/<case id>/``.
"""
from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..image_limits import check_batch_pixels, check_picture_size, open_picture
from ..image_prep import pil_rgb

AV_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
PIL_EXTS = (".webp", ".gif", ".png", ".apng")
FRAME_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_EXTS = AV_EXTS + PIL_EXTS


def sample_indices(total: int, count: int) -> List[int]:
    """``count`` frame numbers spread evenly over ``0 .. total - 1`` (first and last
    included); every frame when ``count`` is 0 or at least ``total``."""
    if total <= 0:
        return []
    if count <= 0 or count >= total:
        return list(range(total))
    if count == 1:
        return [(total - 1) // 2]
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, count)})


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _to_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    arr = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    return torch.from_numpy(arr.astype(np.float32) / 255.0)


_FEWER = "sample fewer frames (--frames / sample_frames)"


def _read_av(path: str, count: int):
    import av
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        check_picture_size(width, height, f"{path}: a frame")
        total = int(stream.frames or 0)
    if total <= 0:                        # container without a frame count: count them
        with av.open(path) as container:
            total = sum(1 for _ in container.decode(video=0))
    want = sample_indices(total, count)
    if not want:
        return [], [], total
    check_batch_pixels(len(want), width, height, f"{path}: the sampled frames", _FEWER)
    wanted, frames = set(want), []
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if (frame.width, frame.height) != (width, height):
                raise ValueError(f"{path}: frame {i} is {frame.width}x{frame.height}, the "
                                 f"stream declares {width}x{height}")
            if i in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= want[-1]:
                break
    got = want[:len(frames)]
    return frames, got, total


def _read_pil(path: str, count: int):
    with open_picture(path) as im:
        total = int(getattr(im, "n_frames", 1))
        want = sample_indices(total, count)
        check_batch_pixels(len(want), im.width, im.height, f"{path}: the sampled frames",
                           _FEWER)
        frames = []
        for i in want:
            im.seek(i)
            frames.append(pil_rgb(im))
    return frames, want, total


def _read_folder(path: str, count: int):
    names = sorted((n for n in os.listdir(path)
                    if n.lower().endswith(FRAME_EXTS) and not n.startswith(".")),
                   key=_natural_key)
    want = sample_indices(len(names), count)
    frames = []
    for i in want:
        with open_picture(os.path.join(path, names[i])) as im:
            if not frames:
                check_batch_pixels(len(want), im.width, im.height,
                                   f"{path}: the sampled frames", _FEWER)
            elif im.size != (frames[0].shape[1], frames[0].shape[0]):
                raise ValueError(f"{path}: frames of different sizes")
            frames.append(pil_rgb(im))
    return frames, want, len(names)


def read_frames(path: str, count: int = 8) -> Tuple[torch.Tensor, List[int], int]:
    """``(frames [k, H, W, 3] float in [0, 1], their frame numbers, total frames)`` of the
    video, animated image or frames folder at ``path``, ``count`` frames sampled evenly
    (0 = all)."""
    if os.path.isdir(path):
        frames, idx, total = _read_folder(path, count)
    elif path.lower().endswith(AV_EXTS):
        frames, idx, total = _read_av(path, count)
    elif path.lower().endswith(PIL_EXTS):
        frames, idx, total = _read_pil(path, count)
    else:
        raise ValueError(f"{path}: unknown video format (use {', '.join(VIDEO_EXTS)} or a "
                         f"folder of frames)")
    if not frames:
        raise ValueError(f"{path}: no frames")
    sizes = {f.shape[:2] for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"{path}: frames of different sizes {sorted(sizes)}")
    return _to_tensor(frames), idx, total


def find_video(videos_dir: str, case_id: str) -> Optional[str]:
    """The generated video of ``case_id`` in ``videos_dir``: ``<case id>.<ext>`` (first of
    :data:`VIDEO_EXTS`) or the frames folder ``<case id>/``; ``None`` when absent."""
    if not videos_dir or not case_id:
        return None
    for ext in VIDEO_EXTS:
        p = os.path.join(videos_dir, case_id + ext)
        if os.path.isfile(p):
            return p
    folder = os.path.join(videos_dir, case_id)
    if os.path.isdir(folder):
        return folder
    return None
