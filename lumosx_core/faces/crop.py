"""Face reference crops: square boxes around detected faces, cut out of a photo on white.

Pure torch: no ``comfy``, no face detector. Images follow ComfyUI's IMAGE convention, one
image ``[H, W, C]`` float in [0, 1]; boxes are ``(x1, y1, x2, y2)`` in the photo's pixels
(x to the right, y down, ``x2``/``y2`` exclusive for integer boxes). Everything outside the
photo is filled with white, the background LumosX references are letterboxed on.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from ..image_prep import to_rgb

Box = Tuple[float, float, float, float]
PixelBox = Tuple[int, int, int, int]

SELECT_MODES = ("largest", "index")


def square_box(bbox: Sequence[float], margin: float) -> Box:
    """Square box centred on ``bbox`` ``(x1, y1, x2, y2)`` with side
    ``max(w, h) * (1 + 2 * margin)``: ``margin`` is the fraction of the face's longer side
    added on each side. Returns float ``(x1, y1, x2, y2)``; it may extend past the photo."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
    side = max(w, h) * (1.0 + 2.0 * float(margin))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def face_box(bbox: Sequence[float], width: int, height: int) -> PixelBox:
    """The detector's face box as it is (not squared, no margin), rounded to whole pixels
    and clipped to the ``width x height`` photo: what the released references are (the
    authors' training crops are the detector's box). At least 1x1 pixel."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    x0 = min(max(int(round(x1)), 0), width - 1)
    y0 = min(max(int(round(y1)), 0), height - 1)
    xe = min(max(int(round(x2)), x0 + 1), width)
    ye = min(max(int(round(y2)), y0 + 1), height)
    return (x0, y0, xe, ye)


def pixel_box(box: Sequence[float]) -> PixelBox:
    """Integer box of at least 1x1 pixel with the same centre and (rounded) size as float
    ``box``; a square box stays square."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w = max(1, int(round(x2 - x1)))
    h = max(1, int(round(y2 - y1)))
    x0 = int(math.floor((x1 + x2) / 2.0 - w / 2.0 + 0.5))
    y0 = int(math.floor((y1 + y2) / 2.0 - h / 2.0 + 0.5))
    return (x0, y0, x0 + w, y0 + h)


def passthrough_box(width: int, height: int) -> Box:
    """The square box, centred on a ``width x height`` photo, whose crop letterboxed to a
    square shows the whole photo: side ``max(width, height)``."""
    side = float(max(width, height))
    return ((width - side) / 2.0, (height - side) / 2.0,
            (width + side) / 2.0, (height + side) / 2.0)


