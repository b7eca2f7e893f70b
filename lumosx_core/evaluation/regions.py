"""The part of a frame that belongs to a person, derived from their face box (or given as a
user mask).

* body: below the face, ``body_width`` face widths wide (centred on the face) and
  ``body_height`` face heights tall, starting ``BODY_GAP`` face heights under the chin
  (skips the neck); clipped to the frame.
* head: the face box widened to ``HEAD_WIDTH`` face widths and raised by ``HEAD_ABOVE`` face
  heights (hats, glasses, hair).

Where the boxes of several people overlap, each pixel goes to the person whose face centre is
nearest horizontally, and nobody's region covers another person's face box. A user mask
(``[H, W]``, > 0.5 inside) replaces both boxes for its person.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

BODY = "body"
HEAD = "head"
REGION_KINDS = (BODY, HEAD)

DEFAULT_BODY_WIDTH = 2.8
DEFAULT_BODY_HEIGHT = 3.5
BODY_GAP = 0.15
HEAD_WIDTH = 1.8
HEAD_ABOVE = 0.8
HEAD_BELOW = 0.1

PixelBox = Tuple[int, int, int, int]


def _clip(x1, y1, x2, y2, width: int, height: int) -> PixelBox:
    x1 = int(np.clip(np.floor(x1), 0, width))
    x2 = int(np.clip(np.ceil(x2), 0, width))
    y1 = int(np.clip(np.floor(y1), 0, height))
    y2 = int(np.clip(np.ceil(y2), 0, height))
    return x1, y1, max(x1, x2), max(y1, y2)


def body_box(face_box: Sequence[float], width: int, height: int,
             body_width: float = DEFAULT_BODY_WIDTH,
             body_height: float = DEFAULT_BODY_HEIGHT) -> PixelBox:
    """Integer ``(x1, y1, x2, y2)`` of the body under ``face_box``, clipped to the frame
    (empty, ``x1 == x2`` or ``y1 == y2``, when it falls outside)."""
    fx1, fy1, fx2, fy2 = (float(v) for v in face_box)
    fw, fh = max(fx2 - fx1, 1.0), max(fy2 - fy1, 1.0)
    cx = (fx1 + fx2) / 2.0
    top = fy2 + BODY_GAP * fh
    return _clip(cx - body_width * fw / 2.0, top, cx + body_width * fw / 2.0,
                 top + body_height * fh, width, height)


def head_box(face_box: Sequence[float], width: int, height: int) -> PixelBox:
    fx1, fy1, fx2, fy2 = (float(v) for v in face_box)
    fw, fh = max(fx2 - fx1, 1.0), max(fy2 - fy1, 1.0)
    cx = (fx1 + fx2) / 2.0
    return _clip(cx - HEAD_WIDTH * fw / 2.0, fy1 - HEAD_ABOVE * fh,
                 cx + HEAD_WIDTH * fw / 2.0, fy2 + HEAD_BELOW * fh, width, height)


def _box_mask(box: PixelBox, width: int, height: int) -> np.ndarray:
    m = np.zeros((height, width), dtype=bool)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = True
    return m


def person_regions(face_boxes: Dict[int, Sequence[float]], width: int, height: int,
                   body_width: float = DEFAULT_BODY_WIDTH,
                   body_height: float = DEFAULT_BODY_HEIGHT,
                   user_masks: Optional[Dict[int, np.ndarray]] = None
                   ) -> Dict[int, Dict[str, np.ndarray]]:
    """``{person: {"body": mask, "head": mask}}`` of bool ``[height, width]`` masks for the
    people with a face box (and those with a user mask)."""
    user_masks = user_masks or {}
    people = sorted(set(face_boxes) | set(user_masks))
    centres = {p: (float(b[0]) + float(b[2])) / 2.0 for p, b in face_boxes.items()}
    face_masks = {p: _box_mask(_clip(*b, width, height), width, height)
                  for p, b in face_boxes.items()}
    xs = np.arange(width, dtype=np.float64)
    out: Dict[int, Dict[str, np.ndarray]] = {}
    raw = {}
    for p in people:
        if p in user_masks:
            m = np.asarray(user_masks[p]) > 0.5
            if m.shape != (height, width):
                raise ValueError(f"mask of person {p + 1}: shape {m.shape} != frame "
                                 f"{(height, width)}")
            out[p] = {BODY: m, HEAD: m}
            continue
        b = face_boxes[p]
        raw[p] = {BODY: _box_mask(body_box(b, width, height, body_width, body_height),
                                  width, height),
                  HEAD: _box_mask(head_box(b, width, height), width, height)}
    # nearest face centre (horizontally) owns each column among the box-derived people
    if len(centres) > 1:
        ids = sorted(centres)
        dist = np.stack([np.abs(xs - centres[p]) for p in ids])      # [P, W]
        owner = np.asarray(ids)[np.argmin(dist, axis=0)]              # [W]
    else:
        owner = None
    for p, regions in raw.items():
        keep = np.ones((height, width), dtype=bool)
        if owner is not None:
            keep &= (owner == p)[None, :]
        for q, fm in face_masks.items():
            if q != p:
                keep &= ~fm
        out[p] = {k: m & keep for k, m in regions.items()}
    return out


def bounding_box(mask: np.ndarray) -> Optional[PixelBox]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
