"""The Evaluate node's inputs, checked and prepared: the people, the sampled frames and the
optional person masks. No ComfyUI import."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..image_limits import fit_picture
from .video import sample_indices


def check_people(references) -> None:
    """``references`` must be the output of LumosX Person nodes with at least one person."""
    if not isinstance(getattr(references, "people", None), tuple):
        raise ValueError("references: expected the output of LumosX Person nodes, got "
                         f"{type(references).__name__}")
    if not references.people:
        raise ValueError("references: no people to evaluate (add LumosX Person nodes)")


def sampled_frames(frames: torch.Tensor, count: int) -> Tuple[torch.Tensor, List[int], int]:
    """IMAGE ``[F, H, W, C]`` (or one ``[H, W, C]``) -> ``(chosen [S, H', W', 3] float on the
    CPU, their frame numbers, F)``: ``count`` frames spread evenly (0 = all), each reduced to
    the picture limit, grey ones made RGB."""
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames: expected an IMAGE batch [F, H, W, C]; got "
                         f"{tuple(frames.shape)}")
    total = int(frames.shape[0])
    idx = sample_indices(total, int(count))
    chosen = torch.stack([fit_picture(frames[i, ..., :3].detach(), f"frames: frame {i}")
                          .float().cpu() for i in idx])
    if chosen.shape[-1] < 3:                                   # grey frames
        chosen = chosen[..., :1].expand(*chosen.shape[:-1], 3).contiguous()
    return chosen, idx, total


def split_masks(masks: Optional[torch.Tensor], n_people: int, n_frames: int,
                indices: Sequence[int], height: int, width: int
                ) -> Optional[List[Dict[int, np.ndarray]]]:
    """MASK ``[M, h, w]`` -> per sampled frame ``{person: [H, W] array}``. ``M`` = people
    (the same masks for every frame) or frames x people (frame-major: frame f, person p at
    ``f * people + p``) of the whole input."""
    if masks is None:
        return None
    if masks.ndim == 2:
        masks = masks.unsqueeze(0)
    m = masks.detach().float().cpu()
    if m.shape[-2:] != (height, width):
        m = F.interpolate(m.unsqueeze(1), size=(height, width), mode="bilinear",
                          align_corners=False).squeeze(1)
    count = m.shape[0]
    if count == n_people:
        per = {p: m[p].numpy() for p in range(n_people)}
        return [per for _ in indices]
    if count == n_people * n_frames:
        return [{p: m[f * n_people + p].numpy() for p in range(n_people)} for f in indices]
    raise ValueError(f"masks: {count} masks for {n_people} people and {n_frames} frames; give "
                     f"one mask per person ({n_people}) or one per frame and person "
                     f"({n_people * n_frames}, frame-major)")


def evaluation_inputs(frames: torch.Tensor, references, count: int,
                      masks: Optional[torch.Tensor]):
    """The Evaluate node's inputs made ready: ``references`` checked (:func:`check_people`),
    then ``(chosen frames [S, H, W, 3], their frame numbers, F, per sampled frame
    {person: mask} or None)`` (:func:`sampled_frames`, :func:`split_masks`)."""
    check_people(references)
    chosen, idx, total = sampled_frames(frames, count)
    h, w = chosen.shape[1:3]
    return chosen, idx, total, split_masks(masks, len(references.people), total, idx, h, w)
