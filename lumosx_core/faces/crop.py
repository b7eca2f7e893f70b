"""Face boxes: the face box widened or squared, in whole pixels; which face of several.

No ``comfy``, no face detector. Boxes are ``(x1, y1, x2, y2)`` in the photo's pixels (x to
the right, y down, ``x2``/``y2`` exclusive for integer boxes).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

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


def expand_box(bbox: Sequence[float], left: float, top: float, right: float,
               bottom: float) -> Box:
    """``bbox`` ``(x1, y1, x2, y2)`` widened on each side by the given fractions of its width
    (``left``, ``right``) and height (``top``, ``bottom``); float, it may reach past the
    photo."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
    return (x1 - left * w, y1 - top * h, x2 + right * w, y2 + bottom * h)


def face_box(bbox: Sequence[float], width: int, height: int) -> PixelBox:
    """A box ``(x1, y1, x2, y2)`` as it is (not squared), rounded to whole pixels and clipped
    to the ``width x height`` photo; at least 1x1 pixel. The released crop is the face box
    widened by the released framing, then this (``reference.reference_box``)."""
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
