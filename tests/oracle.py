"""Plain dense reference implementation of the LumosX forward -- for tests only.

Everything here is written the slow, obvious way, independently of the efficient path: an
explicit ``L x L`` boolean self-attention mask, an explicit ``[B, heads, L, L_text]``
cross-attention bias built the way the released code builds it (pool, repeat 8x8, flatten,
truncate), position ids from per-token loops, and the Wan block computed by hand from the
model's sub-modules. Tests compare :func:`relational_forward` against it.

Memory grows as ``L^2``: use it on small sizes only.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from lumosx_core import ConditionLayout

POOL = 8


def image_roles(layout: ConditionLayout):
    """Per condition image, in sequence order: its kind (``non_person`` / ``person``), its
    person group (-1 for non-person images) and its index inside the group (0 = face)."""
    kinds = ["non_person"] * layout.non_person + ["person"] * sum(layout.groups)
    group = [-1] * layout.non_person + [g for g, k in enumerate(layout.groups) for _ in range(k)]
    in_group = [0] * layout.non_person + [i for k in layout.groups for i in range(k)]
    return kinds, group, in_group


def dense_position_ids(layout: ConditionLayout, T: int, Hp: int, Wp: int,
                       r2pe: bool = True) -> torch.Tensor:
    """Per-token loop version of the position table: float32 ``[L, 3]``."""
    rows = []
    for f in range(T):
        for i in range(Hp):
            for j in range(Wp):
                rows.append((f, i, j))
    kinds, group, in_group = image_roles(layout)
    for c in range(layout.num_images):
        for i in range(Hp):
            for j in range(Wp):
                if not r2pe:
                    rows.append((T + c, i, j))
                elif kinds[c] == "non_person":
                    rows.append((T + c, i, j))
                else:
                    kk = in_group[c]
                    rows.append((T + layout.non_person + group[c], kk * Hp + i, kk * Wp + j))
    return torch.tensor(rows, dtype=torch.float32)


def dense_self_mask(layout: ConditionLayout, T: int, P: int, self_mask: bool = True
                    ) -> torch.Tensor:
    """Bool ``[L, L]``: True where query row may attend key column."""
    L = (T + layout.num_images) * P
    if not self_mask:
        return torch.ones(L, L, dtype=torch.bool)
    owner = [-1] * (T * P)            # block id of every token; video = -1
    block = 0
    for _ in range(layout.non_person):
        owner += [block] * P
        block += 1
    for k in layout.groups:
        owner += [block] * (k * P)
        block += 1
    owner_t = torch.tensor(owner)
    mask = owner_t[:, None] == owner_t[None, :]   # a condition sees its own block only
    mask[owner_t == -1, :] = True                  # video queries see everything
    return mask


def dense_templates(layout: ConditionLayout, masks: torch.Tensor) -> torch.Tensor:
    """Text weights of every image, by the spec's formulas, one sample at a time:
    float ``[B, N_c, L_text]``."""
    B, n_c, L = masks.shape
    out = torch.zeros(B, n_c, L)
    for b in range(B):
        m = masks[b].bool()
        for c in range(layout.non_person):
            out[b, c] = m[c].float()
        anys: List[torch.Tensor] = []
        start = layout.non_person
        for k in layout.groups:
            anys.append(m[start:start + k].any(dim=0).float())
            start += k
        n = len(anys)
        start = layout.non_person
        for g, k in enumerate(layout.groups):
            if n == 1:
                tau = anys[g]
            else:
                others = [anys[o] for o in range(n) if o != g]
                tau = anys[g] + (-1.0 * torch.stack(others).sum(dim=0) / (n - 1))
            for c in range(start, start + k):
                out[b, c] = tau
            start += k
    return out


def dense_image_scores(q_img: torch.Tensor, k: torch.Tensor, heads: int, Hp: int, Wp: int,
                       parity: bool = True) -> torch.Tensor:
    """Scores of one image's queries, built like the released code: ``[heads, P, L_text]``.

    ``q_img``: ``[P, heads*d]`` of one sample; ``k``: ``[L_text, heads*d]``.
    """
    P, C = q_img.shape
    d = C // heads
    Hn = ((Hp + POOL - 1) // POOL) * POOL
    Wn = ((Wp + POOL - 1) // POOL) * POOL
    g = q_img.float().reshape(Hp, Wp, heads, d)
    g = F.pad(g, (0, 0, 0, 0, 0, Wn - Wp, 0, Hn - Hp)).permute(2, 3, 0, 1)   # [n, d, Hn, Wn]
    pooled = F.avg_pool2d(g, kernel_size=POOL, stride=POOL)                 # [n, d, hn, wn]
    hn, wn = pooled.shape[-2:]
    pooled = pooled.permute(2, 3, 0, 1).reshape(-1, heads, d)               # [cells, n, d]
    kk = k.float().reshape(-1, heads, d)                                    # [L, n, d]
    s = pooled.transpose(0, 1) @ kk.transpose(0, 1).transpose(-2, -1) / math.sqrt(d)
    s = s.reshape(heads, hn, wn, -1)
    s = s.repeat_interleave(POOL, dim=1).repeat_interleave(POOL, dim=2)     # [n, Hn, Wn, L]
    if parity:
        return s.reshape(heads, Hn * Wn, -1)[:, :P]
    return s[:, :Hp, :Wp].reshape(heads, P, -1)


def dense_cross_bias(q: torch.Tensor, k: torch.Tensor, heads: int, layout: ConditionLayout,
                     T: int, Hp: int, Wp: int, masks: torch.Tensor, ratio: float,
                     parity: bool = True) -> torch.Tensor:
    """Full additive bias ``[B, heads, L, L_text]`` (zero on video rows)."""
    B, L, _ = q.shape
    P = Hp * Wp
    bias = torch.zeros(B, heads, L, k.shape[1])
    w = dense_templates(layout, masks)
    for b in range(B):
        for c in range(layout.num_images):
            s0 = (T + c) * P
            sc = dense_image_scores(q[b, s0:s0 + P], k[b], heads, Hp, Wp, parity)
            bias[b, :, s0:s0 + P] = ratio * sc.abs() * w[b, c][None, None, :]
    return bias


def _apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[B, L, n, d]`` by ``freqs`` ``[1, L, 1, d/2, 2, 2]``."""
    xr = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    out = freqs[..., 0] * xr[..., 0] + freqs[..., 1] * xr[..., 1]
    return out.reshape(*x.shape).type_as(x)


