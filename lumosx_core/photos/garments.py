"""Which garment belongs to which person -- the step the paper gives to a multimodal model,
done here geometrically: a garment mask drawn on a group photo goes to the person whose body
region (:mod:`.people`) it overlaps most, and the assignment is written out as text so the
user sees the binding before sampling.

Overlap of a piece of mask with person p = (sum of its mask values inside p's region) / (sum
of its mask values): fractions in [0, 1]; the regions do not overlap, so the fractions and
the share ``outside`` every region add up to 1. A piece whose best overlap is below
``min_overlap`` goes to nobody (reported, never silently given to someone).

Modes (``mode``):

* :data:`BY_PART` (default): each connected part of a mask separately -- a user who painted
  two people's garments in one mask gets each to its wearer, and a garment in one piece stays
  whole. Pieces closer to each other than :data:`GAP` face heights are one part (a fold, a
  hand or a strap across a garment splits a colour or segmentation mask into pieces a few
  pixels apart), and parts under 2 % of the mask travel together as one piece;
* :data:`WHOLE`: each mask as a whole to the person it overlaps most;
* :data:`SPLIT`: each mask cut at the region borders: every person it overlaps by at least
  ``min_overlap`` gets the pixels whose column is nearer their face centre than any other
  such person's (the rule that shares out the regions themselves).

Masks are float ``[M, H, W]`` (1 = garment, :mod:`.masks`), regions bool ``[N, H, W]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .masks import kept, label_parts, part_weights

BY_PART = "each part to its main wearer"
WHOLE = "whole mask to its main wearer"
SPLIT = "split at region borders"
MODES = (BY_PART, WHOLE, SPLIT)
DEFAULT_MIN_OVERLAP = 0.2
#: In :data:`BY_PART`, pieces closer than this many face heights (the people's median) are
#: one part.
GAP = 0.1
#: In :data:`BY_PART`, parts under this fraction of their mask go together as one piece.
SPECK = 0.02


@dataclass(frozen=True, eq=False)
class Share:
    """One piece of garment mask ``mask_index`` (0-based) and where it went: ``piece`` of
    ``pieces`` (1-based; 1 of 1 for a whole mask), ``pixels`` its mask weight, ``overlaps``
    its fraction inside each person's region, ``outside`` the rest, ``person`` the wearer
    (``None``: nobody above ``min_overlap``), ``keep`` bool ``[H, W]`` its pixels."""

    mask_index: int
    piece: int
    pieces: int
    pixels: float
    overlaps: Tuple[float, ...]
    outside: float
    person: Optional[int]
    keep: torch.Tensor


@dataclass(frozen=True, eq=False)
class Assignment:
    """Every garment mask's pieces and their wearers. ``masks`` float ``[M, H, W]``."""

    masks: torch.Tensor
    shares: Tuple[Share, ...]
    people: int
    mode: str = BY_PART
    min_overlap: float = DEFAULT_MIN_OVERLAP

    def person_keep(self, person: int) -> torch.Tensor:
        """bool ``[H, W]``: the garment pixels given to ``person``."""
        out = torch.zeros(self.masks.shape[1:], dtype=torch.bool)
        for s in self.shares:
            if s.person == person:
                out |= s.keep
        return out

    def person_mask(self, person: int) -> torch.Tensor:
        """float ``[H, W]``: the garment mask values given to ``person`` (the highest of the
        masks where several of theirs overlap), 0 elsewhere."""
        out = torch.zeros(self.masks.shape[1:])
        for s in self.shares:
            if s.person == person:
                out = torch.maximum(out, torch.where(s.keep, self.masks[s.mask_index], 0.0))
        return out

    def unassigned(self) -> torch.Tensor:
        """bool ``[H, W]``: garment pixels nobody got."""
        out = torch.zeros(self.masks.shape[1:], dtype=torch.bool)
        for s in self.shares:
            if s.person is None:
                out |= s.keep
        return out

    def report(self) -> str:
        """The assignment as text: one line per piece with its overlaps and its wearer."""
        m = self.masks.shape[0]
        lines = [f"garments: {m} mask{'s' if m != 1 else ''}, {self.mode}, min overlap "
                 f"{self.min_overlap:.2f} (fraction of the piece inside each person's "
                 f"region):"]
        for s in self.shares:
            where = ", ".join(f"person {p} {f:.2f}" for p, f in enumerate(s.overlaps)
                              if f >= 0.005) or "no person"
            who = (f"person {s.person}" if s.person is not None
                   else f"NOBODY (no overlap of {self.min_overlap:.2f} or more)")
            piece = f" piece {s.piece} of {s.pieces}" if s.pieces > 1 else ""
            lines.append(f"  mask {s.mask_index + 1}{piece} ({s.pixels:,.0f} px): {where}, "
                         f"outside {s.outside:.2f} -> {who}")
        for p in range(self.people):
            got = sorted({s.mask_index + 1 for s in self.shares if s.person == p})
            lines.append(f"  person {p} wears: "
                         + (", ".join(f"mask {g}" for g in got) if got else "nothing"))
        return "\n".join(lines)


