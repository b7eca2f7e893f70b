"""Relational cross-attention: a text bias on the condition queries.

``softmax(q k^T / sqrt(d) + M) v`` per head; ``M = 0`` for video queries. For condition
image ``c`` (its ``P = Hp*Wp`` queries, after the cross-attention's q projection and norm):

1. pooled scores: queries on the ``Hp x Wp`` grid zero-padded to multiples of 8
   (``Hn x Wn``), averaged over 8x8 cells (padding counts), scored against every text key:
   ``S_small = pooled_q . k / sqrt(d)``, ``[heads, Hn/8 * Wn/8, L_text]``;
2. each token takes its cell's score: in *parity* mode token ``p`` reads cell
   ``(p // Wn, p % Wn)`` of the upsampled grid (the released code's flatten quirk), in
   *fixed* mode ``(p // Wp, p % Wp)``;
3. ``M_c = ratio * |S_c| * w_c`` with the text weights ``w_c`` of :func:`text_weights`.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from .attention import AttnFn, sdpa_attention, split_heads
from .layout import ConditionLayout

POOL = 8


def _ceil_to(n: int, m: int) -> int:
    return ((n + m - 1) // m) * m


def text_weights(layout: ConditionLayout, masks: torch.Tensor) -> torch.Tensor:
    """Per-image weights over text tokens, ``[B, N_c, L_text]`` float32.

    ``masks``: phrase masks ``[B, N_c, L_text]`` (bool, or float where > 0.5 is True).
    Non-person image: its own mask. Every image of person ``g``: the template
    ``tau_g = any(g's masks) - (1/(n-1)) * sum_{g' != g} any(g''s masks)`` (with one person,
    ``any(g's masks)``): words shared by several people cancel, other people's words push down.
    """
    m = (masks > 0.5) if masks.is_floating_point() else masks.bool()
    m = m.float()
    if m.shape[1] != layout.num_images:
        raise ValueError(f"phrase masks hold {m.shape[1]} rows, layout has {layout.num_images} images")
    out = torch.zeros_like(m)
    npi = layout.non_person
    out[:, :npi] = m[:, :npi]
    starts = []
    s = npi
    for k in layout.groups:
        starts.append(s)
        s += k
    anys = [m[:, st:st + k].amax(dim=1) for st, k in zip(starts, layout.groups)]
    n = len(anys)
    if n:
        total = torch.stack(anys).sum(dim=0)
        for st, k, a in zip(starts, layout.groups, anys):
            tau = a if n == 1 else a - (total - a) / (n - 1)
            out[:, st:st + k] = tau.unsqueeze(1)
    return out


def cell_index(Hp: int, Wp: int, parity: bool = True, device=None) -> torch.Tensor:
    """For every token ``p`` of an ``Hp x Wp`` image, the flat index of its pooled 8x8 cell
    (``[P]`` long)."""
    Wn = _ceil_to(Wp, POOL)
    p = torch.arange(Hp * Wp, device=device)
    width = Wn if parity else Wp
    r, c = p // width, p % width
    return (r // POOL) * (Wn // POOL) + c // POOL


def pooled_scores(q_img: torch.Tensor, k: torch.Tensor, heads: int, Hp: int, Wp: int
                  ) -> torch.Tensor:
    """Approximate image-to-text scores of one image.

    ``q_img``: ``[B, Hp*Wp, heads*d]``; ``k``: ``[B, L_text, heads*d]``.
    Returns float32 ``[B, heads, (Hn/8)*(Wn/8), L_text]``.
    """
    B, P, C = q_img.shape
    d = C // heads
    Hn, Wn = _ceil_to(Hp, POOL), _ceil_to(Wp, POOL)
    g = q_img.float().reshape(B, Hp, Wp, heads, d)
    g = F.pad(g, (0, 0, 0, 0, 0, Wn - Wp, 0, Hn - Hp))
    g = g.reshape(B, Hn // POOL, POOL, Wn // POOL, POOL, heads, d).mean(dim=(2, 4))
    g = g.reshape(B, -1, heads, d).transpose(1, 2)                   # [B, heads, cells, d]
    kk = split_heads(k.float(), heads)                                 # [B, heads, L, d]
    return torch.matmul(g, kk.transpose(-1, -2)) * (1.0 / math.sqrt(d))


def image_bias(q_img: torch.Tensor, k: torch.Tensor, heads: int, Hp: int, Wp: int,
               weight: torch.Tensor, ratio: float, parity: bool = True,
               cells: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Additive logit bias of one condition image, float32 ``[B, heads, P, L_text]``.

    ``weight``: ``[B, L_text]`` text weights of that image; ``cells``: :func:`cell_index` of
    this grid and mode on q's device (built here when not given).
    """
    s = pooled_scores(q_img, k, heads, Hp, Wp)
    if cells is None:
        cells = cell_index(Hp, Wp, parity, device=s.device)
    s = s[:, :, cells]
    return s.abs_().mul_(weight[:, None, None, :].to(s) * ratio)


def biased_images(weights: torch.Tensor) -> List[bool]:
    """Whether each condition image gets a bias in any batch item (``[B, N_c, L]`` -> ``N_c``
    flags). Reads the weights back to the host: call it once per forward, not per block."""
    return (weights != 0).any(dim=-1).any(dim=0).tolist()


def relational_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                               layout: ConditionLayout, frames: int, Hp: int, Wp: int,
                               weights: Optional[torch.Tensor], ratio: float = 0.5,
                               parity: bool = True, attn: AttnFn = sdpa_attention,
                               cells: Optional[torch.Tensor] = None,
                               biased: Optional[List[bool]] = None) -> torch.Tensor:
    """Text cross-attention with the relational bias on condition queries.

    ``q``: ``[B, L, heads*d]`` (``L = (T+N_c)*Hp*Wp``); ``k``, ``v``: ``[B, L_text, heads*d]``;
    ``weights``: ``[B, N_c, L_text]`` from :func:`text_weights`, or ``None`` for no bias (the
    forward passes ``None`` when ``ratio`` is 0: :attr:`RelationalConfig.text_bias`).
    ``cells`` (:func:`cell_index`) and ``biased`` (:func:`biased_images` of ``weights``) may be
    passed precomputed so that a forward pass builds them once, not once per block.
    Video queries, and images whose weights are all zero, take the plain (host) attention;
    the bias is built one image at a time (``[B, heads, P, L_text]`` at most).
    """
    if weights is None or layout.num_images == 0:
        return attn(q, k, v, heads)
    P = Hp * Wp
    B, L, _ = q.shape
    nz = biased_images(weights) if biased is None else list(biased)
    if not any(nz):
        return attn(q, k, v, heads)
    ranges = layout.image_token_ranges(frames, P)
    first = ranges[0][0]
    plain_stop = first
    # video plus the leading run of unbiased images go through one plain call
    for (s, e), flag in zip(ranges, nz):
        if flag:
            break
        plain_stop = e
    head_out = attn(q[:, :plain_stop], k, v, heads)
    out = head_out.new_empty((B, L, head_out.shape[-1]))
    out[:, :plain_stop] = head_out
    del head_out
    for i, ((s, e), flag) in enumerate(zip(ranges, nz)):
        if e <= plain_stop:
            continue
        q_img = q[:, s:e]
        if flag:
            bias = image_bias(q_img, k, heads, Hp, Wp, weights[:, i], ratio, parity, cells)
            out[:, s:e] = sdpa_attention(q_img, k, v, heads, bias=bias)
        else:
            out[:, s:e] = attn(q_img, k, v, heads)
    return out