def _attention(q, k, v, heads, mask=None, bias=None):
    """Explicit softmax attention; q ``[B, Lq, n*d]``, k/v ``[B, Lk, n*d]``."""
    B, Lq, C = q.shape
    d = C // heads
    qh = q.reshape(B, Lq, heads, d).transpose(1, 2)
    kh = k.reshape(B, -1, heads, d).transpose(1, 2)
    vh = v.reshape(B, -1, heads, d).transpose(1, 2)
    logits = qh @ kh.transpose(-1, -2) / math.sqrt(d)
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    out = torch.softmax(logits, dim=-1) @ vh
    return out.transpose(1, 2).reshape(B, Lq, C)


def _sinusoid(dim: int, t: torch.Tensor) -> torch.Tensor:
    half = dim // 2
    pos = t.float()
    sinusoid = torch.outer(pos, torch.pow(10000, -torch.arange(half).to(pos).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1)


def dense_relational_forward(model, x, timestep, context, cond_latents,
                             layout: ConditionLayout, phrase_masks=None, ratio: float = 0.5,
                             r2pe: bool = True, self_mask: bool = True,
                             cross_mask: bool = True, parity: bool = True,
                             hidden_states: Optional[list] = None) -> torch.Tensor:
    """Dense LumosX forward; same contract as :func:`lumosx_core.relational_forward`.

    Frame sizes must be multiples of the patch size. When ``hidden_states`` is a list, the
    hidden state after every block (``[B, L, dim]``) is appended to it.
    """
    B, C, T, H, W = x.shape
    pt, ph, pw = model.patch_size
    n_c = layout.num_images
    xs = x
    if n_c:
        cond = cond_latents.to(x)
        if cond.shape[0] == 1 and B > 1:
            cond = cond.expand(B, *cond.shape[1:])
        xs = torch.cat([x, cond], dim=2)
    Hp, Wp = H // ph, W // pw
    P = Hp * Wp
    heads = model.num_heads
    dim = model.dim

    ids = dense_position_ids(layout, T, Hp, Wp, r2pe).to(x.device)
    freqs = model.rope_embedder(ids.unsqueeze(0)).movedim(1, 2)
    mask = dense_self_mask(layout, T, P, self_mask).to(x.device)

    if phrase_masks is None:
        masks = torch.zeros(B, n_c, context.shape[1], dtype=torch.bool)
    else:
        masks = phrase_masks.bool() if not phrase_masks.is_floating_point() else phrase_masks > 0.5
        if masks.shape[0] == 1 and B > 1:
            masks = masks.expand(B, *masks.shape[1:])
        if masks.shape[-1] < context.shape[1]:
            masks = F.pad(masks, (0, context.shape[1] - masks.shape[-1]), value=False)

    h = model.patch_embedding(xs.float()).to(xs.dtype)
    h = h.flatten(2).transpose(1, 2)
    L = h.shape[1]
    e = model.time_embedding(_sinusoid(model.freq_dim, timestep.flatten()).to(h.dtype))
    e0 = model.time_projection(e).unflatten(1, (6, dim))                     # [B, 6, dim]
    ctx = model.text_embedding(context)

    for blk in model.blocks:
        mod = (blk.modulation.to(h) + e0).chunk(6, dim=1)
        sa = blk.self_attn
        y = blk.norm1(h) * (1 + mod[1]) + mod[0]
        q = sa.norm_q(sa.q(y)).view(B, L, heads, -1)
        k = sa.norm_k(sa.k(y)).view(B, L, heads, -1)
        v = sa.v(y)
        q = _apply_rope(q, freqs).reshape(B, L, -1)
        k = _apply_rope(k, freqs).reshape(B, L, -1)
        h = h + sa.o(_attention(q, k, v, heads, mask=mask)) * mod[2]

        ca = blk.cross_attn
        y = blk.norm3(h)
        q = ca.norm_q(ca.q(y))
        k = ca.norm_k(ca.k(ctx))
        v = ca.v(ctx)
        bias = None
        if n_c and cross_mask and ratio != 0:
            bias = dense_cross_bias(q, k, heads, layout, T, Hp, Wp, masks, ratio, parity)
        h = h + ca.o(_attention(q, k, v, heads, bias=bias))

        y = blk.norm2(h) * (1 + mod[4]) + mod[3]
        h = h + blk.ffn(y) * mod[5]
        if hidden_states is not None:
            hidden_states.append(h)

    hm = (model.head.modulation.to(h) + e[:, None]).chunk(2, dim=1)
    out = model.head.head(model.head.norm(h) * (1 + hm[1]) + hm[0])
    c_out = model.out_dim
    Tt = xs.shape[2] // pt
    u = out[:, :Tt * P].reshape(B, Tt, Hp, Wp, pt, ph, pw, c_out)
    u = torch.einsum("bfhwpqrc->bcfphqwr", u).reshape(B, c_out, Tt * pt, Hp * ph, Wp * pw)
    return u[:, :, :T]
