"""Everyone in a group photo: the detected faces in a stated order, and each person's body
region -- a geometric prior from the face box, the one the evaluation uses
(:func:`lumosx_core.evaluation.regions.person_regions`): the head (the face box widened to
1.8 face widths, raised by 0.8 face heights) and the body below it (``body_width`` face widths
wide, ``body_height`` face heights tall, from 0.15 face heights under the chin), clipped to the
photo. Where two people's regions meet, each column goes to the person whose face centre is
nearest, and nobody's region covers another person's face.

Boxes are ``(x1, y1, x2, y2)`` in the photo's pixels; masks are bool ``[H, W]``. The face
crops themselves are made by the Face Encoder's own crop (the node glue passes them in), so a
person's crop here is the Face Encoder's crop of the same face.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..drawing import default_font, hex_rgb, person_color
from ..evaluation.regions import (BODY, DEFAULT_BODY_HEIGHT, DEFAULT_BODY_WIDTH, HEAD,
                                  person_regions)
from ..faces.crop import box_area, left_to_right
from ..image_prep import Region

Box = Tuple[float, float, float, float]

LEFT_TO_RIGHT = "left to right"
LARGEST_FIRST = "largest first"
ORDERS = (LEFT_TO_RIGHT, LARGEST_FIRST)


def order_faces(bboxes: Sequence[Sequence[float]], order: str = LEFT_TO_RIGHT,
                max_people: int = 0) -> list:
    """Positions in ``bboxes`` (N face boxes) of the people to keep, in ``order``:
    ``left to right`` by box centre x (the Face Encoder's ``index`` order: person k here is
    its face ``index = k``), or ``largest first`` by box area (ties left to right).
    ``max_people`` > 0 keeps only that many, the largest faces (then orders them)."""
    if order not in ORDERS:
        raise ValueError(f"order = {order!r} is not one of {ORDERS}")
    ltr = left_to_right(bboxes)
    rank = {i: r for r, i in enumerate(ltr)}
    by_size = sorted(range(len(bboxes)), key=lambda i: (-box_area(bboxes[i]), rank[i]))
    chosen = set(by_size[:max_people] if max_people > 0 else by_size)
    sequence = ltr if order == LEFT_TO_RIGHT else by_size
    return [i for i in sequence if i in chosen]


def body_regions(bboxes: Sequence[Sequence[float]], width: int, height: int,
                 body_width: float = DEFAULT_BODY_WIDTH,
                 body_height: float = DEFAULT_BODY_HEIGHT) -> torch.Tensor:
    """bool ``[N, height, width]``: each person's region (head and body under the face box,
    columns shared out by the nearest face centre, other people's faces left out) for the N
    face ``bboxes`` of one photo."""
    regions = person_regions({i: b for i, b in enumerate(bboxes)}, width, height,
                             body_width, body_height)
    out = np.zeros((len(bboxes), height, width), dtype=bool)
    for i, reg in regions.items():
        out[i] = reg[BODY] | reg[HEAD]
    return torch.from_numpy(out)


@dataclass(frozen=True, eq=False)
class PhotoPerson:
    """One person of a group photo: ``bbox`` the detector's face box, ``face`` the face
    reference ``[S, S, 3]`` (the Face Encoder's crop), ``info`` its face info (box, landmarks,
    score, embedding; the Face Encoder's ``face_info`` entry), ``region`` bool ``[H, W]``,
    ``source`` the box of the photo ``face`` was resized from (what Bind resizes to the video
    size instead, once; ``None`` when unknown)."""

    bbox: Box
    face: torch.Tensor
    info: dict
    region: torch.Tensor
    source: Optional[Region] = None


@dataclass(frozen=True, eq=False)
class PeopleInPhoto:
    """Everyone found in one photo (``LUMOSX_PEOPLE``): ``photo`` ``[H, W, 3]``, ``people``
    in ``order`` (person k = ``people[k]``), ``assignment`` the garments given to them (a
    :class:`lumosx_core.photos.garments.Assignment`, or ``None``)."""

    photo: torch.Tensor
    people: Tuple[PhotoPerson, ...]
    order: str = LEFT_TO_RIGHT
    assignment: Optional[object] = None

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the photo."""
        return int(self.photo.shape[1]), int(self.photo.shape[0])

    def person(self, index: int, name: str = "index") -> PhotoPerson:
        """Person ``index`` (0-based, in :attr:`order`); an out-of-range index is an error
        naming ``name``."""
        n = len(self.people)
        if not 0 <= int(index) < n:
            raise ValueError(f"{name} = {index} is out of range: {n} "
                             f"{'person was' if n == 1 else 'people were'} found in the photo "
                             f"(counted {self.order} from 0, so {name} must be between 0 and "
                             f"{n - 1})")
        return self.people[int(index)]

    def with_assignment(self, assignment) -> "PeopleInPhoto":
        return replace(self, assignment=assignment)

    def regions(self) -> torch.Tensor:
        """bool ``[N, H, W]``: every person's region, in order."""
        return torch.stack([p.region for p in self.people])

    def describe(self) -> str:
        """One line per person: index, face box and size, detector score."""
        w, h = self.size
        n = len(self.people)
        lines = [f"{n} {'person' if n == 1 else 'people'} in the {w}x{h} photo, counted "
                 f"{self.order} from 0:"]
        for k, p in enumerate(self.people):
            x1, y1, x2, y2 = p.bbox
            score = p.info.get("det_score")
            lines.append(f"  person {k}: face ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f}), "
                         f"{x2 - x1:.0f}x{y2 - y1:.0f} px"
                         + (f", score {score:.2f}" if score is not None else ""))
        return "\n".join(lines)


def render_people(photo: torch.Tensor, bboxes: Sequence[Sequence[float]],
                  regions: torch.Tensor, garments: Optional[Sequence[torch.Tensor]] = None,
                  unassigned: Optional[torch.Tensor] = None) -> np.ndarray:
    """The photo ``[H, W, 3]`` with each person's region (bool ``[N, H, W]``) tinted in their
    colour (the binding preview's person colours, person k = colour k), the face box framed
    and labelled "person k", each person's ``garments`` pixels (bool ``[H, W]`` per person)
    strongly tinted, ``unassigned`` garment pixels hatched grey. Returns uint8 ``[H, W, 3]``."""
    base = Image.fromarray((photo.clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    h, w = photo.shape[:2]
    layer = np.zeros((h, w, 4), dtype=np.float32)

    def tint(mask, rgb, alpha):
        m = mask.numpy() if torch.is_tensor(mask) else np.asarray(mask)
        layer[m] = (*rgb, alpha)

    for k in range(len(bboxes)):
        tint(regions[k], hex_rgb(person_color(k)), 70)
    for k, g in enumerate(garments or ()):
        if g is not None:
            tint(g, hex_rgb(person_color(k)), 170)
    if unassigned is not None:
        stripes = ((np.add.outer(np.arange(h), np.arange(w)) // 6) % 2 == 0)
        tint(unassigned.numpy() & stripes, (128, 128, 128), 200)
    over = Image.fromarray(layer.round().astype(np.uint8), "RGBA")
    img = Image.alpha_composite(base.convert("RGBA"), over)
    d = ImageDraw.Draw(img)
    font = default_font()
    line = max(2, round(max(w, h) / 400))
    for k, b in enumerate(bboxes):
        col = hex_rgb(person_color(k)) + (255,)
        x1, y1, x2, y2 = (float(v) for v in b)
        d.rectangle([x1, y1, x2, y2], outline=col, width=line)
        text = f"person {k}"
        tw = d.textlength(text, font=font)
        ty = max(0.0, y1 - 14)
        d.rectangle([x1, ty, x1 + tw + 6, ty + 13], fill=col)
        d.text((x1 + 3, ty), text, fill=(255, 255, 255, 255), font=font)
    return np.asarray(img.convert("RGB"))
