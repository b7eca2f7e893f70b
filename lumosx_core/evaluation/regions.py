"""The part of a frame that belongs to a person, derived from their face box (or given as a
user mask): where each kind of attribute is worn.

* body: below the face, ``body_width`` face widths wide (centred on the face) and
  ``body_height`` face heights tall, starting ``BODY_GAP`` face heights under the chin
  (skips the neck); clipped to the frame. Full-body clothes, things held.
* torso: the upper ``TORSO_SHARE`` of the body box (jackets, shirts, sweaters): what lies
  far below the chin (a blanket, the floor) cannot pass for them.
* legs: from half-way down the body box to ``LEGS_DEPTH`` body heights under its top,
  ``LEGS_WIDTH`` of its width (trousers, skirts, shoes).
* head: the face box widened to ``HEAD_WIDTH`` face widths and raised by ``HEAD_ABOVE`` face
  heights (hats, caps, hair).
* eyes: the band of the face box from ``EYES_BAND[0]`` to ``EYES_BAND[1]`` of its height,
  ``EYES_WIDTH`` face widths wide (glasses).
* neck: ``NECK_WIDTH`` face widths wide, from ``NECK_BAND[0]`` to ``NECK_BAND[1]`` face
  heights under the chin (scarves, ties, necklaces).

Where the boxes of several people overlap, each pixel goes to the person whose face centre is
nearest horizontally, and nobody's region covers another person's face box. A user mask
(``[H, W]``, > 0.5 inside) replaces every region of its person.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

BODY = "body"
TORSO = "torso"
LEGS = "legs"
HEAD = "head"
EYES = "eyes"
NECK = "neck"
REGION_KINDS = (BODY, TORSO, LEGS, HEAD, EYES, NECK)

DEFAULT_BODY_WIDTH = 2.8
DEFAULT_BODY_HEIGHT = 3.5
BODY_GAP = 0.15
TORSO_SHARE = 0.6
LEGS_DEPTH = 1.6
LEGS_WIDTH = 0.8
HEAD_WIDTH = 1.8
HEAD_ABOVE = 0.8
HEAD_BELOW = 0.1
EYES_WIDTH = 1.2
EYES_BAND = (0.15, 0.6)
NECK_WIDTH = 1.5
NECK_BAND = (-0.1, 0.9)

PixelBox = Tuple[int, int, int, int]


def _clip(x1, y1, x2, y2, width: int, height: int) -> PixelBox:
    x1 = int(np.clip(np.floor(x1), 0, width))
    x2 = int(np.clip(np.ceil(x2), 0, width))
    y1 = int(np.clip(np.floor(y1), 0, height))
    y2 = int(np.clip(np.ceil(y2), 0, height))
    return x1, y1, max(x1, x2), max(y1, y2)


def _geometry(face_box: Sequence[float]):
    fx1, fy1, fx2, fy2 = (float(v) for v in face_box)
    return fx1, fy1, fx2, fy2, max(fx2 - fx1, 1.0), max(fy2 - fy1, 1.0), (fx1 + fx2) / 2.0


def body_box(face_box: Sequence[float], width: int, height: int,
             body_width: float = DEFAULT_BODY_WIDTH,
             body_height: float = DEFAULT_BODY_HEIGHT) -> PixelBox:
    """Integer ``(x1, y1, x2, y2)`` of the body under ``face_box``, clipped to the frame
    (empty, ``x1 == x2`` or ``y1 == y2``, when it falls outside)."""
    _, _, _, fy2, fw, fh, cx = _geometry(face_box)
    top = fy2 + BODY_GAP * fh
    return _clip(cx - body_width * fw / 2.0, top, cx + body_width * fw / 2.0,
                 top + body_height * fh, width, height)


def head_box(face_box: Sequence[float], width: int, height: int) -> PixelBox:
    _, fy1, _, fy2, fw, fh, cx = _geometry(face_box)
    return _clip(cx - HEAD_WIDTH * fw / 2.0, fy1 - HEAD_ABOVE * fh,
                 cx + HEAD_WIDTH * fw / 2.0, fy2 + HEAD_BELOW * fh, width, height)


def worn_boxes(face_box: Sequence[float], width: int, height: int,
               body_width: float = DEFAULT_BODY_WIDTH,
               body_height: float = DEFAULT_BODY_HEIGHT) -> Dict[str, PixelBox]:
    """Every region of :data:`REGION_KINDS` of the person with ``face_box`` (see the module
    docs), as clipped integer boxes."""
    _, fy1, _, fy2, fw, fh, cx = _geometry(face_box)
    top = fy2 + BODY_GAP * fh
    bh, bw = body_height * fh, body_width * fw
    return {
        BODY: body_box(face_box, width, height, body_width, body_height),
        TORSO: _clip(cx - bw / 2.0, top, cx + bw / 2.0, top + TORSO_SHARE * bh, width, height),
        LEGS: _clip(cx - LEGS_WIDTH * bw / 2.0, top + 0.5 * bh, cx + LEGS_WIDTH * bw / 2.0,
                    top + LEGS_DEPTH * bh, width, height),
        HEAD: head_box(face_box, width, height),
        EYES: _clip(cx - EYES_WIDTH * fw / 2.0, fy1 + EYES_BAND[0] * fh,
                    cx + EYES_WIDTH * fw / 2.0, fy1 + EYES_BAND[1] * fh, width, height),
        NECK: _clip(cx - NECK_WIDTH * fw / 2.0, fy2 + NECK_BAND[0] * fh,
                    cx + NECK_WIDTH * fw / 2.0, fy2 + NECK_BAND[1] * fh, width, height),
    }


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
    """``{person: {region kind: mask}}`` of bool ``[height, width]`` masks (every kind of
    :data:`REGION_KINDS`) for the people with a face box (and those with a user mask)."""
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
            out[p] = {k: m for k in REGION_KINDS}
            continue
        raw[p] = {k: _box_mask(b, width, height) for k, b in
                  worn_boxes(face_boxes[p], width, height, body_width, body_height).items()}
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
