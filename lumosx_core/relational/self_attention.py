"""Relational self-attention without an L x L mask.

Rules (one sample; blocks from :meth:`ConditionLayout.blocks`):

* video queries attend to every key (video and all conditions);
* a non-person image's queries attend only to that image's keys;
* a person group's queries attend only to that group's keys (face and attributes);
* no condition query attends to video keys.

Computed as one attention for the video queries over all keys plus one attention per
condition block, blocks of equal size stacked into the batch dimension. Nothing of size
L x L is ever built, so the host's fastest unmasked kernel serves every call.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from .attention import AttnFn, sdpa_attention
from .layout import Block, ConditionLayout


def _group_by_size(blocks: List[Block]) -> Dict[int, List[Block]]:
    out: Dict[int, List[Block]] = {}
    for b in blocks:
        out.setdefault(b.size, []).append(b)
    return out


def _token_index(blocks: List[Block], device) -> torch.Tensor:
    return torch.cat([torch.arange(b.start, b.stop, device=device) for b in blocks])


def relational_self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                              layout: ConditionLayout, frames: int, tokens_per_frame: int,
                              attn: AttnFn = sdpa_attention, self_mask: bool = True
                              ) -> torch.Tensor:
    """Self-attention over one layout's sequence.

    ``q``, ``k``, ``v``: ``[B, L, heads*d]`` (RoPE already applied to q and k) with
    ``L = (T + N_c) * P``. Returns ``[B, L, heads*d]``. With ``self_mask=False`` (ablation) or
    no conditions, this is one plain attention over all tokens.
    """
    B, L, _ = q.shape
    expected = layout.sequence_length(frames, tokens_per_frame)
    if L != expected:
        raise ValueError(f"sequence has {L} tokens, layout expects {expected}")
    if not self_mask or layout.num_images == 0:
        return attn(q, k, v, heads)

    blocks = layout.blocks(frames, tokens_per_frame)
    video = blocks[0]
    out_video = attn(q[:, :video.stop], k, v, heads)
    out = out_video.new_empty((B, L, out_video.shape[-1]))
    out[:, :video.stop] = out_video
    del out_video

    for size, same in _group_by_size(blocks[1:]).items():
        if len(same) == 1:
            b = same[0]
            out[:, b.start:b.stop] = attn(q[:, b.start:b.stop], k[:, b.start:b.stop],
                                          v[:, b.start:b.stop], heads)
            continue
        n = len(same)
        idx = _token_index(same, q.device)

        def stack(t: torch.Tensor) -> torch.Tensor:
            return t[:, idx].reshape(B * n, size, t.shape[-1])

        res = attn(stack(q), stack(k), stack(v), heads)
        out[:, idx] = res.reshape(B, n * size, res.shape[-1])
    return out