def overlaps(mask: torch.Tensor, keep: torch.Tensor, regions: torch.Tensor
             ) -> Tuple[float, Tuple[float, ...], float]:
    """``(pixels, fractions per person, outside)`` of the piece ``keep`` (bool ``[H, W]``) of
    ``mask`` (float ``[H, W]``) against ``regions`` (bool ``[N, H, W]``)."""
    w = torch.where(keep, mask, torch.zeros_like(mask)).double()
    total = float(w.sum())
    if total <= 0:
        return 0.0, tuple(0.0 for _ in range(regions.shape[0])), 1.0
    fr = tuple(float((w * r).sum()) / total for r in regions)
    return total, fr, max(0.0, 1.0 - sum(fr))


def _wearer(fractions: Sequence[float], min_overlap: float) -> Optional[int]:
    if not fractions:
        return None
    best = max(range(len(fractions)), key=lambda p: (fractions[p], -p))
    return best if fractions[best] >= min_overlap else None


def _split(mask: torch.Tensor, keep: torch.Tensor, regions: torch.Tensor,
           centres_x: Sequence[float], min_overlap: float, index: int) -> List[Share]:
    _, fr, _ = overlaps(mask, keep, regions)
    wearers = [p for p, f in enumerate(fr) if f >= min_overlap]
    if len(wearers) <= 1:
        return _pieces(mask, [keep], regions, min_overlap, index)
    xs = torch.arange(mask.shape[1], dtype=torch.float64)
    dist = torch.stack([(xs - float(centres_x[p])).abs() for p in wearers])   # [K, W]
    owner = torch.as_tensor(wearers)[dist.argmin(dim=0)]                        # [W]
    pieces = [(p, keep & (owner == p).unsqueeze(0)) for p in wearers]
    pieces = [(p, k) for p, k in pieces if bool(k.any())]
    shares = []
    for j, (p, k) in enumerate(pieces):
        px, f, out = overlaps(mask, k, regions)
        shares.append(Share(index, j + 1, len(pieces), px, f, out, p, k))
    return shares


def _parts(keep: torch.Tensor, mask: torch.Tensor, gap: int) -> List[torch.Tensor]:
    """The connected parts of ``keep`` (pieces less than ``gap`` pixels apart joined), largest
    first; parts under :data:`SPECK` of the mask's weight travel together as one last piece
    (a noisy mask gives a short report, and at most 1 / SPECK + 1 masks are made)."""
    r = max(0, (int(gap) + 1) // 2)
    grown = keep
    if r:
        grown = F.max_pool2d(keep[None, None].float(), 2 * r + 1, stride=1, padding=r)[0, 0] > 0.5
    labels, n = label_parts(grown)
    weights = part_weights(labels, n, torch.where(keep, mask, torch.zeros_like(mask)))
    total = float(weights.sum())
    order = sorted(range(n), key=lambda i: (-weights[i], i))
    big = [i + 1 for i in order if weights[i] > 0 and weights[i] >= SPECK * total]
    small = [i + 1 for i in order if 0 < weights[i] < SPECK * total]
    lab = torch.from_numpy(labels)
    parts = [(lab == i) & keep for i in big]
    if small:
        parts.append(torch.from_numpy(np.isin(labels, small)) & keep)
    return parts


def _pieces(mask, keeps, regions, min_overlap, index) -> List[Share]:
    shares = []
    for j, k in enumerate(keeps):
        px, f, out = overlaps(mask, k, regions)
        shares.append(Share(index, j + 1, len(keeps), px, f, out, _wearer(f, min_overlap), k))
    return shares


def assign_garments(masks: torch.Tensor, regions: torch.Tensor,
                    face_boxes: Sequence[Sequence[float]], mode: str = BY_PART,
                    min_overlap: float = DEFAULT_MIN_OVERLAP) -> Assignment:
    """Give each garment mask (float ``[M, H, W]``, checked by the caller: same size as the
    photo, none empty) to the people whose ``regions`` (bool ``[N, H, W]``) it overlaps, in
    ``mode`` (see the module). ``face_boxes``: each person's face box ``(x1, y1, x2, y2)``
    (their centres split masks in :data:`SPLIT`, their heights set :data:`GAP`)."""
    if mode not in MODES:
        raise ValueError(f"mode = {mode!r} is not one of {MODES}")
    if not 0.0 <= float(min_overlap) <= 1.0:
        raise ValueError(f"min_overlap = {min_overlap}: must be between 0 and 1")
    if masks.shape[1:] != regions.shape[1:]:
        raise ValueError(f"garment masks are {tuple(masks.shape[1:])} but the regions "
                         f"{tuple(regions.shape[1:])}")
    if len(face_boxes) != regions.shape[0]:
        raise ValueError(f"{len(face_boxes)} face boxes for {regions.shape[0]} regions")
    centres_x = [(float(b[0]) + float(b[2])) / 2.0 for b in face_boxes]
    heights = sorted(float(b[3]) - float(b[1]) for b in face_boxes)
    gap = round(GAP * heights[len(heights) // 2]) if heights else 0
    shares: List[Share] = []
    for i in range(masks.shape[0]):
        keep = kept(masks[i])
        if mode == BY_PART:
            shares += _pieces(masks[i], _parts(keep, masks[i], gap), regions, min_overlap, i)
        elif mode == WHOLE:
            shares += _pieces(masks[i], [keep], regions, min_overlap, i)
        else:
            shares += _split(masks[i], keep, regions, centres_x, min_overlap, i)
    return Assignment(masks, tuple(shares), int(regions.shape[0]), mode, float(min_overlap))