def _intersection(box: PixelBox, width: int, height: int):
    x0, y0, x1, y1 = box
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x1, width), min(y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return ix0, iy0, ix1, iy1


def crop_with_white(image: torch.Tensor, box: Sequence[float]) -> torch.Tensor:
    """Cut ``box`` (rounded with :func:`pixel_box`) out of ``image`` ``[H, W, C]``.
    Returns ``[y2 - y1, x2 - x1, 3]`` in [0, 1]; pixels outside the photo are white (1.0).
    Exact copy, no resampling: meant for small boxes (see :func:`crop_resized`)."""
    img = to_rgb(image, drop_alpha=True)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = pb = pixel_box(box)
    out = torch.ones(y1 - y0, x1 - x0, 3, dtype=img.dtype, device=img.device)
    inter = _intersection(pb, w, h)
    if inter is not None:
        ix0, iy0, ix1, iy1 = inter
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = img[iy0:iy1, ix0:ix1]
    return out


def _resize(chw: torch.Tensor, nh: int, nw: int) -> torch.Tensor:
    """``[1, 3, h, w]`` -> ``[1, 3, nh, nw]``, bicubic, antialiased when shrinking."""
    h, w = chw.shape[-2:]
    if (nh, nw) == (h, w):
        return chw
    return F.interpolate(chw, size=(nh, nw), mode="bicubic", align_corners=False,
                         antialias=nw < w or nh < h).clamp(0, 1)


def crop_resized(image: torch.Tensor, box: Sequence[float], size: int) -> torch.Tensor:
    """``box`` of ``image`` ``[H, W, C]`` letterboxed into a ``size x size`` white canvas:
    the same picture as ``letterbox(crop_with_white(image, box), size, size)`` (up to
    resampling at the photo's edges) without materialising the full-resolution crop, so a
    large margin on a large photo stays cheap. Only the part of the box inside the photo
    is resampled (bicubic, antialiased when shrinking); the rest is white.
    Returns ``[size, size, 3]`` float in [0, 1]."""
    if size < 1:
        raise ValueError(f"size must be >= 1; got {size}")
    img = to_rgb(image, drop_alpha=True)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = pb = pixel_box(box)
    bw, bh = x1 - x0, y1 - y0
    scale = min(size / bw, size / bh)
    ox = (size - bw * scale) / 2.0
    oy = (size - bh * scale) / 2.0
    canvas = torch.ones(size, size, 3, dtype=img.dtype, device=img.device)
    inter = _intersection(pb, w, h)
    if inter is None:
        return canvas
    ix0, iy0, ix1, iy1 = inter

    def span(a: int, b: int, origin: int, offset: float):
        d0 = min(max(int(round(offset + (a - origin) * scale)), 0), size - 1)
        d1 = min(max(int(round(offset + (b - origin) * scale)), d0 + 1), size)
        return d0, d1

    dx0, dx1 = span(ix0, ix1, x0, ox)
    dy0, dy1 = span(iy0, iy1, y0, oy)
    region = img[iy0:iy1, ix0:ix1].permute(2, 0, 1).unsqueeze(0)
    canvas[dy0:dy1, dx0:dx1] = _resize(region, dy1 - dy0, dx1 - dx0)[0].permute(1, 2, 0)
    return canvas


def reference_box(bbox: Sequence[float], width: int, height: int, square: bool = False,
                  margin: float = 0.3) -> PixelBox:
    """The crop box of a face reference for the detector's ``bbox`` in a ``width x height``
    photo: the face box as it is (:func:`face_box`, released) or, with ``square``, a square
    with ``margin`` (:func:`square_box`, may extend past the photo)."""
    if square:
        return pixel_box(square_box(bbox, margin))
    return face_box(bbox, width, height)


def face_reference(image: torch.Tensor, bbox: Sequence[float], size: int, square: bool = False,
                   margin: float = 0.3):
    """THE face reference of one detected face, for the Face Encoder and People From Photo
    alike: the :func:`reference_box` of ``bbox`` in ``image`` ``[H, W, C]`` letterboxed on
    white at ``size`` (:func:`crop_resized`). Returns ``(crop [size, size, 3], box)``."""
    img = to_rgb(image, drop_alpha=True)
    box = reference_box(bbox, img.shape[1], img.shape[0], square, margin)
    return crop_resized(img, box, size), box


def box_area(bbox: Sequence[float]) -> float:
    """Area of ``(x1, y1, x2, y2)`` (0 for a degenerate box)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


def left_to_right(bboxes: Sequence[Sequence[float]]) -> list:
    """Indices of ``bboxes`` (N boxes ``(x1, y1, x2, y2)``) ordered by box centre x, left
    first (ties: top first, then detection order)."""
    keyed = [((float(b[0]) + float(b[2])) / 2.0, (float(b[1]) + float(b[3])) / 2.0, i)
             for i, b in enumerate(bboxes)]
    return [i for _, _, i in sorted(keyed)]


def select_face(bboxes: Sequence[Sequence[float]], mode: str = "largest", index: int = 0) -> int:
    """Which of N detected ``bboxes`` ``(x1, y1, x2, y2)`` to use; returns its position in
    ``bboxes``.

    ``mode="largest"``: the largest box area (first one on ties).
    ``mode="index"``: the ``index``-th face counted left to right by box centre x (0 =
    leftmost); raises ``ValueError`` naming the ``index`` input when out of range."""
    n = len(bboxes)
    if n == 0:
        raise ValueError("no face to select: 0 faces found")
    if mode == "largest":
        areas = [box_area(b) for b in bboxes]
        return max(range(n), key=lambda i: (areas[i], -i))
    if mode == "index":
        index = int(index)
        if not 0 <= index < n:
            raise ValueError(
                f"index {index} is out of range: {n} face{'s' if n != 1 else ''} found "
                f"(the `index` input counts faces left to right from 0, so it must be "
                f"between 0 and {n - 1})")
        return left_to_right(bboxes)[index]
    raise ValueError(f"unknown face selection mode {mode!r}; expected one of {SELECT_MODES}")
