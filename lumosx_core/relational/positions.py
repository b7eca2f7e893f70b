"""Relational RoPE ("R2PE") position ids.

Only the integer (t, h, w) ids change; the rotary embedding itself is the model's own
(``WanModel.rope_embedder``), fed with these ids.

======================================  ============  ===============  ===============
tokens                                  t             h                w
======================================  ============  ===============  ===============
video frame f, row i, col j             f             i                j
non-person image j (bg, then objects)   T + j         i                j
person group g, image k (k=0: face)     T + m' + g    k*Hp + i         k*Wp + j
======================================  ============  ===============  ===============

``m'`` is the number of non-person images. Sequential ablation (``r2pe=False``): condition
image number c (sequence order) gets t = T + c and h, w start at 0 -- exactly ComfyUI's
``time_dim_concat`` (Phantom) positions.
"""
from __future__ import annotations

import torch

from .layout import ConditionLayout

#: Positions the released model saw: the reference code tabulates RoPE for ids < 1024.
MAX_ROPE_POSITION = 1024


def _frame_grid(Hp: int, Wp: int, t, h0: int, w0: int) -> torch.Tensor:
    """[Hp*Wp, 3] ids of one frame at time ``t`` whose rows/cols start at ``h0``/``w0``."""
    ids = torch.zeros(Hp, Wp, 3, dtype=torch.float32)
    ids[..., 0] = float(t)
    ids[..., 1] = torch.arange(h0, h0 + Hp, dtype=torch.float32).view(Hp, 1)
    ids[..., 2] = torch.arange(w0, w0 + Wp, dtype=torch.float32).view(1, Wp)
    return ids.reshape(Hp * Wp, 3)


def position_ids(layout: ConditionLayout, frames: int, Hp: int, Wp: int,
                 r2pe: bool = True) -> torch.Tensor:
    """Position ids of the whole sequence (video then condition frames).

    Returns a float32 tensor of shape ``[(T + N_c) * Hp * Wp, 3]`` holding (t, h, w).
    """
    parts = []
    vid = torch.zeros(frames, Hp, Wp, 3, dtype=torch.float32)
    vid[..., 0] = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1)
    vid[..., 1] = torch.arange(Hp, dtype=torch.float32).view(1, Hp, 1)
    vid[..., 2] = torch.arange(Wp, dtype=torch.float32).view(1, 1, Wp)
    parts.append(vid.reshape(-1, 3))
    if r2pe:
        for j in range(layout.non_person):
            parts.append(_frame_grid(Hp, Wp, frames + j, 0, 0))
        for g, k in enumerate(layout.groups):
            t = frames + layout.non_person + g
            for i in range(k):
                parts.append(_frame_grid(Hp, Wp, t, i * Hp, i * Wp))
    else:
        for c in range(layout.num_images):
            parts.append(_frame_grid(Hp, Wp, frames + c, 0, 0))
    return torch.cat(parts, dim=0)


def max_position(layout: ConditionLayout, frames: int, Hp: int, Wp: int,
                 r2pe: bool = True) -> int:
    """Largest id on any axis (what must stay below :data:`MAX_ROPE_POSITION`)."""
    if r2pe:
        t = frames - 1 + layout.non_person + layout.num_people
        kmax = max(layout.groups, default=1)
        return int(max(t, kmax * Hp - 1, kmax * Wp - 1))
    return int(max(frames - 1 + layout.num_images, Hp - 1, Wp - 1))


def check_rope_capacity(layout: ConditionLayout, frames: int, Hp: int, Wp: int,
                        r2pe: bool = True) -> None:
    """Raise ``ValueError`` when some token would get a position the released model never saw."""
    m = max_position(layout, frames, Hp, Wp, r2pe)
    if m >= MAX_ROPE_POSITION:
        kmax = max(layout.groups, default=1)
        raise ValueError(
            f"too many references for RoPE: the layout (non-person images: {layout.non_person}, "
            f"images per person: {list(layout.groups)}) at {frames} latent frames and a "
            f"{Hp}x{Wp} token grid needs position {m}, but the model only knows positions below "
            f"{MAX_ROPE_POSITION}. Use fewer attribute images per person (largest group now: "
            f"{kmax}), fewer references, or a smaller video size.")


def apply_rope_options(ids: torch.Tensor, rope_options) -> torch.Tensor:
    """Scale and shift ids ``[L, 3]`` the way ComfyUI's ``rope_options`` (the ScaleROPE node)
    change the stock Wan positions: on each axis ``id -> shift + id * scale`` (keys
    ``scale_t``/``shift_t``, ``scale_y``/``shift_y`` for h, ``scale_x``/``shift_x`` for w).
    Applied to every token, as the host applies it to Phantom's appended reference frames.
    ``None`` or ``{}`` returns ``ids`` unchanged."""
    if not rope_options:
        return ids
    out = ids.clone()
    for axis, name in enumerate(("t", "y", "x")):
        scale = float(rope_options.get(f"scale_{name}", 1.0))
        shift = float(rope_options.get(f"shift_{name}", 0.0))
        out[:, axis] = out[:, axis] * scale + shift
    return out


def rope_freqs(model, ids: torch.Tensor, device=None) -> torch.Tensor:
    """Feed ids ``[L, 3]`` to the model's own RoPE embedder.

    Returns ``freqs`` in the layout ``WanModel.forward_orig`` expects: ``[1, L, 1, d/2, 2, 2]``.
    """
    ids = ids.to(device=device if device is not None else ids.device)
    return model.rope_embedder(ids.unsqueeze(0)).movedim(1, 2)
